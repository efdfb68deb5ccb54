"""A real ERC-4337 bundler, alto (npm ``@pimlico/alto`` 0.0.20), started on loopback against
anvil and the canonical EntryPoint v0.7: it accepts and mines SessionWard owner and session
operations (a session one charged exactly its maximum cost to its fee budget), refuses
out-of-scope and over-budget session operations in validation with nothing mined and nothing
paid, and mines a session operation sponsored by the reference VerifyingPaymaster for a session
without fee budget, the account paying nothing.

alto runs in its *unsafe* mode (no ERC-7562 tracing): the pinned version's safe mode refuses
every v0.7 operation, the reference ``SimpleAccount``'s included, because it cannot decode the
EntryPoint's ``DelegateAndRevert`` error (selector ``0x99410554``) that wraps its own
simulation result (``esm/rpc/validation/SafeValidator.js``, ``getValidationResultWithTracerV07``
decodes the last revert with ``pimlicoSimulationsAbi`` only). The last test here keeps that
evidence current. The ERC-7562 rule gate is therefore test_validation_rules.py's own trace check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alto_bundler import Alto, BundlerError, funded, mined
from erc4337_support import (
    ENTRY_POINT_V07,
    USDX,
    Key,
    Stage,
    Wallet,
    deploy_verifying_paymaster,
    max_cost,
    new_simple_account,
    transfer_call,
    user_op_json,
)

from sessionward.contracts.encoding import PackedUserOperation

pytestmark = pytest.mark.anvil

RECEIPT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def bundler(stage: Stage, anvil: str) -> Iterator[Alto]:
    with funded(stage.chain, anvil) as alto:
        yield alto


def _send(bundler: Alto, op: PackedUserOperation) -> str:
    result = bundler.request("eth_sendUserOperation", [user_op_json(op), ENTRY_POINT_V07])
    assert isinstance(result, str)
    return result


def _receipt(bundler: Alto, op_hash: str) -> dict[str, Any]:
    def read(op_hash: str) -> dict[str, Any] | None:
        receipt = bundler.request("eth_getUserOperationReceipt", [op_hash])
        assert receipt is None or isinstance(receipt, dict)
        return receipt

    return mined(read, op_hash, timeout_s=RECEIPT_TIMEOUT)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_bundler_is_the_real_alto_process_on_loopback_only(bundler: Alto) -> None:
    command = Path(f"/proc/{bundler.pid}/cmdline").read_bytes().split(b"\0")
    assert Path(command[0].decode()).name == "node"
    assert any(part.endswith(b"@pimlico/alto/esm/cli/alto.js") for part in command)
    port = int(bundler.url.rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, little-endian hex
    assert bundler.request("eth_supportedEntryPoints", []) == [
        "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
    ]


@pytest.mark.parametrize("kind", ["owner", "session", "owner-7702", "session-7702"])
def test_an_operation_is_accepted_and_mined_by_the_bundler(
    stage: Stage, bundler: Alto, kind: str
) -> None:
    """``-7702``: the account is an EOA delegated to the implementation by a type-4 transaction."""
    wallet = stage.new_wallet(eip7702=kind.endswith("7702"))
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    op = wallet.owner_op(call) if kind.startswith("owner") else wallet.session_op(call)
    before = stage.token_balance(wallet.address)
    budget = wallet.view("fee_budget", wallet.session.address)
    op_hash = _send(bundler, op)
    assert op_hash == "0x" + wallet.op_hash(op).hex()
    receipt = _receipt(bundler, op_hash)
    assert receipt["success"] is True, receipt
    assert receipt["sender"].lower() == wallet.address
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    assert stage.token_balance(wallet.address) == before - 7 * USDX
    assert wallet.nonce() == op.nonce + 1
    # A session operation is charged its maximum cost against the fee budget; an owner one not.
    charged = 0 if kind.startswith("owner") else max_cost(op)
    assert wallet.view("fee_budget", wallet.session.address) == budget - charged
    assert int(receipt["actualGasCost"], 16) <= max_cost(op)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("stranger", "ARG_RULE_VIOLATED"),
        ("other-token", "TARGET_NOT_ALLOWED"),
        ("fee-over-budget", "FEE_LIMIT_EXCEEDED"),
    ],
)
def test_an_out_of_scope_or_over_budget_session_operation_is_refused_and_nothing_moves(
    stage: Stage, wallet: Wallet, bundler: Alto, case: str, reason: str
) -> None:
    stranger = Key().address
    in_scope = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    if case == "stranger":
        op = wallet.session_op(transfer_call(stage.demo.token("USDX"), stranger, 7 * USDX))
    elif case == "other-token":
        op = wallet.session_op(transfer_call(stage.demo.token("WETHX"), wallet.recipient, 1))
    else:
        # In scope, but its maximum cost, 1,000,000 gas at 2,000 gwei = 2 ether, is twice the
        # session's fee budget (SESSION_FEE_BUDGET, 1 ether).
        op = wallet.session_op(in_scope, max_fee=2_000 * 10**9, priority_fee=10**9)
    ether, usdx, nonce = (
        stage.chain.get_balance(wallet.address),
        stage.token_balance(wallet.address),
        wallet.nonce(),
    )
    block = stage.chain.block_number()
    budget = wallet.view("fee_budget", wallet.session.address)
    with pytest.raises(BundlerError) as refused:
        _send(bundler, op)
    assert reason in refused.value.message or reason.encode().hex() in str(refused.value.data)
    time.sleep(1.0)  # several bundling intervals: nothing may be mined later either
    assert bundler.request("eth_getUserOperationReceipt", ["0x" + wallet.op_hash(op).hex()]) is None
    assert stage.chain.block_number() == block
    assert stage.chain.get_balance(wallet.address) == ether
    assert stage.token_balance(wallet.address) == usdx
    assert stage.token_balance(stranger) == 0
    assert wallet.nonce() == nonce
    assert wallet.view("fee_budget", wallet.session.address) == budget


def test_a_paymaster_sponsors_a_session_without_fee_budget_and_the_account_pays_nothing(
    stage: Stage, bundler: Alto
) -> None:
    wallet = stage.new_wallet(fee_budget=0)
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    with pytest.raises(BundlerError) as refused:
        _send(bundler, wallet.session_op(call))  # the account would pay: no budget, refused
    assert "FEE_LIMIT_EXCEEDED" in refused.value.message or (
        b"FEE_LIMIT_EXCEEDED".hex() in str(refused.value.data)
    )
    paymaster = deploy_verifying_paymaster(stage)

    def deposit_of(holder: str) -> int:
        value = stage.entry_point.call_one("balanceOf", holder)
        assert isinstance(value, int)
        return value

    ether = stage.chain.get_balance(wallet.address)
    deposit, sponsor_deposit = (
        deposit_of(wallet.address),
        deposit_of(paymaster.contract.address),
    )
    op = wallet.session_op(call, paymaster=paymaster)
    receipt = _receipt(bundler, _send(bundler, op))
    assert receipt["success"] is True, receipt
    assert receipt["paymaster"].lower() == paymaster.contract.address
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    assert stage.chain.get_balance(wallet.address) == ether
    assert deposit_of(wallet.address) == deposit
    assert wallet.view("fee_budget", wallet.session.address) == 0
    cost = int(receipt["actualGasCost"], 16)
    assert deposit_of(paymaster.contract.address) == sponsor_deposit - cost


def test_the_pinned_alto_safe_mode_refuses_even_the_reference_simple_account(
    stage: Stage, anvil: str
) -> None:
    """Evidence for running alto unsafe: its safe mode cannot decode DelegateAndRevert."""
    account = new_simple_account(stage)
    op = account.op(transfer_call(stage.demo.token("USDX"), Key().address, USDX))
    with (
        funded(stage.chain, anvil, safe_mode=True) as safe,
        pytest.raises(BundlerError) as refused,
    ):
        _send(safe, op)
    assert '"0x99410554" not found on ABI' in refused.value.message
