"""On a generated busy week (2,000 decisions, 40 sessions, 60 alerts) the SQL metrics equal the
definitions applied row by row in Python, and SQLite and PostgreSQL agree."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from telemetry_support import DAY, PG_URL, SINCE, UNTIL, record_busy_week

from sessionward.domain.report import (
    ConstraintsByClass,
    CredentialAttempts,
    DailyDecisions,
    DenialsByClass,
    DenialsByReason,
    DurationCount,
    Hit,
    LifetimeByClass,
    TimeToRevoke,
    WeeklyMetrics,
)
from sessionward.service.report import build_report, percent, render
from sessionward.store import Store, open_store

TOP = 3
BUSY_WALLET = "w1"  # the first wallet the busy writer creates


@pytest.fixture(scope="module")
def busy_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(data_dir=tmp_path_factory.mktemp("busy"))
    store.upgrade()
    record_busy_week(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def busy_postgresql() -> Iterator[Store]:
    schema = f"sw_telemetry_busy_{uuid.uuid4().hex[:8]}"
    store = open_store(PG_URL, schema=schema)
    try:
        store.upgrade()
        record_busy_week(store)
        yield store
    finally:
        store.close()
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def busy(backend: str, request: pytest.FixtureRequest) -> Store:
    store: Store = request.getfixturevalue(f"busy_{backend}")
    return store


def _ranked(counter: Counter[str]) -> tuple[Hit, ...]:
    return tuple(Hit(n, c) for n, c in sorted(counter.items(), key=lambda i: (-i[1], i[0]))[:TOP])


def metrics_by_hand(store: Store, since: int, until: int) -> WeeklyMetrics:
    """The module docstring's definitions of sessionward.store.telemetry, row by row."""
    rows = [
        e for e in store.decisions.between(since, until) if e.request_kind in ("prepare", "execute")
    ]
    denials = [e for e in rows if e.verdict == "deny"]
    classes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reasons: Counter[str] = Counter()
    class_reasons: dict[str, Counter[str]] = defaultdict(Counter)
    class_rules: dict[str, Counter[str]] = defaultdict(Counter)
    for e in rows:
        cls = e.action_class or "unknown"
        classes[cls][0] += 1
        if e.verdict == "deny":
            classes[cls][1] += 1
            for reason in set(e.reasons):
                reasons[reason] += 1
                class_reasons[cls][reason] += 1
            if e.rule is not None:
                class_rules[cls][e.rule] += 1
    post = [e for e in rows if {"SESSION_REVOKED", "CREDENTIAL_REVOKED"} & set(e.reasons)]
    by_credential = Counter(e.credential_id or "" for e in post)
    ended: list[tuple[int, tuple[str, ...]]] = []
    for s in store.sessions.of_wallet(BUSY_WALLET):
        end = (
            s.revoked_at
            if s.revoked_at is not None and s.revoked_at < s.expires_at
            else s.expires_at
        )
        if s.approved_at is not None and since <= end < until:
            ended.append((end - s.approved_at, s.action_classes))
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for seconds, session_classes in ended:
        for cls in set(session_classes):
            per_class[cls][0] += 1
            per_class[cls][1] += seconds
    critical = [a for a in store.alerts.between(since, until) if a.severity == "critical"]
    took = sorted(
        a.action_at - a.at
        for a in critical
        if a.action_at is not None
        and a.action_taken is not None
        and (
            a.action_taken.startswith(("revoked ", "suspended "))
            or a.action_taken.endswith((" revoked", " frozen"))
        )
    )
    n = len(took)
    daily = Counter((e.at // DAY, e.verdict) for e in rows)
    return WeeklyMetrics(
        since=since,
        until=until,
        decisions=len(rows),
        denied=len(denials),
        context_mismatches=sum(
            1 for e in rows if {"CHAIN_MISMATCH", "ACCOUNT_MISMATCH"} & set(e.reasons)
        ),
        post_revocation_attempts=len(post),
        denials_by_class=tuple(DenialsByClass(c, *classes[c]) for c in sorted(classes)),
        denials_by_reason=tuple(
            DenialsByReason(r, c, len(rows), len(denials))
            for r, c in sorted(reasons.items(), key=lambda i: (-i[1], i[0]))
        ),
        top_constraints=tuple(
            ConstraintsByClass(c, classes[c][1], _ranked(class_reasons[c]), _ranked(class_rules[c]))
            for c in sorted(classes)
            if classes[c][1]
        ),
        post_revocation_by_credential=tuple(
            CredentialAttempts(c or None, k)
            for c, k in sorted(by_credential.items(), key=lambda i: (-i[1], i[0]))
        ),
        lifetime=LifetimeByClass(None, len(ended), sum(s for s, _ in ended)),
        lifetime_by_class=tuple(LifetimeByClass(c, *per_class[c]) for c in sorted(per_class)),
        time_to_revoke=TimeToRevoke(
            critical_alerts=len(critical),
            stopped=n,
            p50_seconds=took[(50 * n + 99) // 100 - 1] if n else None,
            p95_seconds=took[(95 * n + 99) // 100 - 1] if n else None,
            max_seconds=took[-1] if n else None,
            distribution=tuple(DurationCount(s, k) for s, k in sorted(Counter(took).items())),
        ),
        daily=tuple(
            DailyDecisions(d * DAY, daily[(d, "allow")], daily[(d, "deny")])
            for d in range(since // DAY, (until - 1) // DAY + 1)
        ),
    )


def test_busy_week_metrics_equal_the_definitions_applied_row_by_row(busy: Store) -> None:
    computed = busy.telemetry.weekly(SINCE, UNTIL, top=TOP)
    assert computed.decisions == 2000
    assert computed == metrics_by_hand(busy, SINCE, UNTIL)


def test_busy_week_totals_add_up(busy: Store) -> None:
    m = busy.telemetry.weekly(SINCE, UNTIL)
    assert sum(c.decisions for c in m.denials_by_class) == m.decisions
    assert sum(c.denied for c in m.denials_by_class) == m.denied
    assert sum(d.allowed + d.denied for d in m.daily) == m.decisions
    assert sum(c.attempts for c in m.post_revocation_by_credential) == m.post_revocation_attempts
    assert m.denied <= sum(r.denied for r in m.denials_by_reason) <= 2 * m.denied


def test_busy_week_sub_period_equals_the_definitions(busy: Store) -> None:
    since, until = SINCE + DAY + 4321, SINCE + 4 * DAY + 17
    assert busy.telemetry.weekly(since, until, top=TOP) == metrics_by_hand(busy, since, until)


@pytest.mark.postgres
def test_busy_week_is_identical_on_sqlite_and_postgresql(
    busy_sqlite: Store, busy_postgresql: Store
) -> None:
    assert busy_sqlite.telemetry.weekly(SINCE, UNTIL) == busy_postgresql.telemetry.weekly(
        SINCE, UNTIL
    )


def test_report_renders_a_busy_week_in_every_format(busy_sqlite: Store) -> None:
    report = build_report(busy_sqlite, SINCE, UNTIL, now=UNTIL)
    m = report.metrics
    html = render(report, "html").decode()
    md = render(report, "md").decode()
    assert html.count('<img src="data:image/png;base64,') == 5
    headline = f"{percent(m.denial_rate)} {m.denied} of {m.decisions} delegated decisions denied"
    assert headline in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert f"| Denial rate | {percent(m.denial_rate)} | {m.denied} of {m.decisions} " in md
    assert all(
        f"| {c.action_class} | {c.decisions} | {c.denied} |" in md for c in m.denials_by_class
    )
    assert json.loads(render(report, "json")) == m.to_json()
