"""The HTML rendering of the weekly report: one self-contained file a security lead reads in two
minutes.

Order: the four headline numbers, then one section per question, each a chart and the table
behind it, then the definitions. Charts are drawn with matplotlib's Agg canvas (no pyplot, no
global state, safe in a server thread) and embedded as base64 PNG ``data:`` URIs; the CSS is
inline and uses the reader's system fonts, so the file loads nothing from anywhere. Every
value that came from the database is HTML-escaped.

A chart with nothing to show is still drawn, as a panel saying so, so the layout (and the
number of images) is the same for every period.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sessionward.domain.report import (
    CONTEXT_MISMATCH_REASONS,
    POST_REVOCATION_REASONS,
    DailyDecisions,
    DenialsByClass,
    DenialsByReason,
    LifetimeByClass,
    TimeToRevoke,
    WeeklyMetrics,
)

from .report import (
    DEFINITIONS,
    EMPTY_PERIOD,
    TITLE,
    ChartName,
    Column,
    KeyFigure,
    Report,
    Section,
    Table,
    duration,
    headlines,
    instant,
    percent,
    period_text,
    sections,
)

ALLOWED_COLOR: Final = "#0f766e"
DENIED_COLOR: Final = "#b91c1c"
NEUTRAL_COLOR: Final = "#475569"
ALARM_COLOR: Final = "#b91c1c"
INK: Final = "#0f172a"
MUTED: Final = "#64748b"
DPI: Final = 110
WIDTH_IN: Final = 8.0
MAX_BARS: Final = 15
"""Horizontal bar charts show at most this many rows (the tables list them all)."""
NO_DATA: Final = "No data in this period"

TTR_BUCKETS: Final = (
    (0, 1, "< 1 s"),
    (1, 5, "1–5 s"),
    (5, 30, "5–30 s"),
    (30, 60, "30 s–1 min"),
    (60, 300, "1–5 min"),
    (300, 900, "5–15 min"),
    (900, 3600, "15 min–1 h"),
    (3600, None, "≥ 1 h"),
)
"""Time-to-revoke histogram buckets, ``[low, high)`` seconds."""

CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f8fafc; color: #0f172a;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 32px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 18px; margin: 0 0 12px; }
.period { color: #64748b; margin: 0 0 24px; }
.empty { background: #fff7ed; border: 1px solid #fed7aa; border-radius: 8px; padding: 12px 16px;
  font-weight: 600; margin: 0 0 24px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 32px; }
@media (max-width: 760px) { .cards { grid-template-columns: repeat(2, 1fr); } }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 10px; padding: 14px 16px; }
.card .label { color: #64748b; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 28px; font-weight: 700; font-variant-numeric: tabular-nums; margin: 4px 0; }
.card.alarm .value { color: #b91c1c; }
.card .detail { color: #475569; font-size: 13px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 10px; padding: 20px;
  margin-bottom: 20px; }
section img { display: block; width: 100%; height: auto; margin: 0 0 12px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { color: #475569; font-weight: 600; font-size: 13px; }
td.num, th.num { text-align: right; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.note { color: #64748b; font-size: 13px; margin: 8px 0 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; font-size: 14px; }
dt { font-weight: 600; }
dd { margin: 0; color: #334155; }
footer { color: #64748b; font-size: 13px; margin-top: 24px; }
"""


# --- charts -------------------------------------------------------------------------------


def _figure(height_in: float) -> tuple[Figure, Axes]:
    """A figure with one axes. Margins are set in inches rather than found by ``tight_layout``,
    which draws the whole figure once more."""
    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(
        left=0.75 / WIDTH_IN,
        right=1 - 0.2 / WIDTH_IN,
        top=1 - 0.42 / height_in,
        bottom=0.5 / height_in,
    )
    axes = figure.add_subplot()
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.spines["left"].set_color("#cbd5e1")
    axes.spines["bottom"].set_color("#cbd5e1")
    axes.tick_params(colors=MUTED, labelsize=9)
    return figure, axes


