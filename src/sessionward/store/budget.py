"""Budget reservations: the atomic step between a decision and a signature.

:meth:`Budget.reserve` does, in **one** database transaction:

1. *The session check*, one conditional ``UPDATE`` of the session row (it sets
   ``last_used_at``): the session is ``active``, not revoked, inside its validity window; its
   credential is neither revoked nor expired; its wallet is not frozen; and no active freeze
   covers it (global, wallet, credential, session, or the request's action class). The update
   row-locks the session, so reservations on one session run one after another, and a revoke
   (which updates the same row) is ordered strictly before or after each of them. Freezes and
   credential revocations write other rows; they are ordered with reservations by the
   revocation gate (see :mod:`sessionward.store.database`).
2. *The reservation row* (``held``) remembering the charges, so they can be released (written
   before the charges; a reused reservation id aborts everything).
3. *The charges*, one per usage bucket, each allowed only while the bucket's total stays within
   the charge's limit. The refill rule of :mod:`sessionward.domain.usage` applies: a counter
   stored for an older window than the charge's restarts from zero. (A counter stored for a
   *newer* window, which only clock skew between nodes can produce, is kept and charged: the
   store never under-counts.)

If the session check fails, the reasons are read in the same transaction and reported; if any
charge would cross its limit, nothing at all is written and the ``reason`` of every failing
charge is reported.

Exact amounts on both engines: on PostgreSQL the totals are ``NUMERIC(78,0)`` and the check and
addition are one conditional upsert. SQLite cannot do exact arithmetic past 2**63, so there the
totals are decimal text and the arithmetic is done in Python *inside* the ``BEGIN IMMEDIATE``
transaction, which holds SQLite's single write lock from the first read to the commit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, Literal, cast

import orjson
from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import IntegrityError

from sessionward.domain.usage import Charge, Counter, Usage
from sessionward.reasons import ReasonCode

from .database import Database
from .errors import AlreadyExists, StateChurn
from .schema import UINT256_MAX, reservations, sessions
from .sql import Sql, insert_of, pipeline

ReservationStatus = Literal["held", "settled", "released"]

# One statement per number of action classes in the request (``{freezes}`` holds their
# placeholders), with or without taking the session's call nonce (``{take_call_nonce}``).
_SESSION_CHECK: Final = """
    UPDATE sessions SET last_used_at = :now{take_call_nonce}
    WHERE id = :session_id
      AND status = 'active'
      AND revoked_at IS NULL
      AND valid_after <= :now
      AND expires_at > :now
      AND EXISTS (
        SELECT 1 FROM credentials c
        WHERE c.id = sessions.credential_id
          AND c.revoked_at IS NULL
          AND (c.expires_at IS NULL OR c.expires_at > :now))
      AND EXISTS (
        SELECT 1 FROM wallets w WHERE w.id = sessions.wallet_id AND w.frozen_at IS NULL)
      AND NOT EXISTS (SELECT 1 FROM freezes f WHERE {freezes})
    RETURNING call_nonce
"""


def _freezes_covering(wallet: str, credential: str, session: str, classes: int) -> str:
    """The condition on ``freezes f`` that a freeze in force covers a session (its wallet,
    credential and id given as SQL expressions) or one of its ``classes`` action classes
    (parameters ``class_0`` …; with none, ``IN (NULL)`` matches no action-class freeze).

    One rule for the session check and for the explanation of its refusals."""
    placeholders = ", ".join(f":class_{i}" for i in range(classes)) or "NULL"
    return f"""
        f.lifted_at IS NULL
        AND (f.scope = 'global'
             OR (f.scope = 'wallet' AND f.target = {wallet})
             OR (f.scope = 'credential' AND f.target = {credential})
             OR (f.scope = 'session' AND f.target = {session})
             OR (f.scope = 'action_class' AND f.target IN ({placeholders})))
    """


def _class_parameters(classes: Sequence[str]) -> dict[str, str]:
    return {f"class_{i}": c for i, c in enumerate(classes)}


@lru_cache(maxsize=32)
def _session_check(classes: int, take_call_nonce: bool) -> Sql:
    """The session check for a request of ``classes`` action classes (``class_0`` …); with
    ``take_call_nonce`` it also advances the session's call nonce (returning the new value)."""
    freezes = _freezes_covering(
        "sessions.wallet_id", "sessions.credential_id", "sessions.id", classes
    )
    take = ", call_nonce = call_nonce + 1" if take_call_nonce else ""
    return Sql(_SESSION_CHECK.format(freezes=freezes, take_call_nonce=take))


