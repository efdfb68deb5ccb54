"""SessionWard's ERC-7579 module on the OpenZeppelin account through a real bundler, alto (npm
``@pimlico/alto``, started on loopback against anvil and the canonical EntryPoint v0.7, stopped
by its PID; see tests/erc4337/alto_bundler.py for why it runs in its unsafe mode): a session
operation is accepted and mined, the fee budget charged its maximum cost; an out-of-scope one is
refused at ``eth_sendUserOperation`` with the module's reason code, nothing mined or paid.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alto_bundler import Alto, BundlerError, running
from erc4337_support import (
    ENTRY_POINT_V07,
    ONE_ETH,
    USDX,
    Stage,
    max_cost,
    transfer_call,
    user_op_json,
)
from module_support import ModuleWallet, deploy_module, new_module_wallet

from sessionward.chain.contracts import DeployedContract
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.crypto.secp256k1 import address_from_secret

pytestmark = pytest.mark.anvil

RECEIPT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture(scope="module")
def bundler(stage: Stage, anvil: str) -> Iterator[Alto]:
    executor, utility = secrets.token_bytes(32), secrets.token_bytes(32)
    for secret in (executor, utility):
        stage.chain.set_balance(address_from_secret(secret), 100 * ONE_ETH)
    with running(
        rpc_url=anvil,
        entry_point=ENTRY_POINT_V07,
        executor_secret=executor,
        utility_secret=utility,
        safe_mode=False,
    ) as alto:
        yield alto


def _send(bundler: Alto, op: PackedUserOperation) -> str:
    result = bundler.request("eth_sendUserOperation", [user_op_json(op), ENTRY_POINT_V07])
    assert isinstance(result, str)
    return result


def _receipt(bundler: Alto, op_hash: str) -> dict[str, Any]:
    deadline = time.monotonic() + RECEIPT_TIMEOUT
    while time.monotonic() < deadline:
        receipt = bundler.request("eth_getUserOperationReceipt", [op_hash])
        if receipt:
            assert isinstance(receipt, dict)
            return receipt
        time.sleep(0.1)
    raise AssertionError(f"{op_hash} not mined in {RECEIPT_TIMEOUT} s: {bundler.output()}")


def test_a_session_operation_through_the_module_is_accepted_and_mined_by_alto(
    stage: Stage, module: DeployedContract, bundler: Alto
) -> None:
    wallet: ModuleWallet = new_module_wallet(stage, module)
    op = wallet.session_op(transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX))
    budget = wallet.fee_budget()
    op_hash = _send(bundler, op)
    assert op_hash == "0x" + wallet.account.op_hash(op).hex()
    receipt = _receipt(bundler, op_hash)
    assert receipt["success"] is True, receipt
    assert receipt["sender"].lower() == wallet.address
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    assert stage.token_balance(wallet.address) == 993 * USDX
    assert wallet.account.nonce(wallet.module_address) == op.nonce + 1
    assert wallet.fee_budget() == budget - max_cost(op)
    assert int(receipt["actualGasCost"], 16) <= max_cost(op)


def test_an_out_of_scope_session_operation_is_refused_by_alto_and_nothing_moves(
    stage: Stage, module: DeployedContract, bundler: Alto
) -> None:
    wallet = new_module_wallet(stage, module)
    op = wallet.session_op(transfer_call(stage.demo.token("WETHX"), wallet.recipient, 1))
    before = (
        stage.chain.block_number(),
        stage.chain.get_balance(wallet.address),
        stage.token_balance(wallet.address),
        wallet.account.nonce(wallet.module_address),
        wallet.fee_budget(),
    )
    with pytest.raises(BundlerError) as refused:
        _send(bundler, op)
    reason = "TARGET_NOT_ALLOWED"
    assert reason in refused.value.message or reason.encode().hex() in str(refused.value.data)
    time.sleep(1.0)  # several bundling intervals: nothing may be mined later either
    op_hash = "0x" + wallet.account.op_hash(op).hex()
    assert bundler.request("eth_getUserOperationReceipt", [op_hash]) is None
    assert (
        stage.chain.block_number(),
        stage.chain.get_balance(wallet.address),
        stage.token_balance(wallet.address),
        wallet.account.nonce(wallet.module_address),
        wallet.fee_budget(),
    ) == before
