"""One amount rule for every field (issue 14.2): amounts and uint arguments are decimal
strings, or JSON integers up to 2**53 - 1; above that the request is refused (400
``INPUT_MALFORMED``) and nothing is written: no session, no quote."""

from __future__ import annotations

import pytest
from api_support import (
    Api,
    World,
    create_owner,
    refused,
    register_backend,
    transfer_call,
    transfer_envelope,
)

from sessionward.domain.strict_json import MAX_SAFE_INTEGER, MalformedJson, loads
from sessionward.service.waas import Waas

BIG = 2**53


def _quotes(waas: Waas, world: World) -> int:
    return len(waas.runtime.store.transactions.of_session(world.session_id))


def test_a_contract_call_argument_above_2_53_is_refused_and_quotes_nothing(
    api: Api, world: World, waas: Waas
) -> None:
    before = _quotes(waas, world)
    body = transfer_call(waas, world.owner, world.session_id)
    body["args"] = [body["args"][0], BIG]
    doc = refused(
        api.call("PrepareEthereumContractCall", body, world.backend), 400, "INPUT_MALFORMED"
    )
    assert "decimal string" in doc["msg"]
    assert _quotes(waas, world) == before


def test_the_same_argument_as_a_small_integer_or_a_decimal_string_is_accepted(
    api: Api, world: World, waas: Waas
) -> None:
    for amount in (1000, "1000"):
        body = transfer_call(waas, world.owner, world.session_id)
        body["args"] = [body["args"][0], amount]
        assert api.call("PrepareEthereumContractCall", body, world.backend).status_code == 200


def test_an_envelope_limit_above_2_53_is_refused_and_creates_no_session(
    api: Api, waas: Waas
) -> None:
    owner, backend = create_owner(api), register_backend(api)
    envelope = transfer_envelope(waas)
    envelope["tokenLimits"][0]["limit"] = BIG + 1
    body = {
        "credentialId": backend.credential_id,
        "walletId": owner.extra["walletId"],
        "envelope": envelope,
    }
    refused(api.call("AuthorizeRemoteAccess", body, owner), 400, "INPUT_MALFORMED")
    assert waas.runtime.store.sessions.of_wallet(owner.extra["walletId"]) == []


def test_a_value_as_a_json_integer_is_refused_like_every_other_amount(
    api: Api, world: World, waas: Waas
) -> None:
    body = transfer_call(waas, world.owner, world.session_id)
    body["value"] = BIG
    refused(api.call("PrepareEthereumContractCall", body, world.backend), 400, "INPUT_MALFORMED")


def test_strict_json_draws_the_line_at_2_53_minus_1_only_when_asked() -> None:
    assert loads(str(MAX_SAFE_INTEGER), safe_integers=True) == MAX_SAFE_INTEGER
    assert loads(str(-MAX_SAFE_INTEGER), safe_integers=True) == -MAX_SAFE_INTEGER
    for text in (str(MAX_SAFE_INTEGER + 1), str(-MAX_SAFE_INTEGER - 1)):
        with pytest.raises(MalformedJson):
            loads(text, safe_integers=True)
        assert loads(text) == int(text)


def test_the_openapi_document_states_the_rule(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["info"]["x-max-json-integer"] == MAX_SAFE_INTEGER
