"""Single-use nonces: the owner's grant nonces and the request replay store.

A nonce is used at most once per ``(scope, key)`` while it is remembered:
:meth:`Nonces.use_once` inserts it and the primary key ``(scope, key, nonce)`` refuses a second
insert — across every node sharing the database, with no read-then-write race. Scopes in use:

- ``"grant"``: key = the account address, nonce = the grant nonce, kept forever
  (``expires_at=None``), so a grant signature can never be enabled twice.
- ``"request"``: key = the credential id, nonce = the request nonce, kept until ``expires_at``
  (longer than the request timestamp window, so a replay inside the window always meets it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import text

from .database import Database
from .idempotency import CLAIM, CLAIM_CONFLICT, CLAIM_INTO, ClaimRequest
from .sql import Sql, behind_it_the_reads_ahead

GRANT_SCOPE: Final = "grant"
REQUEST_SCOPE: Final = "request"

# A remembered nonce that has expired may be used again (its row is taken over in place);
# one that has not, or that never expires, may not. Conflicts are answers, never exceptions.
_UPSERT: Final = """
    INSERT INTO nonces (scope, "key", nonce, expires_at)
    VALUES (:scope, :key, :nonce, :expires_at)
    ON CONFLICT (scope, "key", nonce) DO UPDATE SET expires_at = excluded.expires_at
    WHERE nonces.expires_at IS NOT NULL AND nonces.expires_at <= :now
"""
_USE_ONCE: Final = Sql(_UPSERT)
# The same upsert, and an idempotency claim made only if it recorded the nonce (PostgreSQL: a
# data-modifying WITH, whose second insert runs only on the first one's RETURNING rows).
_USE_ONCE_AND_CLAIM: Final = Sql(
    f"""
    WITH used AS ({_UPSERT} RETURNING 1),
    claimed AS (
        {CLAIM_INTO}
        SELECT :credential_id, :claim_key, :method, :request_hash, :claimed_at
        WHERE EXISTS (SELECT 1 FROM used)
        {CLAIM_CONFLICT}
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM used), (SELECT count(*) FROM claimed)
    """
)
_PRUNE: Final = text("DELETE FROM nonces WHERE expires_at IS NOT NULL AND expires_at < :now")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _use_params(
    scope: str, key: str, nonce: int | str, expires_at: int | None, now: int
) -> dict[str, object]:
    """The upsert's parameters (``ValueError`` for a negative nonce)."""
    if isinstance(nonce, int) and nonce < 0:
        raise ValueError("nonces are non-negative")
    return {"scope": scope, "key": key, "nonce": str(nonce), "expires_at": expires_at, "now": now}


class Nonces:
    """The single-use nonce store (times in unix seconds)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def use_once(
        self,
        scope: str,
        key: str,
        nonce: int | str,
        expires_at: int | None,
        *,
        now: int | None = None,
    ) -> bool:
        """Record ``nonce`` as used; True the first time, False while it is remembered.

        ``expires_at`` None keeps it forever. With ``now``, a nonce remembered until a time
        ``<= now`` counts as forgotten (as if pruned).
        """
        params = _use_params(scope, key, nonce, expires_at, -1 if now is None else now)
        # One upsert, which never fails on a nonce used before: no savepoint of its own. The
        # unit's reads ahead, if any, go behind it in its round trip.
        with self._db.writing(savepoint=False) as conn:
            with behind_it_the_reads_ahead(conn):
                used = _USE_ONCE.run(conn, params)
            return bool(used.rowcount == 1)

    def use_once_and_claim(
        self,
        scope: str,
        key: str,
        nonce: int,
        expires_at: int,
        *,
        now: int,
        claim: ClaimRequest,
    ) -> tuple[bool, bool]:
        """:meth:`use_once`, and only if it recorded the nonce, the first step of
        :meth:`sessionward.store.idempotency.IdempotencyKeys.claim` for ``claim`` under
        ``key`` (the credential): whether the nonce was recorded, and whether the key was
        claimed by this request (False when it was taken already, or the nonce was not
        recorded). A nonce seen before claims nothing. One statement on PostgreSQL (one round
        trip); on SQLite two, in one transaction."""
        params = {
            **_use_params(scope, key, nonce, expires_at, now),
            "credential_id": key,
            "claim_key": claim.key,
            "method": claim.method,
            "request_hash": claim.request_hash,
            "claimed_at": claim.now,
        }
        # Inserts that never fail on a taken nonce or key: no savepoint of their own.
        with self._db.writing(savepoint=False) as conn:
            if self._db.is_postgresql:
                with behind_it_the_reads_ahead(conn):  # in the same round trip
                    answer = _USE_ONCE_AND_CLAIM.run(conn, params)
                used, claimed = answer.fetchone()
                return used == 1, claimed == 1
            if _USE_ONCE.run(conn, params).rowcount != 1:
                return False, False
            claim_params = {**params, "key": claim.key, "credential_id": key, "now": claim.now}
            return True, CLAIM.run(conn, claim_params).rowcount == 1

    def prune(self, now: int) -> int:
        """Forget nonces that expired before ``now``; the number forgotten."""
        with self._db.writing() as conn:
            return conn.execute(_PRUNE, {"now": now}).rowcount


class SqlReplayStore:
    """The request replay store over :class:`Nonces`, shared by every node (structurally a
    ``sessionward.crypto.request_signature.ReplayStore``).

    Times are milliseconds at this interface and whole seconds in the table: ``expires_at_ms`` is
    rounded *up* and the clock *down*, so a nonce is never forgotten early.
    """

    def __init__(self, nonces: Nonces, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._nonces = nonces
        self._clock_ms = clock_ms

    def remember(self, credential_id: str, nonce: int, expires_at_ms: int) -> bool:
        """True iff ``nonce`` was not remembered (unexpired) for ``credential_id``; it now is,
        until ``expires_at_ms``. Of concurrent calls with the same pair, exactly one gets True."""
        expires_at = -(-expires_at_ms // 1000)  # ceiling division, exact for any int
        now = self._clock_ms() // 1000
        return self._nonces.use_once(REQUEST_SCOPE, credential_id, nonce, expires_at, now=now)

    def remember_and_claim(
        self, credential_id: str, nonce: int, expires_at_ms: int, claim: ClaimRequest
    ) -> tuple[bool, bool]:
        """:meth:`remember`, and, only if the nonce was not remembered, ``claim`` of an
        Idempotency-Key for ``credential_id`` (:meth:`Nonces.use_once_and_claim`): whether
        the nonce was fresh, and whether this request claimed the key."""
        expires_at = -(-expires_at_ms // 1000)
        now = self._clock_ms() // 1000
        return self._nonces.use_once_and_claim(
            REQUEST_SCOPE, credential_id, nonce, expires_at, now=now, claim=claim
        )
