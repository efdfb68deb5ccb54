"""The ops console's one read: this week's alerts, the freezes in force and the week's
delegation-health metrics, as one JSON document.

The period is the 7 days ending just after ``now`` (``[now + 1 - 7 days, now + 1)``, so that
an alert raised in the current second is in it); the metrics are
:meth:`sessionward.store.telemetry.Telemetry.weekly` of exactly that period, and the document
states the period so a reader can recompute every number.
"""

from __future__ import annotations

from typing import Any, Final

from sessionward.store import Store
from sessionward.store.alerts import AlertRecord
from sessionward.store.freezes import FreezeRecord

WEEK_S: Final = 7 * 86_400
MAX_ALERTS: Final = 200
"""The newest alerts listed (``alertsTotal`` counts them all), bounding the document."""


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    """An alert as the console shows it; ``secondsToAction`` is None until acted on."""
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


def ops_overview(store: Store, now: int) -> dict[str, Any]:
    """``{generatedAt, period: {since, until}, alerts (newest first, at most MAX_ALERTS),
    alertsTotal, freezes (oldest first), metrics (WeeklyMetrics.to_json of the period)}``."""
    until = now + 1
    since = until - WEEK_S
    alerts = store.alerts.between(since, until)
    newest = sorted(alerts, key=lambda a: (a.at, a.id), reverse=True)[:MAX_ALERTS]
    return {
        "generatedAt": now,
        "period": {"since": since, "until": until},
        "alerts": [alert_json(a) for a in newest],
        "alertsTotal": len(alerts),
        "freezes": [freeze_json(f) for f in store.freezes.active()],
        "metrics": store.telemetry.weekly(since, until).to_json(),
    }
