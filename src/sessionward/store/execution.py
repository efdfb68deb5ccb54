"""The execution step: where a decision becomes a signature, in ONE database transaction.

docs/design.md section 8 asks that once a revocation returns, no node produces another signature for
the affected sessions, and that every signature ever produced is ordered before the revocation
in the audit log. :meth:`Executions.execute` gets that from the database alone:

1. pass the revocation gate (shared; freezes and credential revocations take it exclusively);
2. reserve the budget: the conditional update of the session row re-checks status, window,
   credential, wallet and every freeze, and row-locks the session; the charges are applied only
   if every limit holds (:meth:`sessionward.store.budget.Budget.reserve_in`);
3. take the session's next call nonce, in that same update of the session row (the row is
   locked, so nonces are unique and ordered);
4. lock the quote's row while it is ``quoted``, to the commit (a quote another Execute took
   is refused here, before anything is signed);
5. call ``sign(call_nonce, key)``: the vault signs *inside* the transaction (with the key's
   record read in it, so a key disabled or destroyed before this transaction is refused);
6. mark the transaction ``pending`` with the signature, and append the audit record.

A revoke updates the same session row, so it waits for this transaction or this transaction
waits for it: either the signature commits (and its audit record precedes the revoke's), or the
revoke commits first and step 2 refuses. If anything fails, the whole transaction rolls back
and the signature, which never left this process, is discarded.

The other end of a call is one transaction as well: :meth:`Executions.finish` records what the
chain did (status, reservation settled or released, audit record, decision event) all or
nothing, and :meth:`Executions.close_stranded` finishes a ``held`` reservation that no call in
flight carries (the recovery pass of the dispatcher). Named fault points
(:mod:`sessionward.store.faults`) sit between the writes of both, for the crash tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from sessionward.domain.audit import canonical_json
from sessionward.domain.usage import Charge, Usage
from sessionward.reasons import ReasonCode, SessionWardError
from sessionward.vault.interface import KeyRecord

from . import faults
from .audit import AuditLog
from .budget import Budget
from .database import Database
from .decisions import DecisionEvent, Decisions
from .errors import AlreadyExists
from .schema import vault_keys
from .sql import Select, Sql, pipeline
from .transaction_records import TransactionRecords
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


def _key_of(sent: Any) -> KeyRecord | None:
    """The vault key's record, read in the execution transaction (:data:`_KEY` sent)."""
    row = _KEY.read(sent)
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
        """Do steps 1-6 of the module docstring; nothing is written unless all of them pass.

        ``sign(call_nonce, key)`` gets, when ``signing_key`` is given, that vault key's record
        as read inside this transaction (``None`` if there is no such row, or without
        ``signing_key``), so the vault need not read it again in a transaction of its own.

        ``decision`` (the allowing decision event) is recorded in the same transaction.
        ``sign`` may raise a :class:`~sessionward.reasons.SessionWardError` (the vault
        refusing): the transaction then rolls back and its code is reported.
        """
        try:
            with self._db.writing() as conn:
                # Before the signature, one round trip on PostgreSQL: the gate, the session
                # check + reservation + charges (one statement), the counters after them, the
                # key's record, the audit stream's lock and head, the quote's lock.
                try:
                    with pipeline(conn):
                        self._db.pass_gate(conn)
                        sent = self._budget.send_reservation(
                            conn,
                            session_id,
                            reservation_id,
                            charges,
                            now=now,
                            action_class=list(action_classes),
                            take_call_nonce=True,
                        )
                        key_row = (
                            None
                            if signing_key is None
                            else _KEY.send(conn, {"key_id": signing_key})
                        )
                        tail = self._audit.read_head_in(conn, audit_stream)
                        # After the session row (the lock order of every Execute), the quote's
                        # row: locked while quoted, before anything is signed.
                        quoted = TransactionRecords.send_quote_lock(conn, txn_id)
                except IntegrityError:  # the reservation statement, pipelined
                    raise AlreadyExists(f"reservation {reservation_id} exists") from None
                reserved = sent.outcome(conn)
                if not reserved.accepted:
                    raise _Abort(reserved.reasons)
                if quoted.fetchone() is None:  # not quoted any more: everything above is undone
                    raise _Abort((ReasonCode.TRANSACTION_NOT_QUOTED,))
                faults.point("execute.after_reserve")
                call_nonce = reserved.call_nonce
                assert call_nonce is not None  # taken by the accepted reservation
                key = None if key_row is None else _key_of(key_row)
                signed = sign(call_nonce, key)
                faults.point("execute.after_sign")
                # After it, no round trip of its own: the marking, the audit record and the
                # decision are answerless writes, owed to the unit of work (PostgreSQL) and
                # sent with its end. None can miss: the quote's row is locked while quoted,
                # the audit stream's lock is held and its head read under it, a decision is new.
                TransactionRecords.mark_pending_in(
                    conn,
                    txn_id,
                    reservation_id=reservation_id,
                    call_nonce=call_nonce,
                    deadline=signed.deadline,
                    mode=signed.mode,
                    execution=signed.execution,
                    signature=signed.signature,
                    now=now,
                )
                faults.point("execute.after_mark_pending")
                payload = {**audit_payload, "callNonce": call_nonce, "reservation": reservation_id}
                tail.append_owed(conn, "session.call.signed", canonical_json(payload), at=now)
                faults.point("execute.after_audit")
                if decision is not None:
                    Decisions.record_in(conn, decision)
                faults.point("execute.after_decision")
        except _Abort as aborted:
            return ExecutionOutcome(False, aborted.reasons)
        except SessionWardError as refused:  # e.g. the vault refusing to sign
            return ExecutionOutcome(False, (refused.code,))
        return ExecutionOutcome(True, (), call_nonce, signed, reserved.usage)

    # --- a relayed call's outcome ---------------------------------------------------------

    def finish(
        self,
        txn_id: str,
        *,
        executed: bool,
        now: int,
        tx_hash: str | None,
        failure: str | None,
        decision: DecisionEvent | None = None,
    ) -> bool:
        """Record what the chain did with a ``pending`` transaction, in ONE database
        transaction: its status (``executed`` or ``failed``), its reservation settled (executed)
        or released (failed: the budget comes back), the ``session.call.executed`` or
        ``session.call.failed`` audit record, and ``decision`` (the outcome's decision event).

        Either all of it commits or none of it does, so a crash, a dropped connection or a full
        disk can never leave a finished call with its reservation ``held`` or without its audit
        record. True only for the call that finished it; False (nothing written) if the
        transaction is not ``pending`` (already finished, or unknown).
        """
        with self._db.writing() as conn:
            row = _FINISH.run(
                conn,
                {
                    "txn_id": txn_id,
                    "status": "executed" if executed else "failed",
                    "tx_hash": tx_hash,
                    "failure": None if executed else failure,
                    "now": now,
                },
            ).fetchone()
            if row is None:
                return False
            reservation_id, wallet_id = row[0], row[1]
            faults.point("outcome.after_status")
            if reservation_id is not None:
                if executed:
                    Budget.settle_in(conn, reservation_id, now=now)
                else:
                    self._budget.release_in(conn, reservation_id, now=now)
            faults.point("outcome.after_reservation")
            self._audit.append_in(
                conn,
                wallet_id,
                "session.call.executed" if executed else "session.call.failed",
                {"txn": txn_id, "txHash": tx_hash, "failure": None if executed else failure},
                at=now,
            )
            faults.point("outcome.after_audit")
            if decision is not None:
                Decisions.record_in(conn, decision)
            faults.point("outcome.after_decision")
        faults.point("outcome.after_commit")
        return True

    # --- recovery -------------------------------------------------------------------------

    def stranded_reservations(self, *, created_before: int, limit: int = 100) -> list[str]:
        """Ids of ``held`` reservations with no call in flight: no ``pending`` transaction
        carries them (their transaction finished, was never marked pending, or does not
        exist), created at or before ``created_before``. None should exist (Execute and the outcome
        each write in one transaction); this finds what an older version, or a bug, left."""
        with self._db.reading() as conn:
            return [
                r[0]
                for r in _STRANDED.run(
                    conn, {"created_before": created_before, "limit": limit}
                ).fetchall()
            ]

    def close_stranded(self, reservation_id: str, *, now: int) -> str | None:
        """Finish one reservation :meth:`stranded_reservations` found, in one transaction with
        its audit record: settled if its transaction executed, released otherwise (the call
        failed, was refused or never existed, so nothing was spent). Re-checked inside the
        transaction; returns ``"settled"``/``"released"``, or None if it was no longer
        stranded."""
        with self._db.writing() as conn:
            row = _STRANDED_ONE.run(conn, {"reservation_id": reservation_id}).fetchone()
            if row is None:
                return None
            txn_id, txn_status, wallet_id = row[0], row[1], row[2]
            if txn_status == "executed":
                done = Budget.settle_in(conn, reservation_id, now=now)
                outcome = "settled"
            else:
                done = self._budget.release_in(conn, reservation_id, now=now)
                outcome = "released"
            if not done:
                return None
            self._audit.append_in(
                conn,
                wallet_id,
                f"session.reservation.{outcome}",
                {"reservation": reservation_id, "txn": txn_id, "recovered": True},
                at=now,
            )
        return outcome


