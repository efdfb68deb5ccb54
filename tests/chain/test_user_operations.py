"""User operations in their two forms, the bundler's answers parsed strictly, and a bundler's
refusal read back as SessionWard's reason code (no chain needed; tests/erc4337 runs the same
code against the real alto bundler and EntryPoint v0.7)."""

from __future__ import annotations

import pytest

from sessionward.chain.bundler import BundlerRefused, UserOperationReceipt, reason_code_in
from sessionward.chain.errors import RpcProtocolError
from sessionward.chain.user_operations import (
    GasEstimate,
    UserOperation,
    verifying_paymaster_data,
)
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.reasons import ReasonCode

SENDER = "0x" + "AB" * 20
PAYMASTER = "0x" + "cd" * 20


def _sponsored() -> UserOperation:
    return UserOperation(
        sender=SENDER,
        nonce=7,
        call_data=b"\x01\x02",
        call_gas_limit=50_000,
        verification_gas_limit=120_000,
        pre_verification_gas=48_000,
        max_fee_per_gas=3 * 10**9,
        max_priority_fee_per_gas=10**9,
        paymaster=PAYMASTER,
        paymaster_verification_gas_limit=60_000,
        paymaster_post_op_gas_limit=1,
        paymaster_data=b"\xee" * 129,
        signature=b"\x01" * 86,
    )


def test_the_rpc_form_names_every_v07_field_in_hex_and_addresses_in_lower_case() -> None:
    rpc = _sponsored().to_rpc()
    assert rpc == {
        "sender": "0x" + "ab" * 20,
        "nonce": "0x7",
        "callData": "0x0102",
        "callGasLimit": hex(50_000),
        "verificationGasLimit": hex(120_000),
        "preVerificationGas": hex(48_000),
        "maxFeePerGas": hex(3 * 10**9),
        "maxPriorityFeePerGas": hex(10**9),
        "signature": "0x" + "01" * 86,
        "paymaster": PAYMASTER,
        "paymasterVerificationGasLimit": hex(60_000),
        "paymasterPostOpGasLimit": "0x1",
        "paymasterData": "0x" + "ee" * 129,
    }


def test_an_operation_the_account_pays_for_has_no_paymaster_fields() -> None:
    op = UserOperation(sender=SENDER, nonce=0, call_data=b"")
    assert not {key for key in op.to_rpc() if key.startswith("paymaster")}
    assert op.packed().paymaster_and_data == b""


def test_the_packed_form_round_trips_and_carries_the_paymaster_head() -> None:
    op = _sponsored()
    packed = op.packed()
    assert packed.paymaster_and_data[:20] == bytes.fromhex("cd" * 20)
    assert int.from_bytes(packed.paymaster_and_data[20:36], "big") == 60_000
    assert int.from_bytes(packed.paymaster_and_data[36:52], "big") == 1
    assert UserOperation.from_packed(packed) == op


def test_the_max_cost_counts_every_gas_limit_at_the_max_fee() -> None:
    op = _sponsored()
    assert op.max_cost() == (50_000 + 120_000 + 48_000 + 60_000 + 1) * 3 * 10**9


def test_paymaster_fields_without_a_paymaster_are_refused() -> None:
    with pytest.raises(ValueError, match="without a paymaster"):
        UserOperation(sender=SENDER, nonce=0, call_data=b"", paymaster_data=b"\x01")


@pytest.mark.parametrize(
    "packed",
    [
        PackedUserOperation(SENDER, 0, b"\x01", b"", bytes(32), 0, bytes(32), b"", b""),
        PackedUserOperation(SENDER, 0, b"", b"", bytes(32), 0, bytes(32), b"\x01" * 51, b""),
    ],
    ids=["factory", "short-paymaster-head"],
)
def test_a_packed_form_the_service_does_not_send_is_refused(packed: PackedUserOperation) -> None:
    with pytest.raises(ValueError):
        UserOperation.from_packed(packed)


def test_a_gas_field_beyond_uint128_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="uint128"):
        UserOperation(sender=SENDER, nonce=0, call_data=b"", call_gas_limit=2**128).packed()


def test_a_gas_estimate_is_parsed_strictly() -> None:
    answer = {"preVerificationGas": "0xbe50", "verificationGasLimit": "0x1", "callGasLimit": "0x2"}
    assert GasEstimate.from_rpc(answer) == GasEstimate(0xBE50, 1, 2, 0, 0)
    for broken in ([], {**answer, "callGasLimit": 2}, {**answer, "callGasLimit": "0x02"}):
        with pytest.raises(RpcProtocolError):
            GasEstimate.from_rpc(broken)


