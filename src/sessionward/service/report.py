"""The weekly delegation-health report (``sessionward report``): build, render, write.

:func:`build_report` reads the metrics of a period from the store (computed in SQL by
:mod:`sessionward.store.telemetry`); :func:`render` turns them into

- ``html``: one self-contained file (inline CSS, charts as base64 PNG, no external asset) that
  puts the headline numbers first (:mod:`sessionward.service.report_html`);
- ``md``: Markdown with the same numbers and tables;
- ``json``: exactly :meth:`WeeklyMetrics.to_json`.

Every format renders an empty period: rates with no denominator are shown as "n/a", never
computed, and the report says there were no delegated executions.

:func:`run_report` is the command's body: it opens the store from the settings, builds the
report of ``[since, until)`` (default: the 7 days ending now) and writes it.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, Literal, get_args

from sessionward.domain.report import Rate, WeeklyMetrics
from sessionward.store import Store, open_store
from sessionward.store.database import missing_sqlite_file, resolve_url

from .config import Settings

ReportFormat = Literal["html", "md", "json"]
FORMATS: Final[tuple[ReportFormat, ...]] = get_args(ReportFormat)
DEFAULT_PERIOD_S: Final = 7 * 86_400
TITLE: Final = "SessionWard delegation health"
EMPTY_PERIOD: Final = "No delegated executions in this period."
NOT_AVAILABLE: Final = "n/a"
MAX_CREDENTIALS: Final = 20
"""HTML and Markdown list the credentials with the most post-revocation attempts up to this
many (the JSON lists them all)."""


@dataclass(frozen=True, slots=True)
class Report:
    """The metrics of one period and when the report was made (unix seconds)."""

    metrics: WeeklyMetrics
    generated_at: int

    @property
    def is_empty(self) -> bool:
        """No delegated decision in the period (every decision rate is then undefined)."""
        return self.metrics.decisions == 0


@dataclass(frozen=True, slots=True)
class Headline:
    """One headline number as shown to a reader: label, value, and what it is out of;
    ``alarm`` when any of it is cause for concern (shown in red where colour can be)."""

    label: str
    value: str
    detail: str
    alarm: bool = False


def build_report(store: Store, since: int, until: int, *, now: int | None = None) -> Report:
    """The report of ``[since, until)``; ``now`` (default: the clock) is its generation time.
    Raises ``ValueError`` for an empty or inverted period."""
    metrics = store.telemetry.weekly(since, until)
    return Report(metrics, int(time.time()) if now is None else now)


def render(report: Report, fmt: ReportFormat) -> bytes:
    """``report`` as UTF-8 bytes in ``fmt`` (``html``, ``md`` or ``json``)."""
    if fmt == "json":
        return (json.dumps(report.metrics.to_json(), indent=2) + "\n").encode()
    if fmt == "md":
        return render_markdown(report).encode()
    if fmt == "html":
        from .report_html import render_html  # matplotlib is loaded only for HTML

        return render_html(report).encode()
    raise ValueError(f"unknown report format {fmt!r}; expected one of {list(FORMATS)}")


# --- shared wording -----------------------------------------------------------------------


def percent(rate: Rate) -> str:
    """``12.5%``, or ``n/a`` when the rate has no denominator."""
    value = rate.value
    return NOT_AVAILABLE if value is None else f"{100 * value:.1f}%"


def duration(seconds: float | None) -> str:
    """A duration for people: ``42 s``, ``5 min 03 s``, ``2 h 05 min``, ``3 d 4 h``
    (rounded to the second; ``n/a`` for None)."""
    if seconds is None:
        return NOT_AVAILABLE
    total = round(seconds)
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    elif minutes:
        text = f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    else:
        text = f"{secs} s"
    return sign + text


def instant(unix: int) -> str:
    """``2026-02-21 00:00 UTC``."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M UTC")


def period_text(metrics: WeeklyMetrics) -> str:
    return f"{instant(metrics.since)} to {instant(metrics.until)}"


def headlines(metrics: WeeklyMetrics) -> list[Headline]:
    """The four numbers a reader sees first, in order."""
    ttr = metrics.time_to_revoke
    credentials = len(metrics.post_revocation_by_credential)
    return [
        Headline(
            "Denial rate",
            percent(metrics.denial_rate),
            f"{metrics.denied} of {metrics.decisions} delegated decisions denied",
        ),
        Headline(
            "Post-revocation attempts",
            str(metrics.post_revocation_attempts),
            f"by {credentials} credential{'' if credentials == 1 else 's'}",
            alarm=metrics.post_revocation_attempts > 0,
        ),
        Headline(
            "Context-mismatch rate",
            percent(metrics.context_mismatch_rate),
            f"{metrics.context_mismatches} of {metrics.decisions} decisions "
            "on the wrong chain or account",
            alarm=metrics.context_mismatches > 0,
        ),
        Headline(
            "Time to revoke (p50 / p95)",
            f"{duration(ttr.p50_seconds)} / {duration(ttr.p95_seconds)}",
            f"{ttr.stopped} of {ttr.critical_alerts} critical alerts stopped the delegation",
        ),
    ]


