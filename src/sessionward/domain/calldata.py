"""What a session's transaction request asks the account to do, as a list of inner calls.

A request ``(to, value, data)`` means one of three things:

- ``to`` is the account itself: ``data`` must be ERC-7579 ``execute(bytes32 mode, bytes
  executionCalldata)`` with no outer value, and the execution (one call, or a batch) is unwrapped.
  Any other self-call is refused (``SELF_CALL_FORBIDDEN``).
- ``to`` is a configured Safe-style MultiSend contract and ``data`` is ``multiSend(bytes)``: the
  packed records are unwrapped. They are read as a Safe means them (it delegatecalls MultiSend):
  calls *made by the account*. So the account runs exactly those calls as an ERC-7579 batch
  (:func:`account_execution`) and the MultiSend contract itself is never called; a plain call
  to it would make the calls from MultiSend's own address, not what was decided.
- anything else is one call, left as it is for the policy engine.

Unwrapping goes ONE level only; inner calls are returned untouched, and the policy engine
refuses inner calls to the account (which covers a nested ``execute``).

Refusals (each a :class:`CalldataError` with an exact reason code):

- ``CALLDATA_MALFORMED``: any non-canonical, truncated or trailing encoding; a mode that is not
  32 bytes; any call (outer or inner) whose data is shorter than 4 bytes; SessionWard does not
  delegate plain value transfers, every delegated call names a function.
- ``EMPTY_BATCH``: a batch or MultiSend with no call.
- ``CALL_TYPE_FORBIDDEN``: delegatecall, static call, try mode, any unknown mode (any non-zero
  byte besides the call type), value sent along with ``execute``, a delegatecall MultiSend record.
- ``SELF_CALL_FORBIDDEN``: a call to the account that is not ``execute``.

Execution mode (bytes32, ERC-7579): byte 0 call type (0x00 single, 0x01 batch, 0xfe static,
0xff delegatecall), byte 1 exec type (0x00 revert on failure, 0x01 try), bytes 2..5 unused, 6..9
mode selector, 10..31 mode payload. Only single or batch with every other byte zero is accepted.

Encodings:

- single execution = ``abi.encodePacked(address target, uint256 value, bytes callData)``;
- batch execution = ``abi.encode(Execution[])``, ``Execution = (address target, uint256 value,
  bytes callData)``, decoded strictly (:mod:`sessionward.domain.abi`);
- MultiSend records = ``uint8 operation ‖ address to ‖ uint256 value ‖ uint256 dataLength ‖
  bytes data``, packed back to back. Two choices beyond Safe's contract, both refused as
  ``CALLDATA_MALFORMED`` because they make the records mean something else than they say: a record
  whose ``to`` is the zero address (MultiSend 1.4.1 silently redirects it to the MultiSend contract
  itself), and an outer value that differs from the sum of the records' values (the difference
  would be stranded in, or taken from, the MultiSend contract's own balance, outside any cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sessionward.reasons import ReasonCode

from ..crypto.address import is_address_text
from .abi import ADDRESS as _ADDRESS_TYPE
from .abi import UINT256 as _UINT256_TYPE
from .abi import (
    AbiEncodeError,
    ArrayType,
    CalldataError,
    CalldataMalformed,
    Param,
    TupleCodec,
    TupleType,
    decode_arguments,
    encode_call,
    encode_word,
    parse_signature,
    parse_type,
)

__all__ = [
    "CALLTYPE_BATCH",
    "CALLTYPE_DELEGATECALL",
    "CALLTYPE_SINGLE",
    "CALLTYPE_STATIC",
    "EXECTYPE_DEFAULT",
    "EXECTYPE_TRY",
    "EXECUTE",
    "EXECUTION",
    "MULTISEND",
    "Call",
    "CallTypeForbidden",
    "CalldataError",
    "CalldataMalformed",
    "EmptyBatch",
    "SelfCallForbidden",
    "account_execution",
    "encode_batch_execution",
    "encode_execute",
    "encode_multisend",
    "encode_single_execution",
    "mode_batch",
    "mode_single",
    "unwrap_execution",
    "unwrap_request",
]


class EmptyBatch(CalldataError):
    """A batch (or MultiSend) with no call in it."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.EMPTY_BATCH, message)


