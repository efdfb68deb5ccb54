"""The signature header is one header (issue 14.1): two ``Oms-Wallet-Signature`` headers, or a
parameter repeated inside one, are refused with 400 and nothing executes (the quote stays
quoted, no nonce is burnt)."""

from __future__ import annotations

import httpx
from api_support import Api, World, next_nonce, path_of, quote, raw_json, refused

from sessionward.service.waas import Waas

SIG = "Oms-Wallet-Signature"


def _status(waas: Waas, txn_id: str) -> str:
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None
    return txn.status


def _post(api: Api, method: str, body: bytes, headers: list[tuple[str, str]]) -> httpx.Response:
    response: httpx.Response = api.client.post(
        path_of(method), content=body, headers=[("content-type", "application/json"), *headers]
    )
    return response


def test_two_signature_headers_are_refused_and_nothing_executes(
    api: Api, world: World, waas: Waas
) -> None:
    txn = quote(api, waas, world)
    body = raw_json({"txnId": txn})
    nonce = next_nonce()
    good = world.backend.header("Execute", body, nonce=nonce)
    other = world.backend.header("Execute", body)
    for pair in ((good, other), (good, good), (good, "garbage")):
        answer = _post(api, "Execute", body, [(SIG, pair[0]), (SIG, pair[1])])
        refused(answer, 400, "HEADER_REPEATED")
    assert _status(waas, txn) == "quoted"
    # The genuine request, sent once, still goes through with the same nonce: none was burnt.
    assert _post(api, "Execute", body, [(SIG, good)]).status_code == 200
    assert _status(waas, txn) == "pending"


def test_a_parameter_repeated_inside_the_header_is_refused_as_malformed(
    api: Api, world: World, waas: Waas
) -> None:
    txn = quote(api, waas, world)
    body = raw_json({"txnId": txn})
    header = world.backend.header("Execute", body)
    doubled = header + ", " + header  # every parameter twice, the second signature last
    refused(_post(api, "Execute", body, [(SIG, doubled)]), 400, "INPUT_MALFORMED")
    assert _status(waas, txn) == "quoted"


def test_two_idempotency_keys_are_refused(api: Api, world: World, waas: Waas) -> None:
    txn = quote(api, waas, world)
    body = raw_json({"txnId": txn})
    headers = [
        (SIG, world.backend.header("Execute", body)),
        ("Idempotency-Key", "a"),
        ("Idempotency-Key", "b"),
    ]
    refused(_post(api, "Execute", body, headers), 400, "HEADER_REPEATED")
    assert _status(waas, txn) == "quoted"