DEFINITIONS: Final = (
    (
        "Delegated decisions",
        "policy decisions on prepare and execute requests; a call prepared and then executed "
        "is decided twice and counts twice.",
    ),
    ("Denial rate", "denied delegated decisions / delegated decisions (per class: within it)."),
    (
        "Reasons",
        "denied decisions carrying each reason code (a decision counts once per reason it "
        "carries), as a share of denials and of all decisions.",
    ),
    (
        "Context-mismatch rate",
        "decisions carrying CHAIN_MISMATCH or ACCOUNT_MISMATCH / delegated decisions.",
    ),
    (
        "Post-revocation attempts",
        "decisions carrying SESSION_REVOKED or CREDENTIAL_REVOKED.",
    ),
    (
        "Time to revoke",
        "for critical alerts whose action revoked, suspended or froze the delegation: action "
        "time minus alert time; nearest-rank percentiles.",
    ),
    (
        "Session lifetime",
        "approved sessions whose life ended in the period (revocation or expiry, whichever "
        "came first), from approval; a session counts under each of its action classes.",
    ),
)


# --- the sections, once for every format -------------------------------------------------

ChartName = Literal["denial_rate", "reasons", "daily", "time_to_revoke", "lifetime"]
"""The charts of the report; the HTML renderer draws each from the metrics."""


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    numeric: bool = False
    """Numbers align right where alignment can be set."""


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of cells under titled columns; a table with no rows reads "None in this period"."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart of the section; ``numbers`` is what it shows as a table, for a format without
    images (``None``: the section's table already holds them)."""

    name: ChartName
    alt: str
    numbers: Table | None = None


KeyFigure = tuple[str, str]
"""A key number of a section: (label, value as shown)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One question the report answers. Formats show, in this order, what they can of: the
    chart (or its numbers), the key figures (lines of them), the table, and a note on what
    was left out."""

    title: str
    chart: Chart | None = None
    figures: tuple[tuple[KeyFigure, ...], ...] = ()
    table: Table | None = None
    more: str | None = None


def sections(metrics: WeeklyMetrics) -> tuple[Section, ...]:
    """The report's sections after the headline numbers, in order."""
    m = metrics
    ttr = m.time_to_revoke
    tta = m.time_to_agreement
    lifetimes = [m.lifetime, *m.lifetime_by_class] if m.lifetime.sessions else []
    credentials = m.post_revocation_by_credential
    hidden = len(credentials) - MAX_CREDENTIALS
    return (
        Section(
            "Denials by action class",
            chart=Chart("denial_rate", "Denial rate per action class"),
            table=_tabled(
                ("Action class", "#Decisions", "#Denied", "#Denial rate"),
                (
                    (c.action_class, c.decisions, c.denied, percent(c.denial_rate))
                    for c in m.denials_by_class
                ),
            ),
        ),
        Section(
            "Denials by reason",
            chart=Chart("reasons", "Denied decisions per reason code"),
            table=_tabled(
                ("Reason", "#Denied decisions", "#Share of denials", "#Share of all decisions"),
                (
                    (r.reason, r.denied, percent(r.share_of_denials), percent(r.share_of_decisions))
                    for r in m.denials_by_reason
                ),
            ),
        ),
        Section(
            "Daily decisions",
            chart=Chart(
                "daily",
                "Allowed and denied decisions per day",
                _tabled(
                    ("Day (UTC)", "#Allowed", "#Denied"),
                    ((d.day, d.allowed, d.denied) for d in m.daily),
                ),
            ),
        ),
        Section(
            "Time to revoke after a critical alert",
            chart=Chart(
                "time_to_revoke",
                "Distribution of time to revocation",
                _tabled(
                    ("Time to act", "#Alerts"),
                    ((duration(d.seconds), d.count) for d in ttr.distribution),
                ),
            ),
            figures=(
                (
                    ("Critical alerts", str(ttr.critical_alerts)),
                    ("Stopped the delegation", str(ttr.stopped)),
                ),
                _percentiles(ttr.p50_seconds, ttr.p95_seconds, ttr.max_seconds),
            ),
        ),
        Section(
            "Database and chain agreement (the reconciler)",
            figures=(
                (
                    ("Disagreements seen", str(tta.disagreements)),
                    ("Agreeing again", str(tta.agreed)),
                ),
                _percentiles(tta.p50_seconds, tta.p95_seconds, tta.max_seconds),
            ),
        ),
        Section(
            "Session lifetime by action class",
            chart=Chart("lifetime", "Mean session lifetime per action class"),
            table=_tabled(
                ("Action class", "#Sessions ended", "#Mean lifetime"),
                (
                    (c.action_class or "all sessions", c.sessions, duration(c.mean_seconds))
                    for c in lifetimes
                ),
            ),
        ),
        Section(
            "Most-hit constraints per action class",
            table=_tabled(
                ("Action class", "#Denied", "Top reasons", "Top rules"),
                (
                    (
                        c.action_class,
                        c.denied,
                        ", ".join(f"{h.name} ({h.count})" for h in c.reasons) or "-",
                        ", ".join(f"{h.name} ({h.count})" for h in c.rules) or "-",
                    )
                    for c in m.top_constraints
                ),
            ),
        ),
        Section(
            "Post-revocation attempts by credential",
            table=_tabled(
                ("Credential", "#Attempts"),
                ((c.credential_id or "(none)", c.attempts) for c in credentials[:MAX_CREDENTIALS]),
            ),
            more=f"… and {hidden} more credentials (see the JSON)." if hidden > 0 else None,
        ),
    )


def _tabled(titles: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A table; a title starting with ``#`` is a numeric column (the ``#`` is not shown)."""
    columns = tuple(Column(t[1:], numeric=True) if t[:1] == "#" else Column(t) for t in titles)
    return Table(columns, tuple(tuple(row) for row in rows))


def _percentiles(p50: int | None, p95: int | None, most: int | None) -> tuple[KeyFigure, ...]:
    return (("p50", duration(p50)), ("p95", duration(p95)), ("Max", duration(most)))


# --- Markdown -----------------------------------------------------------------------------


def _cell(value: object) -> str:
    """A table cell: pipes escaped, no line breaks."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> list[str]:
    body = [f"| {' | '.join(_cell(c) for c in row)} |" for row in table.rows]
    if not body:
        return ["_None in this period._", ""]
    return [
        f"| {' | '.join(c.title for c in table.columns)} |",
        f"|{'|'.join('---' for _ in table.columns)}|",
        *body,
        "",
    ]


def _markdown_section(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    if section.figures:
        lines += [
            "- " + " · ".join(f"{label}: {value}" for label, value in line)
            for line in section.figures
        ]
        lines.append("")
    if section.chart is not None and section.chart.numbers is not None:
        lines += _table(section.chart.numbers)
    if section.table is not None:
        lines += _table(section.table)
    if section.more:
        lines += [section.more, ""]
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown: headline table first, then :func:`sections` (a chart is shown
    as its numbers), then the definitions."""
    m = report.metrics
    lines = [
        f"# {TITLE}",
        "",
        f"Period: {period_text(m)} · generated {instant(report.generated_at)}",
        "",
        "## Headline",
        "",
    ]
    if report.is_empty:
        lines += [f"**{EMPTY_PERIOD}**", ""]
    lines += _table(
        _tabled(("Metric", "Value", "Out of"), ((h.label, h.value, h.detail) for h in headlines(m)))
    )
    for section in sections(m):
        lines += _markdown_section(section)
    lines += ["## Definitions", ""]
    lines += [f"- **{term}**: {text}" for term, text in DEFINITIONS]
    return "\n".join(lines) + "\n"


# --- the command --------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """A point in time for ``--since``/``--until``: unix seconds (``1771632000``), a UTC date
    (``2026-02-21``, midnight) or an ISO 8601 date-time (UTC unless it names an offset).
    Raises ``ValueError`` otherwise."""
    value = text.strip()
    if re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (unix seconds or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def default_period(
    since: int | None, until: int | None, *, now: int | None = None
) -> tuple[int, int]:
    """``until`` defaults to now, ``since`` to 7 days before ``until``."""
    end = (int(time.time()) if now is None else now) if until is None else until
    return (end - DEFAULT_PERIOD_S if since is None else since), end


def run_report(
    settings: Settings,
    since: int | None,
    until: int | None,
    fmt: str,
    output: Path | None,
    *,
    now: int | None = None,
) -> int:
    """Write the report of ``[since, until)`` (defaults: :func:`default_period`) in ``fmt`` to
    ``output``, or to standard output when ``output`` is None. Returns the exit status: 0 when
    written; 2 for a bad format or period, a database that was never initialised or an output
    that cannot be written (the message goes to standard error). The report only reads: the
    database is never created or migrated here."""
    chosen = next((f for f in FORMATS if f == fmt), None)
    if chosen is None:
        return _refuse(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    start, end = default_period(since, until, now=now)
    if end <= start:
        return _refuse("the period must end after it starts (--until after --since)")
    url = resolve_url(settings.database_url, settings.data_dir)
    missing = missing_sqlite_file(url)
    if missing is not None:
        return _refuse(f"no database at {missing}: run `sessionward db upgrade` first")
    store = open_store(url, data_dir=settings.data_dir, schema=settings.database_schema)
    try:
        if store.current_revision() is None:
            return _refuse("the database is not initialised: run `sessionward db upgrade` first")
        body = render(build_report(store, start, end, now=now), chosen)
    finally:
        store.close()
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return 0
    try:
        output.write_bytes(body)
    except OSError as exc:
        return _refuse(f"cannot write {output}: {exc.strerror or exc}")
    print(f"report written to {output}", file=sys.stderr)
    return 0


def _refuse(message: str) -> int:
    print(f"report: {message}", file=sys.stderr)
    return 2


__all__ = [
    "FORMATS",
    "MAX_CREDENTIALS",
    "Chart",
    "ChartName",
    "Column",
    "Headline",
    "KeyFigure",
    "Report",
    "ReportFormat",
    "Section",
    "Table",
    "build_report",
    "default_period",
    "headlines",
    "parse_time",
    "render",
    "render_markdown",
    "run_report",
    "sections",
]
