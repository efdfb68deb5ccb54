"""Grant checking: the SDK recomputes the EIP-712 digest from the document and refuses any
grant that is not what it computes or expects."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sessionward.crypto.typed_data import credential_hash
from sessionward.sdk import GrantVerificationError, grant_document_digest, verify_grant

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
VECTOR_DIGEST = "0x2f81d63433edd81258a322e76fd085e2a4d7016b866b701f235c54f016ad656f"
ACCOUNT = "0x1111111111111111111111111111111111111111"
CREDENTIAL = "cred_test_0001"


def _vector_document() -> dict[str, Any]:
    section = PROTOCOL.read_text(encoding="utf-8").split("### 6.2")[1].split("### 6.3")[0]
    (block,) = re.findall(r"```json\n(.*?)\n```", section, flags=re.DOTALL)
    document: dict[str, Any] = json.loads(block)
    return document


def _pending() -> dict[str, Any]:
    document = _vector_document()
    return {
        "sessionId": "ses_1",
        "sessionKey": document["message"]["sessionKey"],
        "grant": document,
        "grantDigest": VECTOR_DIGEST,
    }


def test_the_protocol_vector_document_hashes_to_its_documented_digest() -> None:
    assert "0x" + grant_document_digest(_vector_document()).hex() == VECTOR_DIGEST


def test_a_checked_grant_gives_the_digest_to_sign() -> None:
    digest = verify_grant(_pending(), account=ACCOUNT, credential_id=CREDENTIAL)
    assert "0x" + digest.hex() == VECTOR_DIGEST


def _tampered(path: list[str | int], value: Any) -> dict[str, Any]:
    pending = copy.deepcopy(_pending())
    target: Any = pending
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return pending


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["grantDigest"], "0x" + "00" * 32),
        (["grant", "message", "envelope", "maxUses"], "0"),
        (["grant", "message", "envelope", "expiresAt"], "1867225600"),
        (["grant", "message", "envelope", "allowedDestinations"], []),
        (["grant", "message", "nonce"], "1"),
        (["grant", "domain", "name"], "SessionWarden"),
        (["grant", "domain", "chainId"], 5),
        (["grant", "primaryType"], "Envelope"),
        (["grant", "types", "Rule"], [{"name": "arg", "type": "string"}]),
        (["grant", "message", "envelope", "unexpected"], "1"),
    ],
)
def test_a_tampered_grant_is_refused(path: list[str | int], value: Any) -> None:
    with pytest.raises(GrantVerificationError):
        verify_grant(_tampered(path, value), account=ACCOUNT, credential_id=CREDENTIAL)


def test_a_grant_for_another_account_is_refused() -> None:
    with pytest.raises(GrantVerificationError, match="another account"):
        verify_grant(_pending(), account="0x" + "22" * 20)


def test_a_grant_bound_to_another_credential_is_refused() -> None:
    with pytest.raises(GrantVerificationError, match="credential"):
        verify_grant(_pending(), credential_id="cred_someone_else")
    assert _pending()["grant"]["message"]["credential"] == "0x" + credential_hash(CREDENTIAL).hex()


def test_a_grant_naming_another_session_key_is_refused() -> None:
    pending = {**_pending(), "sessionKey": "0x" + "99" * 20}
    with pytest.raises(GrantVerificationError, match="session key"):
        verify_grant(pending)


def test_a_consistent_forgery_for_another_chain_is_refused() -> None:
    """Digest recomputed honestly by the forger, but the envelope's chain is not the domain's."""
    pending = _tampered(["grant", "message", "envelope", "chainId"], "5")
    pending["grantDigest"] = "0x" + grant_document_digest(pending["grant"]).hex()
    with pytest.raises(GrantVerificationError, match="chain"):
        verify_grant(pending)
