"""The one error shape of the HTTP API, and the translation of service refusals into it.

Every error response, whatever produced it, is::

    {"error": "<kind>", "code": "<ReasonCode>", "reason": "<rule or short reason>",
     "msg": "<human message>", "status": <int>, "requestId": "<id>",
     "decisionId"?: "<id>", "reasons"?: ["<code>", ...],
     "violations"?: [{"code", "rule", "detail", "call"?}]}

``decisionId``, ``reasons`` and ``violations`` appear for policy decisions (``PolicyDenied``)
and grant-time refusals that list violations. No message ever carries secret material or a
stack trace.

The status of a refusal is one table's (:data:`REASON_STATUS`, reason code -> status) except in
three stages that answer one status whatever the code (:class:`Stage`: the request's
authentication 401, the grant's checks 400, a policy decision 403 ``PolicyDenied``). The
runtime (:func:`from_service_error`, :func:`refusal` and the helpers) and the OpenAPI document
(:mod:`.openapi`, per method and status) both read it; a wrong HTTP verb, 405, is the one
answer outside it (``METHOD_UNKNOWN``: the path exists, not with that verb).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

from sessionward.domain.decision import Violation
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ErrorKind, ServiceError

_log = logging.getLogger("sessionward.api")

R = ReasonCode


class Stage(StrEnum):
    """Where a refusal arises. Three stages answer one status whatever the code; every other
    refusal (``USE_CASE``: the use case's own checks and the HTTP edge) answers the status
    :data:`REASON_STATUS` gives its code."""

    USE_CASE = "use case"
    AUTHENTICATION = "authentication"
    """The request's own signature, credential or pairing code: 401 (``Unauthorized``)."""
    GRANT_CHECKS = "grant checks"
    """A grant or permission request refused with its list of ``violations``: 400."""
    POLICY_DECISION = "policy decision"
    """A policy decision's refusal (``decisionId``, ``violations``): 403 ``PolicyDenied``."""


STAGE_STATUS: Final[Mapping[Stage, int]] = {
    Stage.AUTHENTICATION: 401,
    Stage.GRANT_CHECKS: 400,
    Stage.POLICY_DECISION: 403,
}

# The one table of reason code -> HTTP status, for refusals of the USE_CASE stage (the stages
# of STAGE_STATUS answer their own status). The runtime answers from it (from_service_error
# and the helpers below) and the OpenAPI document lists each method's codes under the statuses
# it gives, so the two cannot disagree. Codes that are never an HTTP error are in NOT_ANSWERED.
REASON_STATUS: Final[Mapping[ReasonCode, int]] = {
    # 400: the request itself is malformed or asks for something the protocol refuses.
    **dict.fromkeys(
        (
            R.INPUT_MALFORMED,
            R.HEADER_REPEATED,
            R.REQUEST_TARGET_MALFORMED,
            R.ACCOUNT_MISMATCH,
            R.ACTION_CLASS_UNKNOWN,
            R.REASON_REQUIRED,
            R.REGISTRATION_PROOF_EXPIRED,
            R.CREDENTIAL_METADATA_INVALID,
            R.ENVELOPE_MALFORMED,
            R.UNKNOWN_CAPABILITY,
            R.EXPIRY_MISSING,
            R.TTL_EXCEEDS_TIER,
            R.WINDOW_INVALID,
            R.EXPIRY_PAST_CREDENTIAL,
            R.WILDCARD_TARGET,
            R.CAPS_REQUIRED,
            R.CAPABILITY_WITHOUT_TARGET,
            R.PERMISSION_OVERLAP,
            R.RULE_NOT_ON_CHAIN,
            R.TOKEN_FUNCTION_UNDEFINED,
            R.APPROVAL_UNBOUNDED,
            R.GRANT_TOO_LARGE,
            R.PERMISSION_TYPE_UNSUPPORTED,
            R.PERMISSION_UNENFORCEABLE,
            # Also a relayed operation's recorded failure; as an answer, a network without the
            # ERC-4337 path asked for it.
            R.USER_OPERATION_REFUSED,
            # Vault refusals the service does not translate (the app answers them 400).
            R.KEY_UNKNOWN,
            R.SIGNING_REFUSED,
        ),
        400,
    ),
    # 401: who is asking is not established (also every code of Stage.AUTHENTICATION).
    **dict.fromkeys(
        (
            R.TIMESTAMP_OUT_OF_WINDOW,
            R.PAIRING_CODE_INVALID,
            R.PAIRING_CODE_EXPIRED,
            R.PAIRING_CODE_USED,
        ),
        401,
    ),
    # 403: the caller may not, or a signature in the body is not the owner's; and every code of
    # a policy decision (Stage.POLICY_DECISION answers 403 PolicyDenied for them).
    **dict.fromkeys(
        (
            R.ROLE_FORBIDDEN,
            R.DEVICE_CANNOT_PAIR,
            R.REGISTRATION_PROOF_INVALID,
            R.SIGNATURE_INVALID,
            R.SIGNATURE_MALLEABLE,
            R.SIGNER_ZERO_ADDRESS,
            R.SIGNER_MISMATCH,
            R.CHAIN_MISMATCH,
            R.SESSION_NOT_YET_VALID,
            R.ACTION_CLASS_FROZEN,
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
        ),
        403,
    ),
    # 404: no such object (or path).
    **dict.fromkeys(
        (
            R.METHOD_UNKNOWN,
            R.SESSION_UNKNOWN,
            R.CREDENTIAL_UNKNOWN,
            R.WALLET_UNKNOWN,
            R.TRANSACTION_UNKNOWN,
            R.DEVICE_UNKNOWN,
            R.NETWORK_UNKNOWN,
        ),
        404,
    ),
    R.REQUEST_TIMEOUT: 408,
    # 409: the object's state refuses it (nothing was changed).
    **dict.fromkeys(
        (
            R.SESSION_PENDING_APPROVAL,
            R.SESSION_EXPIRED,
            R.SESSION_REVOKED,
            R.SESSION_SUSPENDED,
            R.SESSION_NOT_PENDING,
            R.CREDENTIAL_REVOKED,
            R.CREDENTIAL_EXPIRED,
            R.WALLET_FROZEN,
            R.GLOBAL_FREEZE,
            R.WALLET_ALREADY_REGISTERED,
            R.NONCE_REPLAYED,
            R.QUOTE_EXPIRED,
            R.TRANSACTION_NOT_QUOTED,
            R.IDEMPOTENCY_KEY_REUSED,
            R.FREEZE_LIFT_NEEDS_SECOND_OPS,
            R.DEVICE_LIMIT_REACHED,
            # The account's own refusal of an enable call, read by simulating it at approval.
            R.NOT_AUTHORIZED,
            R.STORAGE_LAYOUT_MISMATCH,
            R.CALL_FAILED_ON_CHAIN,
        ),
        409,
    ),
    R.PAYLOAD_TOO_LARGE: 413,
    R.REQUEST_LINE_TOO_LONG: 414,
    R.RATE_LIMITED_REQUESTS: 429,
    R.WALLET_CREATION_BUDGET_EXHAUSTED: 429,
    R.REQUEST_HEADERS_TOO_LARGE: 431,
    R.INTERNAL_ERROR: 500,
    # 503: a dependency is out; nothing was done; retry after Retry-After seconds.
    R.CHAIN_UNAVAILABLE: 503,
    R.DATABASE_UNAVAILABLE: 503,
    R.CLOCK_SKEW: 503,
}

NOT_ANSWERED: Final[frozenset[ReasonCode]] = frozenset()
"""Reason codes that never name an HTTP error (none: even the account's revert reasons are
answered, when ApproveSession simulates the enable call)."""

# The error's short kind for each status (Stage.POLICY_DECISION: PolicyDenied).
STATUS_KIND: Final[Mapping[int, str]] = {
    400: "InvalidRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "Conflict",
    413: "PayloadTooLarge",
    414: "RequestTooLarge",
    429: "TooManyRequests",
    431: "RequestTooLarge",
    500: "InternalError",
    503: "Unavailable",
}
POLICY_DENIED: Final = "PolicyDenied"

# ServiceError.kind -> (HTTP status, the error's short kind): what a kind alone would answer.
# Only a code missing from REASON_STATUS falls back to it (logged); the tests prove every raise
# site of the service agrees with REASON_STATUS (or is a declared exception).
KIND_STATUS: Final[dict[ErrorKind, tuple[int, str]]] = {
    "invalid": (400, "InvalidRequest"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "not_found": (404, "NotFound"),
    "conflict": (409, "Conflict"),
    "denied": (403, POLICY_DENIED),
    "unavailable": (503, "Unavailable"),
    "exhausted": (429, "TooManyRequests"),
}

# The one code the server's own failures carry (never a client mistake).
INTERNAL_ERROR: Final = ReasonCode.INTERNAL_ERROR.value

ERROR_KINDS: Final = tuple(dict.fromkeys((*STATUS_KIND.values(), POLICY_DENIED)))
"""Every value of an error's ``error`` field."""


def answer_status(code: ReasonCode, stage: Stage = Stage.USE_CASE) -> int | None:
    """The HTTP status of a refusal with ``code`` at ``stage`` (``None``: the table does not
    name the code, a gap the tests forbid)."""
    if stage in STAGE_STATUS:
        return STAGE_STATUS[stage]
    return REASON_STATUS.get(code)


def answer_kind(status: int, stage: Stage = Stage.USE_CASE) -> str:
    """The ``error`` field of an answer with ``status`` at ``stage``."""
    return POLICY_DENIED if stage is Stage.POLICY_DECISION else STATUS_KIND.get(status, "Error")


def service_stage(exc: ServiceError) -> Stage:
    """The stage a service refusal comes from: its kind (``unauthorized``, ``denied``) or its
    list of violations (the grant's checks) says so; otherwise the use case."""
    if exc.kind == "unauthorized":
        return Stage.AUTHENTICATION
    if exc.kind == "denied":
        return Stage.POLICY_DECISION
    if exc.violations:
        return Stage.GRANT_CHECKS
    return Stage.USE_CASE


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
    """The answer to a service refusal: its status from :data:`REASON_STATUS` (or its stage's),
    ``Retry-After`` for a 503 or a spent budget (429)."""
    stage = service_stage(exc)
    status = answer_status(exc.code, stage)
    if status is None:  # not in the table: the kind's status (and a gap to fix)
        _log.warning("reason code %s has no HTTP status in REASON_STATUS", exc.code)
        status = KIND_STATUS[exc.kind][0]
    retry_after = RETRY_AFTER_S if status == 503 else exc.retry_after_s
    return ApiError(
        status,
        answer_kind(status, stage),
        exc.code,
        exc.message,
        violations=exc.violations,
        decision_id=exc.decision_id,
        # An outage of a dependency (chain, database), or a budget spent for now (429):
        # nothing was done, retry after this many seconds.
        headers=None if retry_after is None else {"Retry-After": str(retry_after)},
    )


def refusal(
    code: ReasonCode, msg: str, *, reason: str | None = None, stage: Stage = Stage.USE_CASE
) -> ApiError:
    """An API-layer refusal answered with the status the table gives ``code`` at ``stage``."""
    status = answer_status(code, stage)
    if status is None:
        raise KeyError(f"{code} has no HTTP status in REASON_STATUS")
    return ApiError(status, answer_kind(status, stage), code, msg, reason=reason)


def invalid(msg: str, *, reason: str | None = None) -> ApiError:
    """400 ``INPUT_MALFORMED``; ``reason`` names the field when there is one."""
    return refusal(ReasonCode.INPUT_MALFORMED, msg, reason=reason)


def unauthorized(code: ReasonCode, msg: str) -> ApiError:
    """401: the request's signature or credential (``code`` says which check failed)."""
    return refusal(code, msg, reason="request signature", stage=Stage.AUTHENTICATION)


def too_large(limit: int) -> ApiError:
    return refusal(
        ReasonCode.PAYLOAD_TOO_LARGE,
        f"the request body is larger than {limit} bytes",
        reason="body size",
    )


def method_unknown(name: str) -> ApiError:
    return refusal(ReasonCode.METHOD_UNKNOWN, f"no such method: {name[:64]}", reason="path")


def internal_error() -> ApiError:
    return refusal(
        ReasonCode.INTERNAL_ERROR,
        "internal error; the request id identifies it in the server's log",
        reason="internal error",
    )
