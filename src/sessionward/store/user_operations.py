"""Session calls planned as ERC-4337 user operations (the ``user_operations`` table).

A plan is written before the unit of work that signs it (the bundler's estimate is a network
call, never made under the write lock), so a refused or lost Execute can leave a plan behind
that no signature covers: harmless, it is never submitted. Which plan a transaction's signature
belongs to is decided by the signature itself (the plan whose ``userOpHash`` it signs), so two
concurrent Executes of one quote cannot pair one's signature with the other's fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select

from .database import Database
from .schema import user_operations
from .sql import Sql

__all__ = ["UserOperationPlanRecord", "UserOperationRecords"]

_ADD: Final = Sql(
    "INSERT INTO user_operations (user_op_hash, txn_id, chain_id, operation, created_at) "
    "VALUES (:hash, :txn, :chain, :operation, :at) ON CONFLICT (user_op_hash) DO NOTHING"
)
_OF_TXN: Final = Sql(
    "SELECT user_op_hash, txn_id, chain_id, operation, created_at, submitted_at "
    "FROM user_operations WHERE txn_id = :txn ORDER BY created_at, user_op_hash"
)
_SUBMITTED: Final = Sql(
    "UPDATE user_operations SET submitted_at = :at "
    "WHERE user_op_hash = :hash AND submitted_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class UserOperationPlanRecord:
    """One planned operation: ``operation`` is its JSON (bundler form, no signature)."""

    user_op_hash: str
    txn_id: str
    chain_id: int
    operation: str
    created_at: int
    submitted_at: int | None


class UserOperationRecords:
    """Plans of user operations, by transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self, *, user_op_hash: str, txn_id: str, chain_id: int, operation: str, now: int
    ) -> None:
        """Record a plan (idempotent: the same operation planned twice is one row)."""
        with self._db.writing() as conn:
            _ADD.run(
                conn,
                {
                    "hash": user_op_hash,
                    "txn": txn_id,
                    "chain": chain_id,
                    "operation": operation,
                    "at": now,
                },
            )

    def of_transaction(self, txn_id: str) -> list[UserOperationPlanRecord]:
        """Every plan made for ``txn_id``, oldest first."""
        with self._db.reading() as conn:
            rows = _OF_TXN.run(conn, {"txn": txn_id}).fetchall()
        return [UserOperationPlanRecord(*row) for row in rows]

    def planned_among(self, txn_ids: Sequence[str]) -> set[str]:
        """Which of ``txn_ids`` have a plan (one read)."""
        if not txn_ids:
            return set()
        query = (
            select(user_operations.c.txn_id)
            .where(user_operations.c.txn_id.in_(list(txn_ids)))
            .distinct()
        )
        with self._db.reading() as conn:
            return {row[0] for row in conn.execute(query)}

    def mark_submitted(self, user_op_hash: str, *, now: int) -> None:
        """A bundler took the operation (the first time only is kept)."""
        with self._db.writing() as conn:
            _SUBMITTED.run(conn, {"hash": user_op_hash, "at": now})
