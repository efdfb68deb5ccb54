"""Cross-language vectors shared by the Python tests and the TypeScript client's tests:
``vectors.json`` beside this file, written once by :func:`write` and read by both
(``tests/clients/test_cross_language_vectors.py`` and ``clients/typescript/test/vectors.test.ts``).

Every key is derived from a public label (``keccak256(b"sessionward/ts/<role>")``), so the
vectors can be rebuilt anywhere. Everything is deterministic (RFC 6979 ECDSA, Ed25519) except
the P-256 signature, which is randomized: its vector is checked by verification only.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.p256 import public_key_bytes, sign_p256
from sessionward.crypto.registration import registration_digest
from sessionward.crypto.request_signature import (
    Secp256k1RequestSigner,
    request_preimage,
    sign_request,
)
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.crypto.typed_data import credential_hash, grant_digest, typed_data_document
from sessionward.crypto.webhook_signature import sign_webhook

PATH = Path(__file__).with_name("vectors.json")


def _secret(role: str) -> bytes:
    return keccak256(f"sessionward/ts/{role}".encode())


def _word(value: int | str) -> bytes:
    number = int(value, 16) if isinstance(value, str) else value
    return number.to_bytes(32, "big")


ACCOUNT = "0x1111111111111111111111111111111111111111"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
MERCHANT = "0x3333333333333333333333333333333333333333"
CREDENTIAL_ID = "cred_ts_0001"
REQUESTS = (
    ("POST", "/v1/Waas/ListSessions", "cred_ts_0001", 1, 1_767_225_600_000, b'{"limit":50}'),
    ("POST", "/v1/Waas/CreateWallet", "self", 2**62, 1_767_225_600_001, b""),
    ("post", "/v1/access?walletId=wal_0001&x=%20", "a.b_c~d:e-f", 0, 0, "é✓".encode()),
)


def _grant() -> dict[str, Any]:
    return {
        "account": ACCOUNT,
        "sessionKey": address_from_secret(_secret("session")),
        "credential": credential_hash(CREDENTIAL_ID),
        "nonce": 3,
        "epoch": 1,
        "revoker": address_from_secret(_secret("relayer")),
        "envelope": {
            "chainId": 1,
            "validAfter": 1_767_225_600,
            "expiresAt": 1_767_229_200,
            "capabilities": ["erc20.transfer"],
            "permissions": [
                {
                    "target": USDC,
                    "selector": bytes.fromhex("a9059cbb"),
                    "function": "transfer(address,uint256)",
                    "actionClass": "erc20.transfer",
                    "maxValuePerCall": 0,
                    "rules": [{"arg": "to", "op": 4, "offset": 0, "values": [_word(MERCHANT)]}],
                }
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


def build() -> dict[str, Any]:
    """The vectors (the P-256 signature freshly made: compare it by verification)."""
    k1 = Secp256k1RequestSigner(_secret("credential"))
    p256_key = ec.derive_private_key(
        int.from_bytes(_secret("device"), "big") % 2**255, ec.SECP256R1()
    )
    requests = []
    for method, path, cred, nonce, ts, body in REQUESTS:
        preimage = request_preimage(method, path, cred, nonce, ts, body)
        requests.append(
            {
                "method": method,
                "path": path,
                "credentialId": cred,
                "nonce": str(nonce),
                "ts": str(ts),
                "bodyHex": "0x" + body.hex(),
                "preimage": preimage.decode("ascii"),
                "secp256k1Header": sign_request(k1, cred, method, path, body, nonce, ts),
                "p256Signature": "0x" + sign_p256(p256_key, preimage).hex(),
            }
        )
    owner = _secret("owner")
    grant = _grant()
    digest = grant_digest(1, ACCOUNT, grant)
    webhook_key = Ed25519PrivateKey.from_private_bytes(_secret("webhook"))
    webhook_body = b'{"eventId":"evt_ts_0001","type":"alert","alert":{"severity":"critical"}}'
    public = webhook_key.public_key().public_bytes_raw()
    registration: dict[str, Any] = {
        "service": "sessionward-ts-test",
        "chainId": 1,
        "account": ACCOUNT,
        "owner": address_from_secret(owner),
        "publicKey": "0x" + public_key_bytes(p256_key).hex(),
        "nonce": str(2**62 + 5),
        "deadline": 1_767_226_200,
    }
    registration["digest"] = (
        "0x"
        + registration_digest(
            service=registration["service"],
            chain_id=1,
            account=ACCOUNT,
            owner=str(registration["owner"]),
            public_key=str(registration["publicKey"]),
            nonce=int(str(registration["nonce"])),
            deadline=1_767_226_200,
        ).hex()
    )
    return {
        "registration": registration,
        "secp256k1": {
            "secret": "0x" + _secret("credential").hex(),
            "address": k1.address,
        },
        "p256": {"publicKey": "0x" + public_key_bytes(p256_key).hex()},
        "requests": requests,
        "grant": {
            "credentialId": CREDENTIAL_ID,
            "pending": {
                "sessionId": "ses_ts_0001",
                "status": "pending",
                "sessionKey": grant["sessionKey"],
                "summary": "transfer USDC to one merchant, 250 USDC a day, for one hour",
                "grant": typed_data_document("SessionGrant", 1, ACCOUNT, grant),
                "grantDigest": "0x" + digest.hex(),
                "expiresAt": grant["envelope"]["expiresAt"],
            },
            "ownerSecret": "0x" + owner.hex(),
            "ownerAddress": address_from_secret(owner),
            "ownerSignature": "0x" + sign_digest(owner, digest).hex(),
        },
        "webhook": {
            "publicKey": base64.b64encode(public).decode(),
            "id": "evt_ts_0001",
            "timestamp": "1767225600",
            "bodyHex": "0x" + webhook_body.hex(),
            "signature": sign_webhook(webhook_key, "evt_ts_0001", "1767225600", webhook_body),
        },
    }


def without_p256_signatures(vectors: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(vectors))
    for request in copy["requests"]:
        request.pop("p256Signature")
    return copy


def write() -> None:
    PATH.write_text(json.dumps(build(), indent=2) + "\n")


if __name__ == "__main__":
    write()
