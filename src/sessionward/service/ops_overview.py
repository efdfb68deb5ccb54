"""The ops console's one read: this week's alerts, the freezes in force and the week's
delegation-health metrics, as one JSON document (served by :mod:`sessionward.ui`).

The period is the 7 days ending just after ``now`` (``[now + 1 - 7 days, now + 1)``, so that
an alert raised in the current second is in it); the metrics are those of the weekly report
(:func:`sessionward.service.report.build_report`) of exactly that period, and the document
states the period so a reader can recompute every number.
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

from sessionward.store.alerts import AlertRecord
from sessionward.store.freezes import FreezeRecord

from .callers import Caller
from .report import DEFAULT_PERIOD_S, build_report
from .runtime import Runtime

MAX_ALERTS: Final = 200
"""The newest alerts listed (``alertsTotal`` counts them all), bounding the document."""


class Period(TypedDict):
    since: int
    until: int


class OpsOverviewView(TypedDict):
    """The document; keys in the order the console has always received them."""

    generatedAt: int
    period: Period
    alerts: list[dict[str, Any]]
    alertsTotal: int
    freezes: list[dict[str, Any]]
    metrics: dict[str, Any]


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    """An alert as the console shows it; ``secondsToAction`` is None until acted on.

    Not :func:`sessionward.service.webhooks.alert_json`: the console's document has its own
    key order and the time to action, and it stays as the console has always received it."""
    return {
        "id": alert.id,
        "at": alert.at,
        "rule": alert.rule,
        "severity": alert.severity,
        "detail": dict(alert.detail),
        "sessionId": alert.session_id,
        "walletId": alert.wallet_id,
        "credentialId": alert.credential_id,
        "actionTaken": alert.action_taken,
        "actionAt": alert.action_at,
        "secondsToAction": None if alert.action_at is None else alert.action_at - alert.at,
    }


def freeze_json(freeze: FreezeRecord) -> dict[str, Any]:
    """A freeze in force (a lifted one is never listed)."""
    return {
        "id": freeze.id,
        "scope": freeze.scope,
        "target": freeze.target,
        "reason": freeze.reason,
        "createdBy": freeze.created_by,
        "createdAt": freeze.created_at,
    }


class OpsOverview:
    """The ops console's read, for ops credentials only."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def read(self, caller: Caller) -> OpsOverviewView:
        """``{generatedAt, period: {since, until}, alerts (newest first, at most MAX_ALERTS),
        alertsTotal, freezes (oldest first), metrics (WeeklyMetrics.to_json of the period)}``
        at the runtime's clock. Refuses anything but a live ops credential (``unauthorized``
        or ``forbidden`` :class:`ServiceError`) before reading anything."""
        caller.require("ops")
        now = self._rt.now()
        store = self._rt.store
        until = now + 1
        since = until - DEFAULT_PERIOD_S
        alerts = store.alerts.between(since, until)
        newest = sorted(alerts, key=lambda a: (a.at, a.id), reverse=True)[:MAX_ALERTS]
        return {
            "generatedAt": now,
            "period": {"since": since, "until": until},
            "alerts": [alert_json(a) for a in newest],
            "alertsTotal": len(alerts),
            "freezes": [freeze_json(f) for f in store.freezes.active()],
            "metrics": build_report(store, since, until, now=now).metrics.to_json(),
        }