def _png(figure: Figure) -> str:
    """The figure as a base64 PNG (no timestamp or software metadata: same data, same bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _no_data(title: str) -> str:
    figure = Figure(figsize=(WIDTH_IN, 1.6), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.text(0.5, 0.62, title, ha="center", va="center", fontsize=11, color=INK)
    figure.text(0.5, 0.35, NO_DATA, ha="center", va="center", fontsize=10, color=MUTED)
    return _png(figure)


def _bar_height(rows: int) -> float:
    return 1.1 + 0.34 * rows


def _horizontal_bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    annotations: Sequence[str],
    colors: Sequence[str],
    xlabel: str,
    min_top: float = 0.0,
    counts: bool = False,
) -> str:
    """One bar per row, first row on top, each annotated at its end. The left margin fits the
    widest label and the x range fits the widest annotation (both measured, not guessed), and
    reaches at least ``min_top``."""
    figure, axes = _figure(_bar_height(len(labels)))
    positions = list(range(len(labels)))
    axes.barh(positions, values, color=list(colors), height=0.6)
    axes.set_yticks(positions, labels=list(labels), fontsize=9, color=INK)
    axes.invert_yaxis()
    notes = [
        axes.annotate(
            note,
            (value, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
            color=INK,
        )
        for y, (value, note) in enumerate(zip(values, annotations, strict=True))
    ]
    label_px = max(t.get_window_extent().width for t in axes.get_yticklabels())
    figure.subplots_adjust(left=(label_px / DPI + 0.3) / WIDTH_IN)
    axes_px = axes.get_window_extent().width
    # a bar ending at v, then its note, fit when v / top * axes_px + note_px <= axes_px
    top = max(
        [min_top, 1e-9]
        + [
            value * axes_px / max(axes_px - note.get_window_extent().width - 10, 1)
            for value, note in zip(values, notes, strict=True)
        ]
    )
    axes.set_xlim(0, top)
    if counts:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(xlabel, fontsize=9, color=MUTED)
    axes.set_title(title, loc="left", fontsize=11, color=INK)
    return _png(figure)


def denial_rate_chart(by_class: Sequence[DenialsByClass]) -> str:
    """Denial rate per action class, highest first."""
    title = "Denial rate per action class"
    rows = sorted(
        (c for c in by_class if c.decisions),
        key=lambda c: (-(c.denial_rate.value or 0.0), c.action_class),
    )[:MAX_BARS]
    if not rows:
        return _no_data(title)
    return _horizontal_bars(
        title,
        [f"{c.action_class} ({c.decisions})" for c in rows],
        [100 * (c.denial_rate.value or 0.0) for c in rows],
        [f"{percent(c.denial_rate)}  ({c.denied}/{c.decisions})" for c in rows],
        [DENIED_COLOR] * len(rows),
        "% of the class's delegated decisions denied",
        min_top=100.0,
    )


def reasons_chart(by_reason: Sequence[DenialsByReason]) -> str:
    """Denied decisions per reason code, most frequent first; context mismatches and
    post-revocation attempts in red."""
    title = "Denials by reason"
    rows = list(by_reason[:MAX_BARS])
    if not rows:
        return _no_data(title)
    alarming = set(CONTEXT_MISMATCH_REASONS) | set(POST_REVOCATION_REASONS)
    return _horizontal_bars(
        title,
        [r.reason for r in rows],
        [float(r.denied) for r in rows],
        [f"{r.denied}  ({percent(r.share_of_denials)} of denials)" for r in rows],
        [ALARM_COLOR if r.reason in alarming else NEUTRAL_COLOR for r in rows],
        "denied decisions carrying the reason",
        counts=True,
    )


def daily_chart(daily: Sequence[DailyDecisions]) -> str:
    """Delegated decisions per UTC day, allowed and denied stacked."""
    title = "Delegated decisions per day (UTC)"
    if not any(d.allowed or d.denied for d in daily):
        return _no_data(title)
    figure, axes = _figure(2.8)
    positions = list(range(len(daily)))
    allowed = [d.allowed for d in daily]
    denied = [d.denied for d in daily]
    axes.bar(positions, allowed, color=ALLOWED_COLOR, width=0.65, label="allowed")
    axes.bar(positions, denied, bottom=allowed, color=DENIED_COLOR, width=0.65, label="denied")
    axes.set_xticks(positions, labels=[d.day[5:] for d in daily], fontsize=9)
    axes.set_ylabel("decisions", fontsize=9, color=MUTED)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(frameon=False, fontsize=9, loc="upper left", ncols=2)
    axes.set_ylim(0, max(a + d for a, d in zip(allowed, denied, strict=True)) * 1.25)
    axes.set_title(title, loc="left", fontsize=11, color=INK)
    return _png(figure)


def time_to_revoke_chart(ttr: TimeToRevoke) -> str:
    """How long critical alerts took to stop the delegation, bucketed."""
    title = "Time from critical alert to revocation"
    if not ttr.distribution:
        return _no_data(title)
    counts = [0] * len(TTR_BUCKETS)
    for entry in ttr.distribution:
        seconds = max(entry.seconds, 0)
        for i, (low, high, _label) in enumerate(TTR_BUCKETS):
            if seconds >= low and (high is None or seconds < high):
                counts[i] += entry.count
                break
    figure, axes = _figure(2.6)
    positions = list(range(len(TTR_BUCKETS)))
    axes.bar(positions, counts, color=NEUTRAL_COLOR, width=0.65)
    axes.set_xticks(positions, labels=[label for _l, _h, label in TTR_BUCKETS], fontsize=8.5)
    axes.set_ylabel("alerts", fontsize=9, color=MUTED)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max(counts) * 1.25)
    for x, count in enumerate(counts):
        if count:
            axes.text(x, count, str(count), ha="center", va="bottom", fontsize=8.5, color=INK)
    axes.set_title(
        f"{title}: p50 {duration(ttr.p50_seconds)}, p95 {duration(ttr.p95_seconds)}",
        loc="left",
        fontsize=11,
        color=INK,
    )
    return _png(figure)


def lifetime_chart(by_class: Sequence[LifetimeByClass]) -> str:
    """Mean session lifetime per action class, longest first."""
    title = "Mean session lifetime per action class"
    rows = sorted(
        (c for c in by_class if c.sessions),
        key=lambda c: (-(c.mean_seconds or 0.0), c.action_class or ""),
    )[:MAX_BARS]
    if not rows:
        return _no_data(title)
    longest = max(c.mean_seconds or 0.0 for c in rows)
    unit, scale = ("hours", 3600.0) if longest >= 2 * 3600 else ("minutes", 60.0)
    return _horizontal_bars(
        title,
        [f"{c.action_class} ({c.sessions})" for c in rows],
        [(c.mean_seconds or 0.0) / scale for c in rows],
        [duration(c.mean_seconds) for c in rows],
        [ALLOWED_COLOR] * len(rows),
        f"mean lifetime ({unit}); sessions that ended in the period",
    )


# --- page ---------------------------------------------------------------------------------


def _img(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{escape(alt)}">'


def _table(table: Table) -> str:
    """A table; numeric columns align right."""
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if column.numeric else ''}>{escape(str(cell))}</td>"
            for cell, column in zip(row, table.columns, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    if not body:
        return '<p class="note">None in this period.</p>'
    head = "".join(
        f"<th{' class=num' if c.numeric else ''}>{escape(c.title)}</th>" for c in table.columns
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(lines: Sequence[Sequence[KeyFigure]]) -> str:
    """A section's key figures as one row of a table, each under its label."""
    figures = [figure for line in lines for figure in line]
    if not figures:
        return ""
    columns = tuple(Column(label, numeric=True) for label, _value in figures)
    return _table(Table(columns, (tuple(value for _label, value in figures),)))


