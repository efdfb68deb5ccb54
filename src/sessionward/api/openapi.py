"""The OpenAPI 3.1 document served at ``/openapi.json``, generated from the method table.

Request schemas come from the request models (so the document and the validation never
disagree); response schemas from the service's view types. The fields those carry as plain
dicts or free text are typed here from the code's own definitions (:data:`_FIELD_SCHEMAS`):
the envelope, the grant (from the protocol's EIP-712 schema), the call intent, the lifecycle
and transaction states, and every reason code (``ReasonCode``). Every operation has a tag, an
example (:data:`EXAMPLES`, each checked against its request model by the tests), the reason
codes it can answer (``x-reason-codes``, from :data:`METHOD_REASONS` and the stages of
:func:`method_stages`), and the one error shape (``Error``) for each status it can answer with;
each error response lists the codes answered with that status (its own ``x-reason-codes``),
the status read from the same table the runtime answers from (:data:`.errors.REASON_STATUS`,
:func:`.errors.answer_status`), so the document and the answers cannot disagree.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import UnionType
from typing import (
    Any,
    Final,
    Literal,
    NotRequired,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from sessionward.crypto.eip712 import domain_type_fields
from sessionward.crypto.http_names import (
    IDEMPOTENCY_HEADER,
    METHOD_PREFIX,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
)
from sessionward.crypto.typed_data import SCHEMA
from sessionward.domain.envelope import RuleOp
from sessionward.domain.strict_json import MAX_SAFE_INTEGER
from sessionward.domain.wire_types import WIRE_STATUS, DeviceStatus, Role, TransactionStatus
from sessionward.reasons import ReasonCode

from . import models
from .errors import ERROR_KINDS, Stage, answer_kind, answer_status
from .methods import METHODS, Method
from .openapi_examples import REQUEST_EXAMPLES, SEED_ENVELOPE, error_example, response_examples

OPENAPI_VERSION: Final = "3.1.0"
GRANT_PRIMARY_TYPE: Final = "SessionGrant"
REF: Final = "#/components/schemas/{model}"
IDEMPOTENCY_KEY_PATTERN: Final = r"^[!-~]{1,128}$"

_ATOMIC: Final[dict[Any, str]] = {str: "string", int: "integer", bool: "boolean"}

_ERROR_DESCRIPTIONS: Final = {
    400: "Malformed input (strict JSON, unknown field, wrong type), or a grant the checks refuse "
    "(its violations listed)",
    401: "Authentication failed: the exact reason code",
    403: "Role, binding or signature refused (Forbidden), or the policy denied (PolicyDenied, "
    "with decisionId and violations)",
    404: "No such object",
    408: "The request's headers or body did not arrive in time",
    409: "Conflict with the object's state (nothing was changed), or an Idempotency-Key reused",
    413: "Body larger than the configured limit",
    414: "Request target over its limit",
    429: "Over a rate limit or a budget: nothing was done; retry after Retry-After seconds",
    431: "Request headers over their limit",
    503: "A dependency (database, chain) is unavailable; retry after Retry-After seconds",
    500: "Internal error (never caused by a client mistake; the requestId is in the log)",
}

_SIGNATURE_DESCRIPTION: Final = (
    'alg="<alg>", cred="<credentialId>" (or "self"), nonce=<n>, ts=<ms>, sig="0x<hex>" over '
    "the preimage of docs/protocol.md section 3 (method, raw path with query, credential, "
    "nonce, timestamp and the SHA-256 of the raw body)."
)


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The one error shape of every failed request.",
        "required": ["error", "code", "reason", "msg", "status", "requestId"],
        "properties": {
            "error": {"type": "string", "enum": list(ERROR_KINDS)},
            "code": {"type": "string", "enum": [c.value for c in ReasonCode]},
            "reason": {
                "type": "string",
                "description": "The rule that fired (first violation), the field, or a phrase",
            },
            "msg": {"type": "string"},
            "status": {"type": "integer"},
            "requestId": {"type": "string"},
            "decisionId": {"type": "string"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "violations": {"type": "array", "items": {"$ref": REF.format(model="Violation")}},
        },
    }


def _violation_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "rule", "detail"],
        "properties": {
            "code": {"type": "string"},
            "rule": {"type": "string"},
            "detail": {"type": "string"},
            "call": {"type": "integer"},
        },
    }


class _Schemas:
    """Collects component schemas, hoisting nested definitions."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {
            "Error": _error_schema(),
            "Violation": _violation_schema(),
            **_envelope_schemas(),
            **_grant_schemas(),
            **_view_schemas(),
        }

    def add(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        definitions = schema.pop("$defs", {})
        self.components.update(definitions)
        self.components[name] = schema
        return {"$ref": REF.format(model=name)}

    def request(self, method: Method) -> dict[str, str]:
        schema = method.request.model_json_schema(by_alias=True, ref_template=REF)
        return self.add(f"{method.name}Request", schema)

    def response(self, method: Method) -> dict[str, Any]:
        """The schema of a service view type (a ``TypedDict``, possibly generic)."""
        return self.of_type(method.response, f"{method.name}Response")

    def of_type(
        self, hint: Any, name_if_generic: str = "", bindings: Mapping[Any, Any] | None = None
    ) -> dict[str, Any]:
        """JSON Schema of a type hint used by the service's views: ``TypedDict`` classes
        become named components (generic ones take ``name_if_generic``); ``bindings`` maps
        the type variables of an enclosing generic ``TypedDict``."""
        bound = bindings or {}
        hint = bound.get(hint, hint)
        origin, args = get_origin(hint), get_args(hint)
        if hint is Any or hint is object:
            return {}
        if hint is type(None):
            return {"type": "null"}
        if hint in _ATOMIC:
            return {"type": _ATOMIC[hint]}
        if origin is Literal and all(isinstance(a, str) for a in args):
            return {"type": "string", "enum": list(args)}
        if origin in (Union, UnionType):
            return {"anyOf": [self.of_type(a, bindings=bound) for a in args]}
        if origin is list:
            return {"type": "array", "items": self.of_type(args[0], bindings=bound)}
        if origin is dict:
            values = self.of_type(args[1], bindings=bound)
            return {"type": "object", "additionalProperties": values or True}
        typed_dict = origin if is_typeddict(origin) else hint
        if is_typeddict(typed_dict):
            return self._typed_dict(typed_dict, args, name_if_generic)
        raise TypeError(f"no JSON schema for {hint!r}")

    def _typed_dict(self, cls: Any, args: tuple[Any, ...], generic_name: str) -> dict[str, Any]:
        name = generic_name if args else cls.__name__
        if name in self.components:
            return {"$ref": REF.format(model=name)}
        self.components[name] = {}  # reserve the name (recursive types)
        bindings = dict(zip(getattr(cls, "__parameters__", ()), args, strict=True))
        hints = get_type_hints(cls, include_extras=True)
        # A module with ``from __future__ import annotations`` hides ``NotRequired`` from
        # ``__required_keys__`` on Python 3.11: read the qualifier from the hints themselves.
        optional = {key for key, value in hints.items() if get_origin(value) is NotRequired}
        properties = {
            key: self.of_type(get_type_hints(cls)[key], bindings=bindings) for key in hints
        }
        self.components[name] = {
            "type": "object",
            "title": name,
            "required": sorted(set(cls.__required_keys__) - optional),
            "properties": properties,
        }
        return {"$ref": REF.format(model=name)}


def _error_response(status: int, answers: Mapping[str, set[Stage]]) -> dict[str, Any]:
    """The response of ``status``: the error shape, the codes (``answers``: code -> the
    stages it arises at) this method answers with this status, and an example written by the
    runtime's own translation: a refusal listing violations (a policy decision or the grant's
    checks) when the status has one, else its first code."""
    codes = sorted(answers, key=_CODE_ORDER.__getitem__)
    kinds = sorted({answer_kind(status, s) for stages in answers.values() for s in stages})
    order = list(reversed(Stage))  # the richest answers first: decisions, grant checks
    stage, first = min(
        ((s, c) for c in codes for s in answers[c]),
        key=lambda sc: (order.index(sc[0]), sc[1] not in _TYPICAL, _CODE_ORDER[sc[1]]),
    )
    example = {first: {"value": error_example(ReasonCode(first), stage)}}
    return {
        "description": f"{_ERROR_DESCRIPTIONS.get(status, 'Error')}. "
        f"error: {', '.join(kinds)}; code: {', '.join(codes)}",
        "headers": _request_id_header(),
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="Error")},
                "examples": example,
            }
        },
        "x-reason-codes": codes,
    }


