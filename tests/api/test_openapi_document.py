"""The OpenAPI document is complete and cannot drift from the code: it validates as OpenAPI
3.1 (openapi-spec-validator), its enums are the code's own, every method has a tag, an example
its request model accepts and the reason codes it can answer, and real answers of the service
validate against the typed schemas (the grant, the envelope, the intent, usage and states)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_support import Api, TestClient, World, new_world, quote, transfer_envelope
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate

from sessionward.api.methods import METHODS
from sessionward.api.openapi import EXAMPLES, METHOD_REASONS, openapi_document
from sessionward.crypto.typed_data import SCHEMA
from sessionward.domain.envelope import _ENVELOPE_FIELDS, RuleOp
from sessionward.domain.wire_types import WIRE_STATUS
from sessionward.reasons import ReasonCode
from sessionward.service.waas import Waas

DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def conforms(instance: Any, component: str) -> None:
    """Assert ``instance`` validates against ``#/components/schemas/<component>``."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": DOCUMENT["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(instance)]
    assert not errors, (component, errors[:5])


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)


def test_the_served_document_is_the_validated_one(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == json.loads(json.dumps(DOCUMENT))


def test_enums_are_the_codes_own_definitions() -> None:
    assert SCHEMAS["ReasonCode"]["enum"] == [code.value for code in ReasonCode]
    assert SCHEMAS["SessionDetail"]["properties"]["lifecycle"]["enum"] == list(WIRE_STATUS)
    assert set(SCHEMAS["SessionDetail"]["properties"]["status"]["enum"]) == set(
        WIRE_STATUS.values()
    )
    assert SCHEMAS["EnvelopeRule"]["properties"]["op"]["enum"] == [op.value for op in RuleOp]
    assert set(SCHEMAS["Envelope"]["properties"]) == _ENVELOPE_FIELDS
    for name, fields in SCHEMA.types_document("SessionGrant").items():
        assert list(SCHEMAS[f"Eip712{name}"]["properties"]) == [f["name"] for f in fields]
    assert SCHEMAS["Error"]["properties"]["code"] == {"$ref": "#/components/schemas/ReasonCode"}


def test_every_method_has_a_tag_an_accepted_example_and_its_reason_codes() -> None:
    assert set(METHOD_REASONS) == set(METHODS) == set(EXAMPLES)
    tags = {tag["name"] for tag in DOCUMENT["tags"]}
    for name, method in METHODS.items():
        operation = DOCUMENT["paths"][f"/v1/Waas/{name}"]["post"]
        assert operation["tags"][0] in tags
        example = operation["requestBody"]["content"]["application/json"]["examples"]
        method.request.model_validate_json(json.dumps(example["example"]["value"]))
        codes = operation["x-reason-codes"]
        assert set(codes) <= {code.value for code in ReasonCode}
        assert "INPUT_MALFORMED" in codes and "INTERNAL_ERROR" in codes
        assert ("SIGNATURE_INVALID" in codes) == (method.auth != "public"), name
    execute = DOCUMENT["paths"]["/v1/Waas/Execute"]["post"]["x-reason-codes"]
    assert {"SESSION_REVOKED", "IDEMPOTENCY_KEY_REUSED", "QUOTE_EXPIRED"} <= set(execute)


def test_the_signature_header_is_a_security_scheme_and_servers_are_named() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"]["requestSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == (
        "apiKey",
        "header",
        "Oms-Wallet-Signature",
    )
    assert DOCUMENT["servers"][0]["url"]
    assert DOCUMENT["paths"]["/v1/Waas/Execute"]["post"]["security"] == [{"requestSignature": []}]
    assert DOCUMENT["paths"]["/v1/Waas/InspectCredential"]["post"]["security"] == []


@pytest.fixture(scope="module")
def world(api: Api, waas: Waas) -> World:
    return new_world(api, waas)


def test_real_answers_validate_against_the_typed_schemas(
    api: Api, waas: Waas, world: World
) -> None:
    envelope = transfer_envelope(waas)
    conforms(envelope, "Envelope")
    pending = api.ok(
        "AuthorizeRemoteAccess",
        {
            "credentialId": world.backend.credential_id,
            "walletId": world.wallet_id,
            "envelope": envelope,
        },
        world.owner,
    )
    conforms(pending, "PendingSessionView")
    conforms(pending["grant"], "GrantDocument")
    detail = api.ok("GetSession", {"sessionId": pending["sessionId"]}, world.owner)
    conforms(detail, "SessionDetail")
    active = api.ok("GetSession", {"sessionId": world.session_id}, world.owner)
    conforms(active, "SessionDetail")
    txn = api.ok("TransactionStatus", {"txnId": quote(api, waas, world)}, world.backend)
    conforms(txn, "TransactionView")
    assert txn["intent"] and txn["status"] == "quoted"
    usage = api.ok("GetSessionUsage", {"sessionId": world.session_id}, world.backend)
    conforms(usage, "UsageView")
    credential = api.ok("InspectCredential", {"credentialId": world.backend.credential_id})
    conforms(credential, "CredentialView")
    listed = api.ok("ListAccess", {"walletId": world.wallet_id}, world.owner)
    conforms(listed, "ListAccessResponse")
    refusal = api.call("GetSession", {"sessionId": "ses_nope"}, world.owner).json()
    conforms(refusal, "Error")


def test_the_wire_enums_have_one_home_that_store_service_and_document_share() -> None:
    from typing import get_args

    from sessionward.domain import wire_types
    from sessionward.service import callers, devices, sessions
    from sessionward.store import credentials, transaction_records

    assert callers.Role is credentials.Role is wire_types.Role
    assert devices.DeviceStatus is wire_types.DeviceStatus
    assert transaction_records.TransactionStatus is wire_types.TransactionStatus
    assert sessions.WIRE_STATUS is wire_types.WIRE_STATUS
    views = {
        ("CredentialView", "role"): wire_types.Role,
        ("DeviceView", "status"): wire_types.DeviceStatus,
        ("TransactionView", "status"): wire_types.TransactionStatus,
    }
    for (component, prop), literal in views.items():
        assert SCHEMAS[component]["properties"][prop]["enum"] == list(get_args(literal))
