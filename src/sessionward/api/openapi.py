"""The OpenAPI 3.1 document served at ``/openapi.json``, generated from the method table.

Request schemas come from the request models (so the document and the validation never
disagree); response schemas from the service's view types. Every operation documents the one
error shape (``Error``) for each status it can answer with.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import UnionType
from typing import (
    Any,
    Final,
    NotRequired,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from sessionward.crypto.http_names import (
    IDEMPOTENCY_HEADER,
    METHOD_PREFIX,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
)
from sessionward.domain.reasons import ReasonCode
from sessionward.domain.strict_json import MAX_SAFE_INTEGER

from .errors import ERROR_KINDS
from .methods import METHODS, Method

OPENAPI_VERSION: Final = "3.1.0"
REF: Final = "#/components/schemas/{model}"
IDEMPOTENCY_KEY_PATTERN: Final = r"^[!-~]{1,128}$"

_ATOMIC: Final[dict[Any, str]] = {str: "string", int: "integer", bool: "boolean"}

_ERROR_DESCRIPTIONS: Final = {
    400: "Malformed input (strict JSON, unknown field, wrong type): INPUT_MALFORMED and others",
    401: "Authentication failed: the exact reason code (NONCE_REPLAYED, SIGNATURE_INVALID, ...)",
    403: "Role or binding refused (ROLE_FORBIDDEN), or the policy denied (PolicyDenied)",
    404: "No such object",
    409: "Conflict with the object's state, or an Idempotency-Key reused",
    413: "Body larger than the configured limit (PAYLOAD_TOO_LARGE)",
    429: "Over a rate limit (RATE_LIMITED_REQUESTS) or a budget (WALLET_CREATION_BUDGET_"
    "EXHAUSTED): nothing was done; retry after Retry-After seconds",
    503: "The database is unavailable (DATABASE_UNAVAILABLE); retry after Retry-After seconds",
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


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _ERROR_DESCRIPTIONS.get(status, "Error"),
        "headers": _request_id_header(),
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _request_id_header() -> dict[str, Any]:
    return {
        REQUEST_ID_HEADER: {
            "description": "This request's id (also in error bodies as requestId)",
            "schema": {"type": "string"},
        }
    }


def _operation(method: Method, schemas: _Schemas) -> dict[str, Any]:
    statuses = [400, 403, 404, 409, 413, 500, 503]
    if method.auth != "public":
        statuses.insert(1, 401)
        statuses.insert(-2, 429)  # rate limits (RATE_LIMITED_REQUESTS) and budgets
    responses: dict[str, Any] = {
        "200": {
            "description": "Success",
            "headers": _request_id_header(),
            "content": {"application/json": {"schema": schemas.response(method)}},
        }
    }
    responses.update({str(s): _error_response(s) for s in statuses})
    operation: dict[str, Any] = {
        "operationId": method.name,
        "summary": method.summary,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schemas.request(method)}},
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
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "requestSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": _SIGNATURE_DESCRIPTION,
                }
            },
        },
    }
