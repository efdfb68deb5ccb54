"""Sessions: a session key bound to one wallet and one credential, and its lifecycle.

Lifecycle (docs/design.md section 8; the chain confirms what happens there)::

    pending_approval ──approve──▶ installing ──chain shows it installed──▶ active ⇄ suspended
          │                           │                                     │         │
          │                           └───────────── revoke ────────────────┴─────────┘
          │                                             ▼
          └──revoke──▶ revoked ◀──chain shows it removed (or never installable)── revoking

    pending_approval / installing / active / suspended ──expiresAt passed──▶ expired

- ``active`` is recorded only once the chain shows the session installed, and ``revoked`` (for a
  session that was ever approved) only once the chain shows it removed or never installable:
  both by :mod:`sessionward.service.reconciler`, from a receipt and the account's
  ``session(key)`` view. A session never approved is revoked at once (no owner signature for
  it exists, so nobody can install it).
- ``revoked``, ``expired`` and ``pending_approval`` need nothing from the chain; the reconciler
  watches the others (:data:`WATCHED`).

Every revocation is one conditional ``UPDATE ... WHERE revoked_at IS NULL`` of the session row:
the first revocation wins and keeps its ``revoked_at``/``revoked_by``/``revoke_reason``; later
ones change nothing and report False. Because a reservation updates the same row under the same
lock (see :mod:`sessionward.store.budget`), a revoke that returned success is ordered after every
reservation that succeeded, and before every one that did not. Reservations need ``active``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

from sqlalchemy import ColumnElement, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from .database import Database
from .errors import AlreadyExists
from .schema import sessions
from .sql import RowValues, Select

# Built once: the hot read of every decision (statement building is per-call CPU).
_BY_ID = Select(sessions, "id = :session_id")
SESSION_BY_ID: Final = _BY_ID
"""The read of one session by id (``session_id``), for :mod:`.prefetches`."""

Status = Literal[
    "pending_approval", "installing", "active", "suspended", "revoking", "revoked", "expired"
]
STATUSES: Final[tuple[Status, ...]] = (
    "pending_approval",
    "installing",
    "active",
    "suspended",
    "revoking",
    "revoked",
    "expired",
)
WATCHED: Final[tuple[Status, ...]] = ("installing", "active", "suspended", "revoking")
"""Statuses the reconciler compares with the chain (the others are final or off-chain only)."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as stored. ``envelope`` and ``grant`` are JSON texts exactly as written (the
    grant is the EIP-712 typed-data document the owner signs)."""

    id: str
    wallet_id: str
    credential_id: str
    session_key_id: str
    session_key_address: str
    envelope: str
    grant: str
    grant_nonce: int
    epoch: int
    action_classes: tuple[str, ...]
    status: Status
    created_at: int
    approved_at: int | None
    valid_after: int
    expires_at: int
    revoked_at: int | None
    revoked_by: str | None
    revoke_reason: str | None
    onchain_revoked_at: int | None
    last_used_at: int | None
    owner_signature: str | None = None
    """Hex of the owner's grant signature, once approved."""
    call_nonce: int = 0
    """The next session-call nonce to assign."""
    onchain_enabled_at: int | None = None
    renewal_nonce: int | None = None
    """While suspended: the nonce the owner's ``SessionRenewal`` signature must carry."""


