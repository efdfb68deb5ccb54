"""Attacks on authentication and input: each is refused with its exact code, and nothing
changes (no quote, no execution, no signature, no burnt nonce)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest
from api_support import (
    Actor,
    Api,
    World,
    next_nonce,
    now_ms,
    path_of,
    quote,
    raw_json,
    refused,
    register_backend,
    transfer_call,
)

from sessionward.api import SessionWardApi
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.p256 import sign_p256
from sessionward.crypto.request_signature import (
    P256RequestSigner,
    SignatureHeader,
    format_signature_header,
)
from sessionward.crypto.secp256k1 import SECP256K1_N, personal_message_hash, sign_digest
from sessionward.crypto.typed_data import session_call_digest
from sessionward.service.waas import Waas

SIG = "Oms-Wallet-Signature"


def _status(waas: Waas, txn_id: str) -> str:
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None
    return txn.status


def _quotes(waas: Waas, world: World) -> int:
    return len(waas.runtime.store.transactions.of_session(world.session_id))


def _with_signature(actor: Actor, signature: bytes, *, nonce: int, ts: int | None = None) -> str:
    return format_signature_header(
        SignatureHeader(
            alg=actor.signer.alg,
            cred=actor.credential_id,
            nonce=nonce,
            ts=now_ms() if ts is None else ts,
            sig=signature,
        )
    )


# --- signatures ----------------------------------------------------------------------------


def test_a_tampered_body_is_refused_and_burns_no_nonce(api: Api, world: World, waas: Waas) -> None:
    mine, other = quote(api, waas, world), quote(api, waas, world)
    signed = raw_json({"txnId": mine})
    nonce = next_nonce()
    header = world.backend.header("Execute", signed, nonce=nonce)
    tampered = raw_json({"txnId": other})
    refused(api.post_raw("Execute", tampered, {SIG: header}), 401, "SIGNER_MISMATCH")
    assert _status(waas, other) == "quoted" and _status(waas, mine) == "quoted"
    # The genuine request with the same nonce still goes through: nothing was burnt.
    assert api.post_raw("Execute", signed, {SIG: header}).status_code == 200
    assert _status(waas, mine) == "pending" and _status(waas, other) == "quoted"


def test_a_replayed_request_is_refused_and_executes_nothing(
    api: Api, world: World, waas: Waas
) -> None:
    body = raw_json(transfer_call(waas, world.owner, world.session_id))
    header = world.backend.header("PrepareEthereumContractCall", body)
    assert api.post_raw("PrepareEthereumContractCall", body, {SIG: header}).status_code == 200
    before = _quotes(waas, world)
    replay = api.post_raw("PrepareEthereumContractCall", body, {SIG: header})
    refused(replay, 401, "NONCE_REPLAYED")
    assert _quotes(waas, world) == before


def test_a_replayed_execute_does_not_execute_twice(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    body = raw_json({"txnId": txn_id})
    header = world.backend.header("Execute", body)
    assert api.post_raw("Execute", body, {SIG: header}).status_code == 200
    decisions = len(waas.runtime.store.decisions.of_session(world.session_id))
    refused(api.post_raw("Execute", body, {SIG: header}), 401, "NONCE_REPLAYED")
    assert len(waas.runtime.store.decisions.of_session(world.session_id)) == decisions


@pytest.mark.parametrize("skew_ms", [-61_000, 61_000, -3_600_000, 10**12])
def test_stale_and_future_timestamps_are_refused_without_burning_the_nonce(
    api: Api, world: World, waas: Waas, skew_ms: int
) -> None:
    txn_id = quote(api, waas, world)
    body = raw_json({"txnId": txn_id})
    nonce = next_nonce()
    header = world.backend.header("Execute", body, nonce=nonce, ts=now_ms() + skew_ms)
    refused(api.post_raw("Execute", body, {SIG: header}), 401, "TIMESTAMP_OUT_OF_WINDOW")
    assert _status(waas, txn_id) == "quoted"
    fresh = world.backend.header("Execute", body, nonce=nonce)
    assert api.post_raw("Execute", body, {SIG: fresh}).status_code == 200


@pytest.mark.parametrize(
    ("signed_path", "signed_method"),
    [
        ("/v1/Waas/TransactionStatus", "POST"),
        ("/v1/Waas/Execute?retry=1", "POST"),
        ("/v1/Waas/Execute", "GET"),
        ("/v1/Waas/Execute", "PUT"),
    ],
)
def test_a_signature_for_another_path_or_method_is_refused(
    api: Api, world: World, waas: Waas, signed_path: str, signed_method: str
) -> None:
    txn_id = quote(api, waas, world)
    body = raw_json({"txnId": txn_id})
    header = world.backend.header("Execute", body, path=signed_path, http_method=signed_method)
    refused(api.post_raw("Execute", body, {SIG: header}), 401, "SIGNER_MISMATCH")
    assert _status(waas, txn_id) == "quoted"


def _other_protocol_signatures(secret: bytes, body: bytes, waas: Waas, world: World) -> list[bytes]:
    eip712 = session_call_digest(
        waas.runtime.chain_id,
        world.owner.extra["account"],
        world.owner.public_key,
        keccak256(body),
        0,
        2**40,
    )
    return [
        sign_digest(secret, personal_message_hash(body)),  # personal_sign of the raw body
        sign_digest(secret, keccak256(body)),  # a raw digest of the body
        sign_digest(secret, eip712),  # an EIP-712 digest (a SessionCall)
    ]


def test_signatures_by_the_same_key_for_other_protocols_are_refused(
    api: Api, world: World, waas: Waas
) -> None:
    txn_id = quote(api, waas, world)
    body = raw_json({"txnId": txn_id})
    assert world.backend.secret is not None
    for signature in _other_protocol_signatures(world.backend.secret, body, waas, world):
        header = _with_signature(world.backend, signature, nonce=next_nonce())
        refused(api.post_raw("Execute", body, {SIG: header}), 401, "SIGNER_MISMATCH")
    assert _status(waas, txn_id) == "quoted"


def test_a_p256_signature_over_the_raw_body_is_refused(api: Api) -> None:
    backend = register_backend(api, Actor.p256())
    assert isinstance(backend.signer, P256RequestSigner)
    body = raw_json({})
    signature = sign_p256(backend.signer._key, body)
    header = _with_signature(backend, signature, nonce=next_nonce())
    refused(api.post_raw("ListSessions", body, {SIG: header}), 401, "SIGNATURE_INVALID")


def test_a_malleable_twin_signature_is_refused_without_burning_the_nonce(
    api: Api, world: World, waas: Waas
) -> None:
    txn_id = quote(api, waas, world)
    body = raw_json({"txnId": txn_id})
    nonce, ts = next_nonce(), now_ms()
    header = world.backend.header("Execute", body, nonce=nonce, ts=ts)
    sig = bytes.fromhex(header.split('sig="0x')[1].rstrip('"'))
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    refused(
        api.post_raw(
            "Execute", body, {SIG: _with_signature(world.backend, twin, nonce=nonce, ts=ts)}
        ),
        401,
        "SIGNATURE_MALLEABLE",
    )
    assert _status(waas, txn_id) == "quoted"
    assert api.post_raw("Execute", body, {SIG: header}).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Signature keyId=1",
        'alg="ecdsa-p256k-eip191", cred="x", nonce=01, ts=1, sig="0x00"',
        'alg="ecdsa-p256k-eip191", cred="x", nonce=1, ts=1, sig="0x00", extra=1',
        'alg="ecdsa-p256k-eip191", cred="bad cred", nonce=1, ts=1, sig="0x00"',
        'alg="ecdsa-p256k-eip191", alg="ecdsa-p256k-eip191", cred="x", nonce=1, ts=1, sig="0x00"',
    ],
)
def test_a_malformed_signature_header_is_refused(api: Api, world: World, header: str) -> None:
    refused(api.post_raw("ListSessions", b"{}", {SIG: header}), 400, "INPUT_MALFORMED")


def test_a_missing_signature_header_is_refused(api: Api) -> None:
    refused(api.post_raw("ListSessions", b"{}"), 401, "SIGNATURE_INVALID")


def test_an_unknown_credential_is_refused(api: Api) -> None:
    stranger = Actor.secp256k1()
    stranger.credential_id = "cred_" + "0" * 32
    refused(api.call("ListSessions", {}, stranger), 401, "CREDENTIAL_UNKNOWN")


def test_a_self_signed_request_cannot_call_credential_methods(api: Api) -> None:
    stranger = Actor.secp256k1()
    refused(api.call("ListSessions", {}, stranger), 401, "CREDENTIAL_UNKNOWN")


def test_registration_needs_possession_of_the_registered_key(api: Api, waas: Waas) -> None:
    victim, attacker = Actor.secp256k1(), Actor.secp256k1()
    body = {
        "alg": victim.signer.alg,
        "publicKey": victim.public_key,
        "appName": "Impostor",
        "expiresAt": 2_000_000_000,
    }
    refused(api.call("RegisterCredential", body, attacker), 401, "SIGNER_MISMATCH")
    backends = waas.runtime.store.credentials.with_role("backend")
    assert victim.public_key not in {c.public_key for c in backends}


def test_a_self_signature_with_another_alg_than_the_body_is_refused(api: Api) -> None:
    backend = Actor.p256()
    body = {
        "alg": "ecdsa-p256k-eip191",
        "publicKey": "0x" + "11" * 20,
        "appName": "x",
        "expiresAt": 2_000_000_000,
    }
    refused(api.call("RegisterCredential", body, backend), 401, "SIGNATURE_INVALID")


# --- bodies --------------------------------------------------------------------------------


def _signed_raw(api: Api, actor: Actor, method: str, raw: bytes) -> Any:
    return api.post_raw(method, raw, {SIG: actor.header(method, raw)})


def test_duplicate_json_keys_are_refused(api: Api, world: World, waas: Waas) -> None:
    mine, other = quote(api, waas, world), quote(api, waas, world)
    raw = f'{{"txnId":"{mine}","txnId":"{other}"}}'.encode()
    doc = refused(_signed_raw(api, world.backend, "Execute", raw), 400, "INPUT_MALFORMED")
    assert "duplicate" in doc["msg"]
    assert _status(waas, mine) == "quoted" and _status(waas, other) == "quoted"


@pytest.mark.parametrize("number", ["1.0", "1e3", "NaN", "Infinity", "-0.5"])
def test_floats_and_non_numbers_are_refused(
    api: Api, world: World, waas: Waas, number: str
) -> None:
    body = transfer_call(waas, world.owner, world.session_id)
    raw = json.dumps(body)[:-1] + f',"chainId":{number}}}'
    refused(
        _signed_raw(api, world.backend, "PrepareEthereumContractCall", raw.encode()),
        400,
        "INPUT_MALFORMED",
    )
    assert _quotes(waas, world) == 0


def test_an_unknown_field_is_refused_naming_it(api: Api, world: World, waas: Waas) -> None:
    body = {**transfer_call(waas, world.owner, world.session_id), "gasPrice": "1"}
    doc = refused(
        api.call("PrepareEthereumContractCall", body, world.backend), 400, "INPUT_MALFORMED"
    )
    assert doc["reason"] == "gasPrice"
    assert _quotes(waas, world) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("walletId", 5),
        ("args", "not a list"),
        ("contract", "0x12"),
        ("contract", "0xA0B86991C6218B36C1D19D4A2E9EB0CE3606eB48"),  # broken EIP-55 checksum
        ("value", 5),
        ("value", "-1"),
        ("value", str(2**256)),
        ("method", "transfer(address,uint256)\n"),
    ],
)
def test_wrong_types_and_formats_are_refused_naming_the_field(
    api: Api, world: World, waas: Waas, field: str, value: object
) -> None:
    body = {**transfer_call(waas, world.owner, world.session_id), field: value}
    doc = refused(
        api.call("PrepareEthereumContractCall", body, world.backend), 400, "INPUT_MALFORMED"
    )
    assert doc["reason"] == field
    assert _quotes(waas, world) == 0


@pytest.mark.parametrize("raw", [b"", b"[]", b'"x"', b"\xff\xfe", b'{"txnId":"\\ud800"}', b"{} {}"])
def test_bodies_that_are_not_one_json_object_are_refused(
    api: Api, world: World, raw: bytes
) -> None:
    refused(_signed_raw(api, world.backend, "Execute", raw), 400, "INPUT_MALFORMED")


def _huge(size: int) -> bytes:
    return b'{"txnId":"' + b"a" * size + b'"}'


def test_a_huge_body_with_a_truthful_length_is_refused(api: Api, world: World, waas: Waas) -> None:
    raw = _huge(waas.runtime.settings.max_body_bytes)
    refused(_signed_raw(api, world.backend, "Execute", raw), 413, "PAYLOAD_TOO_LARGE")


def test_a_huge_body_without_a_length_is_refused(api: Api, world: World, waas: Waas) -> None:
    raw = _huge(waas.runtime.settings.max_body_bytes)
    header = world.backend.header("Execute", raw)

    def chunks() -> Any:
        for start in range(0, len(raw), 16_384):
            yield raw[start : start + 16_384]

    response = api.client.post(path_of("Execute"), content=chunks(), headers={SIG: header})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    refused(response, 413, "PAYLOAD_TOO_LARGE")


def _asgi_post(
    app: SessionWardApi, path: str, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, dict[str, Any]]:
    """Drive the ASGI app directly, so that headers can lie about the body."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    async def drive() -> None:
        await app(scope, receive, send)

    anyio.run(drive)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_a_huge_body_with_a_lying_length_is_refused(
    app: SessionWardApi, world: World, waas: Waas
) -> None:
    raw = _huge(waas.runtime.settings.max_body_bytes)
    header = world.backend.header("Execute", raw)
    chunks = [raw[i : i + 65_536] for i in range(0, len(raw), 65_536)]
    status, doc = _asgi_post(app, path_of("Execute"), {SIG: header, "content-length": "20"}, chunks)
    assert (status, doc["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_a_garbled_content_length_is_refused(app: SessionWardApi) -> None:
    status, doc = _asgi_post(app, path_of("ListSessions"), {"content-length": "-1"}, [b"{}"])
    assert (status, doc["code"]) == (400, "INPUT_MALFORMED")
