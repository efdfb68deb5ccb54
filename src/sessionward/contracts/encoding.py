"""Python values for the SessionAccount ABI: the grant struct and the ERC-4337 signature envelope.

:func:`grant_struct` turns a ``SessionGrant`` message (the dict of
:mod:`sessionward.crypto.typed_data`, camelCase field names) into the nested tuple that
``enable_session((...), bytes)`` takes, field for field in the EIP-712 order, so the struct the
contract hashes is exactly the message the owner signed.

A user operation's ``signature`` is ``0x00 ‖ ownerSignature`` or
``0x01 ‖ sessionKey (20 bytes) ‖ r ‖ s ‖ v``; both sign the EIP-191 hash of the userOpHash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "SIGNATURE_KIND_OWNER",
    "SIGNATURE_KIND_SESSION",
    "grant_struct",
    "owner_user_op_signature",
    "session_user_op_signature",
]

SIGNATURE_KIND_OWNER: Final = 0x00
SIGNATURE_KIND_SESSION: Final = 0x01


def _rule(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    return (rule["arg"], rule["op"], rule["offset"], list(rule["values"]))


def _permission(permission: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        permission["target"],
        permission["selector"],
        permission["function"],
        permission["actionClass"],
        permission["maxValuePerCall"],
        [_rule(r) for r in permission["rules"]],
    )


def _token_limit(limit: Mapping[str, Any]) -> tuple[Any, ...]:
    return (limit["token"], limit["limit"], limit["period"])


def _list(items: Sequence[Any]) -> list[Any]:
    return list(items)


def grant_struct(grant: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``SessionGrant`` ABI tuple of a grant message (raises ``KeyError`` on a missing field)."""
    e = grant["envelope"]
    envelope = (
        e["chainId"],
        e["validAfter"],
        e["expiresAt"],
        _list(e["capabilities"]),
        [_permission(p) for p in e["permissions"]],
        _list(e["allowedDestinations"]),
        e["valueLimit"],
        e["valuePeriod"],
        [_token_limit(t) for t in e["tokenLimits"]],
        e["maxValueUsd"],
        e["maxUses"],
        e["rateCount"],
        e["rateInterval"],
        e["maxFeeWei"],
    )
    return (
        grant["account"],
        grant["sessionKey"],
        grant["credential"],
        grant["nonce"],
        grant["epoch"],
        grant["revoker"],
        envelope,
    )


def owner_user_op_signature(signature: bytes) -> bytes:
    """``userOp.signature`` for an owner signature (65 bytes for an EOA, any for ERC-1271)."""
    return bytes([SIGNATURE_KIND_OWNER]) + bytes(signature)


def session_user_op_signature(session_key: str, signature: bytes) -> bytes:
    """``userOp.signature`` for a session key's 65-byte signature."""
    if len(signature) != 65:
        raise ValueError("a session signature is 65 bytes r ‖ s ‖ v")
    key = bytes.fromhex(session_key.removeprefix("0x"))
    if len(key) != 20:
        raise ValueError("a session key is a 20-byte address")
    return bytes([SIGNATURE_KIND_SESSION]) + key + bytes(signature)