@lru_cache(maxsize=16)
def _frozen_scopes(classes: int) -> Sql:
    """The scopes of the freezes in force covering ``:session_id`` (of ``:wallet_id`` and
    ``:credential_id``) or one of ``classes`` action classes."""
    freezes = _freezes_covering(":wallet_id", ":credential_id", ":session_id", classes)
    return Sql(f"SELECT DISTINCT f.scope FROM freezes f WHERE {freezes}")


# PostgreSQL: the check and the addition in one statement. The WHERE of DO UPDATE is evaluated
# before the new row is formed, so a total that would exceed the limit never reaches the column.
_PG_CHARGE: Final = Sql(
    """
    INSERT INTO usage (session_id, bucket, "window", amount)
    VALUES (:session_id, :bucket, :window, :amount)
    ON CONFLICT (session_id, bucket) DO UPDATE
    SET "window" = GREATEST(usage."window", excluded."window"),
        amount = CASE WHEN usage."window" >= excluded."window"
                      THEN usage.amount + excluded.amount ELSE excluded.amount END
    WHERE (CASE WHEN usage."window" >= excluded."window"
                THEN usage.amount + excluded.amount ELSE excluded.amount END) <= :limit
    RETURNING amount
    """,
    uint256=["amount", "limit"],
)


@lru_cache(maxsize=64)
def _pg_reservation(classes: int, charges: int, take_call_nonce: bool) -> Sql:
    """PostgreSQL: the session check, the reservation row and every charge in ONE statement
    (one round trip): the reservation and the charges are written only for a session that
    passed the check (they select from its ``RETURNING``), each charge only while its bucket
    stays within its own limit (``limit_<i>``, picked by bucket: the buckets must be distinct,
    an upsert cannot touch one row twice). Answers the call nonce (NULL: the check failed) and
    the buckets charged.

    Each sub-statement sees the statement's snapshot; the charges, as upserts, act on the
    latest committed version of each counter (the session row, locked first, serialises
    every writer of this session's counters), as :data:`_PG_CHARGE` does."""
    freezes = _freezes_covering(
        "sessions.wallet_id", "sessions.credential_id", "sessions.id", classes
    )
    take = ", call_nonce = call_nonce + 1" if take_call_nonce else ""
    checked = _SESSION_CHECK.format(freezes=freezes, take_call_nonce=take)
    held = """
        INSERT INTO reservations
            (id, session_id, charges, status, created_at, settled_at, released_at)
        SELECT :reservation_id, :session_id, :charges, 'held', :now, NULL, NULL FROM checked
        RETURNING id
    """
    if not charges:
        return Sql(
            f"WITH checked AS ({checked}), held AS ({held}) "
            "SELECT (SELECT call_nonce FROM checked), ARRAY[]::text[], "
            "(SELECT count(*) FROM held)"
        )
    rows = ", ".join(
        f"(CAST(:bucket_{i} AS TEXT), CAST(:window_{i} AS BIGINT), "
        f"CAST(:amount_{i} AS NUMERIC(78,0)))"
        for i in range(charges)
    )
    limits = " ".join(
        f"WHEN CAST(:bucket_{i} AS TEXT) THEN CAST(:limit_{i} AS NUMERIC(78,0))"
        for i in range(charges)
    )
    charged = f"""
        INSERT INTO usage (session_id, bucket, "window", amount)
        SELECT :session_id, c.bucket, c."window", c.amount
        FROM (VALUES {rows}) AS c (bucket, "window", amount), checked
        ON CONFLICT (session_id, bucket) DO UPDATE
        SET "window" = GREATEST(usage."window", excluded."window"),
            amount = CASE WHEN usage."window" >= excluded."window"
                          THEN usage.amount + excluded.amount ELSE excluded.amount END
        WHERE (CASE WHEN usage."window" >= excluded."window"
                    THEN usage.amount + excluded.amount ELSE excluded.amount END)
              <= (CASE excluded.bucket {limits} END)
        RETURNING bucket
    """
    return Sql(
        f"WITH checked AS ({checked}), held AS ({held}), charged AS ({charged}) "
        "SELECT (SELECT call_nonce FROM checked), ARRAY(SELECT bucket FROM charged), "
        "(SELECT count(*) FROM held)",
        uint256=[name for i in range(charges) for name in (f"amount_{i}", f"limit_{i}")],
    )


