"""The ``SessionRenewal`` typed message (docs/protocol.md section 2): the owner's fresh consent
to re-activate a suspended session, with its own nonce. Off-chain only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crypto_support import ACCOUNT, CHAIN_ID, OWNER_SECRET
from eth_account import Account

from sessionward.crypto.secp256k1 import address_from_secret, recover_signer
from sessionward.crypto.typed_data import (
    SCHEMA,
    renewal_digest,
    renewal_message,
    revocation_digest,
    typed_data_document,
)

ReferenceDigest = Callable[[str, int, str, dict[str, Any]], bytes]
SESSION_KEY = "0x5e5510e0000000000000000000000000000000a1"
GRANT_DIGEST = bytes.fromhex("2f81d63433edd81258a322e76fd085e2a4d7016b866b701f235c54f016ad656f")
# The vector: SessionRenewal(ACCOUNT, SESSION_KEY, GRANT_DIGEST, nonce 42) on CHAIN_ID.
RENEWAL_DIGEST = "0x50d44c01f22e1b472c383f94509870a60218b5e3dc77864b0ceb71f9ac89a751"


def test_the_type_string_is_exact() -> None:
    assert SCHEMA.encode_type("SessionRenewal") == (
        "SessionRenewal(address account,address sessionKey,bytes32 grantDigest,uint256 nonce)"
    )


def test_the_digest_equals_eth_account_and_the_vector(reference_digest: ReferenceDigest) -> None:
    message = renewal_message(ACCOUNT, SESSION_KEY, GRANT_DIGEST, 42)
    digest = renewal_digest(CHAIN_ID, ACCOUNT, message)
    assert digest == reference_digest("SessionRenewal", CHAIN_ID, ACCOUNT, message)
    assert "0x" + digest.hex() == RENEWAL_DIGEST


def test_a_wallet_signature_of_the_document_recovers_to_the_owner() -> None:
    message = renewal_message(ACCOUNT, SESSION_KEY, GRANT_DIGEST, 42)
    document = typed_data_document("SessionRenewal", CHAIN_ID, ACCOUNT, message)
    signed = Account.sign_typed_data(OWNER_SECRET, full_message=document)
    signer = recover_signer(renewal_digest(CHAIN_ID, ACCOUNT, message), bytes(signed.signature))
    assert signer == address_from_secret(OWNER_SECRET)


def test_another_nonce_grant_or_type_gives_another_digest() -> None:
    def digest(grant: bytes, nonce: int) -> bytes:
        return renewal_digest(
            CHAIN_ID, ACCOUNT, renewal_message(ACCOUNT, SESSION_KEY, grant, nonce)
        )

    digests = {
        digest(GRANT_DIGEST, 42),
        digest(GRANT_DIGEST, 43),
        digest(bytes(32), 42),
        revocation_digest(CHAIN_ID, ACCOUNT, SESSION_KEY, 0, 42),
    }
    assert len(digests) == 4
