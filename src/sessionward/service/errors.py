"""The service's typed refusals. The HTTP layer maps :attr:`ServiceError.kind` to a status."""

from __future__ import annotations

from typing import Literal

from sessionward.domain.decision import Violation
from sessionward.reasons import ReasonCode, SessionWardError

ErrorKind = Literal[
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "denied",
    "unavailable",
    "exhausted",
]
"""``unavailable``: a dependency (the chain node, the database) is out; nothing was done and
the same request may succeed later (HTTP 503). ``exhausted``: the caller's budget of this
use case is spent for now (HTTP 429); nothing was done; ``retry_after_s`` says when to retry."""


class ServiceError(SessionWardError):
    """A refusal of a use case: ``kind`` says which family (for the transport), ``code`` why."""

    def __init__(
        self,
        kind: ErrorKind,
        code: ReasonCode,
        message: str,
        *,
        violations: tuple[Violation, ...] = (),
        decision_id: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(code, message)
        self.kind: ErrorKind = kind
        self.violations = violations
        self.decision_id = decision_id
        self.retry_after_s = retry_after_s


def invalid(code: ReasonCode, message: str) -> ServiceError:
    return ServiceError("invalid", code, message)


def forbidden(message: str, code: ReasonCode = ReasonCode.ROLE_FORBIDDEN) -> ServiceError:
    return ServiceError("forbidden", code, message)


def not_found(what: str, code: ReasonCode) -> ServiceError:
    return ServiceError("not_found", code, f"{what} not found")


def conflict(code: ReasonCode, message: str) -> ServiceError:
    return ServiceError("conflict", code, message)


def unavailable(code: ReasonCode, message: str) -> ServiceError:
    """A dependency outage: nothing was written; retrying later may succeed (HTTP 503)."""
    return ServiceError("unavailable", code, message)


def denied(
    violations: tuple[Violation, ...], decision_id: str | None, message: str
) -> ServiceError:
    return ServiceError(
        "denied", violations[0].code, message, violations=violations, decision_id=decision_id
    )
