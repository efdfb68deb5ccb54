"""The hand-computed telemetry week, and a generated busy one (fixtures live in conftest.py).

:func:`record_week` writes, through the store's repositories, a week whose every metric was
worked out by hand; the expected values are spelled out next to the tests that assert them
(tests/telemetry/test_telemetry_metrics.py), with the rows that produce them named here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from database_support import PG_URL as PG_URL  # re-exported: the telemetry tests import it here
from database_support import RowWriter
from sessionward.domain.report import DailyDecisions, LifetimeByClass, TimeToRevoke, WeeklyMetrics
from sessionward.store import Store
from sessionward.store.alerts import AlertRecord
from sessionward.store.decisions import DecisionEvent, Verdict

DAY = 86_400
SINCE = 1_771_632_000
"""2026-02-21 00:00:00 UTC: the hand-computed week is [SINCE, UNTIL)."""
UNTIL = SINCE + 7 * DAY

SWAP = "swap.execute"
TRANSFER = "erc20.transfer"
CAP_RULE = "permissions[0xrouter].maxValuePerCall"


class WeekWriter(RowWriter):
    """Wallets, credentials, sessions, decisions and alerts with fixed timestamps; wallets and
    credentials exist from 30 days before the week until 30 days after it."""

    def wallet(self) -> str:
        return self.add_wallet(now=SINCE - 30 * DAY)

    def credential(self, credential_id: str) -> str:
        return self.add_credential(
            now=SINCE - 30 * DAY, expires_at=UNTIL + 30 * DAY, credential_id=credential_id
        )

    def session(
        self,
        session_id: str,
        *,
        wallet_id: str,
        credential_id: str,
        classes: Sequence[str],
        created_at: int,
        expires_at: int,
        approved_at: int | None,
        revoked_at: int | None = None,
    ) -> None:
        """A session valid from ``created_at``, approved and revoked at the given times (each
        unless None)."""
        self.add_session(
            session_id,
            wallet_id=wallet_id,
            credential_id=credential_id,
            action_classes=classes,
            valid_after=created_at,
            expires_at=expires_at,
            created_at=created_at,
            approved_at=approved_at,
        )
        if revoked_at is not None:
            assert self.store.sessions.revoke_session(
                session_id, by="owner:test", reason="test", now=revoked_at
            )

    def decision(
        self,
        decision_id: str,
        at: int,
        verdict: Verdict,
        action_class: str | None,
        reasons: Sequence[str] = (),
        *,
        rule: str | None = None,
        kind: str = "prepare",
        credential_id: str | None = "c-agent",
    ) -> None:
        self.store.decisions.record(
            DecisionEvent(
                id=decision_id,
                at=at,
                verdict=verdict,
                reasons=tuple(reasons),
                latency_us=150,
                request_kind=kind,
                session_id="s-any",
                wallet_id="w-any",
                credential_id=credential_id,
                action_class=action_class,
                rule=rule,
            )
        )

    def alert(
        self,
        alert_id: str,
        at: int,
        *,
        severity: str = "critical",
        action: str | None = None,
        action_at: int | None = None,
        rule: str = "context_mismatch",
    ) -> None:
        self.store.alerts.record(
            AlertRecord(
                id=alert_id,
                at=at,
                rule=rule,
                severity=severity,
                detail={"why": ["test"]},
                action_taken=action,
                action_at=action_at,
            )
        )


def record_week(store: Store) -> None:
    """The hand-computed week (see the module docstring)."""
    w = WeekWriter(store)
    d0, d1, d3 = SINCE, SINCE + DAY, SINCE + 3 * DAY
    # --- decisions: 13 delegated in the period, 9 denied ---------------------------------
    w.decision("d01", d0 + 10, "allow", SWAP)
    w.decision("d02", d0 + 20, "allow", SWAP, kind="execute")
    w.decision(
        "d03", d0 + 30, "deny", SWAP, ["VALUE_CAP_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"], rule=CAP_RULE
    )
    w.decision("d04", d0 + 40, "deny", TRANSFER, ["TARGET_NOT_ALLOWED"], rule="allowedDestinations")
    w.decision("d05", d1 + 10, "deny", TRANSFER, ["CHAIN_MISMATCH"], rule="chainId", kind="execute")
    w.decision("d06", d1 + 20, "deny", SWAP, ["ACCOUNT_MISMATCH", "CHAIN_MISMATCH"], rule="account")
    w.decision("d07", d1 + 30, "allow", TRANSFER)
    w.decision(
        "d08",
        d1 + 40,
        "deny",
        SWAP,
        ["SESSION_REVOKED"],
        rule="session",
        kind="execute",
        credential_id="c-one",
    )
    w.decision(
        "d09", d3 + 10, "deny", SWAP, ["SESSION_REVOKED"], rule="session", credential_id="c-one"
    )
    # d10 has no rule recorded: it is left out of the top rules
    w.decision(
        "d10",
        d3 + 20,
        "deny",
        TRANSFER,
        ["CREDENTIAL_REVOKED", "SESSION_REVOKED"],
        credential_id="c-two",
    )
    w.decision("d11", d3 + 30, "deny", None, ["CALLDATA_MALFORMED"], rule="calldata")
    w.decision("d12", d3 + 40, "deny", SWAP, ["VALUE_CAP_EXCEEDED"], rule=CAP_RULE)
    w.decision("d13", UNTIL - 1, "allow", SWAP, kind="execute")
    # outside the population: before, at the (open) end, and not a delegated request kind
    w.decision("x-before", SINCE - 1, "deny", SWAP, ["SESSION_REVOKED"], rule="session")
    w.decision("x-after", UNTIL, "deny", SWAP, ["CHAIN_MISMATCH"], rule="chainId")
    w.decision("x-kind", d0 + 50, "deny", SWAP, ["SESSION_REVOKED"], kind="inspect")

    # --- sessions: 4 ended in the period --------------------------------------------------
    wallet = w.wallet()
    cred = w.credential("c-agent")
    w.credential("c-one")
    w.credential("c-two")

    def session(
        session_id: str,
        classes: Sequence[str],
        *,
        expires_at: int,
        approved_at: int | None,
        revoked_at: int | None = None,
        created_at: int = SINCE - 2 * DAY,
    ) -> None:
        w.session(
            session_id,
            wallet_id=wallet,
            credential_id=cred,
            classes=classes,
            created_at=created_at,
            expires_at=expires_at,
            approved_at=approved_at,
            revoked_at=revoked_at,
        )

    # s1 expires in the period: 7200 + 3600 = 10800 s
    session("s1", [SWAP], expires_at=SINCE + 7200, approved_at=SINCE - 3600)
    # s2 revoked before expiry: 600 s, counted under both classes
    session(
        "s2",
        [SWAP, TRANSFER],
        expires_at=SINCE + 5000,
        approved_at=SINCE + 1000,
        revoked_at=SINCE + 1600,
    )
    # s3 revoked after it had expired: ends at expiry, 3600 s
    session(
        "s3",
        [TRANSFER],
        created_at=SINCE + DAY,
        expires_at=SINCE + DAY + 3600,
        approved_at=SINCE + DAY,
        revoked_at=SINCE + DAY + 7200,
    )
    # s8 revoked exactly at SINCE (inside the half-open period): 100 s
    session("s8", [SWAP], expires_at=SINCE + DAY, approved_at=SINCE - 100, revoked_at=SINCE)
    # not counted: never approved; still alive; ended exactly at UNTIL; ended before SINCE
    session("s4", [SWAP], expires_at=SINCE + DAY, approved_at=None, revoked_at=SINCE + 10)
    session("s5", [SWAP], expires_at=UNTIL + DAY, approved_at=SINCE)
    session("s6", [TRANSFER], expires_at=UNTIL + DAY, approved_at=SINCE, revoked_at=UNTIL)
    session("s7", [SWAP], expires_at=SINCE - 1, approved_at=SINCE - DAY)

    # --- alerts: 8 critical in the period, 6 acted on by stopping the delegation ------------
    w.alert("a01", SINCE + 100, action="revoked session s2", action_at=SINCE + 102)  # 2 s
    w.alert("a02", SINCE + 200, action="revoked credential c-one", action_at=SINCE + 230)  # 30
    w.alert("a03", SINCE + 300, action="suspended session s1", action_at=SINCE + 305)  # 5 s
    w.alert("a04", SINCE + 400, action="session revoked", action_at=SINCE + 400)  # 0 s
    w.alert("a05", SINCE + 500, action="global frozen", action_at=SINCE + 500)  # 0 s
    w.alert("a06", SINCE + 550)  # critical, nothing done
    w.alert("a10", SINCE + 600, action="noted by ops", action_at=SINCE + 700)  # not a stop
    w.alert("a11", SINCE + 800, action="revoked session s3", action_at=SINCE + 1400)  # 600 s
    # not counted: a warning; critical alerts before and at the end of the period
    w.alert(
        "a07", SINCE + 900, severity="warning", action="revoked session x", action_at=SINCE + 1900
    )
    w.alert("a08", UNTIL, action="revoked session y", action_at=UNTIL + 5)
    w.alert("a09", SINCE - 1, action="revoked session z", action_at=SINCE + 5)


BUSY_CLASSES = (
    "swap.execute",
    "erc20.transfer",
    "erc20.approve",
    "nft.mint",
    "lending.supply",
    "lending.withdraw",
    "bridge.send",
    "batch",
)
BUSY_REASONS = (
    "VALUE_CAP_EXCEEDED",
    "TOKEN_LIMIT_EXCEEDED",
    "TARGET_NOT_ALLOWED",
    "SELECTOR_NOT_ALLOWED",
    "ARG_RULE_VIOLATED",
    "RATE_LIMITED",
    "USD_LIMIT_EXCEEDED",
    "SESSION_EXPIRED",
    "SESSION_REVOKED",
    "CREDENTIAL_REVOKED",
    "CHAIN_MISMATCH",
    "ACCOUNT_MISMATCH",
)


def record_busy_week(store: Store, *, decisions: int = 2000, seed: int = 7) -> None:
    """A generated week with many classes, reasons, sessions and alerts (decisions written in
    one transaction through :meth:`Decisions.record_in`, to stay fast)."""
    rng = random.Random(seed)
    w = WeekWriter(store)
    wallet = w.wallet()
    credentials = [w.credential(f"c-busy-{i}") for i in range(6)]
    with store.db.writing() as conn:
        for i in range(decisions):
            deny = rng.random() < 0.3
            reasons = tuple(sorted(rng.sample(BUSY_REASONS, rng.choice((1, 1, 2))))) if deny else ()
            store.decisions.record_in(
                conn,
                DecisionEvent(
                    id=f"busy-{i:05d}",
                    at=SINCE + rng.randrange(7 * DAY),
                    verdict="deny" if deny else "allow",
                    reasons=reasons,
                    latency_us=rng.randrange(100, 900),
                    request_kind=rng.choice(("prepare", "execute")),
                    credential_id=rng.choice(credentials),
                    action_class=rng.choice(BUSY_CLASSES),
                    rule=f"rule-{rng.randrange(6)}" if deny else None,
                ),
            )
    for i in range(40):
        approved = SINCE - DAY + rng.randrange(7 * DAY)
        lifetime = rng.randrange(60, 2 * DAY)
        revoked = approved + rng.randrange(30, lifetime) if rng.random() < 0.4 else None
        w.session(
            f"s-busy-{i}",
            wallet_id=wallet,
            credential_id=rng.choice(credentials),
            classes=rng.sample(BUSY_CLASSES[:-1], rng.choice((1, 2))),
            created_at=approved,
            expires_at=approved + lifetime,
            approved_at=approved,
            revoked_at=revoked,
        )
    for i in range(60):
        at = SINCE + rng.randrange(7 * DAY)
        action = rng.choice(("revoked session s", "suspended session s", None))
        took = int(rng.expovariate(1 / 40))
        w.alert(f"a-busy-{i}", at, action=action, action_at=None if action is None else at + took)


def empty_metrics() -> WeeklyMetrics:
    """The metrics of a week without any row (for renderer tests that need no database)."""
    return WeeklyMetrics(
        since=SINCE,
        until=UNTIL,
        decisions=0,
        denied=0,
        context_mismatches=0,
        post_revocation_attempts=0,
        denials_by_class=(),
        denials_by_reason=(),
        top_constraints=(),
        post_revocation_by_credential=(),
        lifetime=LifetimeByClass(None, 0, 0),
        lifetime_by_class=(),
        time_to_revoke=TimeToRevoke(0, 0, None, None, None, ()),
        daily=tuple(DailyDecisions(SINCE + n * DAY, 0, 0) for n in range(7)),
    )