_PG_GIVE_BACK: Final = text(
    """
    UPDATE usage SET amount = GREATEST(amount - :amount, 0)
    WHERE session_id = :session_id AND bucket = :bucket AND "window" = :window
    """
)

_SQLITE_UPSERT: Final = """
    INSERT INTO usage (session_id, bucket, "window", amount) VALUES {rows}
    ON CONFLICT (session_id, bucket) DO UPDATE
    SET "window" = excluded."window", amount = excluded.amount
"""


@lru_cache(maxsize=16)
def _sqlite_upsert(rows: int) -> Sql:
    """SQLite: set ``rows`` counters of one session in one statement (``bucket_0``,
    ``window_0``, ``amount_0`` …)."""
    values = ", ".join(f"(:session_id, :bucket_{i}, :window_{i}, :amount_{i})" for i in range(rows))
    return Sql(_SQLITE_UPSERT.format(rows=values), uint256=[f"amount_{i}" for i in range(rows)])


def _set_counters(conn: Connection, session_id: str, counters: Mapping[str, Counter]) -> None:
    """SQLite: write ``counters`` (bucket → counter) of the session, in one statement."""
    if not counters:
        return
    params: dict[str, object] = {"session_id": session_id}
    for i, (bucket, counter) in enumerate(sorted(counters.items())):
        params[f"bucket_{i}"] = bucket
        params[f"window_{i}"] = counter.window
        params[f"amount_{i}"] = counter.amount
    _sqlite_upsert(len(counters)).run(conn, params)


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    """What :meth:`Budget.reserve` decided.

    ``accepted`` iff the reservation is held; otherwise ``reasons`` names every cause found (in a
    stable order) and nothing was written. ``usage`` is the session's usage after the
    reservation, or as it stands on refusal (empty for an unknown session).
    """

    reservation_id: str
    accepted: bool
    reasons: tuple[ReasonCode, ...]
    usage: Usage
    call_nonce: int | None = None
    """The session call nonce this reservation took (:meth:`Budget.reserve_in` asked to take
    one, and it was accepted); else None."""


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    """A stored reservation. ``settled_at``/``released_at`` are set when it leaves ``held``."""

    id: str
    session_id: str
    charges: tuple[Charge, ...]
    status: ReservationStatus
    created_at: int
    settled_at: int | None
    released_at: int | None


class _Refused(Exception):
    """Raised inside a transaction to roll it back and report ``reasons``."""

    def __init__(self, reasons: Sequence[ReasonCode]) -> None:
        super().__init__("refused")
        self.reasons = tuple(reasons)


class _Retry(Exception):
    """The session changed between the check and its explanation: check again."""


# Built once: the hot statements of every reservation (statement building is per-call CPU).
_HOLD: Final = insert_of(reservations)
_COUNTERS: Final = Sql('SELECT bucket, "window", amount FROM usage WHERE session_id = :session_id')
USAGE_COUNTERS: Final = _COUNTERS
"""The read of a session's counters (``session_id``), for :mod:`.prefetches`."""


