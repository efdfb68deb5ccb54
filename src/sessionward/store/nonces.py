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
from .sql import Sql

GRANT_SCOPE: Final = "grant"
REQUEST_SCOPE: Final = "request"

# A remembered nonce that has expired may be used again (its row is taken over in place);
# one that has not, or that never expires, may not. Conflicts are answers, never exceptions.
_USE_ONCE: Final = Sql(
    """
    INSERT INTO nonces (scope, "key", nonce, expires_at)
    VALUES (:scope, :key, :nonce, :expires_at)
    ON CONFLICT (scope, "key", nonce) DO UPDATE SET expires_at = excluded.expires_at
    WHERE nonces.expires_at IS NOT NULL AND nonces.expires_at <= :now
    """
)
_PRUNE: Final = text("DELETE FROM nonces WHERE expires_at IS NOT NULL AND expires_at < :now")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


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
        if isinstance(nonce, int) and nonce < 0:
            raise ValueError("nonces are non-negative")
        params = {
            "scope": scope,
            "key": key,
            "nonce": str(nonce),
            "expires_at": expires_at,
            "now": -1 if now is None else now,
        }
        # One upsert, which never fails on a nonce used before: no savepoint of its own.
        with self._db.writing(savepoint=False) as conn:
            return bool(_USE_ONCE.run(conn, params).rowcount == 1)

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
