"""The test vectors of docs/protocol.md section 6: recomputed, cross-checked, and in the doc.

Every key is derived from a public label (``keccak256(b"sessionward/test/<role>")``), so anyone
(the Vyper tests, an SDK in another language) can rebuild the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from crypto_support import eth_account_digest
from eth_account import Account
from eth_account.messages import encode_defunct

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.request_signature import (
    CredentialKey,
    InMemoryReplayStore,
    Secp256k1RequestSigner,
    request_preimage,
    sign_request,
    verify_request,
)
from sessionward.crypto.secp256k1 import address_from_secret, recover_signer, sign_digest
from sessionward.crypto.typed_data import (
    SCHEMA,
    credential_hash,
    domain_separator_for,
    execution_hash,
    grant_digest,
    revocation_digest,
    session_call_digest,
    typed_data_document,
)

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# ---------------------------------------------------------------------------------- inputs

OWNER_SECRET = keccak256(b"sessionward/test/owner")
SESSION_SECRET = keccak256(b"sessionward/test/session")
CREDENTIAL_SECRET = keccak256(b"sessionward/test/credential")
RELAYER_SECRET = keccak256(b"sessionward/test/relayer")
CHAIN_ID = 1
ACCOUNT = "0x1111111111111111111111111111111111111111"
CREDENTIAL_ID = "cred_test_0001"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
MERCHANT = "0x3333333333333333333333333333333333333333"
ROUTER = "0xe592427a0aece92de3edee1f18e0157c05861564"


def _word(value: int | str) -> bytes:
    number = int(value, 16) if isinstance(value, str) else value
    return number.to_bytes(32, "big")


def vector_grant() -> dict[str, Any]:
    """Two permissions (a transfer to one merchant, an approval capped at 100 USDC to one
    router), one USDC token limit of 250 per day."""
    return {
        "account": ACCOUNT,
        "sessionKey": address_from_secret(SESSION_SECRET),
        "credential": credential_hash(CREDENTIAL_ID),
        "nonce": 0,
        "epoch": 0,
        "revoker": address_from_secret(RELAYER_SECRET),
        "envelope": {
            "chainId": CHAIN_ID,
            "validAfter": 1_767_225_600,  # 2026-01-01T00:00:00Z
            "expiresAt": 1_767_229_200,  # one hour later
            "capabilities": ["erc20.transfer", "erc20.approve"],
            "permissions": [
                {
                    "target": USDC,
                    "selector": bytes.fromhex("a9059cbb"),
                    "function": "transfer(address,uint256)",
                    "actionClass": "erc20.transfer",
                    "maxValuePerCall": 0,
                    "rules": [{"arg": "to", "op": 4, "offset": 0, "values": [_word(MERCHANT)]}],
                },
                {
                    "target": USDC,
                    "selector": bytes.fromhex("095ea7b3"),
                    "function": "approve(address,uint256)",
                    "actionClass": "erc20.approve",
                    "maxValuePerCall": 0,
                    "rules": [
                        {"arg": "spender", "op": 0, "offset": 0, "values": [_word(ROUTER)]},
                        {"arg": "amount", "op": 2, "offset": 1, "values": [_word(100_000_000)]},
                    ],
                },
            ],
            "allowedDestinations": [USDC],
            "valueLimit": 0,
            "valuePeriod": 0,
            "tokenLimits": [{"token": USDC, "limit": 250_000_000, "period": 86_400}],
            "maxValueUsd": "250",
            "maxUses": 20,
            "rateCount": 5,
            "rateInterval": 60,
            "maxFeeWei": 10**16,
        },
    }


# ERC-7579 single call, default exec type: mode = 32 zero bytes, executionCalldata =
# target (20) ‖ value (32) ‖ callData, here USDC.transfer(MERCHANT, 1 USDC).
CALL_MODE = bytes(32)
CALL_DATA = bytes.fromhex("a9059cbb") + _word(MERCHANT) + _word(1_000_000)
EXECUTION_CALLDATA = bytes.fromhex(USDC[2:]) + _word(0) + CALL_DATA
CALL_NONCE, CALL_DEADLINE = 0, 1_767_225_900
REVOCATION_EPOCH, REVOCATION_NONCE = 0, 1

REQUEST_METHOD = "POST"
REQUEST_PATH = "/v1/access?walletId=wal_0001"
REQUEST_BODY = b'{"credentialId":"cred_test_0001","walletId":"wal_0001"}'
REQUEST_NONCE, REQUEST_TS = 1, 1_767_225_600_000

# ------------------------------------------------------------------------------- expected

EXPECTED: dict[str, str] = {
    "owner": "0xcad8f5e107e7e43e4b643e6dffd5cdc557e147a6",
    "sessionKey": "0xeb2a4b0e4650e84e7ca736c8bbf9106c1754d770",
    "credentialAddress": "0x3a9790f721ad29518fd5b58ce678400f59fc0687",
    "relayer": "0x114be903e39c3b03fc159e29fc4749d082170d68",
    "credential": "0xeb7cbacac46f4f0915c12b34f203f251d649cef3c8d4203b8558d3edf2f48cf9",
    "typeHash.SessionGrant": "0x21a718feedda7dbc099e3a3ac8253207306c101de0885df10d52a128023532d8",
    "typeHash.Envelope": "0x90032a0c750f0951d37faea92a81bd02bf4c4df5a267b5c84801516de1130b40",
    "typeHash.Permission": "0x535369a260affa275f52194106785f604c0a88f13b8983dc3739df65a010acee",
    "typeHash.Rule": "0xe64ba5e7234597b8433256dbade6c0eef4aa578f2dc16cad2a777ee3ffe519eb",
    "typeHash.TokenLimit": "0x99aa8ec1ab98ac326298a0123f410b69e16f9ed23e8c1effb553683d2d8919e9",
    "typeHash.SessionCall": "0x3e122dc5a6ed3f566a29a93557d917e243f8d702dc9f04d8c280731d74fa93ad",
    "typeHash.Revocation": "0xa71847ea14f86af4d3ac5826d2645a812af97a79f1ae1c5be7016d2df513f962",
    "typeHash.SessionRenewal": "0xa585c635a346530b157f88cce238a64b60741d8da83aef4dc96bcd9360724afc",
    "domainSeparator": "0xf197d10b4dd1d2a9e8d1a561a3bf313df03de20c3fe8bccc576e5a1fea5f1559",
    "grant.hashStruct": "0x7e7db6b9dee6f120427ed5ad51c9a92e53e813c3d817af478c82719f66d25f8c",
    "grant.digest": "0x2f81d63433edd81258a322e76fd085e2a4d7016b866b701f235c54f016ad656f",
    "grant.ownerSignature": "0x13f2e80582f5c0735d62826c10edede37ce23909c53b8e05f7419555ad3c24b238357dfeedb7e65eddbdb4d24e9b64340bec6c16197d6b1f1cb2f634985874641b",
    "call.executionHash": "0x1423b28e018505ab25bc41a63a5eb9ccc34424d2ef95d98b08abe4fc0d57d3d9",
    "call.digest": "0x69bfedd5d2fa7eba68015aebb238e02b22b1fb454bd1d0fb72c4fc01d8d6ecbf",
    "call.sessionSignature": "0xc8ccf723a77bc26b80860b959420a1a8ae3c6c398a9e9206f106b8da5e60221648f9b43e88f4e232ced44b249c66703c1ce2cbdc895e016f65596200d9d6389f1b",
    "revocation.digest": "0xc58950ce34fbd75b56e9d9a1e73ab277c926b6e3bf1b049dd7dd9e0401ecbf37",
    "revocation.ownerSignature": "0x4217bde92b457c3fb8e07c140e19e7f77b788a7af0512c0c50e228351212d4787c87fcb8a09eebc8022e68a92e0058346145be11d079dd59a1c9f4d778ffbc641c",
    "request.preimageSha256": "0xd1e94e23f4c87b7f7383d0b5054310734751139d4f8913e53840cb9c9d506485",
    "request.signature": "0xd996a7a354bfa7c08ad11a6e44b07a140f522b0804d4be87962c203a2dabb3c639a2ad99803b03550be6d0d7a13adf1b7e420cbdbed0262435ab52824a8e4e411c",
}


def _computed() -> dict[str, str]:
    session_key = address_from_secret(SESSION_SECRET)
    grant = vector_grant()
    g_digest = grant_digest(CHAIN_ID, ACCOUNT, grant)
    x_hash = execution_hash(CALL_MODE, EXECUTION_CALLDATA)
    c_digest = session_call_digest(
        CHAIN_ID, ACCOUNT, session_key, x_hash, CALL_NONCE, CALL_DEADLINE
    )
    r_digest = revocation_digest(CHAIN_ID, ACCOUNT, session_key, REVOCATION_EPOCH, REVOCATION_NONCE)
    preimage = request_preimage(
        REQUEST_METHOD, REQUEST_PATH, CREDENTIAL_ID, REQUEST_NONCE, REQUEST_TS, REQUEST_BODY
    )
    signer = Secp256k1RequestSigner(CREDENTIAL_SECRET)
    values: dict[str, str | bytes] = {
        "owner": address_from_secret(OWNER_SECRET),
        "sessionKey": session_key,
        "credentialAddress": signer.address,
        "relayer": address_from_secret(RELAYER_SECRET),
        "credential": credential_hash(CREDENTIAL_ID),
        **{f"typeHash.{name}": SCHEMA.type_hash(name) for name in SCHEMA.struct_names},
        "domainSeparator": domain_separator_for(CHAIN_ID, ACCOUNT),
        "grant.hashStruct": SCHEMA.hash_struct("SessionGrant", grant),
        "grant.digest": g_digest,
        "grant.ownerSignature": sign_digest(OWNER_SECRET, g_digest),
        "call.executionHash": x_hash,
        "call.digest": c_digest,
        "call.sessionSignature": sign_digest(SESSION_SECRET, c_digest),
        "revocation.digest": r_digest,
        "revocation.ownerSignature": sign_digest(OWNER_SECRET, r_digest),
        "request.preimageSha256": hashlib.sha256(preimage).digest(),
        "request.signature": signer.sign(preimage),
    }
    return {k: v if isinstance(v, str) else "0x" + v.hex() for k, v in values.items()}


# --------------------------------------------------------------------------------- checks


def _section_6() -> str:
    text = PROTOCOL.read_text(encoding="utf-8")
    return text[text.index("## 6. Test vectors") :]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_vector_is_recomputed_exactly(name: str) -> None:
    assert _computed()[name] == EXPECTED[name]


def test_every_computed_value_has_an_expected_constant() -> None:
    assert set(_computed()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_expected_value_is_written_in_the_protocol_doc(name: str) -> None:
    assert re.search(rf"`{re.escape(name)}`\s*\|\s*`{EXPECTED[name]}`", _section_6()), name


def test_digests_equal_eth_account() -> None:
    session_key = address_from_secret(SESSION_SECRET)
    grant_doc = typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, vector_grant())
    assert "0x" + eth_account_digest(grant_doc).hex() == EXPECTED["grant.digest"]
    call = {
        "account": ACCOUNT,
        "sessionKey": session_key,
        "executionHash": bytes.fromhex(EXPECTED["call.executionHash"][2:]),
        "nonce": CALL_NONCE,
        "deadline": CALL_DEADLINE,
    }
    call_doc = typed_data_document("SessionCall", CHAIN_ID, ACCOUNT, call)
    assert "0x" + eth_account_digest(call_doc).hex() == EXPECTED["call.digest"]
    revocation = {
        "account": ACCOUNT,
        "sessionKey": session_key,
        "epoch": REVOCATION_EPOCH,
        "nonce": REVOCATION_NONCE,
    }
    revocation_doc = typed_data_document("Revocation", CHAIN_ID, ACCOUNT, revocation)
    assert "0x" + eth_account_digest(revocation_doc).hex() == EXPECTED["revocation.digest"]


def test_signatures_equal_eth_account_and_recover_to_their_signers() -> None:
    grant_doc = typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, vector_grant())
    signed = Account.sign_typed_data(OWNER_SECRET, full_message=grant_doc)
    assert "0x" + bytes(signed.signature).hex() == EXPECTED["grant.ownerSignature"]
    digest = bytes.fromhex(EXPECTED["call.digest"][2:])
    signature = bytes.fromhex(EXPECTED["call.sessionSignature"][2:])
    assert recover_signer(digest, signature) == EXPECTED["sessionKey"]
    preimage = request_preimage(
        REQUEST_METHOD, REQUEST_PATH, CREDENTIAL_ID, REQUEST_NONCE, REQUEST_TS, REQUEST_BODY
    )
    personal = Account.sign_message(encode_defunct(primitive=preimage), CREDENTIAL_SECRET)
    assert "0x" + bytes(personal.signature).hex() == EXPECTED["request.signature"]


def test_the_documented_grant_document_is_the_one_the_code_builds() -> None:
    blocks = re.findall(r"```json\n(.*?)\n```", _section_6(), flags=re.DOTALL)
    documents = [json.loads(block) for block in blocks]
    assert typed_data_document("SessionGrant", CHAIN_ID, ACCOUNT, vector_grant()) in documents


def test_the_documented_request_preimage_and_header_verify() -> None:
    section = _section_6()
    preimage = request_preimage(
        REQUEST_METHOD, REQUEST_PATH, CREDENTIAL_ID, REQUEST_NONCE, REQUEST_TS, REQUEST_BODY
    )
    assert f"```\n{preimage.decode()}\n```" in section
    header = sign_request(
        Secp256k1RequestSigner(CREDENTIAL_SECRET),
        CREDENTIAL_ID,
        REQUEST_METHOD,
        REQUEST_PATH,
        REQUEST_BODY,
        REQUEST_NONCE,
        REQUEST_TS,
    )
    assert header in section
    credential = CredentialKey.secp256k1(EXPECTED["credentialAddress"])
    accepted = verify_request(
        header,
        method=REQUEST_METHOD,
        path_with_query=REQUEST_PATH,
        body=REQUEST_BODY,
        now_ms=REQUEST_TS,
        lookup={CREDENTIAL_ID: credential}.get,
        replay=InMemoryReplayStore(clock_ms=lambda: REQUEST_TS),
    )
    assert accepted == CREDENTIAL_ID