class SentReservation:
    """A reservation whose statements were sent (:meth:`Budget.send_reservation`); its
    :meth:`outcome` reads their answers."""

    __slots__ = (
        "_charges",
        "_classes",
        "_counters",
        "_cursor",
        "_done",
        "_now",
        "_reservation_id",
        "_session_id",
        "_stopped",
        "_take_call_nonce",
    )

    def __init__(
        self,
        reservation_id: str,
        session_id: str,
        now: int,
        classes: list[str],
        *,
        done: tuple[Usage, int | None] | None = None,
        stopped: Exception | None = None,
        cursor: Any = None,
        counters: Any = None,
        charges: Sequence[Charge] = (),
        take_call_nonce: bool = False,
    ) -> None:
        self._reservation_id = reservation_id
        self._session_id = session_id
        self._now = now
        self._classes = classes
        self._done = done
        self._stopped = stopped
        self._cursor = cursor
        self._counters = counters
        self._charges = tuple(charges)
        self._take_call_nonce = take_call_nonce

    def outcome(self, conn: Connection) -> ReservationOutcome:
        """The reservation's outcome, as :meth:`Budget.reserve_in` returns it (call it after
        the pipeline the statements were sent in is over)."""
        try:
            after, call_nonce = self.finish(conn)
        except _Retry:
            return ReservationOutcome(
                self._reservation_id, False, (ReasonCode.SESSION_UNKNOWN,), Usage()
            )
        except _Refused as refused:
            return ReservationOutcome(self._reservation_id, False, refused.reasons, Usage())
        return ReservationOutcome(self._reservation_id, True, (), after, call_nonce)

    def finish(self, conn: Connection) -> tuple[Usage, int | None]:
        """(usage after the reservation, the call nonce taken or None); raises ``_Refused``
        (with every reason) or ``_Retry`` (the session changed between the check and its
        explanation)."""
        if self._stopped is not None:
            raise self._stopped
        if self._done is not None:
            return self._done
        call_nonce, charged, _held = self._cursor.fetchone()
        counters = self._counters.fetchall()
        if call_nonce is None:
            raise _refusal(conn, self._session_id, self._now, self._classes)
        taken = set(charged)
        failing = [
            c.reason
            for c in self._charges
            if c.bucket not in taken or c.amount > min(c.limit, UINT256_MAX)
        ]
        if failing:
            raise _Refused(_unique(failing))
        usage = Usage({bucket: Counter(window, int(amount)) for bucket, window, amount in counters})
        return usage, (int(call_nonce) - 1 if self._take_call_nonce else None)


def _refusal(conn: Connection, session_id: str, now: int, classes: Sequence[str]) -> Exception:
    """Why the session check refused, as the exception to raise: ``_Refused`` with every
    reason, or ``_Retry`` if none is found (the session changed between the two statements,
    PostgreSQL)."""
    reasons = _why_refused(conn, session_id, now, classes)
    return _Refused(reasons) if reasons else _Retry()


def _send_in_one_statement(
    conn: Connection,
    session_id: str,
    reservation_id: str,
    charges: Sequence[Charge],
    now: int,
    classes: list[str],
    take_call_nonce: bool,
) -> SentReservation:
    """PostgreSQL, charges on distinct buckets: :func:`_pg_reservation`, then the session's
    counters as they are after it (a statement of its own, so it sees the charges), both sent
    without reading. A charge above its own limit is not sent (it is refused)."""
    fitting = [c for c in charges if c.amount <= min(c.limit, UINT256_MAX)]
    params: dict[str, object] = {
        "session_id": session_id,
        "now": now,
        "reservation_id": reservation_id,
        "charges": _charges_json(charges),
    }
    params.update(_class_parameters(classes))
    for i, charge in enumerate(fitting):
        params[f"bucket_{i}"] = charge.bucket
        params[f"window_{i}"] = charge.window
        params[f"amount_{i}"] = charge.amount
        params[f"limit_{i}"] = min(charge.limit, UINT256_MAX)
    statement = _pg_reservation(len(classes), len(fitting), take_call_nonce)
    try:
        cursor = statement.run(conn, params)
    except IntegrityError:
        raise AlreadyExists(f"reservation {reservation_id} exists") from None
    counters = _COUNTERS.run(conn, {"session_id": session_id})
    return SentReservation(
        reservation_id,
        session_id,
        now,
        classes,
        cursor=cursor,
        counters=counters,
        charges=charges,
        take_call_nonce=take_call_nonce,
    )