def _record(m: RowValues) -> SessionRecord:
    classes = m["action_classes"]
    return SessionRecord(
        id=m["id"],
        wallet_id=m["wallet_id"],
        credential_id=m["credential_id"],
        session_key_id=m["session_key_id"],
        session_key_address=m["session_key_address"],
        envelope=m["envelope"],
        grant=m["grant"],
        grant_nonce=m["grant_nonce"],
        epoch=m["epoch"],
        action_classes=tuple(classes.split(",")) if classes else (),
        status=cast(Status, m["status"]),
        created_at=m["created_at"],
        approved_at=m["approved_at"],
        valid_after=m["valid_after"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        revoked_by=m["revoked_by"],
        revoke_reason=m["revoke_reason"],
        onchain_revoked_at=m["onchain_revoked_at"],
        last_used_at=m["last_used_at"],
        owner_signature=m["owner_signature"],
        call_nonce=int(m["call_nonce"]),
        onchain_enabled_at=m["onchain_enabled_at"],
        renewal_nonce=None if m["renewal_nonce"] is None else int(m["renewal_nonce"]),
    )


class SessionRecords:
    """Creation, approval, lookup and revocation of sessions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        session_id: str,
        wallet_id: str,
        credential_id: str,
        session_key_id: str,
        session_key_address: str,
        envelope: str,
        grant: str,
        grant_nonce: int,
        epoch: int,
        action_classes: Sequence[str],
        valid_after: int,
        expires_at: int,
        now: int,
    ) -> SessionRecord:
        """Record a new ``pending_approval`` session. Raises :class:`AlreadyExists` for a taken id and
        ``ValueError`` for an empty window or an action class containing a comma."""
        if expires_at <= valid_after:
            raise ValueError("a session must expire after it becomes valid")
        if any("," in c or not c for c in action_classes):
            raise ValueError("action classes are non-empty and contain no comma")
        values = {
            "id": session_id,
            "wallet_id": wallet_id,
            "credential_id": credential_id,
            "session_key_id": session_key_id,
            "session_key_address": session_key_address.lower(),
            "envelope": envelope,
            "grant": grant,
            "grant_nonce": grant_nonce,
            "epoch": epoch,
            "action_classes": ",".join(action_classes),
            "status": "pending_approval",
            "created_at": now,
            "valid_after": valid_after,
            "expires_at": expires_at,
        }
        try:
            with self._db.writing() as conn:
                conn.execute(insert(sessions).values(values))
        except IntegrityError:
            raise AlreadyExists(f"session {session_id} exists or references nothing") from None
        stored = self.get(session_id)
        assert stored is not None  # just written
        return stored

    def get(self, session_id: str) -> SessionRecord | None:
        with self._db.reading() as conn:
            row = _BY_ID.first(conn, {"session_id": session_id})
        return None if row is None else _record(row)

    def of_wallet(self, wallet_id: str) -> list[SessionRecord]:
        """Sessions of a wallet, oldest first."""
        return self._list(sessions.c.wallet_id == wallet_id)

    def of_credential(self, credential_id: str) -> list[SessionRecord]:
        """Sessions bound to a credential, oldest first."""
        return self._list(sessions.c.credential_id == credential_id)

    def page_of_wallet(
        self, wallet_id: str, *, after: str | None, limit: int
    ) -> list[SessionRecord]:
        """Up to ``limit`` sessions of a wallet in id order after the id ``after``: keyset
        pagination, one range scan of the ``(wallet_id, id)`` index whatever the wallet holds."""
        return self._page(sessions.c.wallet_id == wallet_id, after=after, limit=limit)

    def page_of_credential(
        self, credential_id: str, *, after: str | None, limit: int
    ) -> list[SessionRecord]:
        """Up to ``limit`` sessions bound to a credential in id order after the id ``after``
        (the ``(credential_id, id)`` index)."""
        return self._page(sessions.c.credential_id == credential_id, after=after, limit=limit)

    def _page(
        self, condition: ColumnElement[bool], *, after: str | None, limit: int
    ) -> list[SessionRecord]:
        if after is not None:
            condition = condition & (sessions.c.id > after)
        query = select(sessions).where(condition).order_by(sessions.c.id).limit(limit)
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def _list(self, condition: ColumnElement[bool]) -> list[SessionRecord]:
        query = select(sessions).where(condition).order_by(sessions.c.id)
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def approve(self, session_id: str, *, now: int, owner_signature: str | None = None) -> bool:
        """``pending_approval`` → ``installing`` once the owner's grant signature has been
        checked (and is kept, hex, to install the session on chain). Run it in the unit of work
        that also writes the audit record and the install job.

        False (nothing changed) if the session is not pending approval, was revoked, or has
        expired.
        """
        return self._transition(
            session_id,
            "pending_approval",
            "installing",
            {"approved_at": now, "owner_signature": owner_signature},
            sessions.c.expires_at > now,
        )

    def mark_onchain_enabled(self, session_id: str, *, now: int) -> bool:
        """The chain shows the session installed: record when (once), and ``installing`` →
        ``active``. True iff the session became active by this call. Call it only from the
        chain's own state (a receipt and the account's view)."""
        with self._db.writing() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.onchain_enabled_at.is_(None))
                .values(onchain_enabled_at=now)
            )
            result = conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.status == "installing",
                    sessions.c.revoked_at.is_(None),
                )
                .values(status="active")
            )
            return result.rowcount == 1

    def suspend(self, session_id: str, *, renewal_nonce: int | None = None) -> bool:
        """``active`` → ``suspended`` (reservations refused with ``SESSION_SUSPENDED``), with a
        fresh renewal nonce (random unless given): only a new owner signature over a
        ``SessionRenewal`` carrying it re-activates the session."""
        nonce = secrets.randbits(63) if renewal_nonce is None else renewal_nonce
        return self._transition(session_id, "active", "suspended", {"renewal_nonce": nonce})

    def renew(self, session_id: str, *, renewal_nonce: int) -> bool:
        """``suspended`` → ``active`` for the renewal nonce now open (then closed: a renewal
        signature renews once). False if not suspended or the nonce is not the open one."""
        return self._transition(
            session_id,
            "suspended",
            "active",
            {"renewal_nonce": None},
            sessions.c.renewal_nonce == renewal_nonce,
        )

    def _transition(
        self,
        session_id: str,
        source: Status,
        target: Status,
        extra: dict[str, object],
        *conditions: ColumnElement[bool],
    ) -> bool:
        statement = (
            update(sessions)
            .where(
                sessions.c.id == session_id,
                sessions.c.status == source,
                sessions.c.revoked_at.is_(None),
                *conditions,
            )
            .values(status=target, **extra)
        )
        with self._db.writing(durable=True) as conn:
            return conn.execute(statement).rowcount == 1

    def revoke_session(self, session_id: str, *, by: str, reason: str, now: int) -> bool:
        """Revoke one session; True iff this call revoked it (the first revoke wins)."""
        return bool(self._revoke(sessions.c.id == session_id, by=by, reason=reason, now=now))

    def revoke_sessions_of_credential(
        self, credential_id: str, *, by: str, reason: str, now: int
    ) -> list[str]:
        """Revoke every unrevoked session bound to a credential; the ids this call revoked."""
        return self._revoke(
            sessions.c.credential_id == credential_id, by=by, reason=reason, now=now
        )

    def revoke_sessions_of_wallet(
        self, wallet_id: str, *, by: str, reason: str, now: int
    ) -> list[str]:
        """Revoke every unrevoked session of a wallet; the ids this call revoked."""
        return self._revoke(sessions.c.wallet_id == wallet_id, by=by, reason=reason, now=now)

    def _revoke(
        self, condition: ColumnElement[bool], *, by: str, reason: str, now: int
    ) -> list[str]:
        statement = (
            update(sessions)
            .where(condition, sessions.c.revoked_at.is_(None))
            .values(
                # Approved once: the owner's signature exists and the session may be on chain,
                # so it is ``revoked`` only once the chain agrees (the reconciler).
                status=case((sessions.c.approved_at.is_(None), "revoked"), else_="revoking"),
                revoked_at=now,
                revoked_by=by,
                revoke_reason=reason,
            )
            .returning(sessions.c.id)
        )
        with self._db.writing(durable=True) as conn:
            return sorted(row[0] for row in conn.execute(statement))

    def mark_onchain_revoked(self, session_id: str, *, now: int) -> bool:
        """The chain shows the session removed, or never installed and no longer installable:
        ``revoking`` → ``revoked`` with ``onchain_revoked_at`` (once). Call it only from the
        chain's own state."""
        statement = (
            update(sessions)
            .where(
                sessions.c.id == session_id,
                sessions.c.status == "revoking",
                sessions.c.onchain_revoked_at.is_(None),
            )
            .values(status="revoked", onchain_revoked_at=now)
        )
        with self._db.writing() as conn:
            return conn.execute(statement).rowcount == 1

    def reopen_revocation(self, session_id: str) -> bool:
        """A ``revoked`` session the chain still shows live: back to ``revoking`` (its removal
        is queued again; ``revoked_at``/``revoked_by``/``revoke_reason`` are kept)."""
        statement = (
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.status == "revoked")
            .values(status="revoking", onchain_revoked_at=None)
        )
        with self._db.writing(durable=True) as conn:
            return conn.execute(statement).rowcount == 1

    def install_failed(self, session_id: str, *, reason: str, now: int) -> bool:
        """An install the chain will not take (or that the service gave up on): ``installing``
        → ``revoking`` (revoked by ``chain``), so it ends removed or verified never installed
        like any revocation."""
        statement = (
            update(sessions)
            .where(
                sessions.c.id == session_id,
                sessions.c.status == "installing",
                sessions.c.revoked_at.is_(None),
            )
            .values(status="revoking", revoked_at=now, revoked_by="chain", revoke_reason=reason)
        )
        with self._db.writing(durable=True) as conn:
            return conn.execute(statement).rowcount == 1

    def expire(self, session_id: str, *, now: int) -> bool:
        """A session past its ``expiresAt`` that was not revoked → ``expired`` (final: the chain
        refuses its calls from then on too)."""
        statement = (
            update(sessions)
            .where(
                sessions.c.id == session_id,
                sessions.c.status.in_(("pending_approval", "installing", "active", "suspended")),
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at <= now,
            )
            .values(status="expired")
        )
        with self._db.writing() as conn:
            return conn.execute(statement).rowcount == 1

    def in_status(self, *statuses: Status) -> list[SessionRecord]:
        """Sessions in any of ``statuses``, oldest first (the reconciler's work list)."""
        return self._list(sessions.c.status.in_(statuses))

    def watch_page(self, *, after: str, limit: int, now: int) -> list[SessionRecord]:
        """The next ``limit`` sessions after id ``after`` (id order) that the chain may still
        contradict although the database thinks them settled: ``active``, ``suspended``, and
        ``revoked`` ones ever approved and not yet expired (the reconciler's slow pass)."""
        condition = (sessions.c.id > after) & (
            sessions.c.status.in_(("active", "suspended"))
            | (
                (sessions.c.status == "revoked")
                & sessions.c.approved_at.is_not(None)
                & (sessions.c.expires_at > now)
            )
        )
        query = select(sessions).where(condition).order_by(sessions.c.id).limit(limit)
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def awaiting_onchain_revocation(self) -> list[SessionRecord]:
        """Revoked sessions whose removal from the chain is not confirmed yet (``revoking``)."""
        return self.in_status("revoking")
