"""Session and owner user operations through the real ERC-4337 EntryPoint v0.7 (the npm
``@account-abstraction/contracts`` 0.7.0 build, constructed at its canonical address).

The EntryPoint takes the operation's prefund from the account (or its paymaster) and pays the
bundler's beneficiary; these tests check what leaves the account when a session key writes its
own operations: a refused operation leaves everything as it was (the whole ``handleOps``
reverts), a mined one costs the account at most what its session's fee budget was charged.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    ETHER,
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    calldata,
    deploy_entry_point_v07,
    deploy_world,
    double_deployer,
    entry_point_v07_artifact,
    make_key,
    max_cost,
    permission,
    record,
    single,
    user_op,
    with_signature,
)

from sessionward.contracts.encoding import owner_user_op_signature, session_user_op_signature
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.calldata import Call

pytestmark = pytest.mark.skipif(
    entry_point_v07_artifact() is None, reason="npm @account-abstraction/contracts not installed"
)

RECORD = "record(uint256,address,bytes32)"
TRANSFER = "transfer(address,uint256)"
GWEI = 10**9


@pytest.fixture(scope="module")
def world() -> World:
    return deploy_world(deploy_entry_point_v07())


def _signed(world: World, op: tuple[Any, ...], signer: Key, session: bool) -> tuple[Any, ...]:
    signature = signer.sign(personal_message_hash(world.entry_point.getUserOpHash(op)))
    if session:
        return with_signature(op, session_user_op_signature(signer.address, signature))
    return with_signature(op, owner_user_op_signature(signature))


def _session_op(
    world: World, key: Key, call: Call, nonce: int | None = None, **gas: Any
) -> tuple[Any, ...]:
    wallet = world.wallet
    if nonce is None:
        nonce = world.entry_point.getNonce(wallet.address, 0)
    data = wallet.contract.execute_session_op.prepare_calldata(key.address, *single(call))
    return _signed(world, user_op(wallet.address, data, nonce=nonce, **gas), key, session=True)


def _handle_ops(world: World, op: tuple[Any, ...], beneficiary: str, sender: str) -> bytes | None:
    """``handleOps([op], beneficiary)`` sent by ``sender``: None when it succeeded, else the
    revert data (FailedOp / FailedOpWithRevert carry the account's reason code)."""
    data = world.entry_point.handleOps.prepare_calldata([op], beneficiary)
    computation = boa.env.execute_code(
        to_address=addr(world.entry_point), sender=sender, data=data, gas=30_000_000
    )
    return bytes(computation.output) if computation.is_error else None


def _money(world: World, *holders: str) -> tuple[int, ...]:
    """Ether of the account, its EntryPoint deposit, and of each of ``holders``."""
    account = world.wallet.address
    return (
        boa.env.get_balance(account),
        world.entry_point.balanceOf(account),
        *(boa.env.get_balance(h) for h in holders),
    )


def _grant(wallet: Wallet, world: World, key: Key, max_fee_wei: int) -> None:
    wallet.enable(
        wallet.grant(key, permissions=[permission(world.target, RECORD)], max_fee_wei=max_fee_wei)
    )


def test_a_session_keys_own_handle_ops_with_extreme_gas_fields_is_refused_in_validation(
    world: World, wallet: Wallet
) -> None:
    """The issue's drain: the key bundles its own operation, itself as beneficiary, with a huge
    preVerificationGas and fee (a 76-ether prefund), under an envelope with no native value
    and a 0.01-ether fee budget. Validation refuses it; the whole handleOps reverts."""
    key = make_key("greedy")
    _grant(wallet, world, key, 10**16)
    op = _session_op(
        world,
        key,
        record(world),
        pre_verification_gas=75_000_000,
        max_fee=10**12,
        max_priority_fee=10**12,
    )
    assert max_cost(op) == 76 * ETHER
    before = _money(world, key.address)
    reverted = _handle_ops(world, op, key.address, sender=key.address)
    assert reverted is not None and b"FEE_LIMIT_EXCEEDED" in reverted
    assert _money(world, key.address) == before
    assert wallet.contract.fee_budget(key.address) == 10**16
    assert world.target.calls() == 0


def test_a_session_without_a_fee_budget_cannot_make_the_account_pay(
    world: World, wallet: Wallet
) -> None:
    key = make_key("no-fees")
    _grant(wallet, world, key, 0)
    op = _session_op(world, key, record(world))
    before = _money(world, key.address)
    reverted = _handle_ops(world, op, key.address, sender=key.address)
    assert reverted is not None and b"FEE_LIMIT_EXCEEDED" in reverted
    assert _money(world, key.address) == before
    assert world.target.calls() == 0


def test_an_out_of_scope_session_op_is_refused_by_the_entry_point_and_costs_nothing(
    world: World, wallet: Wallet
) -> None:
    key = make_key("scoped")
    _grant(wallet, world, key, ETHER)
    steal = Call(addr(world.token), 0, calldata(TRANSFER, key.address, UNIT))
    before = _money(world, key.address)
    token_before = world.token.balanceOf(wallet.address)
    reverted = _handle_ops(world, _session_op(world, key, steal), key.address, sender=key.address)
    assert reverted is not None and b"TARGET_NOT_ALLOWED" in reverted
    assert _money(world, key.address) == before
    assert world.token.balanceOf(wallet.address) == token_before
    assert wallet.contract.fee_budget(key.address) == ETHER


def test_a_forged_session_signature_is_refused_by_the_entry_point_and_costs_nothing(
    world: World, wallet: Wallet
) -> None:
    """The account pays the prefund before answering SIG_VALIDATION_FAILED (ERC-4337), and
    the EntryPoint reverts the whole handleOps (AA24): no charge, no payment, no call."""
    key = make_key("forged")
    _grant(wallet, world, key, ETHER)
    wallet_nonce = world.entry_point.getNonce(wallet.address, 0)
    data = wallet.contract.execute_session_op.prepare_calldata(key.address, *single(record(world)))
    op = user_op(wallet.address, data, nonce=wallet_nonce)
    mallory = make_key("mallory")
    forged = mallory.sign(personal_message_hash(world.entry_point.getUserOpHash(op)))
    op = with_signature(op, session_user_op_signature(key.address, forged))
    before = _money(world, mallory.address)
    reverted = _handle_ops(world, op, mallory.address, sender=mallory.address)
    assert reverted is not None and b"AA24 signature error" in reverted
    assert _money(world, mallory.address) == before
    assert wallet.contract.fee_budget(key.address) == ETHER
    assert world.entry_point.getNonce(wallet.address, 0) == wallet_nonce
    assert world.target.calls() == 0


def test_a_mined_session_op_costs_the_account_at_most_what_its_budget_was_charged(
    world: World, wallet: Wallet
) -> None:
    key = make_key("paying")
    _grant(wallet, world, key, ETHER)
    bundler = make_key("bundler").address
    op = _session_op(world, key, record(world), max_fee=2 * GWEI, max_priority_fee=2 * GWEI)
    balance, deposit, bundler_balance = _money(world, bundler)
    assert _handle_ops(world, op, bundler, sender=bundler) is None
    assert world.target.calls() == 1
    spent = balance + deposit - sum(_money(world)[:2])
    paid_to_bundler = boa.env.get_balance(bundler) - bundler_balance
    assert 0 < spent == paid_to_bundler <= max_cost(op)
    assert wallet.contract.fee_budget(key.address) == ETHER - max_cost(op)


def test_a_paymaster_may_sponsor_a_session_without_a_fee_budget(
    world: World, wallet: Wallet
) -> None:
    key = make_key("sponsored")
    _grant(wallet, world, key, 0)
    paymaster = double_deployer("SponsoringPaymaster").deploy()
    boa.env.set_balance(world.relayer, 10 * ETHER)
    world.entry_point.depositTo(addr(paymaster), value=ETHER, sender=world.relayer)
    paymaster_and_data = (
        bytes.fromhex(addr(paymaster)[2:]) + (100_000).to_bytes(16, "big") + bytes(16)
    )
    op = _session_op(world, key, record(world), paymaster_and_data=paymaster_and_data)
    bundler = make_key("bundler").address
    before = _money(world)
    assert _handle_ops(world, op, bundler, sender=bundler) is None
    assert world.target.calls() == 1
    assert _money(world) == before
    assert world.entry_point.balanceOf(addr(paymaster)) < ETHER
    assert wallet.contract.fee_budget(key.address) == 0


def test_an_owner_op_still_runs_through_the_entry_point(world: World, wallet: Wallet) -> None:
    pay = single(Call(addr(world.token), 0, calldata(TRANSFER, world.relayer, UNIT)))
    op = user_op(
        wallet.address,
        wallet.contract.execute.prepare_calldata(*pay),
        nonce=world.entry_point.getNonce(wallet.address, 0),
    )
    bundler = make_key("bundler").address
    assert (
        _handle_ops(world, _signed(world, op, wallet.owner, session=False), bundler, bundler)
        is None
    )
    assert world.token.balanceOf(world.relayer) == UNIT
