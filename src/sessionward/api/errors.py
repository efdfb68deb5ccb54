"""The one error shape of the HTTP API, and the translation of service refusals into it.

Every error response, whatever produced it, is::

    {"error": "<kind>", "code": "<ReasonCode>", "reason": "<rule or short reason>",
     "msg": "<human message>", "status": <int>, "requestId": "<id>",
     "decisionId"?: "<id>", "reasons"?: ["<code>", ...],
     "violations"?: [{"code", "rule", "detail", "call"?}]}

``decisionId``, ``reasons`` and ``violations`` appear for policy decisions (``PolicyDenied``)
and grant-time refusals that list violations. No message ever carries secret material or a
stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sessionward.domain.decision import Violation
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ErrorKind, ServiceError

# ServiceError.kind -> (HTTP status, the error's short kind).
KIND_STATUS: Final[dict[ErrorKind, tuple[int, str]]] = {
    "invalid": (400, "InvalidRequest"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "not_found": (404, "NotFound"),
    "conflict": (409, "Conflict"),
    "denied": (403, "PolicyDenied"),
    "unavailable": (503, "Unavailable"),
    "exhausted": (429, "TooManyRequests"),
}

# The one code the server's own failures carry (never a client mistake).
INTERNAL_ERROR: Final = ReasonCode.INTERNAL_ERROR.value

ERROR_KINDS: Final = (
    "InvalidRequest",
    "Unauthorized",
    "Forbidden",
    "PolicyDenied",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PayloadTooLarge",
    "Unavailable",
    "InternalError",
    "TooManyRequests",
)


class ApiError(Exception):
    """A refusal on its way to the client: status, kind, exact code and a short reason."""

    def __init__(
        self,
        status: int,
        kind: str,
        code: ReasonCode | str,
        msg: str,
        *,
        reason: str | None = None,
        violations: Sequence[Violation] = (),
        decision_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.kind = kind
        self.code = str(code)
        self.msg = msg
        self.reason = reason
        self.violations = tuple(violations)
        self.decision_id = decision_id
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON error document (see the module docstring)."""
        reason = self.reason
        if reason is None:
            reason = self.violations[0].rule if self.violations else _short(self.code)
        doc: dict[str, Any] = {
            "error": self.kind,
            "code": self.code,
            "reason": reason,
            "msg": self.msg,
            "status": self.status,
            "requestId": request_id,
        }
        if self.decision_id is not None:
            doc["decisionId"] = self.decision_id
        if self.violations:
            doc["reasons"] = list(dict.fromkeys(v.code.value for v in self.violations))
            doc["violations"] = [v.to_json() for v in self.violations]
        return doc


def _short(code: str) -> str:
    """A short reason when no rule or field is more precise: the code in words."""
    return code.lower().replace("_", " ")


RETRY_AFTER_S: Final = 1
"""Seconds a client waits before retrying a 503 (its ``Retry-After`` header)."""


def from_service_error(exc: ServiceError) -> ApiError:
    status, kind = KIND_STATUS[exc.kind]
    retry_after = RETRY_AFTER_S if status == 503 else exc.retry_after_s
    return ApiError(
        status,
        kind,
        exc.code,
        exc.message,
        violations=exc.violations,
        decision_id=exc.decision_id,
        # An outage of a dependency (chain, database), or a budget spent for now (429):
        # nothing was done, retry after this many seconds.
        headers=None if retry_after is None else {"Retry-After": str(retry_after)},
    )


def invalid(msg: str, *, reason: str | None = None) -> ApiError:
    """400 ``INPUT_MALFORMED``; ``reason`` names the field when there is one."""
    return ApiError(400, "InvalidRequest", ReasonCode.INPUT_MALFORMED, msg, reason=reason)


def unauthorized(code: ReasonCode, msg: str) -> ApiError:
    return ApiError(401, "Unauthorized", code, msg, reason="request signature")


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "PayloadTooLarge",
        ReasonCode.PAYLOAD_TOO_LARGE,
        f"the request body is larger than {limit} bytes",
        reason="body size",
    )


def method_unknown(name: str) -> ApiError:
    return ApiError(
        404, "NotFound", ReasonCode.METHOD_UNKNOWN, f"no such method: {name[:64]}", reason="path"
    )


def internal_error() -> ApiError:
    return ApiError(
        500,
        "InternalError",
        INTERNAL_ERROR,
        "internal error; the request id identifies it in the server's log",
        reason="internal error",
    )
