"""The policy path's anomaly rules: alerts, and automatic revocation (docs/design.md section 8).

Told about every recorded decision (:meth:`AnomalyMonitor.observe`, in the transaction that
records it; its actions run after the commit). Defaults (configurable in :class:`AnomalyRules`):

- any context mismatch (``CHAIN_MISMATCH``, ``ACCOUNT_MISMATCH``) → revoke the session;
- any forbidden-action attempt (``NON_DELEGABLE_ACTION``, ``SELF_CALL_FORBIDDEN``,
  ``CALL_TYPE_FORBIDDEN``) → revoke the session;
- 5 denials within 60 s on a session → revoke the session;
- 3 post-revocation attempts by a credential within 10 min → revoke the credential;
- half of a value budget (USD, native or a token limit) spent within a 5-min window (fixed
  windows from ``validAfter``) → suspend the session until the owner renews it.

Every alert records when it fired and when its action was taken, so time-to-revoke is measured.

The counting rules keep their counts incrementally (:class:`~sessionward.store.anomaly_counters.
AnomalyCounters`, one row per session or credential), so a refusal costs the same however many
came before it. They count the decisions this monitor is told about (Prepare and Execute); a
denial that revokes its session at once (mismatch, forbidden action, use after revocation) is not
counted towards a denial burst, since a revoked session stays revoked. A credential already
revoked is not revoked again: later attempts with it raise their warning alert only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

from sessionward.domain.decision import Decision
from sessionward.domain.usage import NATIVE, TOKEN_PREFIX, USD, Charge, Usage, window_index
from sessionward.domain.values import UINT256_MAX
from sessionward.reasons import ReasonCode
from sessionward.store.alerts import AlertRecord, AlertSink
from sessionward.store.anomaly_counters import AnomalyCounters
from sessionward.store.decisions import DecisionEvent

from .ids import new_id
from .revocation import Revocations
from .runtime import Runtime
from .sessions import SessionDirectory

_log = logging.getLogger(__name__)

CONTEXT_MISMATCH = (ReasonCode.CHAIN_MISMATCH.value, ReasonCode.ACCOUNT_MISMATCH.value)
FORBIDDEN_ATTEMPT = (
    ReasonCode.NON_DELEGABLE_ACTION.value,
    ReasonCode.SELF_CALL_FORBIDDEN.value,
    ReasonCode.CALL_TYPE_FORBIDDEN.value,
)
POST_REVOCATION = (ReasonCode.SESSION_REVOKED.value, ReasonCode.CREDENTIAL_REVOKED.value)

VELOCITY_PREFIX = "velocity:"

Action = Callable[[], None]
"""What a rule decided to do about a decision, run once the decision has committed."""


def velocity_charges(
    charges: Sequence[Charge], *, now: int, anchor: int, window_s: int
) -> list[Charge]:
    """Unlimited shadow charges counting value spent per ``window_s`` window (fixed windows from
    the session's ``validAfter``), reserved with the execution so the velocity rule needs no
    extra read."""
    window = window_index(now, anchor, window_s)
    return [
        Charge(VELOCITY_PREFIX + c.bucket, window, c.amount, UINT256_MAX, c.reason)
        for c in charges
        if c.bucket in (USD, NATIVE) or c.bucket.startswith(TOKEN_PREFIX)
    ]


class AnomalyMonitor:
    """Watches decisions; raises alerts and revokes when a rule fires."""

    def __init__(
        self,
        rt: Runtime,
        directory: SessionDirectory,
        revocations: Revocations,
        sink: AlertSink | None = None,
    ) -> None:
        self._rt = rt
        self._dir = directory
        self._revocations = revocations
        self._sink = sink
        self._counters = AnomalyCounters(rt.store.db)

    def observe(
        self, event: DecisionEvent, decision: Decision, usage: Usage | None = None
    ) -> Action | None:
        """Count ``event`` and raise the warning alerts it causes, in the caller's transaction
        (the unit of work that records the decision: one commit for the decision and its
        counts); return what a rule decided to do about it (revoke, suspend), to be run once
        that transaction has committed, since an action may commit durably on its own. A rule
        that fails is logged, never raised: it must not turn a decision into a 500."""
        try:
            with self._rt.store.db.unit():  # the caller's, or one of its own
                action = self._observe(event, usage)
        except Exception:
            _log.exception("anomaly rule failed for decision %s", event.id)
            return None
        if action is None:
            return None

        def act() -> None:
            try:
                action()
            except Exception:
                _log.exception("anomaly action failed for decision %s", event.id)

        return act

    def _observe(self, event: DecisionEvent, usage: Usage | None) -> Action | None:
        rules = self._rt.settings.anomaly
        reasons = set(event.reasons)
        session_id = event.session_id
        if session_id is None:
            return None
        now = event.at
        if (
            reasons & set(POST_REVOCATION)
            and event.credential_id
            and rules.post_revocation_attempts
        ):
            credential_id = event.credential_id
            attempts = self._counters.hit(
                f"post_revocation:{credential_id}",
                at=now,
                window_s=rules.post_revocation_window_s,
            )
            self._alert("post_revocation_attempt", "warning", event, {"attempts": attempts}, None)
            already = ReasonCode.CREDENTIAL_REVOKED.value in reasons
            if attempts < rules.post_revocation_attempts or already:
                return None  # a revoked session has nothing left to revoke

            def retire() -> None:
                revoked = self._revocations.retire_credential(
                    credential_id,
                    by="policy:post_revocation_attempts",
                    reason="repeated use after revocation",
                )
                self._alert(
                    "post_revocation_burst",
                    "critical",
                    event,
                    {"attempts": attempts, "sessions": revoked},
                    f"revoked credential {credential_id}",
                )

            return retire
        if rules.revoke_on_context_mismatch and reasons & set(CONTEXT_MISMATCH):
            return partial(
                self._revoke, event, "context_mismatch", sorted(reasons & set(CONTEXT_MISMATCH))
            )
        if rules.revoke_on_forbidden_attempt and reasons & set(FORBIDDEN_ATTEMPT):
            return partial(
                self._revoke,
                event,
                "forbidden_action_attempt",
                sorted(reasons & set(FORBIDDEN_ATTEMPT)),
            )
        if event.verdict == "deny" and rules.denial_burst_count:
            denials = self._counters.hit(
                f"deny:{session_id}", at=now, window_s=rules.denial_burst_window_s
            )
            if denials < rules.denial_burst_count:
                return None
            why = [f"{denials} denials in {rules.denial_burst_window_s} s"]
            return partial(self._revoke, event, "denial_burst", why)
        if event.verdict == "allow" and usage is not None and rules.velocity_fraction > 0:
            return partial(self._velocity, event, usage)
        return None

    def _velocity(self, event: DecisionEvent, usage: Usage) -> None:
        """Reads the ``velocity:*`` counters the execution just reserved (:func:`velocity_charges`)."""
        assert event.session_id is not None
        rules = self._rt.settings.anomaly
        scope = self._dir.scope(self._dir.record(event.session_id))
        envelope = scope.envelope
        budgets: dict[str, int] = {}
        if envelope.max_value_usd:
            budgets[USD] = envelope.max_value_usd
        if envelope.value_limit and envelope.value_limit.limit:
            budgets[NATIVE] = envelope.value_limit.limit
        for token_limit in envelope.token_limits:
            if token_limit.limit:
                budgets[TOKEN_PREFIX + token_limit.token] = token_limit.limit
        window = window_index(event.at, scope.valid_after, rules.velocity_window_s)
        spent = {b: usage.spent(VELOCITY_PREFIX + b, window) for b in budgets}
        fast = {b: v for b, v in spent.items() if v >= rules.velocity_fraction * budgets[b]}
        if fast and self._rt.store.sessions.suspend(event.session_id):
            self._alert(
                "value_velocity",
                "critical",
                event,
                {"spent": {b: str(v) for b, v in fast.items()}},
                f"suspended session {event.session_id}",
            )

    def _revoke(self, event: DecisionEvent, rule: str, why: list[str]) -> None:
        assert event.session_id is not None
        revoked = self._revocations.revoke_sessions(
            [event.session_id], by=f"policy:{rule}", reason=", ".join(why)
        )
        self._alert(
            rule,
            "critical",
            event,
            {"why": why},
            f"revoked session {event.session_id}" if revoked else None,
        )

    def _alert(
        self,
        rule: str,
        severity: str,
        event: DecisionEvent,
        detail: dict[str, object],
        action: str | None,
    ) -> None:
        now = self._rt.now()
        alert = AlertRecord(
            id=new_id("alr"),
            at=event.at,
            rule=rule,
            severity=severity,
            detail={"decision": event.id, "reasons": list(event.reasons), **detail},
            session_id=event.session_id,
            wallet_id=event.wallet_id,
            credential_id=event.credential_id,
            action_taken=action,
            action_at=now if action else None,
        )
        self._rt.store.alerts.record(alert)
        if self._sink is not None:  # webhooks: only once the alert's record has committed
            self._rt.store.db.after_commit(partial(self._sink, alert))
