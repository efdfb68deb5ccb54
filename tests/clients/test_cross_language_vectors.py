"""The vectors shared with the TypeScript client (tests/clients/vectors.json) are what the
Python side computes: the file is rebuilt here and compared (the randomized P-256 signatures
are checked by verification), and each vector is verified by the service's own verifiers."""

from __future__ import annotations

import json
from typing import Any

import shared_vectors as vectors

from sessionward.crypto.p256 import verify_p256
from sessionward.crypto.registration import registration_digest
from sessionward.crypto.request_signature import (
    CredentialKey,
    InMemoryReplayStore,
    request_preimage,
    verify_request,
)
from sessionward.crypto.secp256k1 import recover_signer
from sessionward.crypto.webhook_signature import (
    parse_public_key,
    parse_signatures,
    signed_content,
    verifies,
)
from sessionward.sdk.grants import verify_grant

STORED: dict[str, Any] = json.loads(vectors.PATH.read_text())


def test_the_stored_vectors_are_what_python_computes() -> None:
    assert vectors.without_p256_signatures(STORED) == vectors.without_p256_signatures(
        vectors.build()
    ), "regenerate with: .venv/bin/python tests/clients/shared_vectors.py"


def test_every_request_vector_verifies_with_the_services_verifier() -> None:
    p256 = CredentialKey.p256(bytes.fromhex(STORED["p256"]["publicKey"][2:]))
    k1 = CredentialKey.secp256k1(STORED["secp256k1"]["address"])
    for r in STORED["requests"]:
        body = bytes.fromhex(r["bodyHex"][2:])
        preimage = request_preimage(
            r["method"], r["path"], r["credentialId"], int(r["nonce"]), int(r["ts"]), body
        )
        assert preimage.decode() == r["preimage"]
        verify_p256(p256.public_key or b"", preimage, bytes.fromhex(r["p256Signature"][2:]))
        assert (
            verify_request(
                r["secp256k1Header"],
                method=r["method"],
                path_with_query=r["path"],
                body=body,
                now_ms=int(r["ts"]),
                lookup=lambda _cred: k1,
                replay=InMemoryReplayStore(),
            )
            == r["credentialId"]
        )


def test_the_grant_vector_is_the_sdks_digest_and_the_owner_signed_it() -> None:
    grant = STORED["grant"]
    digest = verify_grant(grant["pending"], credential_id=grant["credentialId"])
    assert "0x" + digest.hex() == grant["pending"]["grantDigest"]
    signature = bytes.fromhex(grant["ownerSignature"][2:])
    assert recover_signer(digest, signature) == grant["ownerAddress"]


def test_the_webhook_vector_verifies_with_the_services_format() -> None:
    hook = STORED["webhook"]
    content = signed_content(hook["id"], hook["timestamp"], bytes.fromhex(hook["bodyHex"][2:]))
    key = parse_public_key(hook["publicKey"])
    assert verifies([key], parse_signatures(hook["signature"]), content)


def test_the_registration_vector_is_the_services_digest() -> None:
    r = STORED["registration"]
    digest = registration_digest(
        service=r["service"],
        chain_id=r["chainId"],
        account=r["account"],
        owner=r["owner"],
        public_key=r["publicKey"],
        nonce=int(r["nonce"]),
        deadline=r["deadline"],
    )
    assert "0x" + digest.hex() == r["digest"]
