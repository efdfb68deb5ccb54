"""Reason codes are a documented, stable protocol."""

from pathlib import Path

from sessionward.reasons import ReasonCode

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_every_reason_code_is_documented_in_the_protocol() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    missing = [code.value for code in ReasonCode if f"| `{code.value}` |" not in text]
    assert missing == []


def test_reason_codes_are_their_own_names() -> None:
    assert all(code.name == code.value for code in ReasonCode)
