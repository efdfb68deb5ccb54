"""Reads a request is known to make, run ahead in one round trip (PostgreSQL; see
:func:`sessionward.store.sql.prefetch`).

A decision (Prepare, Execute) reads the session, its wallet (twice for a Prepare), the
freezes and the session's counters, one after another, each answer needed by the code that
asks for the next: on PostgreSQL, four or five round trips. Their keys are known once the
request names its session and wallet, so the unit of work runs them together first and the
same reads, made afterwards by the service as before, are answered from there. An Execute
names only its transaction: its reads go with the transaction's, each finding the session and
wallet through the transaction's row (``session_id`` and ``wallet_id`` never change), and are
then filed under the plain reads by id the service makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import Connection

from .budget import USAGE_COUNTERS
from .database import Database, owed_statements
from .freezes import ACTIVE_FREEZES
from .schema import sessions, transactions, wallets
from .sessions import SESSION_BY_ID
from .sql import (
    Columns,
    Select,
    Sql,
    answer_as,
    file_reads,
    pipeline,
    prefetch,
    prefetched,
    read_ahead,
    send_reads,
)
from .transaction_records import TRANSACTION_BY_ID

_WALLET_BY_ID: Final = Select(wallets, "id = :wallet_id")
"""The read :meth:`sessionward.store.wallets.WalletRecords.get` makes (the same SQL, so the
same answer is found; were it ever to differ, the prefetched answer would simply go unused)."""


_OF_TXN: Final = "(SELECT {column} FROM transactions WHERE id = :txn_id)"
_SESSION_OF_TXN: Final = Sql(
    f"SELECT {Columns(sessions).sql} FROM sessions WHERE id = "
    + _OF_TXN.format(column="session_id")
)
_WALLET_OF_TXN: Final = Sql(
    f"SELECT {Columns(wallets).sql} FROM wallets WHERE id = " + _OF_TXN.format(column="wallet_id")
)
_COUNTERS_OF_TXN: Final = Sql(
    'SELECT bucket, "window", amount FROM usage WHERE session_id = '
    + _OF_TXN.format(column="session_id")
)
_TXN_COLUMNS: Final = Columns(transactions)


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
    ``wallet_id`` now, in one round trip, for the unit's next statements (no-op elsewhere, and
    when they are all prefetched already: read ahead with the request's nonce, say)."""
    reads = decision_reads(session_id, wallet_id)
    with db.reading() as conn:
        if not all(prefetched(conn, sql, params) for sql, params in reads):
            prefetch(conn, reads)


def read_decision_reads_ahead(db: Database, *, session_id: str, wallet_id: str) -> None:
    """The reads of :func:`prefetch_decision_reads`, sent with the unit's next write that
    carries reads ahead instead of now (:func:`sessionward.store.sql.read_ahead`)."""
    if db.owed_by_unit is None:  # outside a unit, or on SQLite: nothing to read ahead
        return
    reads = decision_reads(session_id, wallet_id)

    def send(conn: Connection) -> Callable[[], None]:
        sent = send_reads(conn, reads)

        def file() -> None:
            file_reads(conn, sent)

        return file

    read_ahead(db, send)


def prefetch_execute_reads(db: Database, *, txn_id: str) -> None:
    """Inside a unit of work on PostgreSQL, run the read of transaction ``txn_id`` and the
    reads of its decision (session, wallet, freezes, counters) now, in one round trip, for the
    unit's next statements (no-op elsewhere, when they were read ahead already, and for the
    decision reads when there is no such transaction)."""
    with db.reading() as conn:
        if owed_statements(conn) is None or prefetched(
            conn, TRANSACTION_BY_ID.sql, {"txn_id": txn_id}
        ):
            return
        with pipeline(conn):
            file = _send_execute_reads(conn, txn_id)
        file()


def read_execute_reads_ahead(db: Database, *, txn_id: str) -> None:
    """The reads of :func:`prefetch_execute_reads`, sent with the unit's next write that
    carries reads ahead instead of now (:func:`sessionward.store.sql.read_ahead`)."""
    read_ahead(db, lambda conn: _send_execute_reads(conn, txn_id))


def _send_execute_reads(conn: Connection, txn_id: str) -> Callable[[], None]:
    """Send the reads of an Execute of ``txn_id`` (inside a pipeline); what files them."""
    by_txn = {"txn_id": txn_id}
    sent = send_reads(
        conn,
        [
            (TRANSACTION_BY_ID.sql, by_txn),
            (_SESSION_OF_TXN, by_txn),
            (_WALLET_OF_TXN, by_txn),
            (ACTIVE_FREEZES.sql, {}),
            (_COUNTERS_OF_TXN, by_txn),
        ],
    )

    def file() -> None:
        answers = file_reads(conn, sent)
        if not answers[0]:
            return
        txn = _TXN_COLUMNS.mapping(answers[0][0])
        session_id, wallet_id = txn["session_id"], txn["wallet_id"]
        answer_as(conn, SESSION_BY_ID.sql, {"session_id": session_id}, answers[1])
        answer_as(conn, _WALLET_BY_ID.sql, {"wallet_id": wallet_id}, answers[2])
        answer_as(conn, USAGE_COUNTERS, {"session_id": session_id}, answers[4])

    return file
