"""``Idempotency-Key`` on mutations: a retry gets the first answer instead of a second execution.

Keys are scoped to the authenticated signer (a credential, or ``self:<key>``). The request is
identified by the API method and the SHA-256 of its raw body:

- same key, same request, answered: the stored status and body, verbatim (header
  ``Idempotent-Replayed: true``), and nothing is executed;
- same key, another method or body: 409 ``IDEMPOTENCY_KEY_REUSED``;
- same key while the first request is still being answered: 409 ``IDEMPOTENCY_KEY_REUSED``.

Only 2xx and 4xx answers are stored; after a 5xx (or an exception) the claim is released so that
a retry executes. Authentication happens before the claim, so a forged or replayed request can
neither use nor poison a key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Final

from sessionward.domain.reasons import ReasonCode
from sessionward.store.idempotency import IdempotencyKeys

from .errors import ApiError, invalid

Outcome = tuple[int, bytes, dict[str, str]]

_KEY: Final = re.compile(r"[!-~]{1,128}")
REPLAYED_HEADER: Final = "Idempotent-Replayed"


class Idempotency:
    """Runs an answer at most once per ``(subject, key)``."""

    def __init__(self, keys: IdempotencyKeys, now: Callable[[], int]) -> None:
        self._keys = keys
        self._now = now

    def run(
        self,
        *,
        subject: str,
        key: str,
        method: str,
        body: bytes,
        answer: Callable[[], Outcome],
    ) -> Outcome:
        if _KEY.fullmatch(key) is None:
            raise invalid(
                "Idempotency-Key: 1-128 printable ASCII characters", reason="Idempotency-Key"
            )
        claim = self._keys.claim(
            credential_id=subject,
            key=key,
            method=method,
            request_hash=hashlib.sha256(body).hexdigest(),
            now=self._now(),
        )
        if claim.state == "replay" and claim.response is not None:
            stored = claim.response
            return stored.status_code, stored.body.encode("utf-8"), {REPLAYED_HEADER: "true"}
        if claim.state != "claimed":
            why = (
                "the Idempotency-Key was used for another request"
                if claim.state == "mismatch"
                else "a request with this Idempotency-Key is still being answered"
            )
            raise ApiError(
                409,
                "Conflict",
                ReasonCode.IDEMPOTENCY_KEY_REUSED,
                why,
                reason="Idempotency-Key",
            )
        try:
            outcome = answer()
        except BaseException:
            self._keys.release(credential_id=subject, key=key)
            raise
        status, body_out, _headers = outcome
        if status < 500:
            self._keys.complete(
                credential_id=subject, key=key, status_code=status, body=body_out.decode("utf-8")
            )
        else:
            self._keys.release(credential_id=subject, key=key)
        return outcome
