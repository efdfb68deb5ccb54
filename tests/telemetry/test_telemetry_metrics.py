"""Each weekly metric, computed in SQL, equals the value worked out by hand for the fixture week
(telemetry_support.record_week), on SQLite and on PostgreSQL alike.

The hand computation, row by row (period [SINCE, UNTIL), 7 UTC days from 2026-02-21):

decisions  d01..d13 are delegated and inside the period (x-before, x-after at UNTIL and the
           ``inspect`` request are not): 13 decisions, 9 denied (d03 d04 d05 d06 d08 d09 d10
           d11 d12), 4 allowed.
classes    erc20.transfer d04 d05 d07 d10 -> 4, 3 denied; swap.execute d01 d02 d03 d06 d08 d09
           d12 d13 -> 8, 5 denied; no class (d11) -> unknown 1, 1 denied.
reasons    SESSION_REVOKED d08 d09 d10 = 3; CHAIN_MISMATCH d05 d06 = 2; VALUE_CAP_EXCEEDED d03
           d12 = 2; one each: ACCOUNT_MISMATCH d06, CALLDATA_MALFORMED d11, CREDENTIAL_REVOKED
           d10, TARGET_NOT_ALLOWED d04, TOKEN_LIMIT_EXCEEDED d03.
mismatch   d05, d06 (d06 carries both codes, counted once) -> 2 / 13.
post-rev.  d08 d09 (c-one), d10 (c-two) -> 3.
lifetimes  s1 10800 s [swap], s2 600 s [swap, transfer], s3 3600 s [transfer], s8 100 s [swap]
           -> 4 sessions, 15100 s; transfer 2 / 4200 s; swap 3 / 11500 s.
alerts     critical in the period: a01 a02 a03 a04 a05 a06 a10 a11 = 8; stopping actions with
           durations 2, 30, 5, 0, 0, 600 -> sorted 0 0 2 5 30 600: p50 = rank ceil(3) = 2 s,
           p95 = rank ceil(5.7) = 6 -> 600 s.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telemetry_support import DAY, SINCE, SWAP, TRANSFER, UNTIL, WeekWriter

from sessionward.domain.report import (
    ConstraintsByClass,
    CredentialAttempts,
    DailyDecisions,
    DenialsByClass,
    DurationCount,
    Hit,
    LifetimeByClass,
    WeeklyMetrics,
)
from sessionward.store import Store

CAP_RULE = "permissions[0xrouter].maxValuePerCall"


# --- the hand-computed week ---------------------------------------------------------------


def test_denial_rate_counts_prepare_and_execute_decisions_of_the_half_open_period(
    week: WeeklyMetrics,
) -> None:
    assert (week.decisions, week.denied, week.allowed) == (13, 9, 4)
    assert week.denial_rate.fraction == Fraction(9, 13)
    assert week.denial_rate.to_json() == {"numerator": 9, "denominator": 13, "value": 0.692308}


def test_denial_rate_per_action_class_counts_decisions_without_a_class_as_unknown(
    week: WeeklyMetrics,
) -> None:
    assert week.denials_by_class == (
        DenialsByClass(TRANSFER, decisions=4, denied=3),
        DenialsByClass(SWAP, decisions=8, denied=5),
        DenialsByClass("unknown", decisions=1, denied=1),
    )
    assert [c.denial_rate.fraction for c in week.denials_by_class] == [
        Fraction(3, 4),
        Fraction(5, 8),
        Fraction(1),
    ]


def test_per_reason_view_counts_a_denial_once_for_each_reason_it_carries(
    week: WeeklyMetrics,
) -> None:
    assert [(r.reason, r.denied) for r in week.denials_by_reason] == [
        ("SESSION_REVOKED", 3),
        ("CHAIN_MISMATCH", 2),
        ("VALUE_CAP_EXCEEDED", 2),
        ("ACCOUNT_MISMATCH", 1),
        ("CALLDATA_MALFORMED", 1),
        ("CREDENTIAL_REVOKED", 1),
        ("TARGET_NOT_ALLOWED", 1),
        ("TOKEN_LIMIT_EXCEEDED", 1),
    ]
    revoked = week.denials_by_reason[0]
    assert revoked.share_of_decisions.fraction == Fraction(3, 13)
    assert revoked.share_of_denials.fraction == Fraction(3, 9)
    # several reasons per denial: the shares of denials add up to more than one
    assert sum(r.denied for r in week.denials_by_reason) == 12 > week.denied


def test_context_mismatch_rate_counts_a_decision_carrying_both_codes_once(
    week: WeeklyMetrics,
) -> None:
    assert week.context_mismatches == 2
    assert week.context_mismatch_rate.fraction == Fraction(2, 13)


def test_post_revocation_attempts_are_counted_overall_and_per_credential(
    week: WeeklyMetrics,
) -> None:
    assert week.post_revocation_attempts == 3
    assert week.post_revocation_by_credential == (
        CredentialAttempts("c-one", 2),
        CredentialAttempts("c-two", 1),
    )


def test_most_hit_constraints_rank_reasons_and_rules_per_action_class(
    week: WeeklyMetrics,
) -> None:
    assert week.top_constraints == (
        ConstraintsByClass(
            TRANSFER,
            denied=3,
            reasons=(
                Hit("CHAIN_MISMATCH", 1),
                Hit("CREDENTIAL_REVOKED", 1),
                Hit("SESSION_REVOKED", 1),
                Hit("TARGET_NOT_ALLOWED", 1),
            ),
            # d10 recorded no rule
            rules=(Hit("allowedDestinations", 1), Hit("chainId", 1)),
        ),
        ConstraintsByClass(
            SWAP,
            denied=5,
            reasons=(
                Hit("SESSION_REVOKED", 2),
                Hit("VALUE_CAP_EXCEEDED", 2),
                Hit("ACCOUNT_MISMATCH", 1),
                Hit("CHAIN_MISMATCH", 1),
                Hit("TOKEN_LIMIT_EXCEEDED", 1),
            ),
            rules=(Hit(CAP_RULE, 2), Hit("session", 2), Hit("account", 1)),
        ),
        ConstraintsByClass(
            "unknown",
            denied=1,
            reasons=(Hit("CALLDATA_MALFORMED", 1),),
            rules=(Hit("calldata", 1),),
        ),
    )


def test_most_hit_constraints_keep_only_the_top_n_per_class(week_store: Store) -> None:
    metrics = week_store.telemetry.weekly(SINCE, UNTIL, top=2)
    shortlist = {c.action_class: (c.reasons, c.rules) for c in metrics.top_constraints}
    assert shortlist == {
        TRANSFER: (
            (Hit("CHAIN_MISMATCH", 1), Hit("CREDENTIAL_REVOKED", 1)),
            (Hit("allowedDestinations", 1), Hit("chainId", 1)),
        ),
        SWAP: (
            (Hit("SESSION_REVOKED", 2), Hit("VALUE_CAP_EXCEEDED", 2)),
            (Hit(CAP_RULE, 2), Hit("session", 2)),
        ),
        "unknown": ((Hit("CALLDATA_MALFORMED", 1),), (Hit("calldata", 1),)),
    }


def test_session_lifetime_covers_approved_sessions_that_ended_in_the_period(
    week: WeeklyMetrics,
) -> None:
    assert week.lifetime == LifetimeByClass(None, sessions=4, total_seconds=15_100)
    assert week.lifetime.mean == Fraction(3775)
    assert week.lifetime_by_class == (
        LifetimeByClass(TRANSFER, sessions=2, total_seconds=4_200),
        LifetimeByClass(SWAP, sessions=3, total_seconds=11_500),
    )
    assert [c.mean for c in week.lifetime_by_class] == [Fraction(2100), Fraction(11_500, 3)]
    assert week.lifetime_by_class[1].to_json()["meanSeconds"] == 3833.333333


def test_time_to_revoke_is_nearest_rank_over_critical_alerts_that_stopped_the_delegation(
    week: WeeklyMetrics,
) -> None:
    ttr = week.time_to_revoke
    assert (ttr.critical_alerts, ttr.stopped) == (8, 6)
    assert (ttr.p50_seconds, ttr.p95_seconds, ttr.max_seconds) == (2, 600, 600)
    assert ttr.distribution == (
        DurationCount(0, 2),
        DurationCount(2, 1),
        DurationCount(5, 1),
        DurationCount(30, 1),
        DurationCount(600, 1),
    )


def test_daily_decisions_cover_every_utc_day_of_the_period(week: WeeklyMetrics) -> None:
    assert week.daily == tuple(
        DailyDecisions(SINCE + n * DAY, allowed, denied)
        for n, (allowed, denied) in enumerate(
            [(2, 2), (1, 3), (0, 0), (0, 4), (0, 0), (0, 0), (1, 0)]
        )
    )
    assert [d.day for d in week.daily][:2] == ["2026-02-21", "2026-02-22"]


def test_metrics_survive_a_json_round_trip(week: WeeklyMetrics) -> None:
    document = json.loads(json.dumps(week.to_json()))
    assert WeeklyMetrics.from_json(document) == week
    assert document["decisions"] == {
        "total": 13,
        "allowed": 4,
        "denied": 9,
        "denialRate": {"numerator": 9, "denominator": 13, "value": 0.692308},
    }


@pytest.mark.postgres
def test_sqlite_and_postgresql_compute_identical_metrics(
    sqlite_week: Store, postgresql_week: Store
) -> None:
    on_sqlite = sqlite_week.telemetry.weekly(SINCE, UNTIL, top=3)
    on_postgresql = postgresql_week.telemetry.weekly(SINCE, UNTIL, top=3)
    assert on_sqlite == on_postgresql
    assert on_sqlite.to_json() == on_postgresql.to_json()


# --- edges, on a store of each backend with rows of the test's own ------------------------


def test_an_empty_period_has_undefined_rates_and_no_division_by_zero(scratch_store: Store) -> None:
    metrics = scratch_store.telemetry.weekly(SINCE, UNTIL)
    assert (metrics.decisions, metrics.denied, metrics.post_revocation_attempts) == (0, 0, 0)
    assert metrics.denial_rate.value is None and metrics.denial_rate.fraction is None
    assert metrics.context_mismatch_rate.value is None
    assert (metrics.denials_by_class, metrics.denials_by_reason, metrics.top_constraints) == (
        (),
        (),
        (),
    )
    assert metrics.lifetime == LifetimeByClass(None, 0, 0) and metrics.lifetime.mean is None
    ttr = metrics.time_to_revoke
    assert (ttr.critical_alerts, ttr.stopped, ttr.p50_seconds, ttr.p95_seconds) == (
        0,
        0,
        None,
        None,
    )
    assert [(d.allowed, d.denied) for d in metrics.daily] == [(0, 0)] * 7
    assert metrics.to_json()["decisions"]["denialRate"]["value"] is None


def test_a_reason_or_class_listed_twice_counts_once(scratch_store: Store) -> None:
    w = WeekWriter(scratch_store)
    w.decision("dup", SINCE + 1, "deny", SWAP, ["RATE_LIMITED", "RATE_LIMITED"], rule="rate")
    wallet, credential = w.wallet(), w.credential("c-dup")
    w.session(
        "s-dup",
        wallet_id=wallet,
        credential_id=credential,
        classes=[SWAP, SWAP],
        created_at=SINCE,
        expires_at=SINCE + 500,
        approved_at=SINCE + 100,
    )
    metrics = scratch_store.telemetry.weekly(SINCE, UNTIL)
    assert [(r.reason, r.denied) for r in metrics.denials_by_reason] == [("RATE_LIMITED", 1)]
    assert metrics.top_constraints[0].reasons == (Hit("RATE_LIMITED", 1),)
    assert metrics.lifetime_by_class == (LifetimeByClass(SWAP, 1, 400),)


def test_only_whole_reason_codes_match(scratch_store: Store) -> None:
    w = WeekWriter(scratch_store)
    w.decision("near-miss", SINCE + 1, "deny", SWAP, ["NOT_CHAIN_MISMATCH", "SESSION_REVOKED_X"])
    w.decision("wildcard", SINCE + 2, "deny", SWAP, ["CHAINXMISMATCH"])
    w.decision("lower-case", SINCE + 3, "deny", SWAP, ["chain_mismatch", "session_revoked"])
    metrics = scratch_store.telemetry.weekly(SINCE, UNTIL)
    assert (metrics.decisions, metrics.denied) == (3, 3)
    assert (metrics.context_mismatches, metrics.post_revocation_attempts) == (0, 0)


def test_alert_actions_are_recognised_whatever_their_case(scratch_store: Store) -> None:
    w = WeekWriter(scratch_store)
    w.alert("upper", SINCE + 1, action="Revoked session s1", action_at=SINCE + 4)
    w.alert("frozen", SINCE + 2, action="ACTION_CLASS FROZEN", action_at=SINCE + 9)
    w.alert("other", SINCE + 3, action="paged the on-call", action_at=SINCE + 5)
    ttr = scratch_store.telemetry.weekly(SINCE, UNTIL).time_to_revoke
    assert (ttr.critical_alerts, ttr.stopped, ttr.p50_seconds, ttr.max_seconds) == (3, 2, 3, 7)


def test_daily_buckets_are_utc_days_overlapping_the_period(scratch_store: Store) -> None:
    w = WeekWriter(scratch_store)
    w.decision("late", SINCE + DAY - 1, "allow", SWAP)
    w.decision("midnight", SINCE + DAY, "deny", SWAP, ["RATE_LIMITED"])
    metrics = scratch_store.telemetry.weekly(SINCE + DAY // 2, SINCE + DAY + DAY // 2)
    assert metrics.daily == (
        DailyDecisions(SINCE, allowed=1, denied=0),
        DailyDecisions(SINCE + DAY, allowed=0, denied=1),
    )


def test_a_period_that_does_not_end_after_it_starts_is_refused(scratch_store: Store) -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        scratch_store.telemetry.weekly(SINCE, SINCE)
    with pytest.raises(ValueError, match="top"):
        scratch_store.telemetry.weekly(SINCE, UNTIL, top=0)


@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(durations=st.lists(st.integers(min_value=0, max_value=4_000), min_size=1, max_size=12))
def test_time_to_revoke_percentiles_are_the_nearest_rank_of_the_sorted_durations(
    scratch_store: Store, durations: list[int]
) -> None:
    scratch_store.empty()
    w = WeekWriter(scratch_store)
    for i, took in enumerate(durations):
        w.alert(
            f"a{i}", SINCE + 10 * i, action=f"revoked session s{i}", action_at=SINCE + 10 * i + took
        )
    ttr = scratch_store.telemetry.weekly(SINCE, UNTIL).time_to_revoke
    ordered = sorted(durations)
    n = len(ordered)
    # nearest rank: the smallest value with at least p% of the values at or below it
    assert ttr.p50_seconds == ordered[-(-50 * n // 100) - 1]
    assert ttr.p95_seconds == ordered[-(-95 * n // 100) - 1]
    assert ttr.max_seconds == ordered[-1]
    assert sum(d.count for d in ttr.distribution) == ttr.stopped == ttr.critical_alerts == n
