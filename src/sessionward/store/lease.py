"""Fenced leases: which node may act for a shared role (the relayer of a chain), and since when.

A lease is one row of the ``leases`` table (migration ``0005``): ``name``, ``holder``,
``epoch`` and ``expires_at_ms``. Times are the **database's** clock (unix milliseconds), never a
node's, so two nodes whose clocks disagree still agree on whether a lease has expired.

- :meth:`Leases.acquire` is one conditional ``UPDATE``: the holder renews its own live lease
  (same epoch), or anyone takes an expired one (``epoch + 1``). A live lease of another holder
  is refused. The epoch only ever grows, and a holder learns it has a new term (and must
  re-read everything a previous holder may have moved) when the epoch it gets back changed.
- A :class:`LeaseFence` is what a holder carries: ``(name, holder, epoch)``. Every write the
  role makes is conditioned on :data:`FENCE_CONDITION` **in the same statement** (see
  :class:`sessionward.store.relay_jobs.SqlRelayJobStore`), so a node that lost its lease (its
  connection dropped, it stalled past the expiry, another node took over and bumped the epoch)
  cannot write any more, whatever it believes. On PostgreSQL the condition reads the lease row
  ``FOR SHARE``: a takeover waits for a fenced write in flight, and a fenced write that starts
  after a takeover sees the new epoch.

Without fencing, a node that lost an advisory lock with its connection kept relaying for about
50 s next to the new leader (issue 13); with it, the old node's next claim is refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from .database import Database
from .schema import leases
from .sql import Sql

__all__ = ["FENCE_CONDITION", "LeaseFence", "LeaseRecord", "Leases", "leases"]

# The database's clock in unix milliseconds, per dialect.
_NOW_MS: Final = {
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
}
_LOCK: Final = {"sqlite": "", "postgresql": " FOR SHARE"}

_FENCE: Final = (
    "EXISTS (SELECT 1 FROM leases WHERE name = :lease_name AND holder = :lease_holder"
    " AND epoch = :lease_epoch AND expires_at_ms > {now}{lock})"
)
FENCE_CONDITION: Final = {d: _FENCE.format(now=_NOW_MS[d], lock=_LOCK[d]) for d in _NOW_MS}
"""Per dialect: a SQL condition true iff the fence's lease is still held by its holder at its
epoch and unexpired (parameters ``lease_name``, ``lease_holder``, ``lease_epoch``)."""


def _per_dialect(sql: str) -> dict[str, Sql]:
    return {d: Sql(sql.format(now=_NOW_MS[d])) for d in _NOW_MS}


_CREATE: Final = Sql(
    "INSERT INTO leases (name, holder, epoch, expires_at_ms) VALUES (:name, '', 0, 0)"
    " ON CONFLICT (name) DO NOTHING"
)
_ACQUIRE: Final = _per_dialect(
    """
    UPDATE leases
    SET epoch = CASE WHEN holder = :holder AND expires_at_ms > {now} THEN epoch ELSE epoch + 1 END,
        holder = :holder,
        expires_at_ms = {now} + :ttl_ms
    WHERE name = :name AND ((holder = :holder AND expires_at_ms > {now}) OR expires_at_ms <= {now})
    RETURNING epoch
    """
)
_RELEASE: Final = Sql(
    "UPDATE leases SET expires_at_ms = 0 WHERE name = :name AND holder = :holder AND epoch = :epoch"
)
_READ: Final = _per_dialect(
    "SELECT holder, epoch, expires_at_ms, {now} FROM leases WHERE name = :name"
)


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A lease as stored, with the database's clock when it was read."""

    name: str
    holder: str
    epoch: int
    expires_at_ms: int
    read_at_ms: int

    @property
    def live(self) -> bool:
        return self.expires_at_ms > self.read_at_ms


class LeaseFence:
    """The lease a holder carries: its ``name``, its ``holder`` id and the ``epoch`` of its
    current term (None while it holds no term: every fenced write is then refused outright).
    Thread-safe; :meth:`parameters` is what a fenced statement binds."""

    def __init__(self, name: str, holder: str) -> None:
        if not name or not holder:
            raise ValueError("a lease needs a name and a holder")
        self.name: Final = name
        self.holder: Final = holder
        self._epoch: int | None = None
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int | None:
        with self._lock:
            return self._epoch

    def hold(self, epoch: int | None) -> None:
        with self._lock:
            self._epoch = epoch

    def parameters(self) -> dict[str, object] | None:
        """The fence's statement parameters, or None without a term."""
        with self._lock:
            if self._epoch is None:
                return None
            return {
                "lease_name": self.name,
                "lease_holder": self.holder,
                "lease_epoch": self._epoch,
            }


class Leases:
    """Acquire, renew, release and read leases."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, fence: LeaseFence, *, ttl_ms: int) -> int | None:
        """Renew ``fence``'s lease if its holder holds it, or take it if it has expired; the
        term's epoch (the same on a renewal, one more on a takeover), or None if another
        holder's lease is live. ``fence`` is updated to the outcome either way, so its writes
        are refused at once when the lease is lost."""
        if ttl_ms <= 0:
            raise ValueError("a lease lasts a positive time")
        try:
            with self._db.writing() as conn:
                _CREATE.run(conn, {"name": fence.name})
                row = (
                    _ACQUIRE[conn.dialect.name]
                    .run(conn, {"name": fence.name, "holder": fence.holder, "ttl_ms": ttl_ms})
                    .fetchone()
                )
        except BaseException:
            fence.hold(None)  # unknown whether it was renewed: assume not
            raise
        epoch = None if row is None else int(row[0])
        fence.hold(epoch)
        return epoch

    def release(self, fence: LeaseFence) -> None:
        """Give the lease up (it expires at once, so another node may take it now)."""
        epoch = fence.epoch
        fence.hold(None)
        if epoch is None:
            return
        with self._db.writing() as conn:
            _RELEASE.run(conn, {"name": fence.name, "holder": fence.holder, "epoch": epoch})

    def get(self, name: str) -> LeaseRecord | None:
        with self._db.reading() as conn:
            row = _READ[conn.dialect.name].run(conn, {"name": name}).fetchone()
        if row is None:
            return None
        return LeaseRecord(name, row[0], int(row[1]), int(row[2]), int(row[3]))
