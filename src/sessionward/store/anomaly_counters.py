"""Windowed event counters for the anomaly rules, kept incrementally (issue 16).

A rule such as "5 denials within 60 s on a session" used to count the matching decision events
on every refusal: the cost of a refusal grew with the refusals before it. Here each counted
subject (a key such as ``deny:<session id>``) has one row holding its events of the last window
as ``second:count`` pairs, newest first. Counting one more event reads and rewrites that row in
one write transaction: its cost is bounded by the window's length in seconds (one pair per
second in which events happened), never by the number of events.

The count is exact: :meth:`AnomalyCounters.hit` returns the number of events counted with
``at >= now - window_s`` (what counting the events themselves returned), whatever the order in
which nodes with slightly different clocks report them. Concurrent hits of one key are
serialised by the row (SQLite: the write lock; PostgreSQL: the upsert locks the row until commit).
"""

from __future__ import annotations

from typing import Final

from .database import Database
from .sql import Sql

__all__ = ["AnomalyCounters", "count_recent"]

_TAKE: Final = Sql(
    "INSERT INTO anomaly_counters (key, recent, updated_at) VALUES (:key, '', :at) "
    "ON CONFLICT (key) DO UPDATE SET updated_at = anomaly_counters.updated_at "
    "RETURNING recent"
)
"""The key's row, created empty if new, locked until the transaction ends."""
_SAVE: Final = Sql(
    "UPDATE anomaly_counters SET recent = :recent, updated_at = :at WHERE key = :key"
)


def count_recent(recent: str, *, at: int, window_s: int) -> tuple[str, int]:
    """Add one event at ``at`` to ``recent`` (``second:count`` pairs, newest first), drop the
    seconds before ``at - window_s``; returns the new pairs and the events they hold."""
    since = at - window_s
    counts: dict[int, int] = {at: 1}
    for pair in recent.split(",") if recent else ():
        second_text, _, count_text = pair.partition(":")
        second = int(second_text)
        if second < since:
            break  # newest first: every later pair is older still
        counts[second] = counts.get(second, 0) + int(count_text)
    ordered = sorted(counts.items(), reverse=True)
    return ",".join(f"{s}:{c}" for s, c in ordered), sum(c for _, c in ordered)


class AnomalyCounters:
    """Count events per key within a sliding window of whole seconds."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def hit(self, key: str, *, at: int, window_s: int) -> int:
        """Count one event of ``key`` at ``at`` (unix seconds) and return how many events of
        ``key`` were counted at or after ``at - window_s``, this one included."""
        if window_s < 0:
            raise ValueError("a window is non-negative")
        with self._db.writing() as conn:
            recent = _TAKE.run(conn, {"key": key, "at": at}).fetchone()[0]
            updated, count = count_recent(recent, at=at, window_s=window_s)
            _SAVE.run(conn, {"key": key, "recent": updated, "at": at})
        return count
