"""SessionWard's ERC-7579 module on the OpenZeppelin account and on SessionAccount7579
(``account_kind``) through a real bundler, alto (npm
``@pimlico/alto``, started on loopback against anvil and the canonical EntryPoint v0.7, stopped
by its PID; see tests/erc4337/alto_bundler.py for why it runs in its unsafe mode), driven by the
service's own bundler client (``sessionward.chain.bundler``): a session operation is estimated
with a stub signature, signed, accepted and mined, the fee budget charged its maximum cost; an
out-of-scope one is refused at ``eth_sendUserOperation`` with the module's reason code, nothing
mined, paid or charged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from alto_bundler import running
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, USDX, Key, Stage, max_cost, transfer_call
from module_support import ModuleWallet, deploy_module, new_module_wallet, session_signature

from sessionward.chain.bundler import BundlerClient, BundlerRefused, UserOperationReceipt
from sessionward.chain.contracts import DeployedContract
from sessionward.chain.user_operations import UserOperation
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.reasons import ReasonCode

pytestmark = pytest.mark.anvil

RECEIPT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def module(stage: Stage) -> DeployedContract:
    return deploy_module(stage)


@pytest.fixture(scope="module")
def bundler(stage: Stage, anvil: str) -> Iterator[BundlerClient]:
    executor, utility = secrets.token_bytes(32), secrets.token_bytes(32)
    for secret in (executor, utility):
        stage.chain.set_balance(address_from_secret(secret), 100 * ONE_ETH)
    with (
        running(
            rpc_url=anvil,
            entry_point=ENTRY_POINT_V07,
            executor_secret=executor,
            utility_secret=utility,
            safe_mode=False,
        ) as alto,
        BundlerClient(alto.url, entry_point=ENTRY_POINT_V07) as client,
    ):
        yield client


def _mined(bundler: BundlerClient, op_hash: str) -> UserOperationReceipt:
    deadline = time.monotonic() + RECEIPT_TIMEOUT
    while time.monotonic() < deadline:
        receipt = bundler.receipt(op_hash)
        if receipt is not None:
            return receipt
        time.sleep(0.1)
    raise AssertionError(f"{op_hash} not mined in {RECEIPT_TIMEOUT} s")


def test_a_session_operation_is_estimated_signed_and_mined_through_alto(
    stage: Stage, module: DeployedContract, bundler: BundlerClient, account_kind: str
) -> None:
    wallet: ModuleWallet = new_module_wallet(stage, module, account_kind=account_kind)
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    unsigned = wallet.account.unsigned_op(
        wallet.account.execute_data(call), module=wallet.module_address
    )
    # Estimated with a stub: the key's address and a signature of another key.
    stub = unsigned._replace(signature=session_signature(Key(), bytes(32)))
    stub = stub._replace(signature=bytes.fromhex(wallet.session.address[2:]) + stub.signature[20:])
    estimated = UserOperation.from_packed(stub).with_gas(
        bundler.estimate(UserOperation.from_packed(stub))
    )
    op = estimated.packed()
    op = op._replace(signature=session_signature(wallet.session, wallet.account.op_hash(op)))
    budget = wallet.fee_budget()
    op_hash = bundler.send(UserOperation.from_packed(op))
    assert op_hash == "0x" + wallet.account.op_hash(op).hex()
    receipt = _mined(bundler, op_hash)
    assert receipt.success, receipt
    assert receipt.sender == wallet.address
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    assert stage.token_balance(wallet.address) == 993 * USDX
    assert wallet.account.nonce(wallet.module_address) == op.nonce + 1
    assert wallet.fee_budget() == budget - max_cost(op)
    assert receipt.actual_gas_cost <= max_cost(op)


def test_an_out_of_scope_session_operation_is_refused_by_alto_and_nothing_moves(
    stage: Stage, module: DeployedContract, bundler: BundlerClient, account_kind: str
) -> None:
    wallet = new_module_wallet(stage, module, account_kind=account_kind)
    op = wallet.session_op(transfer_call(stage.demo.token("WETHX"), wallet.recipient, 1))

    def state() -> tuple[int, ...]:
        return (
            stage.chain.block_number(),
            stage.chain.get_balance(wallet.address),
            stage.token_balance(wallet.address),
            wallet.account.nonce(wallet.module_address),
            wallet.fee_budget(),
        )

    before = state()
    with pytest.raises(BundlerRefused) as refused:
        bundler.send(UserOperation.from_packed(op))
    assert refused.value.reason == ReasonCode("TARGET_NOT_ALLOWED")
    time.sleep(1.0)  # several bundling intervals: nothing may be mined later either
    assert bundler.receipt("0x" + wallet.account.op_hash(op).hex()) is None
    assert state() == before
