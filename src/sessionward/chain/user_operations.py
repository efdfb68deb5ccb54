"""ERC-4337 v0.7 user operations as the service builds them and a bundler takes them.

A bundler's JSON-RPC methods (ERC-7769: ``eth_sendUserOperation``,
``eth_estimateUserOperationGas``) take the *unpacked* v0.7 form: separate gas fields, and
``paymaster`` / ``paymasterVerificationGasLimit`` / ``paymasterPostOpGasLimit`` /
``paymasterData`` instead of one ``paymasterAndData``. The EntryPoint, the account and the
``userOpHash`` use the packed form (:class:`sessionward.contracts.encoding.PackedUserOperation`).
:class:`UserOperation` is the unpacked form, with the one conversion to each.

:func:`verifying_paymaster_digest` is the hash the sample ``VerifyingPaymaster`` of
``@account-abstraction/contracts`` 0.7.0 (``getHash``) has its signer sign, with EIP-191, to
sponsor an operation; :func:`verifying_paymaster_data` is the ``paymasterData`` that carries
that signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from sessionward.chain.errors import RpcProtocolError
from sessionward.chain.jsonrpc import (
    parse_address,
    parse_data,
    parse_quantity,
    to_data,
    to_quantity,
)
from sessionward.contracts.encoding import (
    PackedUserOperation,
    pack_uint128_pair,
    user_op_hash,
)
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import normalize_address

__all__ = [
    "ENTRY_POINT_V07",
    "GasEstimate",
    "UserOperation",
    "verifying_paymaster_data",
    "verifying_paymaster_digest",
]

ENTRY_POINT_V07: Final = "0x0000000071727de22e5e9d8baf0edac6f37da032"
"""The canonical EntryPoint v0.7 address (the same on every chain, by CREATE2)."""

_UINT48_LIMIT: Final = 1 << 48


@dataclass(frozen=True, slots=True)
class GasEstimate:
    """A bundler's answer to ``eth_estimateUserOperationGas`` (gas units)."""

    pre_verification_gas: int
    verification_gas_limit: int
    call_gas_limit: int
    paymaster_verification_gas_limit: int = 0
    paymaster_post_op_gas_limit: int = 0

    @classmethod
    def from_rpc(cls, answer: object) -> GasEstimate:
        """Parse the bundler's JSON answer strictly (missing paymaster fields are zero).

        Raises :class:`RpcProtocolError` for anything that is not such an answer."""
        if not isinstance(answer, Mapping):
            raise RpcProtocolError("eth_estimateUserOperationGas: the answer is not an object")

        def field(name: str, *, optional: bool = False) -> int:
            if optional and answer.get(name) is None:
                return 0
            return parse_quantity(answer.get(name), name)

        return cls(
            pre_verification_gas=field("preVerificationGas"),
            verification_gas_limit=field("verificationGasLimit"),
            call_gas_limit=field("callGasLimit"),
            paymaster_verification_gas_limit=field("paymasterVerificationGasLimit", optional=True),
            paymaster_post_op_gas_limit=field("paymasterPostOpGasLimit", optional=True),
        )


