"""The README's first command: ``sessionward demo`` tells the whole story and exits 0."""

from __future__ import annotations

from pathlib import Path

from demo_run import run_demo


def test_the_demo_plays_every_step_and_exits_zero(tmp_path: Path) -> None:
    out = run_demo(tmp_path)
    for expected in (
        "TARGET_NOT_ALLOWED",
        "USD_LIMIT_EXCEEDED",
        "NON_DELEGABLE_ACTION",
        "CHAIN_MISMATCH",
        "SESSION_EXPIRED",
        "SESSION_REVOKED",
        "Every step behaved as required.",
    ):
        assert expected in out
    assert "executed on chain" in out
