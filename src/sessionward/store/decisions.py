"""Decision events: one row per policy decision, the raw material of the weekly report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, cast

from sqlalchemy import ColumnElement, Connection, Row, func, literal, or_, select

from .database import Database
from .schema import decision_events
from .sql import insert_of

_INSERT = insert_of(decision_events)

Verdict = Literal["allow", "deny"]
DELEGATED_KINDS: Final = ("prepare", "execute")
"""The ``request_kind`` values of policy decisions on delegated call requests (the population
of every decision metric); other kinds record something else (``relay``: a relayed call's
outcome)."""


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """A decision: its verdict, every reason code (empty for an allow), the rule that fired,
    and how long the decision took (``latency_us``). ``request_kind`` names the request
    (``prepare``, ``execute``, …)."""

    id: str
    at: int
    verdict: Verdict
    reasons: tuple[str, ...]
    latency_us: int
    request_kind: str
    session_id: str | None = None
    wallet_id: str | None = None
    credential_id: str | None = None
    action_class: str | None = None
    rule: str | None = None


def _event(row: Row[tuple[object, ...]]) -> DecisionEvent:
    m = row._mapping
    reasons = m["reasons"]
    return DecisionEvent(
        id=m["id"],
        at=m["at"],
        verdict=cast(Verdict, m["verdict"]),
        reasons=tuple(reasons.split(",")) if reasons else (),
        latency_us=m["latency_us"],
        request_kind=m["request_kind"],
        session_id=m["session_id"],
        wallet_id=m["wallet_id"],
        credential_id=m["credential_id"],
        action_class=m["action_class"],
        rule=m["rule"],
    )


def _row(event: DecisionEvent) -> dict[str, object]:
    return {
        "id": event.id,
        "at": event.at,
        "session_id": event.session_id,
        "wallet_id": event.wallet_id,
        "credential_id": event.credential_id,
        "action_class": event.action_class,
        "verdict": event.verdict,
        "reasons": ",".join(event.reasons),
        "rule": event.rule,
        "latency_us": event.latency_us,
        "request_kind": event.request_kind,
    }


class Decisions:
    """Append and read decision events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, event: DecisionEvent) -> None:
        """Store one event. Reason codes contain no comma (they are upper-case words)."""
        if event.verdict not in ("allow", "deny"):
            raise ValueError("a verdict is 'allow' or 'deny'")
        if any("," in reason for reason in event.reasons):
            raise ValueError("reason codes contain no comma")
        # Inside a unit of work on PostgreSQL: sent with the unit's next statement or commit.
        _INSERT.run_later(self._db, _row(event))

    @staticmethod
    def record_in(conn: Connection, event: DecisionEvent) -> None:
        """:meth:`record` inside a transaction the caller holds: on PostgreSQL inside a unit
        of work, owed to it and sent with its next statement or its end
        (:meth:`~sessionward.store.sql.Sql.run_owed`: a new event's row cannot miss)."""
        _INSERT.run_owed(conn, _row(event))

    def count_since(
        self,
        since: int,
        *,
        session_id: str | None = None,
        credential_id: str | None = None,
        verdict: Verdict | None = None,
        any_reason: tuple[str, ...] = (),
    ) -> int:
        """How many events at or after ``since`` match every given filter (``any_reason``: at
        least one of these reason codes)."""
        conditions: list[ColumnElement[bool]] = [decision_events.c.at >= since]
        if session_id is not None:
            conditions.append(decision_events.c.session_id == session_id)
        if credential_id is not None:
            conditions.append(decision_events.c.credential_id == credential_id)
        if verdict is not None:
            conditions.append(decision_events.c.verdict == verdict)
        if any_reason:
            # reasons is a comma list: match ",CODE," inside ",reasons," so codes never overlap
            conditions.append(
                or_(
                    *[
                        (literal(",") + decision_events.c.reasons + literal(",")).contains(f",{r},")
                        for r in any_reason
                    ]
                )
            )
        with self._db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(decision_events).where(*conditions)
                ).scalar_one()
            )

    def between(self, since: int, until: int) -> list[DecisionEvent]:
        """Events with ``since <= at < until``, in time order."""
        return self._list(decision_events.c.at >= since, decision_events.c.at < until)

    def delegated_between(self, since: int, until: int) -> list[DecisionEvent]:
        """Policy decisions on delegated requests (:data:`DELEGATED_KINDS`) with
        ``since <= at < until``, in time order."""
        return self._list(
            decision_events.c.at >= since,
            decision_events.c.at < until,
            decision_events.c.request_kind.in_(DELEGATED_KINDS),
        )

    def of_session(self, session_id: str) -> list[DecisionEvent]:
        """Events of one session, in time order."""
        return self._list(decision_events.c.session_id == session_id)

    def _list(self, *conditions: ColumnElement[bool]) -> list[DecisionEvent]:
        statement = (
            select(decision_events)
            .where(*conditions)
            .order_by(decision_events.c.at, decision_events.c.id)
        )
        with self._db.reading() as conn:
            return [_event(row) for row in conn.execute(statement)]
