"""Freezes: emergency stops by ops (and by automatic rules), and how they are lifted.

A freeze has a scope — ``global``, ``wallet``, ``credential``, ``session`` or
``action_class`` — and a target (None for ``global``). While it is active (not lifted) every
reservation it covers is refused (see :mod:`sessionward.store.budget`). Freezing closes the
revocation gate, so once :meth:`Freezes.freeze` returns, no reservation it covers can succeed on
any node. A wallet freeze also sets the wallet's ``frozen_at``/``frozen_reason`` (what the
wallet's reads show), and lifting the wallet's last freeze clears them.

Lifting a *global* freeze takes two distinct, live ops credentials, each approving that very
freeze (:meth:`Freezes.approve_and_lift_global`; :meth:`Freezes.lift_global_freeze` for two
approvals given together); :meth:`Freezes.lift` refuses the global scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Set
from dataclasses import dataclass
from typing import Final, Literal, cast

from sqlalchemy import Connection, func, insert, select, update

from sessionward.reasons import ReasonCode, SessionWardError

from .database import Database
from .schema import credentials, freeze_lift_approvals, freezes, wallets
from .sql import RowValues, Select

_ACTIVE: Final = Select(freezes, "lifted_at IS NULL ORDER BY created_at, id")
ACTIVE_FREEZES: Final = _ACTIVE
"""The read of every freeze not lifted (no parameters), for :mod:`.prefetches`."""

Scope = Literal["global", "wallet", "credential", "session", "action_class"]
SCOPES: Final[tuple[Scope, ...]] = ("global", "wallet", "credential", "session", "action_class")


class FreezeLiftRefused(SessionWardError):
    """A global freeze lift without two distinct live ops approvals."""


@dataclass(frozen=True, slots=True)
class GlobalLift:
    """What one approval did: the global freezes it lifted, and for each still active one the
    live ops credentials that approved lifting it so far."""

    lifted: dict[str, frozenset[str]]
    pending: dict[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class FreezeRecord:
    id: str
    scope: Scope
    target: str | None
    reason: str
    created_by: str
    created_at: int
    lifted_at: int | None
    lifted_by: str | None


def _record(m: RowValues) -> FreezeRecord:
    return FreezeRecord(
        id=m["id"],
        scope=cast(Scope, m["scope"]),
        target=m["target"],
        reason=m["reason"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        lifted_at=m["lifted_at"],
        lifted_by=m["lifted_by"],
    )


def _check_scope(scope: Scope, target: str | None) -> None:
    if scope not in SCOPES:
        raise ValueError(f"a freeze scope is one of {', '.join(SCOPES)}")
    if (scope == "global") != (target is None):
        raise ValueError("a global freeze has no target; every other freeze has one")


class Freezes:
    """Freeze and lift."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def freeze(
        self,
        scope: Scope,
        target: str | None,
        *,
        reason: str,
        by: str,
        now: int,
        freeze_id: str | None = None,
    ) -> FreezeRecord:
        """Start a freeze; effective for every reservation that starts after this returns."""
        _check_scope(scope, target)
        if not reason.strip():
            raise ValueError("a freeze needs a written reason")
        record = FreezeRecord(
            id=freeze_id or f"frz_{uuid.uuid4().hex}",
            scope=scope,
            target=target,
            reason=reason,
            created_by=by,
            created_at=now,
            lifted_at=None,
            lifted_by=None,
        )
        with self._db.writing(durable=True) as conn:
            self._db.close_gate(conn)
            conn.execute(
                insert(freezes).values(
                    id=record.id,
                    scope=scope,
                    target=target,
                    reason=reason,
                    created_by=by,
                    created_at=now,
                )
            )
            if scope == "wallet":
                conn.execute(
                    update(wallets)
                    .where(wallets.c.id == target, wallets.c.frozen_at.is_(None))
                    .values(frozen_at=now, frozen_reason=reason)
                )
        return record

    def lift(self, scope: Scope, target: str, *, by: str, now: int) -> int:
        """Lift every active freeze of ``scope`` on ``target``; the number lifted.

        Raises ``ValueError`` for the global scope (see :meth:`lift_global_freeze`).
        """
        if scope == "global":
            raise ValueError("a global freeze is lifted with lift_global_freeze (two ops)")
        _check_scope(scope, target)
        with self._db.writing(durable=True) as conn:
            lifted = self._lift(conn, scope, target, by=by, now=now)
            if scope == "wallet" and lifted:
                conn.execute(
                    update(wallets)
                    .where(wallets.c.id == target)
                    .values(frozen_at=None, frozen_reason=None)
                )
        return lifted

    def lift_global_freeze(self, approvals: Set[str], *, now: int) -> int:
        """Lift every active global freeze, approved by at least two distinct ops credentials
        that are registered with role ``ops``, unrevoked and unexpired at ``now``.

        Raises :class:`FreezeLiftRefused` (``INPUT_MALFORMED`` for fewer than two distinct
        approvals, ``SIGNER_MISMATCH`` when an approval is not a live ops credential) and then
        changes nothing. Returns the number of freezes lifted.
        """
        distinct = set(approvals)
        if len(distinct) < 2:
            raise FreezeLiftRefused(
                ReasonCode.INPUT_MALFORMED, "lifting a global freeze takes two distinct ops"
            )
        with self._db.writing(durable=True) as conn:
            live = conn.execute(
                select(func.count())
                .select_from(credentials)
                .where(
                    credentials.c.id.in_(sorted(distinct)),
                    credentials.c.role == "ops",
                    credentials.c.revoked_at.is_(None),
                    (credentials.c.expires_at.is_(None)) | (credentials.c.expires_at > now),
                )
            ).scalar_one()
            if live != len(distinct):
                raise FreezeLiftRefused(
                    ReasonCode.SIGNER_MISMATCH, "every approval must be a live ops credential"
                )
            return self._lift(conn, "global", None, by="+".join(sorted(distinct)), now=now)

    def approve_and_lift_global(
        self, ops_credential_id: str, *, now: int, freeze_id: str | None = None
    ) -> GlobalLift:
        """One ops credential approves lifting the active global freezes (only ``freeze_id``
        when given); every freeze that now has two distinct approvals is lifted. One durable
        transaction.

        Approvals are bound to one freeze: its id, and made at or after its start. A freeze
        started after an approval was given needs approvals of its own, so an approval for
        freeze A and a single approval given after freeze B started lift A only (issue 14.3).
        Only approvals by ops credentials live at ``now`` count. Raises
        :class:`FreezeLiftRefused` (``INPUT_MALFORMED``) when ``freeze_id`` is not an active
        global freeze.
        """
        with self._db.writing(durable=True) as conn:
            query = select(freezes.c.id, freezes.c.created_at).where(
                freezes.c.scope == "global", freezes.c.lifted_at.is_(None)
            )
            if freeze_id is not None:
                query = query.where(freezes.c.id == freeze_id)
            active = list(conn.execute(query.order_by(freezes.c.created_at, freezes.c.id)))
            if freeze_id is not None and not active:
                raise FreezeLiftRefused(
                    ReasonCode.INPUT_MALFORMED, "no active global freeze has this id"
                )
            lifted: dict[str, frozenset[str]] = {}
            pending: dict[str, frozenset[str]] = {}
            for frozen_id, started in active:
                given = conn.execute(
                    select(freeze_lift_approvals.c.at).where(
                        freeze_lift_approvals.c.freeze_id == frozen_id,
                        freeze_lift_approvals.c.ops_credential_id == ops_credential_id,
                    )
                ).first()
                if given is None:
                    conn.execute(
                        insert(freeze_lift_approvals).values(
                            freeze_id=frozen_id, ops_credential_id=ops_credential_id, at=now
                        )
                    )
                approvers = self._live_approvers(conn, frozen_id, started, now)
                if len(approvers) >= 2:
                    conn.execute(
                        update(freezes)
                        .where(freezes.c.id == frozen_id, freezes.c.lifted_at.is_(None))
                        .values(lifted_at=now, lifted_by="+".join(sorted(approvers)))
                    )
                    lifted[frozen_id] = approvers
                else:
                    pending[frozen_id] = approvers
            return GlobalLift(lifted=lifted, pending=pending)

    @staticmethod
    def _live_approvers(conn: Connection, freeze_id: str, started: int, now: int) -> frozenset[str]:
        """Distinct live ops credentials that approved lifting ``freeze_id`` since it started."""
        rows = conn.execute(
            select(freeze_lift_approvals.c.ops_credential_id)
            .join(credentials, credentials.c.id == freeze_lift_approvals.c.ops_credential_id)
            .where(
                freeze_lift_approvals.c.freeze_id == freeze_id,
                freeze_lift_approvals.c.at >= started,
                credentials.c.role == "ops",
                credentials.c.revoked_at.is_(None),
                (credentials.c.expires_at.is_(None)) | (credentials.c.expires_at > now),
            )
        )
        return frozenset(row[0] for row in rows)

    @staticmethod
    def _lift(conn: Connection, scope: Scope, target: str | None, *, by: str, now: int) -> int:
        condition = freezes.c.target.is_(None) if target is None else freezes.c.target == target
        result = conn.execute(
            update(freezes)
            .where(freezes.c.scope == scope, condition, freezes.c.lifted_at.is_(None))
            .values(lifted_at=now, lifted_by=by)
        )
        return result.rowcount

    def active(self) -> list[FreezeRecord]:
        """Every freeze not lifted, oldest first."""
        with self._db.reading() as conn:
            return [_record(row) for row in _ACTIVE.all(conn, {})]
