"""The execution step: where a decision becomes a signature, in ONE database transaction.

DESIGN section 8 asks that once a revocation returns, no node produces another signature for
the affected sessions, and that every signature ever produced is ordered before the revocation
in the audit log. :meth:`Executions.execute` gets that from the database alone:

1. pass the revocation gate (shared; freezes and credential revocations take it exclusively);
2. reserve the budget: the conditional update of the session row re-checks status, window,
   credential, wallet and every freeze, and row-locks the session; the charges are applied only
   if every limit holds (:meth:`sessionward.store.budget.Budget.reserve_in`);
3. take the session's next call nonce, in that same update of the session row (the row is
   locked, so nonces are unique and ordered);
4. call ``sign(call_nonce, key)``: the vault signs *inside* the transaction (with the key's
   record read in it, so a key disabled or destroyed before this transaction is refused);
5. mark the transaction ``pending`` with the signature, and append the audit record.

A revoke updates the same session row, so it waits for this transaction or this transaction
waits for it: either the signature commits (and its audit record precedes the revoke's), or the
revoke commits first and step 2 refuses. If anything fails, the whole transaction rolls back
and the signature, which never left this process, is discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from sessionward.domain.reasons import ReasonCode, SessionWardError
from sessionward.domain.usage import Charge, Usage
from sessionward.vault.interface import KeyRecord

from .audit import AuditLog
from .budget import Budget
from .database import Database
from .decisions import DecisionEvent, Decisions
from .schema import vault_keys
from .sql import Select
from .transactions import Transactions
from .vault_keys import _record as key_record


@dataclass(frozen=True, slots=True)
class SignedCall:
    """What ``sign`` returns: the session key's signature and what it covers."""

    signature: bytes
    deadline: int
    mode: bytes
    execution: bytes


@dataclass(frozen=True, slots=True)
class ExecutionOutcome:
    """``accepted`` iff the transaction is now ``pending`` with a signature; else ``reasons``."""

    accepted: bool
    reasons: tuple[ReasonCode, ...]
    call_nonce: int | None = None
    signed: SignedCall | None = None
    usage: Usage | None = None
    """The session's counters right after the reservation (for velocity rules)."""


def _key_in(conn: Connection, key_id: str) -> KeyRecord | None:
    """The vault key's record, read in the execution transaction."""
    row = _KEY.first(conn, {"key_id": key_id})
    return None if row is None else key_record(row)


_KEY = Select(vault_keys, "key_id = :key_id")


class _Abort(Exception):
    def __init__(self, reasons: tuple[ReasonCode, ...]) -> None:
        super().__init__(",".join(reasons))
        self.reasons = reasons


class Executions:
    """Reserve, sign and record a session call atomically."""

    def __init__(self, db: Database, budget: Budget, audit: AuditLog) -> None:
        self._db = db
        self._budget = budget
        self._audit = audit

    def execute(
        self,
        *,
        txn_id: str,
        session_id: str,
        reservation_id: str,
        charges: Sequence[Charge],
        action_classes: Sequence[str],
        now: int,
        sign: Callable[[int, KeyRecord | None], SignedCall],
        audit_stream: str,
        audit_payload: Mapping[str, Any],
        decision: DecisionEvent | None = None,
        signing_key: str | None = None,
    ) -> ExecutionOutcome:
        """Do steps 1-5 of the module docstring; nothing is written unless all of them pass.

        ``sign(call_nonce, key)`` gets, when ``signing_key`` is given, that vault key's record
        as read inside this transaction (``None`` if there is no such row, or without
        ``signing_key``), so the vault need not read it again in a transaction of its own.

        ``decision`` (the allowing decision event) is recorded in the same transaction.
        ``sign`` may raise a :class:`~sessionward.domain.reasons.SessionWardError` (the vault
        refusing): the transaction then rolls back and its code is reported.
        """
        try:
            with self._db.writing() as conn:
                self._db.pass_gate(conn)
                reserved = self._budget.reserve_in(
                    conn,
                    session_id,
                    reservation_id,
                    charges,
                    now=now,
                    action_class=list(action_classes),
                    take_call_nonce=True,
                )
                if not reserved.accepted:
                    raise _Abort(reserved.reasons)
                call_nonce = reserved.call_nonce
                assert call_nonce is not None  # taken by the accepted reservation
                key = None if signing_key is None else _key_in(conn, signing_key)
                signed = sign(call_nonce, key)
                if not Transactions.mark_pending_in(
                    conn,
                    txn_id,
                    reservation_id=reservation_id,
                    call_nonce=call_nonce,
                    deadline=signed.deadline,
                    mode=signed.mode,
                    execution=signed.execution,
                    signature=signed.signature,
                    now=now,
                ):
                    raise _Abort((ReasonCode.TRANSACTION_NOT_QUOTED,))
                self._audit.append_in(
                    conn,
                    audit_stream,
                    "session.call.signed",
                    {**audit_payload, "callNonce": call_nonce, "reservation": reservation_id},
                    at=now,
                )
                if decision is not None:
                    Decisions.record_in(conn, decision)
        except _Abort as aborted:
            return ExecutionOutcome(False, aborted.reasons)
        except SessionWardError as refused:  # e.g. the vault refusing to sign
            return ExecutionOutcome(False, (refused.code,))
        return ExecutionOutcome(True, (), call_nonce, signed, reserved.usage)
