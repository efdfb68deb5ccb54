"""``Idempotency-Key`` on mutations, in HTTP terms: a retry gets the first answer instead of a
second execution.

The at-most-once logic is the service's (:mod:`sessionward.service.idempotency`): keys are
scoped to the authenticated signer (a credential, or ``self:<key>``) and the request is
identified by the API method and the SHA-256 of its raw body. Here only the translation:

- the header's format: 1-128 printable ASCII characters, else 400 ``INPUT_MALFORMED`` (reason
  ``Idempotency-Key``), and nothing is claimed;
- same key, same request, answered: the stored status and body, verbatim, with the header
  ``Idempotent-Replayed: true``, and nothing is executed;
- same key, another method or body, or while the first request is still being answered: 409
  ``IDEMPOTENCY_KEY_REUSED`` (reason ``Idempotency-Key``).

Only 2xx and 4xx answers are stored; after a 5xx (or an exception) the claim is released so that
a retry executes. Authentication happens before the claim, so a forged or replayed request can
neither use nor poison a key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.idempotency import IdempotentRequests, StoredAnswer

from .answers import Outcome
from .errors import KIND_STATUS, ApiError, invalid

_KEY: Final = re.compile(r"[!-~]{1,128}")
REPLAYED_HEADER: Final = "Idempotent-Replayed"
REASON: Final = "Idempotency-Key"


def well_formed(key: str) -> bool:
    """Whether ``key`` is a well-formed ``Idempotency-Key`` (1-128 printable ASCII)."""
    return _KEY.fullmatch(key) is not None


def _stored(outcome: Outcome) -> StoredAnswer:
    """What a retry gets back of an outcome: its status and body (never its headers)."""
    status, body, _headers = outcome
    return StoredAnswer(status, body)


class Idempotency:
    """Runs an answer at most once per ``(subject, Idempotency-Key)``."""

    def __init__(self, requests: IdempotentRequests) -> None:
        self._requests = requests

    def run(
        self,
        *,
        subject: str,
        key: str,
        method: str,
        body: bytes,
        answer: Callable[[], Outcome],
        claimed: bool = False,
    ) -> Outcome:
        """The outcome of ``answer`` or the stored one (see the module docstring); raises
        :class:`ApiError` for a malformed or reused key. ``claimed``: the key was claimed
        with the request's nonce (:class:`sessionward.api.auth.KeyToClaim`)."""
        if not well_formed(key):
            raise invalid("Idempotency-Key: 1-128 printable ASCII characters", reason=REASON)
        try:
            result = self._requests.run(
                subject=subject,
                key=key,
                method=method,
                body=body,
                answer=answer,
                stored=_stored,
                claimed=claimed,
            )
        except ServiceError as exc:
            # Only the key's own refusal is translated here; ``answer`` turns every refusal into
            # an outcome, so anything else is a fault and propagates as before (500).
            if exc.code is not ReasonCode.IDEMPOTENCY_KEY_REUSED:
                raise
            status, kind = KIND_STATUS[exc.kind]
            raise ApiError(status, kind, exc.code, exc.message, reason=REASON) from None
        if isinstance(result, StoredAnswer):
            return result.status, result.body, {REPLAYED_HEADER: "true"}
        return result