def _request_id_header() -> dict[str, Any]:
    return {
        REQUEST_ID_HEADER: {
            "description": "This request's id (also in error bodies as requestId)",
            "schema": {"type": "string"},
        }
    }


def _operation(method: Method, schemas: _Schemas) -> dict[str, Any]:
    by_status = method_answers(method)
    responses: dict[str, Any] = {
        "200": {
            "description": "Success",
            "headers": _request_id_header(),
            "content": {
                "application/json": {
                    "schema": schemas.response(method),
                    **_answer_examples(method.name),
                }
            },
        }
    }
    responses.update({str(s): _error_response(s, by_status[s]) for s in sorted(by_status)})
    codes = method_reasons(method)
    operation: dict[str, Any] = {
        "operationId": method.name,
        "summary": method.summary,
        "tags": [METHOD_REASONS.get(method.name, ("other", ()))[0]],
        "description": "Reason codes this method can answer (each response lists its own): "
        + ", ".join(codes)
        + ".",
        "x-reason-codes": codes,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": schemas.request(method),
                    **_examples(method.name),
                }
            },
        },
        "responses": responses,
        "security": [] if method.auth == "public" else [{"requestSignature": []}],
    }
    if method.mutation:
        operation["parameters"] = [
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "Same key and same request: the stored answer, not a second "
                "execution. Same key, another request: 409 IDEMPOTENCY_KEY_REUSED.",
                "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
            }
        ]
    return operation