class Budget:
    """Reserve, settle and release usage for sessions."""

    _ATTEMPTS: Final = 5

    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------------ reserve

    def reserve(
        self,
        session_id: str,
        reservation_id: str,
        charges: Sequence[Charge],
        *,
        now: int,
        action_class: str | Sequence[str] | None = None,
    ) -> ReservationOutcome:
        """Atomically check the session and reserve every charge, or nothing (module docstring).

        ``action_class`` is the class (or classes, for a batch) of the request, checked against
        action-class freezes. Raises ``ValueError`` for a negative or over-uint256 amount or a
        negative limit, :class:`AlreadyExists` if ``reservation_id`` was used before, and
        :class:`StateChurn` if the session kept changing while a refusal was being explained.
        """
        for charge in charges:
            if not 0 <= charge.amount <= UINT256_MAX or charge.limit < 0:
                raise ValueError("a charge amount is a uint256 and its limit is non-negative")
        classes = _classes(action_class)
        for _ in range(self._ATTEMPTS):
            try:
                with self._db.writing() as conn:
                    try:
                        with pipeline(conn):  # the gate and the reservation: one round trip
                            self._db.pass_gate(conn)
                            sent = self._send(
                                conn, session_id, reservation_id, charges, now, classes, False
                            )
                    except IntegrityError:  # raised by the pipelined reservation statement
                        raise AlreadyExists(f"reservation {reservation_id} exists") from None
                    after, _ = sent.finish(conn)
            except _Retry:
                continue
            except _Refused as refused:
                # Nothing was written (the rollback undid any charge): report usage as it stands.
                return ReservationOutcome(
                    reservation_id, False, refused.reasons, self.usage_of(session_id)
                )
            return ReservationOutcome(reservation_id, True, (), after)
        raise StateChurn(f"session {session_id} kept changing while it was being checked")

    def reserve_in(
        self,
        conn: Connection,
        session_id: str,
        reservation_id: str,
        charges: Sequence[Charge],
        *,
        now: int,
        action_class: str | Sequence[str] | None = None,
        take_call_nonce: bool = False,
    ) -> ReservationOutcome:
        """:meth:`reserve` inside a transaction the caller holds (it must have passed the
        revocation gate). On refusal (``accepted`` false, ``usage`` empty) the caller must roll
        its transaction back: charges may be half-applied.

        ``take_call_nonce``: the session check also advances the session's call nonce, and the
        outcome's ``call_nonce`` is the one taken. The check's update row-locks the session, so
        the nonces taken are unique and in reservation order (one statement instead of a second
        update of the same row)."""
        sent = self.send_reservation(
            conn,
            session_id,
            reservation_id,
            charges,
            now=now,
            action_class=action_class,
            take_call_nonce=take_call_nonce,
        )
        return sent.outcome(conn)

    def send_reservation(
        self,
        conn: Connection,
        session_id: str,
        reservation_id: str,
        charges: Sequence[Charge],
        *,
        now: int,
        action_class: str | Sequence[str] | None = None,
        take_call_nonce: bool = False,
    ) -> SentReservation:
        """:meth:`reserve_in` in two halves, so that the caller can pipeline the statements
        (:func:`sessionward.store.sql.pipeline`) with others of its own: this sends them
        (on PostgreSQL without reading an answer), and :meth:`SentReservation.outcome`,
        called once the pipeline is over, reads the answers. Raises ``ValueError`` for an
        invalid charge (nothing sent); :class:`AlreadyExists` for a reused ``reservation_id``
        is raised by the statement (at the pipeline's end, when pipelined)."""
        return self._send(
            conn,
            session_id,
            reservation_id,
            charges,
            now,
            _classes(action_class),
            take_call_nonce,
        )

    def _send(
        self,
        conn: Connection,
        session_id: str,
        reservation_id: str,
        charges: Sequence[Charge],
        now: int,
        classes: list[str],
        take_call_nonce: bool,
    ) -> SentReservation:
        for charge in charges:
            if not 0 <= charge.amount <= UINT256_MAX or charge.limit < 0:
                raise ValueError("a charge amount is a uint256 and its limit is non-negative")
        if self._db.is_postgresql and len({c.bucket for c in charges}) == len(charges):
            return _send_in_one_statement(
                conn, session_id, reservation_id, charges, now, classes, take_call_nonce
            )
        try:
            done = self._reserve(
                conn,
                session_id,
                reservation_id,
                charges,
                now,
                classes,
                take_call_nonce=take_call_nonce,
            )
        except (_Retry, _Refused) as stopped:
            return SentReservation(reservation_id, session_id, now, classes, stopped=stopped)
        return SentReservation(reservation_id, session_id, now, classes, done=done)

    def _reserve(
        self,
        conn: Connection,
        session_id: str,
        reservation_id: str,
        charges: Sequence[Charge],
        now: int,
        classes: list[str],
        *,
        take_call_nonce: bool = False,
    ) -> tuple[Usage, int | None]:
        """Statement by statement (SQLite; PostgreSQL when two charges share a bucket): (usage
        after the reservation, the call nonce taken or None)."""
        check: dict[str, object] = {"session_id": session_id, "now": now}
        check.update(_class_parameters(classes))
        passed = _session_check(len(classes), take_call_nonce).run(conn, check).fetchone()
        if passed is None:
            raise _refusal(conn, session_id, now, classes)
        try:
            _HOLD.run(
                conn,
                {
                    "id": reservation_id,
                    "session_id": session_id,
                    "charges": _charges_json(charges),
                    "status": "held",
                    "created_at": now,
                    "settled_at": None,
                    "released_at": None,
                },
            )
        except IntegrityError:
            # Leaving the transaction rolls everything back.
            raise AlreadyExists(f"reservation {reservation_id} exists") from None
        call_nonce = int(passed[0]) - 1 if take_call_nonce else None
        if self._db.is_postgresql:
            failing = _charge_in_sql(conn, session_id, charges)
            if failing:
                raise _Refused(failing)
            return _usage(conn, session_id), call_nonce
        failing, counters = _charge_in_python(conn, session_id, charges)
        if failing:
            raise _Refused(failing)
        # Under the held write lock the counters just written are exactly what a re-read gives.
        return Usage(counters), call_nonce

    # ------------------------------------------------------------ settle/release

    def settle(self, reservation_id: str, *, now: int | None = None) -> bool:
        """``held`` → ``settled`` (the transaction went through; the amounts stay spent).

        True iff this call settled it; a settled or released reservation is left unchanged.
        """
        at = int(time.time()) if now is None else now
        with self._db.writing() as conn:
            return self.settle_in(conn, reservation_id, now=at)

    @staticmethod
    def settle_in(conn: Connection, reservation_id: str, *, now: int) -> bool:
        """:meth:`settle` inside a transaction the caller holds (a relayed call's outcome)."""
        result = conn.execute(
            update(reservations)
            .where(reservations.c.id == reservation_id, reservations.c.status == "held")
            .values(status="settled", settled_at=now)
        )
        return bool(result.rowcount == 1)

    def release(self, reservation_id: str, *, now: int | None = None) -> bool:
        """``held`` → ``released``, giving the amounts back to every bucket whose counter is still
        in the charge's window (a window that has since refilled has nothing to give back to).

        Idempotent: True only for the call that released it; False for an unknown, settled or
        already released reservation.
        """
        at = int(time.time()) if now is None else now
        with self._db.writing() as conn:
            return self.release_in(conn, reservation_id, now=at)

    def release_in(self, conn: Connection, reservation_id: str, *, now: int) -> bool:
        """:meth:`release` inside a transaction the caller holds (a relayed call's outcome)."""
        row = conn.execute(
            select(reservations.c.session_id).where(reservations.c.id == reservation_id)
        ).first()
        if row is None:
            return False
        session_id = row[0]
        if self._db.is_postgresql:
            # Same lock order as reserve (session row first), so usage updates serialise.
            conn.execute(select(sessions.c.id).where(sessions.c.id == session_id).with_for_update())
        released = conn.execute(
            update(reservations)
            .where(reservations.c.id == reservation_id, reservations.c.status == "held")
            .values(status="released", released_at=now)
            .returning(reservations.c.charges)
        ).first()
        if released is None:
            return False
        charges = _charges_from_json(released[0])
        if self._db.is_postgresql:
            for charge in charges:
                conn.execute(
                    _PG_GIVE_BACK,
                    {
                        "session_id": session_id,
                        "bucket": charge.bucket,
                        "window": charge.window,
                        "amount": Decimal(charge.amount),
                    },
                )
        else:
            _give_back_in_python(conn, session_id, charges)
        return True

    # -------------------------------------------------------------------- reads

    def usage_of(self, session_id: str) -> Usage:
        """The session's counters (held reservations included)."""
        with self._db.reading() as conn:
            return _usage(conn, session_id)

    def reservation(self, reservation_id: str) -> ReservationRecord | None:
        with self._db.reading() as conn:
            row = conn.execute(
                select(reservations).where(reservations.c.id == reservation_id)
            ).first()
        if row is None:
            return None
        m = row._mapping
        return ReservationRecord(
            id=m["id"],
            session_id=m["session_id"],
            charges=_charges_from_json(m["charges"]),
            status=cast(ReservationStatus, m["status"]),
            created_at=m["created_at"],
            settled_at=m["settled_at"],
            released_at=m["released_at"],
        )