class CallTypeForbidden(CalldataError):
    """An execution mode or operation SessionWard never delegates (delegatecall, try, static…)."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.CALL_TYPE_FORBIDDEN, message)


class SelfCallForbidden(CalldataError):
    """A call to the account itself that is not its ``execute`` entry point."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.SELF_CALL_FORBIDDEN, message)


@dataclass(frozen=True, slots=True)
class Call:
    """One call the account would make: target (lower-case address), native value, calldata."""

    to: str
    value: int
    data: bytes


EXECUTE = parse_signature("execute(bytes32 mode,bytes executionCalldata)")
MULTISEND = parse_signature("multiSend(bytes transactions)")
EXECUTION = parse_type("(address target,uint256 value,bytes callData)")
_BATCH = TupleCodec(TupleType((Param("executions", ArrayType(EXECUTION, None)),)))

CALLTYPE_SINGLE = 0x00
CALLTYPE_BATCH = 0x01
CALLTYPE_STATIC = 0xFE
CALLTYPE_DELEGATECALL = 0xFF
EXECTYPE_DEFAULT = 0x00
EXECTYPE_TRY = 0x01

_MODE_SIZE = 32
_SINGLE_HEADER = 20 + 32  # target ‖ value, then the call data
_RECORD_HEADER = 1 + 20 + 32 + 32  # operation ‖ to ‖ value ‖ dataLength
_OPERATION_CALL = 0
_OPERATION_DELEGATECALL = 1
_SELECTOR_SIZE = 4
_ZERO_ADDRESS = "0x" + "00" * 20
_UINT256_LIMIT = 1 << 256


def mode_single() -> bytes:
    """The ERC-7579 mode of one call, reverting on failure."""
    return bytes([CALLTYPE_SINGLE]) + bytes(_MODE_SIZE - 1)


def mode_batch() -> bytes:
    """The ERC-7579 mode of a batch, reverting on any failure."""
    return bytes([CALLTYPE_BATCH]) + bytes(_MODE_SIZE - 1)


def _inner_call(to: str, value: int, data: bytes, where: str) -> Call:
    if len(data) < _SELECTOR_SIZE:
        raise CalldataMalformed(
            f"{where}: call data of {len(data)} bytes has no function selector "
            "(plain value transfers are not delegated)"
        )
    return Call(to, value, data)


def _check_mode(mode: bytes) -> int:
    """The call type of an accepted mode; refuses everything but plain single or batch."""
    if not isinstance(mode, bytes | bytearray) or len(mode) != _MODE_SIZE:
        size = len(mode) if isinstance(mode, bytes | bytearray) else type(mode).__name__
        raise CalldataMalformed(f"execution mode must be 32 bytes, got {size}")
    call_type, exec_type = mode[0], mode[1]
    if call_type == CALLTYPE_DELEGATECALL:
        raise CallTypeForbidden("execution mode call type 0xff (delegatecall) is never delegated")
    if call_type == CALLTYPE_STATIC:
        raise CallTypeForbidden("execution mode call type 0xfe (static call) is not delegated")
    if call_type not in (CALLTYPE_SINGLE, CALLTYPE_BATCH):
        raise CallTypeForbidden(f"execution mode call type 0x{call_type:02x} is unknown")
    if exec_type == EXECTYPE_TRY:
        raise CallTypeForbidden("execution mode exec type 0x01 (try) is not delegated")
    if exec_type != EXECTYPE_DEFAULT:
        raise CallTypeForbidden(f"execution mode exec type 0x{exec_type:02x} is unknown")
    if any(mode[2:6]):
        raise CallTypeForbidden("execution mode unused bytes 2..5 are not zero")
    if any(mode[6:10]):
        raise CallTypeForbidden(f"execution mode selector 0x{bytes(mode[6:10]).hex()} is unknown")
    if any(mode[10:]):
        raise CallTypeForbidden("execution mode payload is not zero")
    return call_type


