"""The service's ERC-4337 path (sessionward.service.user_operations) against the real alto
bundler, EntryPoint v0.7 and sample VerifyingPaymaster on anvil: plan (estimate, fees,
sponsorship), sign the digest with the session key, submit, and read the outcome."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from alto_bundler import funded, mined
from erc4337_support import (
    ENTRY_POINT_V07,
    ONE_ETH,
    USDX,
    Key,
    Stage,
    Wallet,
    deploy_verifying_paymaster,
    execution,
    transfer_call,
)

from sessionward.chain.bundler import BundlerClient
from sessionward.chain.paymaster import VerifyingPaymasterSponsor
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.reasons import ReasonCode
from sessionward.service.onchain import AccountCalls
from sessionward.service.user_operations import (
    UserOperationPath,
    UserOperationPlan,
    UserOperationRefused,
    nonce_for,
)

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def bundler(stage: Stage, anvil: str) -> Iterator[BundlerClient]:
    with (
        funded(stage.chain, anvil) as alto,
        BundlerClient(alto.url, entry_point=ENTRY_POINT_V07) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def path(stage: Stage, bundler: BundlerClient) -> UserOperationPath:
    paymaster = deploy_verifying_paymaster(stage)
    sponsor = VerifyingPaymasterSponsor(
        paymaster=paymaster.contract.address,
        chain_id=stage.chain.chain_id,
        signer=LocalTransactionSigner(paymaster.signer.secret),
    )
    return UserOperationPath(
        chain=stage.chain, bundler=bundler, calls=AccountCalls(), sponsor=sponsor
    )


def _plan(
    path: UserOperationPath, stage: Stage, wallet: Wallet, to: str, *, sponsored: bool = False
) -> UserOperationPlan:
    mode, data = execution((transfer_call(stage.demo.token("USDX"), to, 7 * USDX),))
    return path.plan(
        txn_id="txn_" + secrets.token_hex(8),
        account=wallet.address,
        session_key=wallet.session.address,
        mode=mode,
        execution=data,
        sponsored=sponsored,
        now=stage.chain.block_timestamp(),
    )


@pytest.mark.parametrize("sponsored", [False, True], ids=["account-pays", "sponsored"])
def test_a_planned_signed_operation_is_mined_and_its_outcome_read(
    path: UserOperationPath, stage: Stage, sponsored: bool
) -> None:
    wallet = stage.new_wallet(fee_budget=0 if sponsored else ONE_ETH)
    plan = _plan(path, stage, wallet, wallet.recipient, sponsored=sponsored)
    assert plan.user_op_hash == wallet.op_hash(plan.operation.packed())
    op = plan.signed(wallet.session.sign(plan.digest))
    ether = stage.chain.get_balance(wallet.address)
    receipt = mined(path.outcome, path.submit(op))
    assert receipt.success and receipt.user_op_hash == "0x" + plan.user_op_hash.hex()
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    if sponsored:
        assert path.paymaster is not None and receipt.paymaster == path.paymaster
        assert stage.chain.get_balance(wallet.address) == ether
    else:
        assert receipt.paymaster is None


def test_resending_a_mined_operation_answers_its_hash_and_runs_nothing_twice(
    path: UserOperationPath, stage: Stage, wallet: Wallet
) -> None:
    """A crash after sending, before its answer was recorded: the restart sends it again."""
    plan = _plan(path, stage, wallet, wallet.recipient)
    op = plan.signed(wallet.session.sign(plan.digest))
    first = path.submit(op)
    mined(path.outcome, first)
    assert path.submit(op) == first
    time.sleep(0.5)
    assert stage.token_balance(wallet.recipient) == 7 * USDX


def test_an_out_of_scope_call_is_refused_at_planning_with_the_accounts_reason_code(
    path: UserOperationPath, stage: Stage, wallet: Wallet
) -> None:
    stranger = Key().address
    block = stage.chain.block_number()
    with pytest.raises(UserOperationRefused) as refused:
        _plan(path, stage, wallet, stranger)
    assert refused.value.code is ReasonCode.ARG_RULE_VIOLATED
    assert stage.chain.block_number() == block
    assert stage.token_balance(stranger) == 0


def test_an_operation_signed_by_another_key_is_refused_and_nothing_runs(
    path: UserOperationPath, stage: Stage, wallet: Wallet
) -> None:
    plan = _plan(path, stage, wallet, wallet.recipient)
    forged = plan.signed(Key().sign(plan.digest))
    block = stage.chain.block_number()
    with pytest.raises(UserOperationRefused) as refused:
        path.submit(forged)
    assert "AA24" in refused.value.message
    time.sleep(0.5)
    assert stage.chain.block_number() == block
    assert stage.token_balance(wallet.recipient) == 0


def test_sponsorship_on_a_network_without_a_paymaster_is_a_clear_error(
    stage: Stage, bundler: BundlerClient, wallet: Wallet
) -> None:
    bare = UserOperationPath(chain=stage.chain, bundler=bundler, calls=AccountCalls())
    with pytest.raises(ValueError, match="no paymaster"):
        _plan(bare, stage, wallet, wallet.recipient, sponsored=True)


def test_each_transaction_has_a_nonce_key_of_its_own_at_sequence_zero() -> None:
    first, second = nonce_for("txn_a"), nonce_for("txn_b")
    assert first != second and first == nonce_for("txn_a")
    assert first % 2**64 == 0 and first < 2**256