# ---------------------------------------------------------------------- helpers


def _classes(action_class: str | Sequence[str] | None) -> list[str]:
    if action_class is None:
        return []
    if isinstance(action_class, str):
        return [action_class]
    return list(action_class)


def _why_refused(
    conn: Connection, session_id: str, now: int, classes: Sequence[str]
) -> list[ReasonCode]:
    """Every reason the session check fails, read in the refusing transaction."""
    row = conn.execute(
        text(
            """
            SELECT s.status, s.revoked_at, s.valid_after, s.expires_at, s.wallet_id,
                   s.credential_id, c.revoked_at AS c_revoked_at, c.expires_at AS c_expires_at,
                   w.frozen_at AS w_frozen_at
            FROM sessions s
            LEFT JOIN credentials c ON c.id = s.credential_id
            LEFT JOIN wallets w ON w.id = s.wallet_id
            WHERE s.id = :session_id
            """
        ),
        {"session_id": session_id},
    ).first()
    if row is None:
        return [ReasonCode.SESSION_UNKNOWN]
    s = row._mapping
    reasons: list[ReasonCode] = []
    if s["status"] == "revoked" or s["revoked_at"] is not None:
        reasons.append(ReasonCode.SESSION_REVOKED)
    elif s["status"] in ("pending_approval", "installing"):  # not yet active on chain
        reasons.append(ReasonCode.SESSION_PENDING_APPROVAL)
    elif s["status"] == "suspended":
        reasons.append(ReasonCode.SESSION_SUSPENDED)
    if s["valid_after"] > now:
        reasons.append(ReasonCode.SESSION_NOT_YET_VALID)
    if s["expires_at"] <= now:
        reasons.append(ReasonCode.SESSION_EXPIRED)
    if s["c_revoked_at"] is not None:
        reasons.append(ReasonCode.CREDENTIAL_REVOKED)
    elif s["c_expires_at"] is not None and s["c_expires_at"] <= now:
        reasons.append(ReasonCode.CREDENTIAL_EXPIRED)
    frozen = (
        _frozen_scopes(len(classes))
        .run(
            conn,
            {
                "wallet_id": s["wallet_id"],
                "credential_id": s["credential_id"],
                "session_id": session_id,
                **_class_parameters(classes),
            },
        )
        .fetchall()
    )
    scopes = {r[0] for r in frozen}
    if "global" in scopes:
        reasons.append(ReasonCode.GLOBAL_FREEZE)
    if "wallet" in scopes or s["w_frozen_at"] is not None:
        reasons.append(ReasonCode.WALLET_FROZEN)
    if "credential" in scopes and ReasonCode.CREDENTIAL_REVOKED not in reasons:
        # An ops freeze of a credential: the backend is cut off as if revoked.
        reasons.append(ReasonCode.CREDENTIAL_REVOKED)
    if "session" in scopes and ReasonCode.SESSION_SUSPENDED not in reasons:
        reasons.append(ReasonCode.SESSION_SUSPENDED)
    if "action_class" in scopes:
        reasons.append(ReasonCode.ACTION_CLASS_FROZEN)
    return reasons


