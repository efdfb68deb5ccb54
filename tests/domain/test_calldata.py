"""Specification of how a session's request is unwrapped into inner calls (domain.calldata)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from eth_abi.abi import decode as eth_abi_decode_raw
from eth_abi.abi import encode as eth_abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.domain import abi
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import (
    EXECUTE,
    MULTISEND,
    Call,
    CalldataError,
    CalldataMalformed,
    CallTypeForbidden,
    EmptyBatch,
    SelfCallForbidden,
    account_execution,
    encode_batch_execution,
    encode_execute,
    encode_multisend,
    encode_single_execution,
    mode_batch,
    mode_single,
    unwrap_execution,
    unwrap_request,
)
from sessionward.reasons import ReasonCode, SessionWardError

ACCOUNT = "0x" + "ac" * 20
TOKEN = "0x" + "70" * 20
ROUTER = "0x" + "e0" * 20
MULTISEND_ADDRESS = "0x" + "5e" * 20
RECIPIENT = "0x" + "12" * 20
TRANSFER = parse_signature("transfer(address to,uint256 amount)")
APPROVE = parse_signature("approve(address spender,uint256 amount)")
TRANSFER_CALL = Call(TOKEN, 0, encode_call(TRANSFER, (RECIPIENT, 1000)))
APPROVE_CALL = Call(TOKEN, 0, encode_call(APPROVE, (ROUTER, 5000)))
PAYABLE_CALL = Call(ROUTER, 10**17, bytes.fromhex("d0e30db0"))  # deposit()


def refused(code: ReasonCode, action: Callable[[], object], *inputs: bytearray) -> CalldataError:
    """The action must fail with exactly ``code`` and leave its buffers untouched."""
    before = [bytes(b) for b in inputs]
    with pytest.raises(CalldataError) as info:
        action()
    assert info.value.code is code, info.value
    assert [bytes(b) for b in inputs] == before
    return info.value


def request(to: str, data: bytes, value: int = 0) -> tuple[Call, ...]:
    return unwrap_request(
        account=ACCOUNT, to=to, value=value, data=data, multisend=frozenset({MULTISEND_ADDRESS})
    )


def mode(*pairs: tuple[int, int]) -> bytes:
    raw = bytearray(32)
    for index, value in pairs:
        raw[index] = value
    return bytes(raw)


# ---------------------------------------------------------------------------------------------
# Errors


def test_every_calldata_error_carries_its_own_reason_code() -> None:
    assert CalldataMalformed is abi.CalldataMalformed
    cases = [
        (CalldataMalformed("x"), ReasonCode.CALLDATA_MALFORMED),
        (EmptyBatch("x"), ReasonCode.EMPTY_BATCH),
        (CallTypeForbidden("x"), ReasonCode.CALL_TYPE_FORBIDDEN),
        (SelfCallForbidden("x"), ReasonCode.SELF_CALL_FORBIDDEN),
    ]
    for error, code in cases:
        assert isinstance(error, CalldataError)
        assert isinstance(error, SessionWardError)
        assert error.code is code


# ---------------------------------------------------------------------------------------------
# Plain calls


def test_a_call_to_another_contract_is_one_call_as_it_is() -> None:
    data = TRANSFER_CALL.data
    assert request(TOKEN, data) == (Call(TOKEN, 0, data),)


def test_addresses_compare_and_come_out_lower_case() -> None:
    upper_token = "0x" + TOKEN[2:].upper()
    assert request(upper_token, TRANSFER_CALL.data) == (TRANSFER_CALL,)
    execute = encode_execute(mode_single(), encode_single_execution(TRANSFER_CALL))
    calls = unwrap_request(account="0x" + ACCOUNT[2:].upper(), to=ACCOUNT, value=0, data=execute)
    assert calls == (TRANSFER_CALL,)


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_outer_calldata_shorter_than_a_selector_is_refused(size: int) -> None:
    data = bytearray(TRANSFER_CALL.data[:size])
    for to in (TOKEN, ACCOUNT, MULTISEND_ADDRESS):
        error = refused(
            ReasonCode.CALLDATA_MALFORMED, functools.partial(request, to, bytes(data), 1), data
        )
        assert "no function selector" in error.message


@pytest.mark.parametrize(
    ("to", "value"),
    [("0x1234", 0), ("ac" * 20, 0), (TOKEN, -1), (TOKEN, 2**256), (TOKEN, True)],
)
def test_requests_with_a_bad_target_or_value_are_malformed(to: str, value: int) -> None:
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(to, TRANSFER_CALL.data, value))


# ---------------------------------------------------------------------------------------------
# The account's execute


def test_single_execution_round_trips_through_execute() -> None:
    data = encode_execute(mode_single(), encode_single_execution(PAYABLE_CALL))
    assert request(ACCOUNT, data) == (PAYABLE_CALL,)


def test_batch_execution_round_trips_through_execute() -> None:
    calls = (APPROVE_CALL, PAYABLE_CALL, TRANSFER_CALL)
    data = encode_execute(mode_batch(), encode_batch_execution(calls))
    assert request(ACCOUNT, data) == calls
    assert unwrap_execution(mode_batch(), encode_batch_execution(calls)) == calls


def test_encoders_produce_the_erc7579_layouts() -> None:
    single = encode_single_execution(PAYABLE_CALL)
    assert single == bytes.fromhex(ROUTER[2:]) + (10**17).to_bytes(32, "big") + PAYABLE_CALL.data
    batch = encode_batch_execution([TRANSFER_CALL, PAYABLE_CALL])
    assert batch == eth_abi_encode(
        ["(address,uint256,bytes)[]"],
        [[(c.to, c.value, c.data) for c in (TRANSFER_CALL, PAYABLE_CALL)]],
    )
    execute = encode_execute(mode_batch(), batch)
    assert execute[:4].hex() == "e9ae5c53" == EXECUTE.selector.hex()
    assert execute[4:] == eth_abi_encode(["bytes32", "bytes"], [mode_batch(), batch])
    assert mode_single() == bytes(32)
    assert mode_batch() == b"\x01" + bytes(31)


def test_execute_returns_inner_calls_as_they_are_one_level_only() -> None:
    nested = encode_execute(mode_single(), encode_single_execution(TRANSFER_CALL))
    inner_self_call = Call(ACCOUNT, 0, nested)
    data = encode_execute(mode_single(), encode_single_execution(inner_self_call))
    assert request(ACCOUNT, data) == (inner_self_call,)


def test_an_empty_batch_is_refused() -> None:
    data = bytearray(encode_execute(mode_batch(), encode_batch_execution([])))
    refused(ReasonCode.EMPTY_BATCH, lambda: request(ACCOUNT, bytes(data)), data)
    refused(
        ReasonCode.EMPTY_BATCH, lambda: unwrap_execution(mode_batch(), encode_batch_execution([]))
    )


@pytest.mark.parametrize(
    ("raw_mode", "fragment"),
    [
        (mode((0, 0xFF)), "delegatecall"),
        (mode((0, 0xFE)), "static call"),
        (mode((0, 0x02)), "call type 0x02 is unknown"),
        (mode((1, 0x01)), "try"),
        (mode((0, 0x01), (1, 0x01)), "try"),
        (mode((1, 0x02)), "exec type 0x02 is unknown"),
        (mode((0, 0xFF), (1, 0x01)), "delegatecall"),
        (mode((3, 0x01)), "unused bytes"),
        (mode((6, 0xAB)), "selector 0xab000000 is unknown"),
        (mode((0, 0x01), (9, 0x01)), "selector"),
        (mode((10, 0x01)), "payload"),
        (mode((31, 0x01)), "payload"),
    ],
)
def test_any_mode_but_plain_single_or_batch_is_forbidden(raw_mode: bytes, fragment: str) -> None:
    execution = encode_single_execution(TRANSFER_CALL)
    data = bytearray(encode_execute(raw_mode, execution))
    error = refused(ReasonCode.CALL_TYPE_FORBIDDEN, lambda: request(ACCOUNT, bytes(data)), data)
    assert fragment in error.message
    refused(ReasonCode.CALL_TYPE_FORBIDDEN, lambda: unwrap_execution(raw_mode, execution))


@pytest.mark.parametrize("size", [0, 4, 31, 33, 64])
def test_a_mode_that_is_not_32_bytes_is_malformed(size: int) -> None:
    execution = encode_single_execution(TRANSFER_CALL)
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: unwrap_execution(bytes(size), execution))


@pytest.mark.parametrize(
    "data",
    [
        TRANSFER_CALL.data,
        encode_call(parse_signature("installModule(uint256,address,bytes)"), (1, ROUTER, b"")),
        encode_call(parse_signature("executeFromExecutor(bytes32,bytes)"), (bytes(32), b"")),
        bytes.fromhex("e9ae5c52") + bytes(64),
    ],
    ids=["transfer", "installModule", "executeFromExecutor", "near-execute"],
)
def test_a_self_call_that_is_not_execute_is_forbidden(data: bytes) -> None:
    buffer = bytearray(data)
    refused(ReasonCode.SELF_CALL_FORBIDDEN, lambda: request(ACCOUNT, bytes(buffer)), buffer)


def test_value_sent_along_with_execute_is_forbidden() -> None:
    data = bytearray(encode_execute(mode_single(), encode_single_execution(TRANSFER_CALL)))
    error = refused(
        ReasonCode.CALL_TYPE_FORBIDDEN, lambda: request(ACCOUNT, bytes(data), value=1), data
    )
    assert "value 1" in error.message


def test_non_canonical_execute_arguments_are_malformed() -> None:
    canonical = encode_execute(mode_single(), encode_single_execution(TRANSFER_CALL))
    args = canonical[4:]
    gapped = canonical[:4] + args[:32] + (0x60).to_bytes(32, "big") + bytes(32) + args[64:]
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(ACCOUNT, gapped))
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(ACCOUNT, canonical + bytes(32)))
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(ACCOUNT, canonical[:-1]))


def test_a_non_canonical_batch_encoding_is_malformed() -> None:
    batch = bytearray(encode_batch_execution([TRANSFER_CALL]))
    batch[31] = 0x40  # the array offset must be 0x20
    refused(
        ReasonCode.CALLDATA_MALFORMED, lambda: unwrap_execution(mode_batch(), bytes(batch)), batch
    )


@pytest.mark.parametrize("size", [0, 20, 51])
def test_a_single_execution_without_target_and_value_is_malformed(size: int) -> None:
    execution = encode_single_execution(TRANSFER_CALL)[:size]
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: unwrap_execution(mode_single(), execution))


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_inner_calls_shorter_than_a_selector_are_malformed(size: int) -> None:
    short = Call(RECIPIENT, 10**18, TRANSFER_CALL.data[:size])
    single = encode_execute(mode_single(), encode_single_execution(short))
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(ACCOUNT, single))
    batch = encode_execute(mode_batch(), encode_batch_execution([TRANSFER_CALL, short]))
    error = refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(ACCOUNT, batch))
    assert "call 1" in error.message
    multisend = encode_multisend([short])
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(MULTISEND_ADDRESS, multisend, 10**18))


# ---------------------------------------------------------------------------------------------
# MultiSend


def test_multisend_records_round_trip() -> None:
    calls = (TRANSFER_CALL, PAYABLE_CALL, APPROVE_CALL)
    data = encode_multisend(calls)
    assert data[:4].hex() == "8d80ff0a" == MULTISEND.selector.hex()
    assert request(MULTISEND_ADDRESS, data, value=PAYABLE_CALL.value) == calls
    upper = "0x" + MULTISEND_ADDRESS[2:].upper()
    assert request(upper, data, value=PAYABLE_CALL.value) == calls


def test_multisend_records_use_the_safe_packed_layout() -> None:
    data = encode_multisend([TRANSFER_CALL])
    (transactions,) = eth_abi_decode_raw(["bytes"], data[4:])
    payload = TRANSFER_CALL.data
    assert transactions == (
        b"\x00"
        + bytes.fromhex(TOKEN[2:])
        + (0).to_bytes(32, "big")
        + len(payload).to_bytes(32, "big")
        + payload
    )


def test_multisend_to_an_unknown_address_is_just_a_call() -> None:
    data = encode_multisend([TRANSFER_CALL])
    assert request(ROUTER, data) == (Call(ROUTER, 0, data),)


def test_multisend_with_a_delegatecall_record_is_forbidden() -> None:
    data = bytearray(encode_multisend([TRANSFER_CALL, APPROVE_CALL], operations=[0, 1]))
    error = refused(
        ReasonCode.CALL_TYPE_FORBIDDEN, lambda: request(MULTISEND_ADDRESS, bytes(data)), data
    )
    assert "record 1" in error.message


def test_multisend_with_an_unknown_operation_is_malformed() -> None:
    data = encode_multisend([TRANSFER_CALL], operations=[2])
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(MULTISEND_ADDRESS, data))


def test_a_truncated_multisend_is_malformed() -> None:
    (transactions,) = eth_abi_decode_raw(
        ["bytes"], encode_multisend([TRANSFER_CALL, APPROVE_CALL])[4:]
    )
    for cut in (1, 10, 84, 85, 90, len(transactions) - 1):
        truncated = transactions[: len(transactions) - cut]
        data = encode_call(MULTISEND, (truncated,))
        error = refused(
            ReasonCode.CALLDATA_MALFORMED, functools.partial(request, MULTISEND_ADDRESS, data)
        )
        assert "record" in error.message


def test_an_empty_multisend_is_refused() -> None:
    data = encode_multisend([])
    refused(ReasonCode.EMPTY_BATCH, lambda: request(MULTISEND_ADDRESS, data))


def test_a_multisend_record_to_the_zero_address_is_malformed() -> None:
    data = encode_multisend([Call("0x" + "00" * 20, 0, TRANSFER_CALL.data)])
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(MULTISEND_ADDRESS, data))


@pytest.mark.parametrize("outer", [0, 1, 10**17 - 1, 10**17 + 1, 2 * 10**17])
def test_multisend_outer_value_must_equal_the_records_total(outer: int) -> None:
    data = encode_multisend([PAYABLE_CALL, TRANSFER_CALL])
    error = refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(MULTISEND_ADDRESS, data, outer))
    assert "differs from the records' total" in error.message


def test_non_canonical_multisend_arguments_are_malformed() -> None:
    data = encode_multisend([TRANSFER_CALL])
    refused(ReasonCode.CALLDATA_MALFORMED, lambda: request(MULTISEND_ADDRESS, data + b"\x00"))


# ---------------------------------------------------------------------------------------------
# Properties

ADDRESSES = st.sampled_from([TOKEN, ROUTER, RECIPIENT, ACCOUNT, "0x" + "00" * 20])
CALLS = st.builds(
    Call,
    to=ADDRESSES,
    value=st.one_of(st.just(0), st.integers(0, 2**256 - 1)),
    data=st.binary(min_size=4, max_size=80),
)
INTERESTING_MODES = st.one_of(
    st.sampled_from([mode_single(), mode_batch(), mode((0, 0xFF)), mode((1, 1))]),
    st.binary(min_size=0, max_size=40),
)
EXECUTION_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(CALLS, max_size=3).map(encode_batch_execution),
    CALLS.map(encode_single_execution),
)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(raw_mode=INTERESTING_MODES, execution=EXECUTION_BYTES, flip=st.integers(0, 10_000))
def test_unwrap_execution_only_ever_raises_calldata_errors(
    raw_mode: bytes, execution: bytes, flip: int
) -> None:
    mutated = bytearray(execution)
    if mutated:
        mutated[flip % len(mutated)] ^= 0x01 + flip % 255
    for candidate in (execution, bytes(mutated)):
        try:
            calls = unwrap_execution(raw_mode, candidate)
        except CalldataError:
            continue
        assert calls
        assert all(len(c.data) >= 4 for c in calls)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    to=st.sampled_from([ACCOUNT, MULTISEND_ADDRESS, TOKEN]),
    value=st.integers(0, 3),
    selector=st.sampled_from([EXECUTE.selector, MULTISEND.selector, b"", b"\xa9\x05\x9c"]),
    body=st.one_of(
        st.binary(max_size=300),
        EXECUTION_BYTES.map(lambda e: encode_execute(mode_batch(), e)[4:]),
    ),
)
def test_unwrap_request_only_ever_raises_calldata_errors(
    to: str, value: int, selector: bytes, body: bytes
) -> None:
    try:
        calls = request(to, selector + body, value)
    except CalldataError as error:
        assert error.code in {
            ReasonCode.CALLDATA_MALFORMED,
            ReasonCode.EMPTY_BATCH,
            ReasonCode.CALL_TYPE_FORBIDDEN,
            ReasonCode.SELF_CALL_FORBIDDEN,
        }
    else:
        assert calls
        assert all(len(c.data) >= 4 for c in calls)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(calls=st.lists(CALLS, min_size=1, max_size=4))
def test_encoded_calls_unwrap_to_themselves(calls: list[Call]) -> None:
    batch = encode_execute(mode_batch(), encode_batch_execution(calls))
    assert request(ACCOUNT, batch) == tuple(calls)
    single = encode_execute(mode_single(), encode_single_execution(calls[0]))
    assert request(ACCOUNT, single) == (calls[0],)
    records = [c for c in calls if c.to != "0x" + "00" * 20 and c.value < 2**200]
    if records:
        multisend = encode_multisend(records)
        total = sum(c.value for c in records)
        assert request(MULTISEND_ADDRESS, multisend, total) == tuple(records)


# --- what the account runs for a request: exactly the decided calls (issue 12.5) ------------


def executed(to: str, data: bytes, value: int = 0) -> tuple[bytes, bytes]:
    return account_execution(
        account=ACCOUNT, to=to, value=value, data=data, multisend=frozenset({MULTISEND_ADDRESS})
    )


def test_a_multisend_runs_as_a_batch_of_exactly_its_records_never_a_call_to_multisend() -> None:
    records = [TRANSFER_CALL, APPROVE_CALL, PAYABLE_CALL]
    data = encode_multisend(records)
    mode_, execution = executed(MULTISEND_ADDRESS, data, value=PAYABLE_CALL.value)
    assert mode_ == mode_batch()
    assert execution == encode_batch_execution(records)
    # What the account runs unwraps to what the policy engine decided on, call for call.
    assert unwrap_execution(mode_, execution) == request(
        MULTISEND_ADDRESS, data, PAYABLE_CALL.value
    )
    assert MULTISEND_ADDRESS not in {c.to for c in unwrap_execution(mode_, execution)}


def test_a_multisend_of_one_record_runs_as_a_single_call() -> None:
    mode_, execution = executed(MULTISEND_ADDRESS, encode_multisend([TRANSFER_CALL]))
    assert (mode_, execution) == (mode_single(), encode_single_execution(TRANSFER_CALL))


def test_a_plain_call_and_an_execute_run_as_written() -> None:
    assert executed(TOKEN, TRANSFER_CALL.data) == (
        mode_single(),
        encode_single_execution(TRANSFER_CALL),
    )
    batch = encode_batch_execution([TRANSFER_CALL, APPROVE_CALL])
    assert executed(ACCOUNT, encode_execute(mode_batch(), batch)) == (mode_batch(), batch)


def test_a_multisend_the_policy_refuses_to_unwrap_is_not_executed_either() -> None:
    delegate = encode_multisend([TRANSFER_CALL], operations=[1])
    refused(ReasonCode.CALL_TYPE_FORBIDDEN, lambda: executed(MULTISEND_ADDRESS, delegate))