@dataclass(frozen=True, slots=True)
class UserOperation:
    """An ERC-4337 v0.7 user operation in its unpacked (RPC) form.

    Invariants: ``sender`` and ``paymaster`` are lower-case addresses; a ``paymaster`` of
    ``None`` means the account pays, and then the paymaster gas fields and data are empty.
    No factory: the service sends operations for deployed accounts only.
    """

    sender: str
    nonce: int
    call_data: bytes
    call_gas_limit: int = 0
    verification_gas_limit: int = 0
    pre_verification_gas: int = 0
    max_fee_per_gas: int = 0
    max_priority_fee_per_gas: int = 0
    paymaster: str | None = None
    paymaster_verification_gas_limit: int = 0
    paymaster_post_op_gas_limit: int = 0
    paymaster_data: bytes = b""
    signature: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sender", normalize_address(self.sender))
        if self.paymaster is not None:
            object.__setattr__(self, "paymaster", normalize_address(self.paymaster))
        elif (
            self.paymaster_verification_gas_limit
            or self.paymaster_post_op_gas_limit
            or self.paymaster_data
        ):
            raise ValueError("paymaster gas or data without a paymaster")

    # ------------------------------------------------------------------ the two forms

    def packed(self) -> PackedUserOperation:
        """The packed form the EntryPoint and the account read (raises ``ValueError`` when a
        gas field does not fit its ``uint128``)."""
        paymaster_and_data = b""
        if self.paymaster is not None:
            paymaster_and_data = (
                bytes.fromhex(self.paymaster[2:])
                + pack_uint128_pair(
                    self.paymaster_verification_gas_limit, self.paymaster_post_op_gas_limit
                )
                + self.paymaster_data
            )
        return PackedUserOperation(
            sender=self.sender,
            nonce=self.nonce,
            init_code=b"",
            call_data=self.call_data,
            account_gas_limits=pack_uint128_pair(self.verification_gas_limit, self.call_gas_limit),
            pre_verification_gas=self.pre_verification_gas,
            gas_fees=pack_uint128_pair(self.max_priority_fee_per_gas, self.max_fee_per_gas),
            paymaster_and_data=paymaster_and_data,
            signature=self.signature,
        )

    @classmethod
    def from_packed(cls, op: PackedUserOperation) -> UserOperation:
        """The unpacked form of ``op`` (raises ``ValueError`` for an ``initCode`` or a
        ``paymasterAndData`` shorter than its 52-byte head)."""
        if op.init_code:
            raise ValueError("operations with a factory (initCode) are not supported")
        sponsor: dict[str, Any] = {}
        if op.paymaster_and_data:
            data = bytes(op.paymaster_and_data)
            if len(data) < 52:
                raise ValueError("paymasterAndData is shorter than paymaster ‖ two gas limits")
            sponsor = {
                "paymaster": "0x" + data[:20].hex(),
                "paymaster_verification_gas_limit": int.from_bytes(data[20:36], "big"),
                "paymaster_post_op_gas_limit": int.from_bytes(data[36:52], "big"),
                "paymaster_data": data[52:],
            }
        return cls(
            sender=op.sender,
            nonce=op.nonce,
            call_data=bytes(op.call_data),
            verification_gas_limit=int.from_bytes(op.account_gas_limits[:16], "big"),
            call_gas_limit=int.from_bytes(op.account_gas_limits[16:], "big"),
            pre_verification_gas=op.pre_verification_gas,
            max_priority_fee_per_gas=int.from_bytes(op.gas_fees[:16], "big"),
            max_fee_per_gas=int.from_bytes(op.gas_fees[16:], "big"),
            signature=bytes(op.signature),
            **sponsor,
        )

    @classmethod
    def from_rpc(cls, doc: object) -> UserOperation:
        """Parse the bundler JSON form strictly (:meth:`to_rpc`'s output; no factory).

        Raises :class:`RpcProtocolError` for anything else."""
        if not isinstance(doc, Mapping):
            raise RpcProtocolError("a user operation is a JSON object")
        if doc.get("factory") not in (None, "0x"):
            raise RpcProtocolError("operations with a factory are not supported")

        def quantity(name: str) -> int:
            return parse_quantity(doc.get(name), name)

        fields: dict[str, Any] = {
            "sender": parse_address(doc.get("sender"), "sender"),
            "nonce": quantity("nonce"),
            "call_data": parse_data(doc.get("callData"), "callData"),
            "call_gas_limit": quantity("callGasLimit"),
            "verification_gas_limit": quantity("verificationGasLimit"),
            "pre_verification_gas": quantity("preVerificationGas"),
            "max_fee_per_gas": quantity("maxFeePerGas"),
            "max_priority_fee_per_gas": quantity("maxPriorityFeePerGas"),
            "signature": parse_data(doc.get("signature", "0x"), "signature"),
        }
        if doc.get("paymaster") is not None:
            fields |= {
                "paymaster": parse_address(doc.get("paymaster"), "paymaster"),
                "paymaster_verification_gas_limit": quantity("paymasterVerificationGasLimit"),
                "paymaster_post_op_gas_limit": quantity("paymasterPostOpGasLimit"),
                "paymaster_data": parse_data(doc.get("paymasterData"), "paymasterData"),
            }
        return cls(**fields)

    def to_rpc(self) -> dict[str, str]:
        """The JSON object of ``eth_sendUserOperation`` / ``eth_estimateUserOperationGas``."""
        rpc = {
            "sender": self.sender,
            "nonce": to_quantity(self.nonce),
            "callData": to_data(self.call_data),
            "callGasLimit": to_quantity(self.call_gas_limit),
            "verificationGasLimit": to_quantity(self.verification_gas_limit),
            "preVerificationGas": to_quantity(self.pre_verification_gas),
            "maxFeePerGas": to_quantity(self.max_fee_per_gas),
            "maxPriorityFeePerGas": to_quantity(self.max_priority_fee_per_gas),
            "signature": to_data(self.signature),
        }
        if self.paymaster is not None:
            rpc |= {
                "paymaster": self.paymaster,
                "paymasterVerificationGasLimit": to_quantity(self.paymaster_verification_gas_limit),
                "paymasterPostOpGasLimit": to_quantity(self.paymaster_post_op_gas_limit),
                "paymasterData": to_data(self.paymaster_data),
            }
        return rpc

    # ------------------------------------------------------------------ derived values

    def hash(self, *, entry_point: str, chain_id: int) -> bytes:
        """The ``userOpHash`` the signer signs (see :func:`user_op_hash`)."""
        return user_op_hash(self.packed(), entry_point, chain_id)

    def gas_units(self) -> int:
        """Every gas limit together: what the EntryPoint v0.7 prefunds at ``maxFeePerGas``."""
        return (
            self.verification_gas_limit
            + self.call_gas_limit
            + self.pre_verification_gas
            + self.paymaster_verification_gas_limit
            + self.paymaster_post_op_gas_limit
        )

    def max_cost(self) -> int:
        """The most this operation can cost whoever pays for it, in wei."""
        return self.gas_units() * self.max_fee_per_gas

    def with_gas(self, estimate: GasEstimate) -> UserOperation:
        """This operation with the estimate's gas limits (paymaster ones only when sponsored)."""
        sponsored = self.paymaster is not None
        return replace(
            self,
            pre_verification_gas=estimate.pre_verification_gas,
            verification_gas_limit=estimate.verification_gas_limit,
            call_gas_limit=estimate.call_gas_limit,
            paymaster_verification_gas_limit=(
                estimate.paymaster_verification_gas_limit if sponsored else 0
            ),
            paymaster_post_op_gas_limit=estimate.paymaster_post_op_gas_limit if sponsored else 0,
        )


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _window(valid_until: int, valid_after: int) -> tuple[int, int]:
    for value in (valid_until, valid_after):
        if isinstance(value, bool) or not 0 <= value < _UINT48_LIMIT:
            raise ValueError(f"{value!r} is not a uint48 timestamp")
    return valid_until, valid_after


