"""The weekly report: headline numbers first, the same numbers in HTML, Markdown and JSON, an
empty week rendered without a division by zero, and the ``run_report`` command body."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from telemetry_support import DAY, PG_URL, SINCE, UNTIL, empty_metrics

from sessionward.domain.report import (
    ConstraintsByClass,
    CredentialAttempts,
    DenialsByClass,
    Hit,
    WeeklyMetrics,
)
from sessionward.service.config import Settings
from sessionward.service.report import (
    EMPTY_PERIOD,
    MAX_CREDENTIALS,
    Report,
    build_report,
    default_period,
    duration,
    parse_time,
    render,
    run_report,
    sections,
)
from sessionward.store import Store

GENERATED = UNTIL + 60
PNG = '<img src="data:image/png;base64,'
CHARTS = 5  # denial rate per class, reasons, daily, time to revoke, lifetime


@pytest.fixture(scope="module")
def week_report(week_store: Store) -> Report:
    return build_report(week_store, SINCE, UNTIL, now=GENERATED)


@pytest.fixture(scope="module")
def week_html(week_report: Report) -> str:
    return render(week_report, "html").decode()


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_report`` must use the settings given, not a URL the CI environment may set."""
    monkeypatch.delenv("SESSIONWARD_DATABASE_URL", raising=False)