def test_the_estimate_sets_paymaster_limits_only_on_a_sponsored_operation() -> None:
    estimate = GasEstimate(1, 2, 3, 4, 5)
    own = UserOperation(sender=SENDER, nonce=0, call_data=b"").with_gas(estimate)
    assert (own.paymaster_verification_gas_limit, own.paymaster_post_op_gas_limit) == (0, 0)
    sponsored = _sponsored().with_gas(estimate)
    assert (sponsored.paymaster_verification_gas_limit, sponsored.paymaster_post_op_gas_limit) == (
        4,
        5,
    )
    assert (sponsored.pre_verification_gas, sponsored.verification_gas_limit) == (1, 2)


def test_verifying_paymaster_data_is_the_window_then_the_signature() -> None:
    data = verifying_paymaster_data(valid_until=2**48 - 1, valid_after=5, signature=b"\x02" * 65)
    assert data == (2**48 - 1).to_bytes(32, "big") + (5).to_bytes(32, "big") + b"\x02" * 65
    with pytest.raises(ValueError, match="uint48"):
        verifying_paymaster_data(valid_until=2**48, valid_after=0, signature=b"\x02" * 65)
    with pytest.raises(ValueError, match="65 bytes"):
        verifying_paymaster_data(valid_until=0, valid_after=0, signature=b"\x02" * 64)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            "UserOperation reverted with reason: AA23 reverted ARG_RULE_VIOLATED",
            "ARG_RULE_VIOLATED",
        ),
        (
            "reverted during simulation with reason: AA23 reverted: FEE_LIMIT_EXCEEDED",
            "FEE_LIMIT_EXCEEDED",
        ),
        ("AA23 reverted NOT_A_SESSIONWARD_CODE", None),
        ("AA21 didn't pay prefund", None),
        ("AA33 reverted 0xf645eedf", None),
    ],
)
def test_a_bundler_refusal_is_read_back_as_the_accounts_reason_code(
    message: str, reason: str | None
) -> None:
    found = reason_code_in(message, None)
    assert found == (None if reason is None else ReasonCode(reason))


def test_a_revert_payload_in_the_error_data_is_read_too() -> None:
    error_string = bytes.fromhex("08c379a0") + (32).to_bytes(32, "big")
    text = b"SESSION_REVOKED"
    payload = error_string + len(text).to_bytes(32, "big") + text.ljust(32, b"\0")
    assert reason_code_in("execution reverted", payload) is ReasonCode.SESSION_REVOKED


def test_a_refusal_keeps_the_bundlers_code_and_cuts_a_long_message() -> None:
    refused = BundlerRefused("eth_sendUserOperation", -32500, "x" * 5000, None)
    assert (refused.code, len(refused.message), refused.reason) == (-32500, 500, None)


def test_a_receipt_is_parsed_strictly_and_the_zero_paymaster_means_none() -> None:
    answer = {
        "userOpHash": "0x" + "11" * 32,
        "sender": SENDER,
        "nonce": "0x3",
        "success": False,
        "actualGasCost": "0x10",
        "actualGasUsed": "0x8",
        "paymaster": "0x" + "00" * 20,
        "reason": "0x08c379a0"
        + (32).to_bytes(32, "big").hex()
        + (20).to_bytes(32, "big").hex()
        + b"TOKEN_LIMIT_EXCEEDED".ljust(32, b"\0").hex(),
        "receipt": {"transactionHash": "0x" + "22" * 32, "blockNumber": "0x9"},
    }
    receipt = UserOperationReceipt.from_rpc(answer)
    assert (receipt.success, receipt.paymaster, receipt.block_number) == (False, None, 9)
    assert receipt.reason is ReasonCode.TOKEN_LIMIT_EXCEEDED
    for broken in (None, {**answer, "success": "no"}, {**answer, "receipt": None}):
        with pytest.raises(RpcProtocolError):
            UserOperationReceipt.from_rpc(broken)


def test_the_rpc_form_parses_back_to_the_same_operation() -> None:
    for op in (_sponsored(), UserOperation(sender=SENDER, nonce=2**200, call_data=b"\x09")):
        assert UserOperation.from_rpc(op.to_rpc()) == op


@pytest.mark.parametrize(
    "broken",
    [
        None,
        {**_sponsored().to_rpc(), "nonce": 7},
        {**_sponsored().to_rpc(), "sender": "0x12"},
        {**_sponsored().to_rpc(), "factory": "0x" + "11" * 20},
        {key: value for key, value in _sponsored().to_rpc().items() if key != "paymasterData"},
    ],
    ids=["not-an-object", "int-nonce", "short-sender", "factory", "paymaster-without-data"],
)
def test_a_malformed_rpc_form_is_refused(broken: object) -> None:
    with pytest.raises(RpcProtocolError):
        UserOperation.from_rpc(broken)