def _charge_in_sql(
    conn: Connection, session_id: str, charges: Sequence[Charge]
) -> list[ReasonCode]:
    """PostgreSQL: one conditional upsert per charge; the reasons of those refused."""
    failing: list[ReasonCode] = []
    for charge in charges:
        limit = min(charge.limit, UINT256_MAX)
        if charge.amount > limit:
            failing.append(charge.reason)
            continue
        row = _PG_CHARGE.run(
            conn,
            {
                "session_id": session_id,
                "bucket": charge.bucket,
                "window": charge.window,
                "amount": charge.amount,
                "limit": limit,
            },
        ).fetchone()
        if row is None:
            failing.append(charge.reason)
    return _unique(failing)


def _read_counters(conn: Connection, session_id: str) -> dict[str, Counter]:
    rows = _COUNTERS.run(conn, {"session_id": session_id}).fetchall()
    return {bucket: Counter(window, int(amount)) for bucket, window, amount in rows}


def _charge_in_python(
    conn: Connection, session_id: str, charges: Sequence[Charge]
) -> tuple[list[ReasonCode], dict[str, Counter]]:
    """SQLite: read, add and compare exactly in Python under the held write lock; write only if
    every charge fits. Returns the reasons of the charges refused, and the session's counters
    as they now are (meaningful only when nothing was refused)."""
    counters = _read_counters(conn, session_id)
    changed: set[str] = set()
    failing: list[ReasonCode] = []
    for charge in charges:
        current = counters.get(charge.bucket)
        if current is None or current.window < charge.window:
            proposed = Counter(charge.window, charge.amount)
        else:
            proposed = Counter(current.window, current.amount + charge.amount)
        if proposed.amount > min(charge.limit, UINT256_MAX):
            failing.append(charge.reason)
            continue
        counters[charge.bucket] = proposed
        changed.add(charge.bucket)
    if failing:
        return _unique(failing), counters
    _set_counters(conn, session_id, {bucket: counters[bucket] for bucket in changed})
    return [], counters


