"""The critical alert a tampered vault record raises (issue 14.8).

:func:`tamper_alerts` makes the ``on_tamper`` hook of
:class:`~sessionward.vault.local.LocalVault`: a
``vault_tamper`` alert of severity ``critical`` naming the key id (never anything of the
record). The alert is written on a thread of its own, in its own transaction: the refused
signing happens inside a request's unit of work, which may roll back (and on SQLite holds the
write lock until it ends), and the alert must outlive it.

It lives in the service because it joins two lower layers: the vault (which knows nothing of
the store) and the store's alerts.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from sessionward.store.alerts import AlertRecord, Alerts

TAMPER_RULE = "vault_tamper"

_log = logging.getLogger("sessionward.security")


def tamper_alerts(
    alerts: Alerts,
    clock: Callable[[], int],
    *,
    sink: Callable[[AlertRecord], None] | None = None,
) -> Callable[[str], threading.Thread]:
    """The hook: records the alert (then hands it to ``sink``, e.g. the webhooks) and returns
    the thread doing so (tests join it)."""

    def record(alert: AlertRecord) -> None:
        try:
            alerts.record(alert)
            if sink is not None:
                sink(alert)
        except Exception:
            _log.exception("could not record the vault-tamper alert %s", alert.id)

    def raise_alert(key_id: str) -> threading.Thread:
        alert = AlertRecord(
            id=f"alr_{uuid.uuid4().hex}",
            at=clock(),
            rule=TAMPER_RULE,
            severity="critical",
            detail={"keyId": key_id, "event": "vault record failed authentication at rest"},
        )
        thread = threading.Thread(
            target=record, args=(alert,), name="sessionward-vault-alert", daemon=True
        )
        thread.start()
        return thread

    return raise_alert
