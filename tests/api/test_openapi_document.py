"""The OpenAPI document is complete and cannot drift from the code: it validates as OpenAPI
3.1 (openapi-spec-validator), its enums are the code's own, every method has a tag, an example
its request model accepts and the reason codes it can answer, and real answers of the service
validate against the typed schemas (the grant, the envelope, the intent, usage and states)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    Api,
    TestClient,
    World,
    new_world,
    quote,
    transfer_call,
    transfer_envelope,
)
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate

from sessionward.api.errors import (
    ERROR_KINDS,
    KIND_STATUS,
    NOT_ANSWERED,
    REASON_STATUS,
    Stage,
    answer_kind,
    from_service_error,
)
from sessionward.api.methods import METHODS
from sessionward.api.openapi import EXAMPLES, METHOD_REASONS, method_stages, openapi_document
from sessionward.crypto.typed_data import SCHEMA
from sessionward.domain.decision import Violation
from sessionward.domain.envelope import _ENVELOPE_FIELDS, RuleOp
from sessionward.domain.wire_types import WIRE_STATUS
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ErrorKind, ServiceError
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


# --- one table of reason code -> HTTP status, read by the runtime and the document ----------

SOURCE = Path(__file__).resolve().parents[2] / "src" / "sessionward"


def documented(method: str, status: int) -> list[str]:
    """The codes the document lists for ``method`` under ``status`` (none: not documented)."""
    responses = DOCUMENT["paths"][f"/v1/Waas/{method}"]["post"]["responses"]
    return list(responses.get(str(status), {}).get("x-reason-codes", []))


def test_every_reason_code_has_one_status_in_the_table() -> None:
    assert set(REASON_STATUS).isdisjoint(NOT_ANSWERED)
    assert set(REASON_STATUS) | NOT_ANSWERED == set(ReasonCode)
    statuses = set(REASON_STATUS.values())
    assert statuses <= {400, 401, 403, 404, 408, 409, 413, 414, 429, 431, 500, 503}
    assert set(SCHEMAS["Error"]["properties"]["error"]["enum"]) == set(ERROR_KINDS)


def _service_error(code: ReasonCode, stage: Stage) -> ServiceError:
    """A refusal of ``code`` as the service raises it at ``stage``."""
    violation = Violation(code, "rule", "detail")
    if stage is Stage.AUTHENTICATION:
        return ServiceError("unauthorized", code, "m")
    if stage is Stage.POLICY_DECISION:
        return ServiceError("denied", code, "m", violations=(violation,), decision_id="dec_1")
    if stage is Stage.GRANT_CHECKS:
        return ServiceError("invalid", code, "m", violations=(violation,))
    return ServiceError("invalid", code, "m")


def test_for_every_method_and_code_the_status_the_app_answers_is_the_documents() -> None:
    """The runtime's translation (from_service_error) of each code a method can answer, at each
    stage it can arise, is answered with a status under which the document lists that code for
    that method, and with the error kind the document names there; and the document lists
    nothing more than those."""
    for name, method in METHODS.items():
        operation = DOCUMENT["paths"][f"/v1/Waas/{name}"]["post"]
        expected: dict[str, set[str]] = {}
        for stage, codes in method_stages(method).items():
            for code in codes:
                answer = from_service_error(_service_error(code, stage))
                assert code.value in documented(name, answer.status), (name, code, answer.status)
                description = operation["responses"][str(answer.status)]["description"]
                assert answer.kind in description, (name, code, answer.kind)
                assert answer.kind == answer_kind(answer.status, stage)
                expected.setdefault(str(answer.status), set()).add(code.value)
        listed = {
            status: set(response["x-reason-codes"])
            for status, response in operation["responses"].items()
            if status != "200"
        }
        assert listed == expected, name
        assert set(operation["x-reason-codes"]) == set().union(*listed.values())


_KIND_OF_HELPER: dict[str, ErrorKind] = {
    "invalid": "invalid",
    "conflict": "conflict",
    "unavailable": "unavailable",
    "not_found": "not_found",
    "forbidden": "forbidden",
}
# Raise sites whose ServiceError kind alone would answer another status than the table: the
# table decides (one status per code). Each is (file, kind, code). A new raise site whose kind
# disagrees with REASON_STATUS fails the test below: use the kind the table implies, or (if the
# code's status should change everywhere) change REASON_STATUS, or declare it here.
TABLE_DECIDES: set[tuple[str, str, str]] = {
    # A fee read that fails is an outage like every other chain read: 503 + Retry-After.
    ("transactions.py", "conflict", "CHAIN_UNAVAILABLE"),
    # A random-id collision (retry): the same 400 as any other refused input.
    ("credentials.py", "conflict", "INPUT_MALFORMED"),
    ("devices.py", "conflict", "INPUT_MALFORMED"),
    # A renewal or grant signature used before: the same 409 as a registration proof reused.
    ("sessions.py", "forbidden", "NONCE_REPLAYED"),
    # Start-up only (configured ops keys that differ from their records), never a request.
    ("credentials.py", "conflict", "SIGNER_MISMATCH"),
    # A session call that needs a fee budget the grant does not give: 403 like the policy's.
    ("transactions.py", "invalid", "FEE_LIMIT_EXCEEDED"),
}


def _raise_sites() -> list[tuple[str, int, str, ReasonCode]]:
    """Every ``ServiceError(kind, ReasonCode.X, ...)`` and ``invalid/conflict/...(ReasonCode.X)``
    of the service, with a literal code: (file, line, kind, code)."""
    sites = []
    for path in sorted((SOURCE / "service").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name, args = node.func.id, list(node.args)
            keywords = {k.arg: k.value for k in node.keywords}
            if name == "ServiceError" and len(args) >= 2 and isinstance(args[0], ast.Constant):
                kind, code_node = str(args[0].value), args[1]
            elif name in ("invalid", "conflict", "unavailable") and args:
                kind, code_node = name, args[0]
            elif name == "not_found" and len(args) >= 2:
                kind, code_node = name, args[1]
            elif name == "forbidden":
                kind = name
                code_node = args[1] if len(args) >= 2 else keywords.get("code")
                if code_node is None:
                    sites.append((path.name, node.lineno, kind, ReasonCode.ROLE_FORBIDDEN))
                    continue
            else:
                continue
            if (
                isinstance(code_node, ast.Attribute)
                and isinstance(code_node.value, ast.Name)
                and code_node.value.id == "ReasonCode"
            ):
                sites.append((path.name, node.lineno, kind, ReasonCode[code_node.attr]))
    return sites


def test_every_raise_site_of_the_service_is_answered_as_the_table_says() -> None:
    sites = _raise_sites()
    assert len(sites) > 60  # the scan finds the service's refusals
    overridden = set()
    for file, line, kind, code in sites:
        answer = from_service_error(ServiceError(kind, code, "m"))  # type: ignore[arg-type]
        assert answer.status == REASON_STATUS[code] or kind == "unauthorized", (file, line)
        if answer.status != KIND_STATUS[kind][0]:  # type: ignore[index]
            overridden.add((file, kind, code.value))
    undeclared = overridden - TABLE_DECIDES
    assert not undeclared, f"raise sites whose kind disagrees with REASON_STATUS: {undeclared}"


def test_the_api_layers_own_refusals_agree_with_the_table() -> None:
    """Every ``ApiError(status, kind, ReasonCode.X, ...)`` written in the API layer and the pages
    answers the table's status for its code (a wrong verb, 405, is the one status no code
    has: it says the path exists)."""
    found = 0
    for path in sorted([*(SOURCE / "api").glob("*.py"), *(SOURCE / "ui").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ApiError"
                and len(node.args) >= 3
                and isinstance(node.args[0], ast.Constant)
            ):
                continue
            status, code_node = node.args[0].value, node.args[2]
            if (
                isinstance(code_node, ast.Attribute)
                and isinstance(code_node.value, ast.Name)
                and code_node.value.id == "ReasonCode"
            ):
                code = ReasonCode[code_node.attr]
            elif isinstance(code_node, ast.Constant):
                code = ReasonCode(code_node.value)
            else:
                continue
            found += 1
            if status == 405:
                assert code is ReasonCode.METHOD_UNKNOWN, (path.name, node.lineno)
                continue
            assert status == REASON_STATUS[code], (path.name, node.lineno, code)
    assert found >= 6


@pytest.mark.parametrize("kind", list(KIND_STATUS))
def test_a_code_missing_from_the_table_falls_back_to_its_kind(
    kind: ErrorKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionward.api import errors

    table = {c: s for c, s in REASON_STATUS.items() if c is not ReasonCode.QUOTE_EXPIRED}
    monkeypatch.setattr(errors, "REASON_STATUS", table)
    answer = from_service_error(ServiceError(kind, ReasonCode.QUOTE_EXPIRED, "m"))
    assert answer.status == KIND_STATUS[kind][0]


def test_real_refusals_are_answered_with_a_status_the_document_lists_for_their_code(
    api: Api, waas: Waas, world: World
) -> None:
    """Real requests through the app: each refusal's (status, code, error kind) is the one the
    document lists for that method."""
    envelope = transfer_envelope(waas)
    wildcard = transfer_envelope(
        waas, allowedDestinations=["0x0000000000000000000000000000000000000000"]
    )
    foreign = transfer_call(waas, world.owner, world.session_id)
    foreign["contract"] = "0x" + "42" * 20
    cases = [
        ("GetSession", api.call("GetSession", {"sessionId": "ses_nope"}, world.owner)),
        ("GetSession", api.call("GetSession", {"sessionId": world.session_id})),
        ("GetSession", api.post_raw("GetSession", b"{")),
        ("GetSession", api.call("GetSession", {"sessionId": 7}, world.owner)),
        ("ListAccess", api.call("ListAccess", {"walletId": world.wallet_id}, world.backend)),
        (
            "ApproveSession",
            api.call(
                "ApproveSession",
                {"sessionId": world.session_id, "signature": "0x" + "11" * 65},
                world.owner,
            ),
        ),
        ("Execute", api.call("Execute", {"txnId": "txn_nope"}, world.backend)),
        (
            "PrepareEthereumContractCall",
            api.call("PrepareEthereumContractCall", foreign, world.backend),
        ),
        (
            "AuthorizeRemoteAccess",
            api.call(
                "AuthorizeRemoteAccess",
                {
                    "credentialId": world.backend.credential_id,
                    "walletId": world.wallet_id,
                    "envelope": wildcard,
                },
                world.owner,
            ),
        ),
        (
            "AuthorizeRemoteAccess",
            api.call(
                "AuthorizeRemoteAccess",
                {"credentialId": "cred_nope", "walletId": world.wallet_id, "envelope": envelope},
                world.owner,
            ),
        ),
    ]
    seen = set()
    for method, response in cases:
        error = response.json()
        status = response.status_code
        assert status == error["status"] != 200, (method, error)
        assert error["code"] in documented(method, status), (method, status, error)
        description = DOCUMENT["paths"][f"/v1/Waas/{method}"]["post"]["responses"][str(status)]
        assert error["error"] in description["description"], (method, error)
        conforms(error, "Error")
        seen.add((status, error["error"]))
    # The cases cover every stage: use case, authentication, grant checks, policy decision.
    assert {(404, "NotFound"), (401, "Unauthorized"), (400, "InvalidRequest")} <= seen
    assert {(403, "Forbidden"), (403, "PolicyDenied"), (409, "Conflict")} <= seen


# --- examples: built by the code, each valid against its schema ----------------------------


def _schema_of(response: dict[str, Any]) -> dict[str, Any]:
    return {**response["content"]["application/json"]["schema"], "components": SCHEMAS_ROOT}


SCHEMAS_ROOT = DOCUMENT["components"]


def _valid(instance: Any, schema: dict[str, Any]) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(instance)][:5]


def test_every_method_has_an_answer_example_that_validates_against_its_schema() -> None:
    for name in METHODS:
        ok = DOCUMENT["paths"][f"/v1/Waas/{name}"]["post"]["responses"]["200"]
        examples = ok["content"]["application/json"]["examples"]
        assert list(examples) == ["answer"], name
        assert not _valid(examples["answer"]["value"], _schema_of(ok)), name


def test_every_error_response_has_an_example_of_its_own_status_and_codes() -> None:
    """Each error example validates against the Error schema, answers the response's status
    with one of the codes listed under it, and names an error kind the response names; the
    decision methods' 403 example is a PolicyDenied with its decisionId and violations."""
    count = 0
    for name in METHODS:
        responses = DOCUMENT["paths"][f"/v1/Waas/{name}"]["post"]["responses"]
        for status, response in responses.items():
            if status == "200":
                continue
            examples = response["content"]["application/json"]["examples"]
            assert len(examples) == 1, (name, status)
            ((code, example),) = examples.items()
            body = example["value"]
            assert not _valid(body, _schema_of(response)), (name, status)
            assert body["code"] == code and code in response["x-reason-codes"], (name, status)
            assert body["status"] == int(status), (name, status)
            assert body["error"] in response["description"], (name, status)
            count += 1
        if METHODS[name].decision:
            denied = next(iter(responses["403"]["content"]["application/json"]["examples"]))
            body = responses["403"]["content"]["application/json"]["examples"][denied]["value"]
            assert body["error"] == "PolicyDenied" and body["decisionId"], name
            assert body["violations"][0]["code"] == body["code"] == "TARGET_NOT_ALLOWED"
    assert count > 8 * len(METHODS)