CHARTS: Final[Mapping[ChartName, Callable[[WeeklyMetrics], str]]] = {
    "denial_rate": lambda m: denial_rate_chart(m.denials_by_class),
    "reasons": lambda m: reasons_chart(m.denials_by_reason),
    "daily": lambda m: daily_chart(m.daily),
    "time_to_revoke": lambda m: time_to_revoke_chart(m.time_to_revoke),
    "lifetime": lambda m: lifetime_chart(m.lifetime_by_class),
}
"""Each chart of the report's sections, drawn from the metrics (base64 PNG)."""


def _section(section: Section, metrics: WeeklyMetrics) -> str:
    chart = section.chart
    parts = [
        _img(CHARTS[chart.name](metrics), chart.alt) if chart is not None else "",
        _figures(section.figures),
        _table(section.table) if section.table is not None else "",
        f'<p class="note">{escape(section.more)}</p>' if section.more else "",
    ]
    return f"<section><h2>{escape(section.title)}</h2>{''.join(parts)}</section>"


def _cards(metrics: WeeklyMetrics) -> str:
    cards = [
        f'<div class="card{" alarm" if h.alarm else ""}"><div class="label">{escape(h.label)}</div>'
        f'<div class="value">{escape(h.value)}</div><div class="detail">{escape(h.detail)}</div></div>'
        for h in headlines(metrics)
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def render_html(report: Report) -> str:
    """The whole page (UTF-8 text): the headline cards, then :func:`~.report.sections` (each
    chart drawn), then the definitions."""
    m = report.metrics
    body = "".join(_section(section, m) for section in sections(m))
    definitions = "".join(
        f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in DEFINITIONS
    )
    empty = f'<p class="empty">{escape(EMPTY_PERIOD)}</p>' if report.is_empty else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(TITLE)}: {escape(period_text(m))}</title>"
        f"<style>{CSS}</style></head><body><main>"
        f"<header><h1>{escape(TITLE)}</h1>"
        f'<p class="period">{escape(period_text(m))} · generated '
        f"{escape(instant(report.generated_at))}</p></header>"
        f"{empty}{_cards(m)}{body}"
        f"<section><h2>Definitions</h2><dl>{definitions}</dl></section>"
        "<footer>SessionWard · numbers computed by the database from decision events, "
        "sessions and alerts.</footer>"
        "</main></body></html>\n"
    )


__all__ = [
    "CHARTS",
    "daily_chart",
    "denial_rate_chart",
    "lifetime_chart",
    "reasons_chart",
    "render_html",
    "time_to_revoke_chart",
]