def _service_paths() -> dict[str, Any]:
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    }
    check = {
        "type": "object",
        "required": ["ok"],
        "properties": {
            "ok": {"type": "boolean"},
            "reason": {"type": "string"},
            "block": {"type": "integer"},
            "lease": {"type": "string"},
        },
    }
    readiness = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "checks": {
                "type": "object",
                "properties": {name: check for name in ("database", "dataDir", "chain", "relayer")},
            },
        },
    }
    retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return {
        "/healthz": {
            "get": {
                "operationId": "Health",
                "tags": ["service"],
                "summary": "Liveness: 200 while the process answers HTTP (also HEAD)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Alive",
                        "headers": _request_id_header(),
                        "content": {"application/json": {"schema": health}},
                    },
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "Ready",
                "tags": ["service"],
                "summary": "Readiness: database writable, data directory writable, chain "
                "reachable, relayer lease (also HEAD)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Ready: every check passed",
                        "headers": _request_id_header(),
                        "content": {"application/json": {"schema": readiness}},
                    },
                    "503": {
                        "description": "Not ready: the failing checks carry their reason",
                        "headers": {**_request_id_header(), **retry},
                        "content": {"application/json": {"schema": readiness}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "Metrics",
                "tags": ["service"],
                "summary": "Prometheus text format",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "headers": _request_id_header(),
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def openapi_document(methods: Mapping[str, Method] = METHODS) -> dict[str, Any]:
    """The whole OpenAPI document (deterministic for a given method table)."""
    schemas = _Schemas()
    paths: dict[str, Any] = {
        f"{METHOD_PREFIX}{name}": {"post": _operation(method, schemas)}
        for name, method in methods.items()
    }
    paths.update(_service_paths())
    _type_fields(schemas.components)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "SessionWard WaaS API",
            "version": "1",
            "description": "Session keys for smart wallets: narrow, short-lived, revocable "
            "authority. Every method is POST /v1/Waas/<Method> with a camelCase JSON body; "
            "bytes are 0x hex. One amount rule for every field (envelope limits, contract-call "
            "arguments, value): amounts and uint values are decimal strings; a JSON integer is "
            f"accepted only within +-{MAX_SAFE_INTEGER} (2**53 - 1) and refused above "
            "(400 INPUT_MALFORMED).",
            "x-max-json-integer": MAX_SAFE_INTEGER,
        },
        "servers": [
            {
                "url": "{base}",
                "description": "A SessionWard node (`sessionward serve`)",
                "variables": {"base": {"default": "http://127.0.0.1:8080"}},
            }
        ],
        "tags": list(TAGS),
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "requestSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": _SIGNATURE_DESCRIPTION,
                    "x-algorithms": ["ecdsa-p256k-eip191", "ecdsa-p256-sha256"],
                }
            },
        },
    }


# --- typed shapes the views carry as plain dicts ---------------------------------------------