def _text(html: str) -> str:
    """The page's text, tags removed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the hand-computed week -----------------------------------------------------------------


def test_html_puts_the_four_headline_numbers_before_any_chart(week_html: str) -> None:
    text = _text(week_html.split(PNG)[0])
    for label, value, detail in [
        ("Denial rate", "69.2%", "9 of 13 delegated decisions denied"),
        ("Post-revocation attempts", "3", "by 2 credentials"),
        ("Context-mismatch rate", "15.4%", "2 of 13 decisions"),
        ("Time to revoke (p50 / p95)", "2 s / 10 min", "6 of 8 critical alerts"),
    ]:
        assert f"{label} {value} {detail}" in text


def test_html_embeds_every_chart_as_a_png_and_loads_nothing_from_outside(week_html: str) -> None:
    assert week_html.count(PNG) == CHARTS
    for chart in re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', week_html):
        assert chart.startswith("iVBORw0KGgo")  # the PNG signature, base64
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", week_html)
    assert "<script" not in week_html and "<link" not in week_html and "@import" not in week_html


def test_html_tables_carry_the_per_class_reason_and_credential_numbers(week_html: str) -> None:
    text = _text(week_html)
    assert "erc20.transfer 4 3 75.0%" in text
    assert "swap.execute 8 5 62.5%" in text
    assert "SESSION_REVOKED 3 33.3% 23.1%" in text
    assert "c-one 2" in text and "c-two 1" in text
    assert "swap.execute 3 1 h 03 min" in text  # mean lifetime 11500 / 3 s
    assert "permissions[0xrouter].maxValuePerCall (2)" in text


def test_html_escapes_values_that_came_from_the_database() -> None:
    hostile = "<script>alert(1)</script>"
    metrics = replace(
        empty_metrics(),
        decisions=1,
        denied=1,
        denials_by_class=(DenialsByClass(hostile, 1, 1),),
        top_constraints=(
            ConstraintsByClass(hostile, 1, (Hit("RATE_LIMITED", 1),), (Hit("a<b&c", 1),)),
        ),
    )
    html = render(Report(metrics, GENERATED), "html").decode()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a&lt;b&amp;c" in html


def test_long_credential_lists_are_cut_in_html_and_markdown_but_not_in_json() -> None:
    metrics = replace(
        empty_metrics(),
        decisions=25,
        denied=25,
        post_revocation_attempts=25,
        post_revocation_by_credential=tuple(
            CredentialAttempts(f"c{i:02d}", 1) for i in range(MAX_CREDENTIALS + 5)
        ),
    )
    report = Report(metrics, GENERATED)
    md = render(report, "md").decode()
    html = render(report, "html").decode()
    assert "| c19 | 1 |" in md and "| c20 | 1 |" not in md and "and 5 more" in md
    assert ">c19<" in html and ">c20<" not in html and "and 5 more credentials" in html
    assert len(json.loads(render(report, "json"))["postRevocation"]["byCredential"]) == 25


def test_markdown_has_the_headline_table_and_every_section(week_report: Report) -> None:
    md = render(week_report, "md").decode()
    assert md.startswith("# SessionWard delegation health\n")
    assert "| Denial rate | 69.2% | 9 of 13 delegated decisions denied |" in md
    assert "| Post-revocation attempts | 3 | by 2 credentials |" in md
    assert "| Time to revoke (p50 / p95) | 2 s / 10 min |" in md
    assert "| erc20.transfer | 4 | 3 | 75.0% |" in md
    assert "| 2026-02-24 | 0 | 4 |" in md
    assert "| c-one | 2 |" in md
    assert md.index("## Headline") < md.index("## Denials by action class")
    assert EMPTY_PERIOD not in md


def test_markdown_and_html_render_the_same_sections(week_report: Report) -> None:
    md = render(week_report, "md").decode()
    text = _text(render(week_report, "html").decode())
    titles = [section.title for section in sections(week_report.metrics)]
    assert "Database and chain agreement (the reconciler)" in titles
    for section in sections(week_report.metrics):
        assert f"\n## {section.title}\n" in md
        assert f" {section.title} " in text
        for line in section.figures:
            assert "- " + " · ".join(f"{label}: {value}" for label, value in line) in md
            assert " ".join(value for _label, value in line) in text
    assert md.index("## Denials by action class") < md.index("## Post-revocation attempts")
    assert text.index("Denials by action class") < text.index("Post-revocation attempts by")


def test_json_is_exactly_the_metrics(week_report: Report, week: WeeklyMetrics) -> None:
    document = json.loads(render(week_report, "json"))
    assert document == week.to_json()
    assert WeeklyMetrics.from_json(document) == week


def test_an_unknown_format_is_refused(week_report: Report) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        render(week_report, "pdf")  # type: ignore[arg-type]


# --- an empty week --------------------------------------------------------------------------


def test_an_empty_week_renders_in_every_format_and_says_so(scratch_store: Store) -> None:
    report = build_report(scratch_store, SINCE, UNTIL, now=GENERATED)
    html = render(report, "html").decode()
    md = render(report, "md").decode()
    document = json.loads(render(report, "json"))
    assert EMPTY_PERIOD in html and EMPTY_PERIOD in md
    assert html.count(PNG) == CHARTS
    assert "Denial rate n/a 0 of 0 delegated decisions denied" in _text(html)
    assert "| Time to revoke (p50 / p95) | n/a / n/a |" in md
    assert document["decisions"]["denialRate"] == {"numerator": 0, "denominator": 0, "value": None}
    assert document["timeToRevoke"]["p50Seconds"] is None


# --- wording --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "n/a"),
        (0, "0 s"),
        (59.4, "59 s"),
        (60, "1 min"),
        (3_803, "1 h 03 min"),
        (125, "2 min 05 s"),
        (90_000, "1 d 1 h"),
        (172_800, "2 d"),
        (-5, "-5 s"),
    ],
)
def test_durations_are_written_for_people(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "unix"),
    [
        ("1771632000", SINCE),
        ("2026-02-21", SINCE),
        ("2026-02-21T12:00:00", SINCE + DAY // 2),
        ("2026-02-21T12:00:00+02:00", SINCE + DAY // 2 - 7_200),
    ],
)
def test_report_times_are_unix_seconds_or_iso_8601_utc(value: str, unix: int) -> None:
    assert parse_time(value) == unix


def test_a_time_that_is_neither_is_refused() -> None:
    for value in ("last tuesday", "--5", "2026-02-30"):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(value)


def test_the_default_period_is_the_seven_days_ending_now() -> None:
    assert default_period(None, None, now=UNTIL) == (SINCE, UNTIL)
    assert default_period(SINCE + DAY, None, now=UNTIL) == (SINCE + DAY, UNTIL)
    assert default_period(None, UNTIL - DAY, now=0) == (SINCE - DAY, UNTIL - DAY)


# --- the command body -----------------------------------------------------------------------


def test_run_report_writes_the_report_to_the_output_file(week_store: Store, tmp_path: Path) -> None:
    settings = _settings_of(week_store, tmp_path)
    output = tmp_path / "week.md"
    assert run_report(settings, SINCE, UNTIL, "md", output, now=GENERATED) == 0
    report = build_report(week_store, SINCE, UNTIL, now=GENERATED)
    assert output.read_bytes() == render(report, "md")


def test_run_report_writes_markdown_and_json_to_standard_output(
    week_store: Store, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    settings = _settings_of(week_store, tmp_path)
    assert run_report(settings, SINCE, UNTIL, "json", None) == 0
    document = json.loads(capsysbinary.readouterr().out)
    assert document["decisions"]["denied"] == 9
    assert run_report(settings, None, UNTIL, "md", None, now=UNTIL) == 0
    assert b"| Denial rate | 69.2% |" in capsysbinary.readouterr().out


def test_run_report_refuses_an_uninitialised_database_without_creating_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "nothing-here"
    assert run_report(Settings(data_dir=data_dir), SINCE, UNTIL, "md", None) == 2
    assert "sessionward db upgrade" in capsys.readouterr().err
    assert not data_dir.exists()


def test_run_report_refuses_a_bad_period_or_format(
    week_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings_of(week_store, tmp_path)
    output = tmp_path / "never.md"
    assert run_report(settings, UNTIL, SINCE, "md", output) == 2
    assert run_report(settings, SINCE, UNTIL, "pdf", output) == 2
    assert run_report(settings, SINCE, UNTIL, "md", tmp_path / "missing" / "dir.md") == 2
    err = capsys.readouterr().err
    assert "end after it starts" in err and "unknown format" in err and "cannot write" in err
    assert not output.exists()


def _settings_of(store: Store, tmp_path: Path) -> Settings:
    """Settings pointing at ``store``'s database (the SQLite file, or the PostgreSQL schema)."""
    if store.db.is_sqlite:
        database = store.db.engine.url.database
        assert database is not None
        return Settings(data_dir=Path(database).parent)
    return Settings(data_dir=tmp_path, database_url=PG_URL, database_schema=store.db.schema)
