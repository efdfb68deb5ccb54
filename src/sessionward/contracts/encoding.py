"""Python values for the SessionAccount ABI: the grant struct and the ERC-4337 signature envelope.

:func:`grant_struct` turns a ``SessionGrant`` message (the dict of
:mod:`sessionward.crypto.typed_data`, camelCase field names) into the nested tuple that
``enable_session((...), bytes)`` takes, field for field in the EIP-712 order, so the struct the
contract hashes is exactly the message the owner signed.

A user operation's ``signature`` is ``0x00 ‖ ownerSignature`` or
``0x01 ‖ sessionKey (20 bytes) ‖ r ‖ s ‖ v``; both sign the EIP-191 hash of the userOpHash,
which :func:`user_op_hash` computes exactly as the ERC-4337 v0.7 EntryPoint does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from sessionward.crypto.keccak import keccak256

__all__ = [
    "SIGNATURE_KIND_OWNER",
    "SIGNATURE_KIND_SESSION",
    "PackedUserOperation",
    "grant_struct",
    "owner_user_op_signature",
    "pack_uint128_pair",
    "session_user_op_signature",
    "user_op_hash",
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


# ---------------------------------------------------------------------------------------------
# ERC-4337 v0.7 user operations.

_UINT128_LIMIT: Final = 1 << 128
_UINT256_LIMIT: Final = 1 << 256


class PackedUserOperation(NamedTuple):
    """An ERC-4337 v0.7 ``PackedUserOperation``; being a tuple in ABI field order, it is also
    the value a contract binding takes for the struct.

    ``account_gas_limits`` is ``verificationGasLimit ‖ callGasLimit`` and ``gas_fees`` is
    ``maxPriorityFeePerGas ‖ maxFeePerGas``, each two ``uint128`` in 32 bytes
    (:func:`pack_uint128_pair`).
    """

    sender: str
    nonce: int
    init_code: bytes
    call_data: bytes
    account_gas_limits: bytes
    pre_verification_gas: int
    gas_fees: bytes
    paymaster_and_data: bytes
    signature: bytes


def pack_uint128_pair(high: int, low: int) -> bytes:
    """``high ‖ low`` as two big-endian ``uint128`` in one 32-byte word (raises ``ValueError``
    when either does not fit)."""
    for value in (high, low):
        if isinstance(value, bool) or not 0 <= value < _UINT128_LIMIT:
            raise ValueError(f"{value!r} is not a uint128")
    return high.to_bytes(16, "big") + low.to_bytes(16, "big")


def _uint_word(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UINT256_LIMIT:
        raise ValueError(f"{what} is not a uint256: {value!r}")
    return value.to_bytes(32, "big")


def _address_word(address: str, what: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x").removeprefix("0X"))
    if len(raw) != 20:
        raise ValueError(f"{what} is not a 20-byte address: {address!r}")
    return bytes(12) + raw


def _bytes32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes, got {len(value)}")
    return bytes(value)


def user_op_hash(op: PackedUserOperation, entry_point: str, chain_id: int) -> bytes:
    """The ERC-4337 v0.7 ``userOpHash`` of ``op`` for ``entry_point`` on ``chain_id``.

    ``keccak256(abi.encode(keccak256(abi.encode(sender, nonce, keccak256(initCode),
    keccak256(callData), accountGasLimits, preVerificationGas, gasFees,
    keccak256(paymasterAndData))), entryPoint, chainId))``: the signature is not covered, the
    dynamic fields are hashed first, every field takes one word. Raises ``ValueError`` for a
    field out of its type's range.
    """
    inner = keccak256(
        _address_word(op.sender, "sender")
        + _uint_word(op.nonce, "nonce")
        + keccak256(bytes(op.init_code))
        + keccak256(bytes(op.call_data))
        + _bytes32(op.account_gas_limits, "accountGasLimits")
        + _uint_word(op.pre_verification_gas, "preVerificationGas")
        + _bytes32(op.gas_fees, "gasFees")
        + keccak256(bytes(op.paymaster_and_data))
    )
    return keccak256(
        inner + _address_word(entry_point, "entryPoint") + _uint_word(chain_id, "chainId")
    )