_ADDRESS: Final = {"type": "string", "pattern": r"^0x[0-9a-fA-F]{40}$"}
_DECIMAL: Final = {"type": "string", "pattern": r"^(?:0|[1-9][0-9]{0,77})$"}
_UINT: Final = {
    "anyOf": [_DECIMAL, {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}],
    "description": "A decimal string (any size) or a JSON integer up to 2**53 - 1",
}
_TIMESTAMP: Final = {"type": "integer", "minimum": 0, "description": "unix seconds"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _closed(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


def _envelope_schemas() -> dict[str, Any]:
    """The envelope a client sends (docs/protocol.md; parsed by ``Envelope.from_json``)."""
    rule_value = {"anyOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "string"}]}
    return {
        "Envelope": _closed(
            {
                "sessionKey": _ADDRESS,
                "capabilities": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
                "permissions": {"type": "array", "items": _ref("EnvelopePermission")},
                "allowedDestinations": {"type": "array", "items": _ADDRESS, "maxItems": 64},
                "chainId": {"type": "integer", "minimum": 0},
                "validAfter": _TIMESTAMP,
                "expiresAt": _TIMESTAMP,
                "valueLimit": _closed({"limit": _UINT, "period": _TIMESTAMP}, ["limit"]),
                "tokenLimits": {"type": "array", "items": _ref("EnvelopeTokenLimit")},
                "maxValueUsd": {
                    "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}],
                    "description": "USD cap (whole dollars, or a decimal string with cents)",
                },
                "maxUses": {"type": "integer", "minimum": 0},
                "rateLimit": _closed(
                    {"count": {"type": "integer"}, "interval": {"type": "integer"}},
                    ["count", "interval"],
                ),
                "maxFeeWei": _UINT,
            },
            ["chainId"],
            description="The capability envelope: what a session may do, where, how long, "
            "how much (docs/protocol.md section 4).",
            examples=[SEED_ENVELOPE],
        ),
        "EnvelopePermission": _closed(
            {
                "target": _ADDRESS,
                "function": {"type": "string", "examples": ["transfer(address,uint256)"]},
                "maxValuePerCall": _UINT,
                "rules": {"type": "array", "items": _ref("EnvelopeRule")},
            },
            ["target", "function"],
        ),
        "EnvelopeRule": _closed(
            {
                "arg": {"type": "string"},
                "op": {"type": "string", "enum": [op.value for op in RuleOp]},
                "value": rule_value,
                "values": {"type": "array", "items": rule_value, "minItems": 1},
            },
            ["arg", "op"],
        ),
        "EnvelopeTokenLimit": _closed(
            {"token": _ADDRESS, "limit": _UINT, "period": _TIMESTAMP}, ["token", "limit"]
        ),
    }


def _eip712_field(type_name: str, structs: set[str]) -> dict[str, Any]:
    if type_name.endswith("[]"):
        return {"type": "array", "items": _eip712_field(type_name[:-2], structs)}
    if type_name in structs:
        return _ref(f"Eip712{type_name}")
    if type_name == "address":
        return _ADDRESS
    if type_name == "string":
        return {"type": "string"}
    if type_name.startswith("bytes"):
        size = int(type_name[5:])
        return {"type": "string", "pattern": f"^0x[0-9a-fA-F]{{{2 * size}}}$"}
    return _UINT  # uintN (the protocol's only other atomic types)


def _grant_schemas() -> dict[str, Any]:
    """The SessionGrant ``eth_signTypedData_v4`` document, from the protocol's own schema."""
    types = {"EIP712Domain": domain_type_fields(), **SCHEMA.types_document(GRANT_PRIMARY_TYPE)}
    structs = set(types) - {"EIP712Domain"}
    schemas: dict[str, Any] = {
        f"Eip712{'Domain' if name == 'EIP712Domain' else name}": _closed(
            {f["name"]: _eip712_field(f["type"], structs) for f in fields},
            [f["name"] for f in fields],
        )
        for name, fields in types.items()
    }
    field = _closed({"name": {"type": "string"}, "type": {"type": "string"}}, ["name", "type"])
    schemas["GrantDocument"] = _closed(
        {
            "types": {
                "type": "object",
                "required": sorted(types),
                "additionalProperties": {"type": "array", "items": field},
            },
            "primaryType": {"type": "string", "const": GRANT_PRIMARY_TYPE},
            "domain": _ref("Eip712Domain"),
            "message": _ref(f"Eip712{GRANT_PRIMARY_TYPE}"),
        },
        ["types", "primaryType", "domain", "message"],
        description="The grant the owner signs, as eth_signTypedData_v4 JSON (docs/protocol.md "
        "sections 1-2); its digest is grantDigest.",
    )
    schemas["TypedDataDocument"] = _closed(
        {
            "types": {"type": "object", "additionalProperties": {"type": "array", "items": field}},
            "primaryType": {"type": "string"},
            "domain": _ref("Eip712Domain"),
            "message": {"type": "object"},
        },
        ["types", "primaryType", "domain", "message"],
        description="An eth_signTypedData_v4 document (a SessionRenewal)",
    )
    return schemas


def _view_schemas() -> dict[str, Any]:
    return {
        "ReasonCode": {
            "type": "string",
            "enum": [c.value for c in ReasonCode],
            "description": "Stable reason codes (docs/protocol.md section 5): never renamed, "
            "never reused, only appended.",
        },
        "CallIntent": _closed(
            {
                "call": {"type": "integer", "minimum": 0},
                "to": _ADDRESS,
                "value": _DECIMAL,
                "actionClass": {"type": "string"},
                "function": {"type": "string"},
                "arguments": {"type": "array", "items": {}},
            },
            ["call", "to", "value", "actionClass", "function", "arguments"],
            description="One decoded call of a prepared transaction",
        ),
    }


# (component, property) -> the typed schema of a field the views carry untyped or as free text.
_FIELD_SCHEMAS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("AuthorizeRemoteAccessRequest", "envelope"): _ref("Envelope"),
    ("PendingSessionView", "grant"): _ref("GrantDocument"),
    ("PendingSessionView", "status"): {"type": "string", "const": "pending"},
    ("SessionDetail", "grant"): _ref("GrantDocument"),
    ("SessionDetail", "envelope"): _ref("Envelope"),
    ("SessionDetail", "status"): {"type": "string", "enum": sorted(set(WIRE_STATUS.values()))},
    ("SessionDetail", "lifecycle"): {"type": "string", "enum": list(WIRE_STATUS)},
    ("RenewalView", "typedData"): _ref("TypedDataDocument"),
    ("TransactionView", "status"): {"type": "string", "enum": list(get_args(TransactionStatus))},
    ("TransactionView", "intent"): {"type": "array", "items": _ref("CallIntent")},
    ("Verdict", "reasons"): {"type": "array", "items": _ref("ReasonCode")},
    ("Verdict", "violations"): {"type": "array", "items": _ref("Violation")},
    ("ImportedPermissionView", "grant"): _ref("GrantDocument"),
    ("ImportedPermissionView", "envelope"): _ref("Envelope"),
    ("ImportedPermissionView", "status"): {"type": "string", "const": "pending"},
    ("CredentialView", "role"): {"type": "string", "enum": list(get_args(Role))},
    ("CredentialView", "alg"): {"type": "string", "enum": list(get_args(models.Alg))},
    ("DeviceView", "alg"): {"type": "string", "enum": list(get_args(models.Alg))},
    ("DeviceView", "status"): {"type": "string", "enum": list(get_args(DeviceStatus))},
    ("WalletView", "ownerKind"): {"type": "string", "enum": list(get_args(models.OwnerKind))},
    ("SessionDetail", "ownerKind"): {"type": "string", "enum": list(get_args(models.OwnerKind))},
    ("Violation", "code"): _ref("ReasonCode"),
    ("Error", "code"): _ref("ReasonCode"),
    ("Error", "reasons"): {"type": "array", "items": _ref("ReasonCode")},
}


def _type_fields(components: dict[str, Any]) -> None:
    """Replace the untyped fields named in :data:`_FIELD_SCHEMAS` (each must exist: a view that
    loses or renames one fails here, not silently)."""
    for (component, prop), schema in _FIELD_SCHEMAS.items():
        properties = components[component]["properties"]
        if prop not in properties:
            raise KeyError(f"{component}.{prop}: no such field to type")
        description = properties[prop].get("description")
        properties[prop] = {**schema, **({"description": description} if description else {})}


# --- examples, reason codes and tags per method ------------------------------------------------

# Codes an error example prefers when its status answers them (the most common refusals).
_TYPICAL: Final = frozenset({"TARGET_NOT_ALLOWED", "WILDCARD_TARGET"})

EXAMPLES: Final = REQUEST_EXAMPLES
"""Each method's request example (built in :mod:`.openapi_examples` with its answer)."""

R = ReasonCode
_CODE_ORDER: Final = {code.value: index for index, code in enumerate(ReasonCode)}
# Every request can be refused at the edge (:mod:`.http_guard`, :mod:`.body`, :mod:`.auth`),
# and every request can meet a server failure.
_EDGE: Final = (
    R.INPUT_MALFORMED,
    R.PAYLOAD_TOO_LARGE,
    R.HEADER_REPEATED,
    R.REQUEST_TARGET_MALFORMED,
    R.REQUEST_HEADERS_TOO_LARGE,
    R.REQUEST_LINE_TOO_LONG,
    R.REQUEST_TIMEOUT,
)
_SERVER: Final = (R.INTERNAL_ERROR, R.DATABASE_UNAVAILABLE)
# Every signed request: the signature header and the signer's credential (Stage.AUTHENTICATION,
# 401), its role and binding and its request rate (their statuses in REASON_STATUS).
_AUTHENTICATION: Final = (
    R.SIGNATURE_INVALID,
    R.SIGNATURE_MALLEABLE,
    R.SIGNER_ZERO_ADDRESS,
    R.SIGNER_MISMATCH,
    R.NONCE_REPLAYED,
    R.TIMESTAMP_OUT_OF_WINDOW,
    R.CREDENTIAL_UNKNOWN,
    R.CREDENTIAL_REVOKED,
    R.CREDENTIAL_EXPIRED,
)
_SIGNED: Final = (R.ROLE_FORBIDDEN, R.RATE_LIMITED_REQUESTS)
_SESSION: Final = (
    R.SESSION_UNKNOWN,
    R.SESSION_PENDING_APPROVAL,
    R.SESSION_NOT_YET_VALID,
    R.SESSION_EXPIRED,
    R.SESSION_REVOKED,
    R.SESSION_SUSPENDED,
    R.CREDENTIAL_REVOKED,
    R.CREDENTIAL_EXPIRED,
    R.WALLET_UNKNOWN,
    R.WALLET_FROZEN,
    R.GLOBAL_FREEZE,
    R.ACTION_CLASS_FROZEN,
    R.CHAIN_MISMATCH,
    R.ACCOUNT_MISMATCH,
)
# What a policy decision can refuse with (Stage.POLICY_DECISION: 403 PolicyDenied).
_DECISION: Final = (
    *_SESSION,
    R.CALLDATA_MALFORMED,
    R.EMPTY_BATCH,
    R.CALL_TYPE_FORBIDDEN,
    R.SELF_CALL_FORBIDDEN,
    R.NON_DELEGABLE_ACTION,
    R.TARGET_NOT_ALLOWED,
    R.SELECTOR_NOT_ALLOWED,
    R.ARG_RULE_VIOLATED,
    R.VALUE_CAP_EXCEEDED,
    R.VALUE_LIMIT_EXCEEDED,
    R.TOKEN_LIMIT_EXCEEDED,
    R.USD_LIMIT_EXCEEDED,
    R.USD_PRICE_UNKNOWN,
    R.USAGE_LIMIT_REACHED,
    R.RATE_LIMITED,
    R.FEE_LIMIT_EXCEEDED,
    R.CHAIN_UNAVAILABLE,
)
# What the grant's checks can refuse with, listing violations (Stage.GRANT_CHECKS: 400).
_GRANT_CHECKS: Final = (
    R.ENVELOPE_MALFORMED,
    R.UNKNOWN_CAPABILITY,
    R.EXPIRY_MISSING,
    R.TTL_EXCEEDS_TIER,
    R.WINDOW_INVALID,
    R.EXPIRY_PAST_CREDENTIAL,
    R.WILDCARD_TARGET,
    R.CAPS_REQUIRED,
    R.CAPABILITY_WITHOUT_TARGET,
    R.CHAIN_MISMATCH,
    R.PERMISSION_OVERLAP,
    R.RULE_NOT_ON_CHAIN,
    R.TOKEN_FUNCTION_UNDEFINED,
    R.APPROVAL_UNBOUNDED,
    R.NON_DELEGABLE_ACTION,
    R.GRANT_TOO_LARGE,
)
# A grant's refusals before its checks: the wallet, the backend credential it names, freezes.
_GRANT: Final = (
    R.WALLET_UNKNOWN,
    R.WALLET_FROZEN,
    R.GLOBAL_FREEZE,
    R.ENVELOPE_MALFORMED,
    R.CHAIN_MISMATCH,
    R.CREDENTIAL_UNKNOWN,
    R.CREDENTIAL_REVOKED,
    R.CREDENTIAL_EXPIRED,
)
_REGISTRATION: Final = (
    R.ACCOUNT_MISMATCH,
    R.SIGNER_MISMATCH,
    R.NONCE_REPLAYED,
    R.WALLET_ALREADY_REGISTERED,
    R.REGISTRATION_PROOF_INVALID,
    R.REGISTRATION_PROOF_EXPIRED,
    R.CHAIN_UNAVAILABLE,
    R.WALLET_CREATION_BUDGET_EXHAUSTED,
)
_PAIRING: Final = (
    R.PAIRING_CODE_INVALID,
    R.PAIRING_CODE_EXPIRED,
    R.PAIRING_CODE_USED,
    R.DEVICE_CANNOT_PAIR,
    R.DEVICE_LIMIT_REACHED,
    R.GLOBAL_FREEZE,
)
# The account's own refusals of an enable call, read by simulating it at approval (409), and
# an enable call over the gas limit (400).
_ENABLE: Final = (
    R.NOT_AUTHORIZED,
    R.STORAGE_LAYOUT_MISMATCH,
    R.CALL_FAILED_ON_CHAIN,
    R.GRANT_TOO_LARGE,
    R.CHAIN_UNAVAILABLE,
)
_TRANSACTION: Final = (R.SESSION_UNKNOWN, R.WALLET_UNKNOWN, R.CHAIN_MISMATCH)

# The one table of what each method can answer beyond the edge's and the server's codes:
# (tag, the method's own reason codes, answered with their REASON_STATUS). A signed method
# also answers the authentication codes (401) and _SIGNED; a method whose answer is a policy
# decision (Method.decision) the decision's codes (403 PolicyDenied); a method in
# GRANT_CHECKED the grant checks' codes (400).
METHOD_REASONS: Final[dict[str, tuple[str, tuple[ReasonCode, ...]]]] = {
    "RegisterCredential": (
        "credentials",
        (
            R.CREDENTIAL_METADATA_INVALID,
            R.WINDOW_INVALID,
            R.DEVICE_CANNOT_PAIR,
            R.DEVICE_LIMIT_REACHED,
            R.WALLET_UNKNOWN,
            R.GLOBAL_FREEZE,
        ),
    ),
    "InspectCredential": ("credentials", (R.CREDENTIAL_UNKNOWN,)),
    "RevokeCredential": ("credentials", (R.REASON_REQUIRED, R.CREDENTIAL_UNKNOWN)),
    "CreatePairingCode": (
        "devices",
        (R.WALLET_UNKNOWN, R.WINDOW_INVALID, R.DEVICE_CANNOT_PAIR, R.GLOBAL_FREEZE),
    ),
    "PairDevice": ("devices", _PAIRING),
    "ListDevices": ("devices", (R.WALLET_UNKNOWN,)),
    "RevokeDevice": ("devices", (R.WALLET_UNKNOWN, R.DEVICE_UNKNOWN)),
    "CreateWallet": ("wallets", _REGISTRATION),
    "GetRegistrationChallenge": ("wallets", _REGISTRATION),
    "RegisterWallet": ("wallets", _REGISTRATION),
    "AuthorizeRemoteAccess": ("sessions", _GRANT),
    "ImportPermissionRequest": (
        "sessions",
        (*_GRANT, R.PERMISSION_TYPE_UNSUPPORTED, R.PERMISSION_UNENFORCEABLE),
    ),
    "ExportPermission": (
        "sessions",
        (
            R.SESSION_UNKNOWN,
            R.SESSION_PENDING_APPROVAL,
            R.SESSION_SUSPENDED,
            R.SESSION_REVOKED,
            R.SESSION_EXPIRED,
            R.SESSION_NOT_PENDING,
            R.PERMISSION_TYPE_UNSUPPORTED,
        ),
    ),
    "ApproveSession": (
        "sessions",
        (
            R.SESSION_UNKNOWN,
            R.SESSION_NOT_PENDING,
            R.SESSION_EXPIRED,
            R.SESSION_REVOKED,
            R.SIGNATURE_INVALID,
            R.SIGNATURE_MALLEABLE,
            R.SIGNER_ZERO_ADDRESS,
            R.SIGNER_MISMATCH,
            R.NONCE_REPLAYED,
            R.WALLET_FROZEN,
            R.GLOBAL_FREEZE,
            *_ENABLE,
        ),
    ),
    "ListAccess": ("sessions", (R.WALLET_UNKNOWN,)),
    "RevokeAccess": ("sessions", (R.WALLET_UNKNOWN, R.SESSION_UNKNOWN)),
    "GetSession": ("sessions", (R.SESSION_UNKNOWN,)),
    "ListSessions": ("sessions", ()),
    "GetSessionUsage": ("sessions", (R.SESSION_UNKNOWN,)),
    "PrepareEthereumTransaction": ("transactions", _TRANSACTION),
    "PrepareEthereumContractCall": ("transactions", _TRANSACTION),
    "Execute": (
        "transactions",
        (
            *_TRANSACTION,
            R.TRANSACTION_UNKNOWN,
            R.TRANSACTION_NOT_QUOTED,
            R.QUOTE_EXPIRED,
            R.IDEMPOTENCY_KEY_REUSED,
            R.SIGNING_REFUSED,
            R.KEY_UNKNOWN,
            R.CHAIN_UNAVAILABLE,
            R.CLOCK_SKEW,
        ),
    ),
    "TransactionStatus": ("transactions", (R.TRANSACTION_UNKNOWN,)),
    "EmergencyRevoke": (
        "ops",
        (R.REASON_REQUIRED, R.ACTION_CLASS_UNKNOWN, R.SESSION_UNKNOWN, R.WALLET_UNKNOWN),
    ),
    "LiftFreeze": (
        "ops",
        (R.FREEZE_LIFT_NEEDS_SECOND_OPS, R.ACTION_CLASS_UNKNOWN, R.SIGNER_MISMATCH),
    ),
}
GRANT_CHECKED: Final = frozenset({"AuthorizeRemoteAccess", "ImportPermissionRequest"})
# A request that names its network (a ``network`` field in its model, issue 19) can name one
# the service does not serve (NETWORK_UNKNOWN) or another chain than its wallet's.
_NETWORK: Final = (R.NETWORK_UNKNOWN, R.CHAIN_MISMATCH)

TAGS: Final = (
    {"name": "credentials", "description": "Backend credentials: register, inspect, retire"},
    {"name": "devices", "description": "The owner's devices: pairing codes, pairing, revoking"},
    {"name": "wallets", "description": "Create or register a smart wallet, proving control"},
    {"name": "sessions", "description": "Grant, approve, review and revoke sessions"},
    {"name": "transactions", "description": "Prepare, execute and follow calls in a session"},
    {"name": "ops", "description": "The kill switch and lifting freezes"},
    {"name": "service", "description": "Health, readiness and metrics"},
)


def _examples(name: str) -> dict[str, Any]:
    """The method's request example (every method has one: the tests check it)."""
    if name not in EXAMPLES:
        return {}
    return {"examples": {"example": {"value": EXAMPLES[name]}}}


def _answer_examples(name: str) -> dict[str, Any]:
    """The method's example answer (every method has one: the tests validate it)."""
    answers = response_examples()
    if name not in answers:
        return {}
    return {"examples": {"answer": {"value": copy.deepcopy(answers[name])}}}


def method_stages(method: Method) -> dict[Stage, tuple[ReasonCode, ...]]:
    """The codes ``method`` can answer, by the stage each arises at (the tables above)."""
    own = METHOD_REASONS.get(method.name, ("other", ()))[1]
    signed = method.auth != "public"
    network = _NETWORK if "network" in method.request.model_fields else ()
    stages = {
        Stage.USE_CASE: (*_EDGE, *_SERVER, *own, *network, *(_SIGNED if signed else ())),
        Stage.AUTHENTICATION: _AUTHENTICATION if signed else (),
        Stage.GRANT_CHECKS: _GRANT_CHECKS if method.name in GRANT_CHECKED else (),
        Stage.POLICY_DECISION: _DECISION if method.decision else (),
    }
    return {stage: codes for stage, codes in stages.items() if codes}


def method_answers(method: Method) -> dict[int, dict[str, set[Stage]]]:
    """Every error status ``method`` can answer -> the codes answered with it (each with the
    stage it arises at), the status read from the runtime's own table
    (:func:`~.errors.answer_status`)."""
    answers: dict[int, dict[str, set[Stage]]] = {}
    for stage, codes in method_stages(method).items():
        for code in codes:
            status = answer_status(code, stage)
            if status is None:
                raise KeyError(f"{code} has no HTTP status in REASON_STATUS")
            answers.setdefault(status, {}).setdefault(code.value, set()).add(stage)
    return answers


def method_reasons(method: Method) -> list[str]:
    """Every reason code ``method`` can answer with, in the enum's order."""
    codes = {code for codes in method_stages(method).values() for code in codes}
    return [code.value for code in ReasonCode if code in codes]
