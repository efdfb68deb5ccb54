"""Reads a request is known to make, run ahead in one round trip (PostgreSQL; see
:func:`sessionward.store.sql.prefetch`).

A decision (Prepare, Execute) reads the session, its wallet (twice for a Prepare), the
freezes and the session's counters, one after another, each answer needed by the code that
asks for the next: on PostgreSQL, four or five round trips. Their keys are known once the
request names its session and wallet, so the unit of work runs them together first and the
same reads, made afterwards by the service as before, are answered from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .budget import USAGE_COUNTERS
from .database import Database
from .freezes import ACTIVE_FREEZES
from .schema import wallets
from .sessions import SESSION_BY_ID
from .sql import Select, Sql, prefetch

_WALLET_BY_ID: Final = Select(wallets, "id = :wallet_id")
"""The read :meth:`sessionward.store.wallets.WalletRecords.get` makes (the same SQL, so the
same answer is found; were it ever to differ, the prefetched answer would simply go unused)."""


def decision_reads(session_id: str, wallet_id: str) -> list[tuple[Sql, Mapping[str, Any]]]:
    """The reads of a decision on ``session_id`` of ``wallet_id``, as :func:`prefetch` takes
    them."""
    return [
        (SESSION_BY_ID.sql, {"session_id": session_id}),
        (_WALLET_BY_ID.sql, {"wallet_id": wallet_id}),
        (ACTIVE_FREEZES.sql, {}),
        (USAGE_COUNTERS, {"session_id": session_id}),
    ]


def prefetch_decision_reads(db: Database, *, session_id: str, wallet_id: str) -> None:
    """Inside a unit of work on PostgreSQL, run the reads of a decision on ``session_id`` of
    ``wallet_id`` now, in one round trip, for the unit's next statements (no-op elsewhere)."""
    with db.reading() as conn:
        prefetch(conn, decision_reads(session_id, wallet_id))
