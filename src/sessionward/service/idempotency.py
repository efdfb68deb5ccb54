"""Idempotent requests: a mutation sent with a key executes at most once, and every retry gets
its first answer back instead of a second execution.

A request is identified by who sent it (``subject``: a credential, or ``self:<key>``), its key,
the method and the SHA-256 of its raw body. :meth:`IdempotentRequests.run`:

- first request under the key: claims the key, runs ``answer`` and keeps its answer;
- same key, same request, answered: returns the kept :class:`StoredAnswer` verbatim and runs
  nothing;
- same key, another method or body, or while the first request is still being answered: a
  ``conflict`` :class:`ServiceError` with the code ``IDEMPOTENCY_KEY_REUSED``.

Only answers with a status below 500 are kept: after a server failure (a status of 500 or more,
or an exception) the claim is released so that a retry executes.

Everything runs in the calling thread over :class:`IdempotencyKeys`, whose writes join the
caller's unit of work (:meth:`sessionward.store.database.Database.unit`) when one is open: the
claim commits, or rolls back, together with what the answer wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sessionward.reasons import ReasonCode
from sessionward.store.idempotency import Claim, ClaimRequest, IdempotencyKeys
from sessionward.store.nonces import SqlReplayStore

from .errors import conflict

T = TypeVar("T")

KEY_USED_FOR_ANOTHER_REQUEST = "the Idempotency-Key was used for another request"
KEY_IN_FLIGHT = "a request with this Idempotency-Key is still being answered"


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer kept for a key: its status and its body (UTF-8 JSON)."""

    status: int
    body: bytes

    @property
    def is_kept(self) -> bool:
        """Whether retries get this answer back: not a failure of the server (status < 500)."""
        return self.status < 500


class IdempotentRequests:
    """Runs an answer at most once per ``(subject, key)`` (see the module docstring)."""

    def __init__(
        self, keys: IdempotencyKeys, now: Callable[[], int], *, nonces: SqlReplayStore
    ) -> None:
        self._keys = keys
        self._now = now
        self._nonces = nonces

    def remember_nonce_and_claim(
        self,
        *,
        subject: str,
        nonce: int,
        expires_at_ms: int,
        key: str,
        method: str,
        body: bytes,
    ) -> tuple[bool, bool]:
        """Record the request nonce of ``subject`` (as its replay store does) and, only if
        it was not seen before, claim ``key`` for this request as :meth:`run` would, in one
        statement on PostgreSQL: whether the nonce was fresh, and whether the key was claimed
        (then pass ``claimed=True`` to :meth:`run`). A replayed request claims nothing. For
        authentication, once the request's signature has verified and it has been admitted
        (:mod:`sessionward.api.auth`): one round trip less per request with a key."""
        claim = ClaimRequest(
            key=key, method=method, request_hash=hashlib.sha256(body).hexdigest(), now=self._now()
        )
        return self._nonces.remember_and_claim(subject, nonce, expires_at_ms, claim)

    def run(
        self,
        *,
        subject: str,
        key: str,
        method: str,
        body: bytes,
        answer: Callable[[], T],
        stored: Callable[[T], StoredAnswer],
        claimed: bool = False,
    ) -> T | StoredAnswer:
        """The kept answer of this request if it was answered; otherwise ``answer()``'s result,
        whose ``stored(...)`` projection is kept for retries (or the claim released, if it is a
        server failure). Raises a ``conflict`` :class:`ServiceError` (``IDEMPOTENCY_KEY_REUSED``)
        if the key belongs to another request or is held by one still being answered; an
        exception of ``answer`` releases the claim and propagates. ``claimed``: this request
        claimed the key already (:meth:`remember_nonce_and_claim`, in this unit of work)."""
        claim = (
            Claim("claimed")
            if claimed
            else self._keys.claim(
                credential_id=subject,
                key=key,
                method=method,
                request_hash=hashlib.sha256(body).hexdigest(),
                now=self._now(),
            )
        )
        if claim.state == "replay" and claim.response is not None:
            kept = claim.response
            return StoredAnswer(kept.status_code, kept.body.encode("utf-8"))
        if claim.state != "claimed":
            why = KEY_USED_FOR_ANOTHER_REQUEST if claim.state == "mismatch" else KEY_IN_FLIGHT
            raise conflict(ReasonCode.IDEMPOTENCY_KEY_REUSED, why)
        try:
            outcome = answer()
        except BaseException:
            # Whatever went wrong (even an interrupt), the request was not answered: let a
            # retry execute instead of answering it "in flight" until the claim goes stale.
            self._keys.release(credential_id=subject, key=key)
            raise
        answered = stored(outcome)
        if answered.is_kept:
            self._keys.complete(
                credential_id=subject,
                key=key,
                status_code=answered.status,
                body=answered.body.decode("utf-8"),
            )
        else:
            self._keys.release(credential_id=subject, key=key)
        return outcome