def _give_back_in_python(conn: Connection, session_id: str, charges: Sequence[Charge]) -> None:
    counters = _read_counters(conn, session_id)
    given_back: dict[str, Counter] = {}
    for charge in charges:
        current = counters.get(charge.bucket)
        if current is None or current.window != charge.window:
            continue
        counters[charge.bucket] = Counter(current.window, max(0, current.amount - charge.amount))
        given_back[charge.bucket] = counters[charge.bucket]
    _set_counters(conn, session_id, given_back)


def _usage(conn: Connection, session_id: str) -> Usage:
    return Usage(_read_counters(conn, session_id))


def _unique(reasons: Sequence[ReasonCode]) -> list[ReasonCode]:
    return list(dict.fromkeys(reasons))


def _charges_json(charges: Sequence[Charge]) -> str:
    """Charges as JSON, amounts and limits as decimal strings (exact beyond 2**53)."""
    return orjson.dumps(
        [
            {
                "bucket": c.bucket,
                "window": c.window,
                "amount": str(c.amount),
                "limit": str(c.limit),
                "reason": c.reason.value,
            }
            for c in charges
        ]
    ).decode()


def _charges_from_json(document: str) -> tuple[Charge, ...]:
    items: list[dict[str, Any]] = json.loads(document)
    return tuple(
        Charge(
            bucket=item["bucket"],
            window=int(item["window"]),
            amount=int(item["amount"]),
            limit=int(item["limit"]),
            reason=ReasonCode(item["reason"]),
        )
        for item in items
    )
