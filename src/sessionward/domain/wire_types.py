"""The vocabulary of states and roles that crosses the wire: one definition each.

The store persists these values, the service answers them in its views, and the API's OpenAPI
document lists them as enums: all three import them from here (this module sits in the
``domain`` layer, below ``store``, ``service`` and ``api``; it imports nothing), so a value
added here appears in the store's types, the views and the document at once.

Contracts: each name has one meaning; a value is never renamed (clients compare strings), only
added; the ``Literal`` types are the enums (``typing.get_args`` lists their values in order).
"""

from __future__ import annotations

from typing import Final, Literal

Role = Literal["backend", "owner", "ops"]
"""The role of a credential: an app's backend, a wallet's owner (root or device), an operator."""

ROLES: Final[tuple[Role, ...]] = ("backend", "owner", "ops")

DeviceStatus = Literal["active", "expired", "revoked"]
"""An owner device as ``ListDevices`` reports it (``expired``: past its ``expiresAt``)."""

TransactionStatus = Literal["quoted", "pending", "executed", "failed", "denied"]
"""A prepared transaction: ``quoted`` (allowed, waiting for Execute), ``pending`` (sent to the
chain), ``executed``/``failed`` (mined), ``denied`` (refused by the policy at Prepare)."""

WIRE_STATUS: Final[dict[str, str]] = {
    "pending_approval": "pending",
    "installing": "pending",
    "active": "active",
    "suspended": "suspended",
    "revoking": "revoked",
    "revoked": "revoked",
    "expired": "expired",
}
"""A session's lifecycle state (``lifecycle`` in a session's view, the store's ``Status``) ->
the ``status`` clients knew before the lifecycle had more states (docs/protocol.md section 9):
both are on the wire, so the map is part of the protocol."""
