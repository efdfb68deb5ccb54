"""Helpers of the simulation tests: run a simulation quietly into a fresh data directory on
SQLite, and read back what the store recorded."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from sessionward.service.config import Settings
from sessionward.simulate import SimulationSummary, run_simulation
from sessionward.store import Store, open_store
from sessionward.store.schema import sessions, transactions

START = 1_767_225_600
"""2026-01-01T00:00:00Z: runs that must be compared start at the same simulated instant."""


@dataclass(frozen=True)
class Run:
    summary: SimulationSummary
    data_dir: Path
    output: str


@contextmanager
def sqlite_in_data_dir() -> Iterator[None]:
    """Without ``$SESSIONWARD_DATABASE_URL`` (a CI run on PostgreSQL would share one database
    between the runs that must be independent), restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SESSIONWARD_DATABASE_URL", raising=False)
        yield


def simulate(data_dir: Path, *, days: int, seed: int, progress: bool = False) -> Run:
    """One simulation into ``data_dir`` starting at :data:`START`, its printout captured."""
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=progress)
    with sqlite_in_data_dir():
        summary = run_simulation(
            Settings(data_dir=data_dir),
            days=days,
            seed=seed,
            progress=progress,
            console=console,
            start_at=START,
        )
    return Run(summary, data_dir, out.getvalue())


@dataclass(frozen=True)
class Recorded:
    """What the store holds after a run, in the summary's terms."""

    decisions: dict[str, int]
    denial_reasons: dict[str, int]
    request_kinds: dict[str, int]
    alerts: dict[str, int]
    sessions: int
    executed: int
    first_at: int
    last_at: int
    active_freezes: int


def recorded(data_dir: Path) -> Recorded:
    with sqlite_in_data_dir():
        store: Store = open_store(None, data_dir=data_dir)
    try:
        every_event = store.decisions.between(0, 2**62)
        # Policy decisions only: a relayed call's outcome is recorded as a "relay" event too.
        events = store.decisions.delegated_between(0, 2**62)
        reasons: Counter[str] = Counter()
        for event in events:
            if event.verdict == "deny":
                reasons.update(set(event.reasons))
        alerts = Counter(a.rule for a in store.alerts.between(0, 2**62))
        with store.db.reading() as conn:
            session_count = conn.execute(select(func.count()).select_from(sessions)).scalar_one()
            executed = conn.execute(
                select(func.count())
                .select_from(transactions)
                .where(transactions.c.status == "executed")
            ).scalar_one()
        return Recorded(
            decisions=dict(Counter(e.verdict for e in events)),
            denial_reasons=dict(sorted(reasons.items())),
            request_kinds=dict(Counter(e.request_kind for e in every_event)),
            alerts=dict(sorted(alerts.items())),
            sessions=int(session_count),
            executed=int(executed),
            first_at=min(e.at for e in events),
            last_at=max(e.at for e in events),
            active_freezes=len(store.freezes.active()),
        )
    finally:
        store.close()