def _unwrap_single(execution: bytes) -> tuple[Call, ...]:
    if len(execution) < _SINGLE_HEADER:
        raise CalldataMalformed(
            f"single execution: {len(execution)} bytes, target and value need {_SINGLE_HEADER}"
        )
    to = "0x" + execution[:20].hex()
    value = int.from_bytes(execution[20:_SINGLE_HEADER], "big")
    return (_inner_call(to, value, bytes(execution[_SINGLE_HEADER:]), "single execution"),)


def _unwrap_batch(execution: bytes) -> tuple[Call, ...]:
    (executions,) = _BATCH.decode(execution, "batch execution")
    items = cast(tuple[tuple[str, int, bytes], ...], executions)
    if not items:
        raise EmptyBatch("batch execution holds no call")
    return tuple(
        _inner_call(to, value, data, f"batch execution call {i}")
        for i, (to, value, data) in enumerate(items)
    )


def unwrap_execution(mode: bytes, execution_calldata: bytes) -> tuple[Call, ...]:
    """The calls an ERC-7579 ``execute(mode, executionCalldata)`` makes, refusing any other mode."""
    call_type = _check_mode(mode)
    if not isinstance(execution_calldata, bytes | bytearray):
        raise CalldataMalformed(
            f"execution calldata must be bytes, got {type(execution_calldata).__name__}"
        )
    execution = bytes(execution_calldata)
    if call_type == CALLTYPE_SINGLE:
        return _unwrap_single(execution)
    return _unwrap_batch(execution)


def _unwrap_multisend(transactions: bytes, outer_value: int) -> tuple[Call, ...]:
    if not transactions:
        raise EmptyBatch("multiSend holds no transaction")
    calls: list[Call] = []
    pos, end = 0, len(transactions)
    while pos < end:
        where = f"multiSend record {len(calls)} at byte {pos}"
        operation = transactions[pos]
        if operation == _OPERATION_DELEGATECALL:
            raise CallTypeForbidden(f"{where}: operation 1 (delegatecall) is never delegated")
        if operation != _OPERATION_CALL:
            raise CalldataMalformed(f"{where}: unknown operation {operation}")
        if end - pos < _RECORD_HEADER:
            raise CalldataMalformed(f"{where}: truncated record header")
        to = "0x" + transactions[pos + 1 : pos + 21].hex()
        value = int.from_bytes(transactions[pos + 21 : pos + 53], "big")
        length = int.from_bytes(transactions[pos + 53 : pos + _RECORD_HEADER], "big")
        start = pos + _RECORD_HEADER
        if length > end - start:
            raise CalldataMalformed(
                f"{where}: data length {length} exceeds the {end - start} bytes that remain"
            )
        if to == _ZERO_ADDRESS:
            raise CalldataMalformed(f"{where}: target is the zero address")
        calls.append(_inner_call(to, value, transactions[start : start + length], where))
        pos = start + length
    total = sum(call.value for call in calls)
    if total != outer_value:
        raise CalldataMalformed(
            f"multiSend: outer value {outer_value} differs from the records' total {total}"
        )
    return tuple(calls)


def _address(text: object, what: str) -> str:
    if not is_address_text(text):
        raise CalldataMalformed(f"{what} is not an address: {text!r}")
    return text.lower()


def unwrap_request(
    *,
    account: str,
    to: str,
    value: int,
    data: bytes,
    multisend: frozenset[str] = frozenset(),
) -> tuple[Call, ...]:
    """The inner calls one transaction request from a session stands for (see module doc).

    ``account`` is the wallet's address and ``multisend`` the MultiSend contracts whose records
    are unwrapped; addresses compare lower-case. Raises only :class:`CalldataError` subclasses
    for request content (a bad ``account`` is a caller bug and raises :class:`ValueError`).
    """
    if not is_address_text(account):
        raise ValueError(f"account is not an address: {account!r}")
    account = account.lower()
    target = _address(to, "request target")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UINT256_LIMIT:
        raise CalldataMalformed(f"request value is not a uint256: {value!r}")
    if not isinstance(data, bytes | bytearray):
        raise CalldataMalformed(f"request data is not bytes: {type(data).__name__}")
    data = bytes(data)
    outer = _inner_call(target, value, data, "request")
    selector = data[:_SELECTOR_SIZE]
    if target == account:
        if selector != EXECUTE.selector:
            raise SelfCallForbidden(
                f"call to the account with selector 0x{selector.hex()}: only execute(bytes32,bytes) "
                "is delegated"
            )
        if value != 0:
            raise CallTypeForbidden(f"execute on the account carries value {value}; it must be 0")
        mode, execution = decode_arguments(EXECUTE, data[_SELECTOR_SIZE:])
        return unwrap_execution(cast(bytes, mode), cast(bytes, execution))
    if selector == MULTISEND.selector and target in {a.lower() for a in multisend}:
        (transactions,) = decode_arguments(MULTISEND, data[_SELECTOR_SIZE:])
        return _unwrap_multisend(cast(bytes, transactions), value)
    return (outer,)