# ``pending`` → ``executed``/``failed``; what the outcome's other writes need comes back.
_FINISH: Final = Sql(
    """
    UPDATE transactions
    SET status = :status, tx_hash = :tx_hash, failure = :failure, finished_at = :now
    WHERE id = :txn_id AND status = 'pending'
    RETURNING reservation_id, wallet_id
    """
)

# A held reservation is in flight iff a pending transaction carries it.
_STRANDED: Final = Sql(
    """
    SELECT r.id FROM reservations r
    WHERE r.status = 'held' AND r.created_at <= :created_before
      AND NOT EXISTS (
        SELECT 1 FROM transactions t
        WHERE t.session_id = r.session_id AND t.reservation_id = r.id AND t.status = 'pending')
    ORDER BY r.created_at, r.id
    LIMIT :limit
    """
)

# The same test for one reservation, with what closing it needs: its transaction's id and
# status (NULL if none carries it) and the wallet whose audit stream records it.
_STRANDED_ONE: Final = Sql(
    """
    SELECT t.id, t.status, s.wallet_id FROM reservations r
    JOIN sessions s ON s.id = r.session_id
    LEFT JOIN transactions t ON t.session_id = r.session_id AND t.reservation_id = r.id
    WHERE r.id = :reservation_id AND r.status = 'held'
      AND (t.id IS NULL OR t.status <> 'pending')
    """
)
