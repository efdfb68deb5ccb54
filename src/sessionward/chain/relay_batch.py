"""Several calls in one transaction through the ``RelayBatch`` contract
(``sessionward/contracts/RelayBatch.vy``): its calldata, and each call's outcome read back from
the transaction's receipt.

Each call runs with a gas limit of its own and on its own: one that reverts undoes nothing of
the others. The contract emits one ``CallRelayed(index, success, revert_data)`` per call, in
order. A call's outcome is read only from events that the batch contract itself emitted (a
called contract can emit an event of the same shape, but not from the batch's address).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import normalize_address
from sessionward.domain.abi import CalldataMalformed, decode_arguments, encode_call, parse_signature

from .interface import Receipt

__all__ = [
    "MAX_CALLS",
    "BatchedCall",
    "CallOutcome",
    "batch_gas_limit",
    "encode_relay",
    "relayed_outcomes",
]

MAX_CALLS: Final = 8
"""Calls per batch at most (``RelayBatch.MAX_CALLS``)."""

_RELAY: Final = parse_signature("relay((address,uint256,bytes)[])")
_CALL_RELAYED_TOPIC: Final = keccak256(b"CallRelayed(uint256,bool,bytes)")
_CALL_RELAYED_DATA: Final = parse_signature("CallRelayed(bool,bytes)")  # its non-indexed part
_TRANSACTION_GAS: Final = 21_000
_BATCH_OVERHEAD_GAS: Final = 40_000
"""The batch's own work, beyond its calls: its calldata's cost and decoding."""
_PER_CALL_OVERHEAD_GAS: Final = 30_000
"""What the batch spends around each call: the contract's reserve check (``gas // 63`` and
10,000 more must be left), the call's calldata copy and its event."""


@dataclass(frozen=True, slots=True)
class BatchedCall:
    """One call of a batch: its target, its own gas limit and its calldata (no value)."""

    target: str
    gas: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What the chain did with one call of a mined batch: ``success``, and for a call that
    reverted the start of its revert payload."""

    success: bool
    revert_data: bytes


def encode_relay(calls: Sequence[BatchedCall]) -> bytes:
    """The calldata of ``RelayBatch.relay(calls)``; ``ValueError`` for none or more than
    :data:`MAX_CALLS`."""
    if not 1 <= len(calls) <= MAX_CALLS:
        raise ValueError(f"a batch holds 1 to {MAX_CALLS} calls")
    return encode_call(_RELAY, ([(c.target, c.gas, c.data) for c in calls],))


def batch_gas_limit(calls: Sequence[BatchedCall]) -> int:
    """A gas limit under which the batch contract never refuses to start one of ``calls``
    (each is given its whole own limit): their limits, the 1/63 that EIP-150 keeps back from
    each, and the batch's own overhead."""
    own = sum(c.gas + c.gas // 63 + _PER_CALL_OVERHEAD_GAS for c in calls)
    return _TRANSACTION_GAS + _BATCH_OVERHEAD_GAS + own


def relayed_outcomes(receipt: Receipt, *, batch: str, calls: int) -> list[CallOutcome] | None:
    """Each call's outcome, in order, from the ``CallRelayed`` events that ``batch`` (the
    batch contract's address) emitted in ``receipt``; ``None`` when they do not account for
    exactly ``calls`` calls, each once (a receipt that is not this batch's: nothing can be
    concluded from it). A reverted transaction ran no call: every outcome a failure."""
    if not receipt.succeeded:
        return [CallOutcome(False, receipt.revert_data or b"")] * calls
    emitter = normalize_address(batch)
    found: dict[int, CallOutcome] = {}
    for log in receipt.logs:
        if normalize_address(log.address) != emitter or len(log.topics) != 2:
            continue
        if log.topics[0] != _CALL_RELAYED_TOPIC:
            continue
        index = int.from_bytes(log.topics[1], "big")
        try:
            success, revert_data = decode_arguments(_CALL_RELAYED_DATA, log.data)
        except CalldataMalformed:
            return None
        if index in found or not isinstance(success, bool) or not isinstance(revert_data, bytes):
            return None
        found[index] = CallOutcome(success, revert_data)
    if sorted(found) != list(range(calls)):
        return None
    return [found[i] for i in range(calls)]