def account_execution(
    *, account: str, to: str, value: int, data: bytes, multisend: frozenset[str] = frozenset()
) -> tuple[bytes, bytes]:
    """The ERC-7579 ``(mode, executionCalldata)`` the account runs for a request: exactly the
    calls :func:`unwrap_request` returns, which are the calls the policy engine decided on.

    ``execute`` on the account keeps its own encoding; any other request (one call, or a
    MultiSend's records) becomes a single execution of one call or a batch of its calls. Raises
    what :func:`unwrap_request` raises.
    """
    calls = unwrap_request(account=account, to=to, value=value, data=data, multisend=multisend)
    if to.lower() == account.lower():
        mode, execution = decode_arguments(EXECUTE, bytes(data)[_SELECTOR_SIZE:])
        return cast(bytes, mode), cast(bytes, execution)
    if len(calls) == 1:
        return mode_single(), encode_single_execution(calls[0])
    return mode_batch(), encode_batch_execution(calls)


# ---------------------------------------------------------------------------------------------
# Encoders: the one way the project builds these payloads.


def _packed_call(call: Call) -> tuple[bytes, bytes]:
    """``(address, value word)`` of a call, validated by the ABI encoder."""
    try:
        return encode_word(_ADDRESS_TYPE, call.to)[12:], encode_word(_UINT256_TYPE, call.value)
    except AbiEncodeError as exc:
        raise AbiEncodeError(f"call {call!r}: {exc}") from None


def _call_data(call: Call) -> bytes:
    if not isinstance(call.data, bytes | bytearray):
        raise AbiEncodeError(f"call data must be bytes, got {type(call.data).__name__}")
    return bytes(call.data)


def encode_single_execution(call: Call) -> bytes:
    """``abi.encodePacked(target, value, callData)``: the execution of :func:`mode_single`."""
    to, value = _packed_call(call)
    return to + value + _call_data(call)


def encode_batch_execution(calls: Sequence[Call]) -> bytes:
    """``abi.encode(Execution[])``: the execution of :func:`mode_batch`."""
    return _BATCH.encode(([(c.to, c.value, _call_data(c)) for c in calls],))


def encode_execute(mode: bytes, execution_calldata: bytes) -> bytes:
    """Full calldata of ``execute(bytes32 mode, bytes executionCalldata)`` (selector included)."""
    return encode_call(EXECUTE, (bytes(mode), bytes(execution_calldata)))


def encode_multisend(calls: Sequence[Call], operations: Sequence[int] | None = None) -> bytes:
    """Full calldata of ``multiSend(bytes)`` with one packed record per call.

    ``operations`` (default all 0 = call) exists so tests can build refused records.
    """
    ops = [_OPERATION_CALL] * len(calls) if operations is None else list(operations)
    if len(ops) != len(calls):
        raise AbiEncodeError(f"{len(ops)} operations for {len(calls)} calls")
    records: list[bytes] = []
    for op, call in zip(ops, calls, strict=True):
        if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op <= 0xFF:
            raise AbiEncodeError(f"operation {op!r} is not a uint8")
        to, value = _packed_call(call)
        data = _call_data(call)
        records.append(bytes([op]) + to + value + len(data).to_bytes(32, "big") + data)
    return encode_call(MULTISEND, (b"".join(records),))