def test_the_answer_examples_are_the_codes_own_answers() -> None:
    """The examples are consistent as only code-built values are: the grant's digest is the
    EIP-712 digest of its document (recomputed by the SDK's own hashing), the summary is the
    grant's, the export is the imported request's ERC-7715 form, an approval's answer is the
    pending grant's session, and each request example is accepted by its model."""
    from sessionward.api.openapi_examples import REQUEST_EXAMPLES, response_examples
    from sessionward.sdk.grants import grant_document_digest

    answers = response_examples()
    assert set(answers) == set(METHODS) == set(REQUEST_EXAMPLES)
    for name in ("AuthorizeRemoteAccess", "ImportPermissionRequest"):
        pending = answers[name]
        assert "0x" + grant_document_digest(pending["grant"]).hex() == pending["grantDigest"]
        assert (
            pending["grant"]["domain"]["verifyingContract"].lower()
            == (REQUEST_EXAMPLES["ImportPermissionRequest"]["request"][0]["address"])
        )
    seed = REQUEST_EXAMPLES["AuthorizeRemoteAccess"]["envelope"]
    assert answers["AuthorizeRemoteAccess"]["expiresAt"] == seed["expiresAt"]
    assert answers["ApproveSession"]["summary"] == answers["AuthorizeRemoteAccess"]["summary"]
    assert answers["ApproveSession"]["lifecycle"] == "installing"
    assert answers["GetSession"]["status"] == "active"
    exported = answers["ExportPermission"]["permissions"][0]
    asked = REQUEST_EXAMPLES["ImportPermissionRequest"]["request"][0]
    assert (
        exported["permission"]["data"]["tokenAddress"]
        == asked["permission"]["data"]["tokenAddress"]
    )
    assert answers["ImportPermissionRequest"]["justifications"] == [
        asked["permission"]["data"]["justification"]
    ]
    for name, method in METHODS.items():
        method.request.model_validate_json(json.dumps(REQUEST_EXAMPLES[name]))
