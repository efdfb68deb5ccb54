"""Alerts raised by the anomaly rules, and the action taken on each (time-to-revoke)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select, update

from .database import Database
from .schema import alerts
from .sql import insert_of

_INSERT = insert_of(alerts)
"""Built once: a refusal after revocation records an alert every time (issue 16)."""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert. ``detail`` is a JSON object; ``action_taken``/``action_at`` are set once, when
    something was done about it (e.g. ``"revoked session s1"``)."""

    id: str
    at: int
    rule: str
    severity: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    wallet_id: str | None = None
    credential_id: str | None = None
    action_taken: str | None = None
    action_at: int | None = None


AlertSink = Callable[[AlertRecord], None]
"""Where an alert goes after it is recorded (e.g. the signed-webhook dispatcher)."""


def _record(row: Row[tuple[object, ...]]) -> AlertRecord:
    m = row._mapping
    return AlertRecord(
        id=m["id"],
        at=m["at"],
        rule=m["rule"],
        severity=m["severity"],
        detail=json.loads(m["detail"]),
        session_id=m["session_id"],
        wallet_id=m["wallet_id"],
        credential_id=m["credential_id"],
        action_taken=m["action_taken"],
        action_at=m["action_at"],
    )


class Alerts:
    """Record alerts and the action taken on them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, alert: AlertRecord) -> None:
        """Store a new alert (``detail`` must be JSON-serialisable)."""
        with self._db.writing() as conn:
            _INSERT.run(
                conn,
                {
                    "id": alert.id,
                    "at": alert.at,
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "session_id": alert.session_id,
                    "wallet_id": alert.wallet_id,
                    "credential_id": alert.credential_id,
                    "detail": json.dumps(dict(alert.detail), sort_keys=True, separators=(",", ":")),
                    "action_taken": alert.action_taken,
                    "action_at": alert.action_at,
                },
            )

    def mark_action(self, alert_id: str, action: str, *, at: int) -> bool:
        """Record the action taken; True iff none was recorded before (the first one stands)."""
        with self._db.writing() as conn:
            result = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.action_taken.is_(None))
                .values(action_taken=action, action_at=at)
            )
        return result.rowcount == 1

    def get(self, alert_id: str) -> AlertRecord | None:
        with self._db.reading() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        return None if row is None else _record(row)

    def between(self, since: int, until: int) -> list[AlertRecord]:
        """Alerts with ``since <= at < until``, in time order."""
        statement = (
            select(alerts)
            .where(alerts.c.at >= since, alerts.c.at < until)
            .order_by(alerts.c.at, alerts.c.id)
        )
        with self._db.reading() as conn:
            return [_record(row) for row in conn.execute(statement)]
