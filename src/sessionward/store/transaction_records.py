"""Transactions: a quote (``PrepareEthereum…``) and what became of it (``Execute``).

Life of a transaction::

    quoted ──Execute──▶ pending ──relayed and mined──▶ executed
       │                   └──────reverted or refused──▶ failed
       └── denied (refused at quote or at execution time; nothing reserved or signed)

A ``pending`` row carries everything the relayer needs (the session-call signature, its nonce
and deadline, the execution mode and calldata) and the reservation that pays for it; the row is
written in the same database transaction as the reservation and the signature (see
:mod:`sessionward.store.execution`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from sessionward.domain.wire_types import TransactionStatus

from .database import Database
from .errors import AlreadyExists, MarkingMissed
from .schema import transactions
from .sql import RowValues, Select, Sql, insert_of

# Built once: the hot statements of every Prepare and Execute (statement building is per-call
# CPU).
_BY_ID = Select(transactions, "id = :txn_id")
TRANSACTION_BY_ID: Final = _BY_ID
"""The read of one transaction by id (``txn_id``), for :mod:`.prefetches`."""
_INSERT = insert_of(transactions)
_UNSET: dict[str, None] = {
    "executed_at": None,
    "finished_at": None,
    "reservation_id": None,
    "call_nonce": None,
    "deadline": None,
    "mode": None,
    "execution": None,
    "signature": None,
    "tx_hash": None,
    "failure": None,
}
"""The columns a quote leaves empty (Execute and the relayed outcome fill them)."""

_QUOTE_LOCK: Final = Sql(
    "SELECT 1 FROM transactions WHERE id = :txn_id AND status = 'quoted'",
    postgresql=(
        "SELECT 1 FROM transactions WHERE id = :txn_id AND status = 'quoted' FOR NO KEY UPDATE"
    ),
)
"""A row iff the transaction is quoted, which it then stays until the caller's transaction
ends: on PostgreSQL the row is locked (a concurrent lock or update waits, and after it finds
the row as it then is); on SQLite the writer holds the whole database."""

_MARK = """
    UPDATE transactions
    SET status = 'pending', reservation_id = :reservation_id, call_nonce = :call_nonce,
        deadline = :deadline, mode = :mode, execution = :execution, signature = :signature,
        executed_at = :executed_at
    WHERE id = :txn_id AND status = 'quoted'
"""
_MARK_PENDING: Final = Sql(
    _MARK,
    postgresql=f"WITH marked AS ({_MARK} RETURNING 1) SELECT 1 / count(*) FROM marked",
    uint256=["call_nonce"],
)
"""On PostgreSQL a marking that marks nothing fails (division by zero), where nobody reads its
answer (it is owed): a signature is never committed without its transaction's marking."""


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    id: str
    session_id: str
    wallet_id: str
    credential_id: str
    status: TransactionStatus
    to_address: str
    value: int
    data: bytes
    fee_wei: int
    action_class: str
    intent: str
    """JSON list of the decoded inner calls (as quoted)."""
    reasons: str
    """Comma-separated reason codes of a denial (empty otherwise)."""
    created_at: int
    quote_expires_at: int
    executed_at: int | None
    finished_at: int | None
    reservation_id: str | None
    call_nonce: int | None
    deadline: int | None
    mode: bytes | None
    execution: bytes | None
    signature: bytes | None
    tx_hash: str | None
    failure: str | None


def _record(m: RowValues) -> TransactionRecord:
    return TransactionRecord(
        **{name: m[name] for name in TransactionRecord.__dataclass_fields__},
    )


