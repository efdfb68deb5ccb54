"""Errors the SDK raises: the API's refusals, and grants the SDK refuses to sign."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SessionWardApiError(Exception):
    """An error answer of the API, with every field of its error document.

    ``status`` is the HTTP status; ``code`` the stable reason code (``NONCE_REPLAYED``,
    ``TARGET_NOT_ALLOWED``, ...); ``reason`` the rule that fired or a short reason; ``msg`` the
    human message; ``request_id`` the server's id for the request; for policy decisions
    ``decision_id``, ``reasons`` (every code) and ``violations`` (``{code, rule, detail,
    call?}``). ``kind`` is the short error kind (``PolicyDenied``, ``Unauthorized``, ...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        msg: str,
        *,
        kind: str = "",
        reason: str = "",
        request_id: str | None = None,
        decision_id: str | None = None,
        reasons: list[str] | None = None,
        violations: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.kind = kind
        self.reason = reason
        self.request_id = request_id
        self.decision_id = decision_id
        self.reasons = reasons or []
        self.violations = violations or []

    @classmethod
    def from_response(cls, status: int, document: object, text: str) -> SessionWardApiError:
        """From an error answer; tolerates a body that is not the API's shape (a proxy's)."""
        if not isinstance(document, Mapping) or not isinstance(document.get("code"), str):
            return cls(status, "HTTP_ERROR", text[:200] or f"HTTP {status}")
        reasons = document.get("reasons")
        violations = document.get("violations")
        return cls(
            status,
            document["code"],
            str(document.get("msg", "")),
            kind=str(document.get("error", "")),
            reason=str(document.get("reason", "")),
            request_id=_text_or_none(document.get("requestId")),
            decision_id=_text_or_none(document.get("decisionId")),
            reasons=[str(r) for r in reasons] if isinstance(reasons, list) else None,
            violations=[v for v in violations if isinstance(v, dict)]
            if isinstance(violations, list)
            else None,
        )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class GrantVerificationError(ValueError):
    """The grant returned by the service is not what the SDK computes or expects: the SDK
    refuses to sign it. Never ignore this error."""
