"""The ops client: the kill switch (EmergencyRevoke) and lifting freezes."""

from __future__ import annotations

from typing import Any

import httpx

from sessionward.crypto.request_signature import RequestSigner

from .base import SignedClient


class OpsClient(SignedClient):
    """``OpsClient(base_url, signer, credential_id)``: an ops credential from configuration."""

    def __init__(
        self,
        base_url: str,
        signer: RequestSigner,
        credential_id: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(base_url, signer, credential_id, http=http, timeout=timeout)

    def emergency_revoke(self, scope: str, target: str | None, reason: str) -> dict[str, Any]:
        """Revoke by ``scope`` (``session``, ``wallet``, ``credential``, ``action_class``, or
        ``global`` with ``target=None``); ``reason`` is mandatory."""
        body: dict[str, Any] = {"scope": scope, "reason": reason}
        if target is not None:
            body["target"] = target
        return self._call("EmergencyRevoke", body)

    def lift_freeze(self, scope: str, target: str | None = None) -> dict[str, Any]:
        """Lift a freeze. The first ops approval of a global lift is answered 409
        ``FREEZE_LIFT_NEEDS_SECOND_OPS`` (raised); the second, distinct one lifts it."""
        body: dict[str, Any] = {"scope": scope}
        if target is not None:
            body["target"] = target
        return self._call("LiftFreeze", body)