class TransactionRecords:
    """Quotes and executions of session calls."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_quote(
        self,
        *,
        txn_id: str,
        session_id: str,
        wallet_id: str,
        credential_id: str,
        status: Literal["quoted", "denied"],
        to_address: str,
        value: int,
        data: bytes,
        fee_wei: int,
        action_class: str,
        intent: str,
        reasons: Sequence[str],
        now: int,
        quote_expires_at: int,
    ) -> TransactionRecord:
        """Record a quote (or a quote-time denial) and return its row as stored (built from the
        values written, not read back). Raises :class:`AlreadyExists` for a taken id; inside a
        unit of work on PostgreSQL the write is sent later (:meth:`~sessionward.store.sql.Sql.run_later`), so a taken
        id fails the unit when it is sent instead (the unit is undone whole)."""
        values: dict[str, object] = {
            "id": txn_id,
            "session_id": session_id,
            "wallet_id": wallet_id,
            "credential_id": credential_id,
            "status": status,
            "to_address": to_address.lower(),
            "value": value,
            "data": bytes(data),
            "fee_wei": fee_wei,
            "action_class": action_class,
            "intent": intent,
            "reasons": ",".join(reasons),
            "created_at": now,
            "quote_expires_at": quote_expires_at,
            **_UNSET,
        }
        # Nothing reads its answer (the record is built from the values written) and nothing
        # in a unit catches its failure: inside a unit on PostgreSQL the insert is owed to the
        # unit's connection and goes with its next statement or its commit, in the same round
        # trip and with no savepoint of its own (a taken id then fails the whole unit there).
        try:
            _INSERT.run_later(self._db, values)
        except IntegrityError:
            raise AlreadyExists(f"transaction {txn_id} exists or references nothing") from None
        return _record(values)

    def get(self, txn_id: str) -> TransactionRecord | None:
        with self._db.reading() as conn:
            row = _BY_ID.first(conn, {"txn_id": txn_id})
        return None if row is None else _record(row)

    @staticmethod
    def send_quote_lock(conn: Connection, txn_id: str) -> Any:
        """Lock the transaction if it is ``quoted``, inside the execution transaction and
        before anything is signed, without reading the answer (pipelinable, see
        :func:`sessionward.store.sql.pipeline`): the driver's cursor, which answers a row iff
        it was quoted (read it after the pipeline). No row: it is not quoted any more
        (executed twice, concurrently: the second one must roll back, unsigned).

        Invariant: a transaction locked so stays ``quoted`` until the caller's transaction
        ends, but for the caller's own writes; :meth:`mark_pending_in` in it always marks it."""
        return _QUOTE_LOCK.run(conn, {"txn_id": txn_id})

    @staticmethod
    def mark_pending_in(
        conn: Connection,
        txn_id: str,
        *,
        reservation_id: str,
        call_nonce: int,
        deadline: int,
        mode: bytes,
        execution: bytes,
        signature: bytes,
        now: int,
    ) -> None:
        """``quoted`` → ``pending`` with its signature, for a transaction the caller's
        database transaction ``conn`` locked (:meth:`send_quote_lock`): an answerless write,
        owed to the unit of work on PostgreSQL and sent with its next statement or its end
        (:meth:`~sessionward.store.sql.Sql.run_owed`). Nothing needs its answer: the lock
        keeps the row quoted, so it changes exactly that row. Should it not, the marking
        fails (``MarkingMissed`` here, or on PostgreSQL the owed statement's error where it
        is sent) and the signature is never committed."""
        marked = _MARK_PENDING.run_owed(
            conn,
            {
                "txn_id": txn_id,
                "reservation_id": reservation_id,
                "call_nonce": call_nonce,
                "deadline": deadline,
                "mode": mode,
                "execution": execution,
                "signature": signature,
                "executed_at": now,
            },
        )
        if marked is not None and marked.rowcount != 1:  # run at once: its count is there
            raise MarkingMissed(f"transaction {txn_id} was not quoted any more")

    def deny(self, txn_id: str, reasons: Sequence[str], *, now: int) -> bool:
        """``quoted`` → ``denied`` (refused at execution time)."""
        with self._db.writing() as conn:
            result = conn.execute(
                update(transactions)
                .where(transactions.c.id == txn_id, transactions.c.status == "quoted")
                .values(status="denied", reasons=",".join(reasons), finished_at=now)
            )
        return result.rowcount == 1

    def finish(
        self,
        txn_id: str,
        *,
        status: Literal["executed", "failed"],
        now: int,
        tx_hash: str | None = None,
        failure: str | None = None,
    ) -> bool:
        """``pending`` → ``executed`` or ``failed``; True only for the call that finished it.

        The status alone: a relayed call's outcome must go through
        :meth:`sessionward.store.execution.Executions.finish`, which also settles or releases
        the reservation and appends the audit record and decision event in the same
        transaction. (Written on its own, as earlier versions did, a crash after it leaves the
        reservation held; the dispatcher's recovery pass repairs that.)"""
        with self._db.writing() as conn:
            result = conn.execute(
                update(transactions)
                .where(transactions.c.id == txn_id, transactions.c.status == "pending")
                .values(status=status, tx_hash=tx_hash, failure=failure, finished_at=now)
            )
        return result.rowcount == 1

    def set_tx_hash(self, txn_id: str, tx_hash: str) -> None:
        with self._db.writing() as conn:
            conn.execute(
                update(transactions).where(transactions.c.id == txn_id).values(tx_hash=tx_hash)
            )

    def pending(self, limit: int = 100) -> list[TransactionRecord]:
        """Pending transactions, oldest first (the dispatcher's work list)."""
        statement = (
            select(transactions)
            .where(transactions.c.status == "pending")
            .order_by(transactions.c.executed_at, transactions.c.id)
            .limit(limit)
        )
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(statement)]

    def pending_of_session(self, session_id: str) -> list[TransactionRecord]:
        """The session's pending transactions (signed, not final yet), oldest first."""
        statement = (
            select(transactions)
            .where(transactions.c.session_id == session_id, transactions.c.status == "pending")
            .order_by(transactions.c.executed_at, transactions.c.id)
        )
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(statement)]

    def of_session(self, session_id: str) -> list[TransactionRecord]:
        statement = (
            select(transactions)
            .where(transactions.c.session_id == session_id)
            .order_by(transactions.c.created_at, transactions.c.id)
        )
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(statement)]
