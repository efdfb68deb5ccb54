"""Delegation-health telemetry: the weekly numbers of docs/design.md section 9, computed in SQL.

Every metric covers a half-open period ``[since, until)`` in unix seconds and is aggregated by
the database (no table is loaded into Python); the same statements run on SQLite and
PostgreSQL and return the same values. Portability rules followed here:

- counts and sums only (``COUNT``, ``SUM`` of integers): exact on both, whereas ``AVG`` is a
  float on SQLite and a ``NUMERIC`` on PostgreSQL. Means and rates are derived in Python from
  the exact integers by the report's records (:mod:`sessionward.domain.report`: ``Rate``,
  ``LifetimeByClass.mean_seconds``), which also write the JSON document;
- comma lists (``decision_events.reasons``, ``sessions.action_classes``) are split by a
  recursive CTE using ``substr`` and the position function (``instr`` on SQLite, ``strpos`` on
  PostgreSQL), so a decision counts once per reason it carries and a session once per class;
- percentiles are nearest-rank, picked in SQL with ``ROW_NUMBER()``: the p-th percentile of
  ``n`` sorted values is the value of rank ``ceil(p * n / 100)`` (integer arithmetic), which is
  one of the observed values, never an interpolation;
- ties in every ranking are broken by name in byte order (``COLLATE "C"`` on PostgreSQL, the
  default ``BINARY`` collation on SQLite), so orderings do not depend on the server's locale;
- all statements of :meth:`Telemetry.weekly` read one snapshot (a ``REPEATABLE READ``
  transaction on PostgreSQL, one deferred transaction on SQLite), so the numbers add up.

Definitions (the denominators):

Delegated decisions
    ``decision_events`` rows with ``request_kind`` in ``prepare``/``execute`` and ``at`` in the
    period. Every policy evaluation counts: a call that is prepared and then executed is
    evaluated twice (state may change in between) and counts twice. A decision without an
    action class counts under ``unknown``.
Denial rate
    denied delegated decisions / delegated decisions; per action class, the same within the
    class.
Per reason
    for each reason code R, the denied decisions carrying R (once each, however the list is
    written). ``share_of_decisions`` = that count / delegated decisions; ``share_of_denials`` =
    that count / denied decisions. A denial may carry several reasons, so the shares of
    denials add up to 1 or more.
Context-mismatch rate
    delegated decisions carrying ``CHAIN_MISMATCH`` or ``ACCOUNT_MISMATCH`` (once each) /
    delegated decisions.
Post-revocation attempts
    delegated decisions carrying ``SESSION_REVOKED`` or ``CREDENTIAL_REVOKED`` (once each),
    overall and per credential.
Most-hit constraints
    per action class, among its denied decisions: the reason codes (count of denials carrying
    each) and the ``rule`` values (count of denials whose first violation fired that rule), the
    ``top`` most frequent of each.
Session lifetime
    sessions that were approved and whose life *ended* in the period, the end being
    ``revoked_at`` if revoked before ``expires_at``, else ``expires_at``; lifetime = end -
    ``approved_at``. A session counts once overall and once under each of its action classes.
    (A period reaching into the future counts the expiries scheduled in it.)
Time to revoke
    critical alerts raised in the period whose recorded action stopped the delegation: a
    revocation (``revoked …`` / ``… revoked``), a suspension (``suspended …``) or an emergency
    freeze (``… frozen``); duration = ``action_at - at``. Reported as nearest-rank p50/p95,
    the maximum, and the distribution (each distinct duration with its count).
Daily decisions
    delegated decisions allowed/denied per UTC calendar day overlapping the period.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Integer,
    Select,
    Text,
    case,
    cast,
    collate,
    func,
    literal,
    or_,
    select,
)

from sessionward.domain.report import (
    CONTEXT_MISMATCH_REASONS,
    POST_REVOCATION_REASONS,
    ConstraintsByClass,
    CredentialAttempts,
    DailyDecisions,
    DenialsByClass,
    DenialsByReason,
    DurationCount,
    Hit,
    LifetimeByClass,
    TimeToAgreement,
    TimeToRevoke,
    WeeklyMetrics,
)

from .database import Database
from .decisions import DELEGATED_KINDS
from .schema import alerts, decision_events, sessions

UNKNOWN_CLASS: Final = "unknown"
"""The class a decision without an action class is counted under."""
STOPPING_ACTIONS: Final = ("revoked %", "% revoked", "suspended %", "% frozen")
"""``LIKE`` patterns (matched lower-cased) of the alert actions that stop a delegation (see
:mod:`sessionward.service.anomaly` and :mod:`sessionward.service.revocation`)."""
DAY_S: Final = 86_400


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


# --- queries ------------------------------------------------------------------------------


class Telemetry:
    """Read-only aggregate queries over decisions, sessions and alerts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def weekly(self, since: int, until: int, *, top: int = 5) -> WeeklyMetrics:
        """Every metric of ``[since, until)`` from one snapshot; ``top`` bounds the most-hit
        constraints listed per action class. Raises ``ValueError`` for an empty or inverted
        period or a ``top`` below 1."""
        if until <= since:
            raise ValueError("the period must end after it starts")
        if top < 1:
            raise ValueError("top must be at least 1")
        with self._snapshot() as conn:
            totals = self._totals(conn, since, until)
            decisions, denied = totals["decisions"], totals["denied"]
            by_class = self._denials_by_class(conn, since, until)
            lifetime, lifetime_by_class = self._lifetimes(conn, since, until)
            return WeeklyMetrics(
                since=since,
                until=until,
                decisions=decisions,
                denied=denied,
                context_mismatches=totals["mismatches"],
                post_revocation_attempts=totals["post_revocation"],
                denials_by_class=by_class,
                denials_by_reason=tuple(
                    DenialsByReason(reason, count, decisions, denied)
                    for reason, count in self._denials_by_reason(conn, since, until)
                ),
                top_constraints=self._top_constraints(conn, since, until, by_class, top),
                post_revocation_by_credential=self._post_revocation_by_credential(
                    conn, since, until
                ),
                lifetime=lifetime,
                lifetime_by_class=lifetime_by_class,
                time_to_revoke=self._time_to_revoke(conn, since, until),
                daily=self._daily(conn, since, until),
                time_to_agreement=self._time_to_agreement(conn, since, until),
            )

    # --- transaction and portability helpers -----------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One consistent read: REPEATABLE READ on PostgreSQL (READ COMMITTED would give each
        statement its own snapshot); on SQLite a deferred transaction already is one."""
        if not self._db.is_postgresql:
            with self._db.reading() as conn:
                yield conn
            return
        with self._db.engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def _bytewise(self, expr: ColumnElement[str]) -> ColumnElement[str]:
        """``expr`` for ordering in byte order, whatever the server's locale."""
        return collate(expr, "C") if self._db.is_postgresql else expr

    def _position(self, haystack: ColumnElement[str], needle: str) -> ColumnElement[int]:
        """1-based position of ``needle`` in ``haystack`` (0 when absent)."""
        fn = func.strpos if self._db.is_postgresql else func.instr
        position: ColumnElement[int] = fn(haystack, literal(needle, Text), type_=Integer())
        return position

    def _exploded(self, source: Select[Any], list_column: str, name: str) -> CTE:
        """One row per item of the comma list ``list_column`` of ``source`` (a recursive CTE
        with ``source``'s other columns plus ``item``); empty items are dropped by the callers
        (``item <> ''``)."""
        src = source.subquery(f"{name}_src")
        carried = [c for c in src.c if c.name != list_column]
        base = select(
            *carried,
            cast(literal(""), Text).label("item"),
            cast(src.c[list_column] + literal(",", Text), Text).label("rest"),
        ).where(src.c[list_column] != "")
        split = base.cte(name, recursive=True)
        comma = self._position(split.c.rest, ",")
        step = select(
            *[split.c[c.name] for c in carried],
            func.substr(split.c.rest, 1, comma - 1),
            func.substr(split.c.rest, comma + 1),
        ).where(split.c.rest != "")
        return split.union_all(step)

    # --- decisions -------------------------------------------------------------------------

    @staticmethod
    def _delegated(since: int, until: int) -> list[ColumnElement[bool]]:
        d = decision_events.c
        return [d.at >= since, d.at < until, d.request_kind.in_(DELEGATED_KINDS)]

    def _carries(self, reasons: Sequence[str]) -> ColumnElement[bool]:
        """The decision's reason list contains one of ``reasons`` as a whole item. A position
        test, not ``LIKE``: ``LIKE`` ignores ASCII case on SQLite but not on PostgreSQL, and
        ``_`` in a code would be a wildcard."""
        wrapped = literal(",", Text) + decision_events.c.reasons + literal(",", Text)
        return or_(*[self._position(wrapped, f",{r},") > 0 for r in reasons])

    @staticmethod
    def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def _totals(self, conn: Connection, since: int, until: int) -> dict[str, int]:
        d = decision_events.c
        row = conn.execute(
            select(
                func.count().label("decisions"),
                self._count_if(d.verdict == "deny").label("denied"),
                self._count_if(self._carries(CONTEXT_MISMATCH_REASONS)).label("mismatches"),
                self._count_if(self._carries(POST_REVOCATION_REASONS)).label("post_revocation"),
            ).where(*self._delegated(since, until))
        ).one()
        return {key: int(value) for key, value in row._mapping.items()}

    def _class_of_decision(self) -> ColumnElement[str]:
        return func.coalesce(decision_events.c.action_class, UNKNOWN_CLASS)

    def _denials_by_class(
        self, conn: Connection, since: int, until: int
    ) -> tuple[DenialsByClass, ...]:
        action_class = self._class_of_decision().label("action_class")
        statement = (
            select(
                action_class,
                func.count().label("decisions"),
                self._count_if(decision_events.c.verdict == "deny").label("denied"),
            )
            .where(*self._delegated(since, until))
            .group_by(action_class)
            .order_by(self._bytewise(action_class))
        )
        return tuple(
            DenialsByClass(str(row.action_class), int(row.decisions), int(row.denied))
            for row in conn.execute(statement)
        )

    def _denial_reasons(self, since: int, until: int) -> CTE:
        """Denied delegated decisions exploded to one row per reason: id, action_class, item."""
        d = decision_events.c
        source = select(d.id, self._class_of_decision().label("action_class"), d.reasons).where(
            *self._delegated(since, until), d.verdict == "deny"
        )
        return self._exploded(source, "reasons", "denial_reasons")

    def _denials_by_reason(self, conn: Connection, since: int, until: int) -> list[tuple[str, int]]:
        split = self._denial_reasons(since, until)
        count = func.count(split.c.id.distinct()).label("denied")
        statement = (
            select(split.c.item, count)
            .where(split.c.item != "")
            .group_by(split.c.item)
            .order_by(count.desc(), self._bytewise(split.c.item))
        )
        return [(str(row.item), int(row.denied)) for row in conn.execute(statement)]

    def _top_constraints(
        self,
        conn: Connection,
        since: int,
        until: int,
        by_class: Sequence[DenialsByClass],
        top: int,
    ) -> tuple[ConstraintsByClass, ...]:
        split = self._denial_reasons(since, until)
        reasons = self._ranked(
            conn,
            select(
                split.c.action_class,
                split.c.item.label("name"),
                func.count(split.c.id.distinct()).label("hits"),
            )
            .where(split.c.item != "")
            .group_by(split.c.action_class, split.c.item),
            top,
        )
        d = decision_events.c
        action_class = self._class_of_decision().label("action_class")
        rules = self._ranked(
            conn,
            select(action_class, d.rule.label("name"), func.count().label("hits"))
            .where(*self._delegated(since, until), d.verdict == "deny", d.rule.is_not(None))
            .group_by(action_class, d.rule),
            top,
        )
        return tuple(
            ConstraintsByClass(
                c.action_class,
                c.denied,
                tuple(reasons.get(c.action_class, ())),
                tuple(rules.get(c.action_class, ())),
            )
            for c in by_class
            if c.denied
        )

    def _ranked(self, conn: Connection, grouped: Select[Any], top: int) -> dict[str, list[Hit]]:
        """The ``top`` rows per ``action_class`` of ``grouped`` (columns action_class, name,
        hits), most hits first, ties by name in byte order."""
        counts = grouped.subquery("counts")
        rank = (
            func.row_number()
            .over(
                partition_by=counts.c.action_class,
                order_by=(counts.c.hits.desc(), self._bytewise(counts.c.name)),
            )
            .label("rank")
        )
        ranked = select(counts.c.action_class, counts.c.name, counts.c.hits, rank).subquery(
            "ranked"
        )
        statement = (
            select(ranked.c.action_class, ranked.c.name, ranked.c.hits)
            .where(ranked.c.rank <= top)
            .order_by(self._bytewise(ranked.c.action_class), ranked.c.rank)
        )
        result: dict[str, list[Hit]] = {}
        for row in conn.execute(statement):
            result.setdefault(str(row.action_class), []).append(Hit(str(row.name), int(row.hits)))
        return result

    def _post_revocation_by_credential(
        self, conn: Connection, since: int, until: int
    ) -> tuple[CredentialAttempts, ...]:
        d = decision_events.c
        attempts = func.count().label("attempts")
        statement = (
            select(d.credential_id, attempts)
            .where(*self._delegated(since, until), self._carries(POST_REVOCATION_REASONS))
            .group_by(d.credential_id)
            .order_by(attempts.desc(), self._bytewise(func.coalesce(d.credential_id, "")))
        )
        return tuple(
            CredentialAttempts(row.credential_id, int(row.attempts))
            for row in conn.execute(statement)
        )

    def _daily(self, conn: Connection, since: int, until: int) -> tuple[DailyDecisions, ...]:
        """Allowed/denied per UTC day; days of the period without decisions are zeros."""
        d = decision_events.c
        day = (d.at // DAY_S).label("day")
        statement = (
            select(
                day,
                self._count_if(d.verdict == "allow").label("allowed"),
                self._count_if(d.verdict == "deny").label("denied"),
            )
            .where(*self._delegated(since, until))
            .group_by(day)
        )
        counted = {int(r.day): (int(r.allowed), int(r.denied)) for r in conn.execute(statement)}
        first, last = since // DAY_S, (until - 1) // DAY_S
        return tuple(
            DailyDecisions(n * DAY_S, *counted.get(n, (0, 0))) for n in range(first, last + 1)
        )

    # --- sessions --------------------------------------------------------------------------

    def _lifetimes(
        self, conn: Connection, since: int, until: int
    ) -> tuple[LifetimeByClass, tuple[LifetimeByClass, ...]]:
        s = sessions.c
        ended = case(
            (s.revoked_at.is_not(None) & (s.revoked_at < s.expires_at), s.revoked_at),
            else_=s.expires_at,
        )
        source = (
            select(s.id, (ended - s.approved_at).label("seconds"), s.action_classes)
            .where(s.approved_at.is_not(None), ended >= since, ended < until)
            .subquery("ended_sessions")
        )
        overall = conn.execute(
            select(func.count(), func.coalesce(func.sum(source.c.seconds), 0))
        ).one()
        split = self._exploded(select(source), "action_classes", "session_classes")
        # a class listed twice on one session must not double its lifetime: sum per
        # (class, session) first, then over sessions
        per_session = (
            select(split.c.item, split.c.id, func.max(split.c.seconds).label("seconds"))
            .where(split.c.item != "")
            .group_by(split.c.item, split.c.id)
            .subquery("per_session")
        )
        count = func.count().label("sessions")
        statement = (
            select(per_session.c.item, count, func.sum(per_session.c.seconds).label("total"))
            .group_by(per_session.c.item)
            .order_by(self._bytewise(per_session.c.item))
        )
        by_class = tuple(
            LifetimeByClass(str(row.item), int(row.sessions), int(row.total))
            for row in conn.execute(statement)
        )
        return LifetimeByClass(None, int(overall[0]), int(overall[1])), by_class

    # --- alerts ----------------------------------------------------------------------------

    def _time_to_agreement(self, conn: Connection, since: int, until: int) -> TimeToAgreement:
        a = alerts.c
        raised = [a.rule == "chain_disagreement", a.at >= since, a.at < until]
        total = int(conn.execute(select(func.count()).where(*raised)).scalar_one())
        rows = conn.execute(
            select(a.action_at - a.at).where(*raised, a.action_at.is_not(None))
        ).all()
        seconds = sorted(int(r[0]) for r in rows)
        if not seconds:
            return TimeToAgreement(total, 0)

        def nearest_rank(p: int) -> int:
            return seconds[(p * len(seconds) + 99) // 100 - 1]

        return TimeToAgreement(total, len(seconds), nearest_rank(50), nearest_rank(95), seconds[-1])

    def _time_to_revoke(self, conn: Connection, since: int, until: int) -> TimeToRevoke:
        a = alerts.c
        critical = [a.severity == "critical", a.at >= since, a.at < until]
        stopping = [
            a.action_at.is_not(None),
            # lower(): LIKE is case-insensitive on SQLite only
            or_(*[func.lower(a.action_taken).like(p) for p in STOPPING_ACTIONS]),
        ]
        seconds = (a.action_at - a.at).label("seconds")
        total = int(conn.execute(select(func.count()).where(*critical)).scalar_one())
        ranked = (
            select(
                seconds,
                func.row_number().over(order_by=seconds).label("rank"),
                func.count().over().label("n"),
            )
            .where(*critical, *stopping)
            .subquery("ranked")
        )
        r = ranked.c

        def at_percentile(p: int) -> ColumnElement[Any]:
            # nearest rank: ceil(p * n / 100) in integer arithmetic
            return func.max(case((r.rank == (p * r.n + 99) // 100, r.seconds)))

        row = conn.execute(
            select(func.count(), at_percentile(50), at_percentile(95), func.max(r.seconds))
        ).one()
        distribution_query = (
            select(seconds, func.count().label("alerts"))
            .where(*critical, *stopping)
            .group_by(seconds)
            .order_by(seconds)
        )
        return TimeToRevoke(
            critical_alerts=total,
            stopped=int(row[0]),
            p50_seconds=_opt_int(row[1]),
            p95_seconds=_opt_int(row[2]),
            max_seconds=_opt_int(row[3]),
            distribution=tuple(
                DurationCount(int(d.seconds), int(d.alerts))
                for d in conn.execute(distribution_query)
            ),
        )


__all__ = [
    "STOPPING_ACTIONS",
    "UNKNOWN_CLASS",
    "Telemetry",
]