def verifying_paymaster_digest(
    op: UserOperation, *, paymaster: str, chain_id: int, valid_until: int, valid_after: int
) -> bytes:
    """``VerifyingPaymaster.getHash(op, validUntil, validAfter)`` (v0.7 sample): the keccak of
    ``abi.encode(sender, nonce, keccak(initCode), keccak(callData), accountGasLimits,
    paymasterVerificationGasLimit ‖ paymasterPostOpGasLimit, preVerificationGas, gasFees,
    chainId, paymaster, validUntil, validAfter)``. It covers every field but the signature and
    the paymaster data (which carries this signature); ``valid_until`` 0 means no end."""
    until, after = _window(valid_until, valid_after)
    packed = op.packed()
    return keccak256(
        bytes(12)
        + bytes.fromhex(op.sender[2:])
        + _word(op.nonce)
        + keccak256(b"")
        + keccak256(op.call_data)
        + packed.account_gas_limits
        + pack_uint128_pair(op.paymaster_verification_gas_limit, op.paymaster_post_op_gas_limit)
        + _word(op.pre_verification_gas)
        + packed.gas_fees
        + _word(chain_id)
        + bytes(12)
        + bytes.fromhex(normalize_address(paymaster)[2:])
        + _word(until)
        + _word(after)
    )


def verifying_paymaster_data(*, valid_until: int, valid_after: int, signature: bytes) -> bytes:
    """The ``paymasterData`` of a sponsored operation: ``abi.encode(uint48 validUntil, uint48
    validAfter) ‖ signature`` (65 bytes ``r ‖ s ‖ v``)."""
    until, after = _window(valid_until, valid_after)
    if len(signature) != 65:
        raise ValueError("the paymaster signature is 65 bytes r ‖ s ‖ v")
    return _word(until) + _word(after) + bytes(signature)
