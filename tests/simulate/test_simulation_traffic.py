"""Two simulated days through the service: every kind of event the weekly report needs occurs,
and what the store recorded is exactly what the simulation says it did."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulation_support import START, Run, recorded

from sessionward.service.config import Settings
from sessionward.simulate import DAY, EVENT_KINDS, SimulationError, run_simulation


def test_every_expected_event_kind_occurs_over_two_days(two_days: Run) -> None:
    counts = two_days.summary.counts

    missing = [kind for kind in EVENT_KINDS if counts.get(kind, 0) == 0]

    assert missing == []
    assert counts["swaps_executed"] > counts["out_of_scope_attempts"]  # mostly well-behaved
    assert counts.get("swaps_failed", 0) == 0  # off-chain allow ⇒ on-chain success


def test_the_alerts_cover_every_anomaly_rule_and_the_kill_switch(two_days: Run) -> None:
    rules = set(two_days.summary.alerts)

    assert {
        "context_mismatch",
        "forbidden_action_attempt",
        "denial_burst",
        "value_velocity",
        "post_revocation_attempt",
        "post_revocation_burst",
        "emergency_revoke",
    } <= rules


def test_a_few_hundred_decisions_a_day_mostly_allowed(two_days: Run) -> None:
    decisions = two_days.summary.decisions

    assert 300 <= decisions["allow"] + decisions["deny"] <= 800
    assert decisions["deny"] < decisions["allow"] / 3


def test_the_decisions_in_the_store_match_the_summary(two_days: Run) -> None:
    store = recorded(two_days.data_dir)
    summary = two_days.summary

    assert store.decisions == summary.decisions
    assert store.denial_reasons == summary.denial_reasons
    # Policy decisions, and the outcome of each relayed call (recorded with it, one transaction).
    assert set(store.request_kinds) <= {"prepare", "execute", "relay"}


def test_the_alerts_sessions_and_swaps_in_the_store_match_the_summary(two_days: Run) -> None:
    store = recorded(two_days.data_dir)
    counts = two_days.summary.counts

    assert store.alerts == two_days.summary.alerts
    assert store.sessions == counts["sessions_authorized"]
    assert store.executed == counts["swaps_executed"]


def test_everything_happens_inside_the_simulated_days_and_no_freeze_is_left(two_days: Run) -> None:
    store = recorded(two_days.data_dir)

    assert store.first_at >= START and store.last_at < START + 2 * DAY
    assert (two_days.summary.started_at, two_days.summary.ended_at) == (START, START + 2 * DAY)
    assert store.active_freezes == 0


def test_the_summary_is_printed(two_days: Run) -> None:
    for kind in ("swaps_executed", "emergency_global", "TARGET_NOT_ALLOWED", "denial_burst"):
        assert kind in two_days.output
    assert "sessionward report" in two_days.output


def test_less_than_a_day_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulationError):
        run_simulation(Settings(data_dir=tmp_path), days=0, seed=1)

    assert list(tmp_path.iterdir()) == []  # refused before anything was written
