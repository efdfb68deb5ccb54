"""A session UserOperation is refused in ``validateUserOp`` unless it is in scope and within the
session's fee budget, so an out-of-scope operation is never mined and never paid for.

Driven through the EntryPoint double (``MockEntryPoint.validate`` is the validation step a
bundler simulates; ``handle_op`` bubbles the account's reason codes). What validation refuses,
it refuses with the exact reason code and with nothing changed: no ether to the EntryPoint, no
fee-budget charge, no session state. test_entry_point_v07.py runs the money paths through the
real EntryPoint.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    DAY,
    ETHER,
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    batch,
    calldata,
    make_key,
    max_cost,
    permission,
    record,
    rule,
    single,
    snapshot,
    token_limit,
    transfer,
    user_op,
    with_signature,
)

from sessionward.contracts.encoding import session_user_op_signature
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.calldata import Call, encode_single_execution, mode_single

RECORD = "record(uint256,address,bytes32)"
TRANSFER = "transfer(address,uint256)"
APPROVE = "approve(address,uint256)"
BUDGET = ETHER
PREFUND = 10**15
SIG_VALIDATION_FAILED = 1


@pytest.fixture
def key(world: World, wallet: Wallet) -> Key:
    session = make_key("op-session")
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer)]),
                permission(world.token, APPROVE, rules=[rule(0, "in", world.relayer)]),
                permission(world.target, RECORD, max_value=5),
            ],
            value_limit=100,
            max_fee_wei=BUDGET,
        )
    )
    return session


def _op(
    world: World, key: Key, execution: tuple[bytes, bytes], signer: Key | None = None, **gas: Any
) -> tuple[Any, ...]:
    wallet = world.wallet
    data = wallet.contract.execute_session_op.prepare_calldata(key.address, *execution)
    op = user_op(wallet.address, data, **gas)
    digest = personal_message_hash(world.entry_point.get_user_op_hash(op))
    return with_signature(op, session_user_op_signature(key.address, (signer or key).sign(digest)))


def _everything(world: World, key: Key) -> tuple[Any, ...]:
    """What a session operation could change: the session's state and usage, the account's
    balances, the target's calls, the fee budget and the EntryPoint's ether."""
    return (
        *snapshot(world, key),
        world.wallet.contract.fee_budget(key.address),
        boa.env.get_balance(addr(world.entry_point)),
    )


def _refused(world: World, key: Key, op: tuple[Any, ...], reason: str) -> None:
    before = _everything(world, key)
    with boa.reverts(reason):
        world.entry_point.validate(op, PREFUND)
    assert _everything(world, key) == before


def _mode(call_type: int, exec_type: int = 0) -> bytes:
    return bytes([call_type, exec_type]) + bytes(30)


def _self_call(world: World) -> Call:
    return Call(world.wallet.address, 0, world.wallet.contract.revoke_all.prepare_calldata())


def test_an_in_scope_session_op_validates_and_is_charged_its_maximum_cost(
    world: World, wallet: Wallet, key: Key
) -> None:
    op = _op(world, key, single(record(world, value=5)))
    entry_point_before = boa.env.get_balance(addr(world.entry_point))
    data = world.entry_point.validate(op, PREFUND)
    assert data & (2**160 - 1) == 0
    assert wallet.contract.fee_budget(key.address) == BUDGET - max_cost(op)
    assert boa.env.get_balance(addr(world.entry_point)) == entry_point_before + PREFUND


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong target", "TARGET_NOT_ALLOWED"),
        ("wrong selector", "SELECTOR_NOT_ALLOWED"),
        ("delegatecall mode", "CALL_TYPE_FORBIDDEN"),
        ("try mode", "CALL_TYPE_FORBIDDEN"),
        ("self-call", "SELF_CALL_FORBIDDEN"),
        ("value over the per-call cap", "VALUE_CAP_EXCEEDED"),
        ("argument rule broken", "ARG_RULE_VIOLATED"),
        ("maximum approval", "NON_DELEGABLE_ACTION"),
        ("call data under 4 bytes", "CALLDATA_MALFORMED"),
        ("one bad call in a batch", "TARGET_NOT_ALLOWED"),
    ],
)
def test_an_out_of_scope_session_op_is_refused_in_validation_and_nothing_is_paid(
    world: World, key: Key, case: str, reason: str
) -> None:
    stranger = make_key("stranger").address
    ok = transfer(world, world.relayer, UNIT)
    executions: dict[str, tuple[bytes, bytes]] = {
        "wrong target": single(Call(addr(world.token2), 0, calldata(TRANSFER, world.relayer, 1))),
        "wrong selector": single(
            Call(addr(world.token), 0, calldata("burn(address,uint256)", stranger, 1))
        ),
        "delegatecall mode": (_mode(0xFF), encode_single_execution(ok)),
        "try mode": (_mode(0x00, 0x01), encode_single_execution(ok)),
        "self-call": single(_self_call(world)),
        "value over the per-call cap": single(record(world, value=6)),
        "argument rule broken": single(transfer(world, stranger, UNIT)),
        "maximum approval": single(
            Call(addr(world.token), 0, calldata(APPROVE, world.relayer, 2**256 - 1))
        ),
        "call data under 4 bytes": (mode_single(), encode_single_execution(ok)[:54]),
        "one bad call in a batch": batch(
            [ok, Call(addr(world.token2), 0, calldata(TRANSFER, world.relayer, 1))]
        ),
    }
    _refused(world, key, _op(world, key, executions[case]), reason)


def test_a_session_op_outside_its_window_fails_through_the_validation_data(
    world: World, wallet: Wallet
) -> None:
    later = make_key("later")
    start = boa.env.timestamp + 3_600
    wallet.enable(
        wallet.grant(
            later,
            permissions=[permission(world.target, RECORD)],
            valid_after=start,
            expires_at=start + DAY,
            max_fee_wei=BUDGET,
        )
    )
    op = _op(world, later, single(record(world)))
    # Validation reads no clock: the window travels in validationData ...
    data = world.entry_point.validate(op, 0)
    assert (data >> 208, (data >> 160) & (2**48 - 1)) == (start - 1, start + DAY - 1)
    # ... and the EntryPoint refuses the operation before and after it: nothing runs or moves.
    for now in (start - 2, start + DAY):
        boa.env.timestamp = now
        before = _everything(world, later)
        with boa.reverts("AA22 expired or not due"):
            world.entry_point.handle_op(op)
        assert _everything(world, later) == before


def test_the_fee_budget_runs_out_across_operations(world: World, wallet: Wallet, key: Key) -> None:
    op = _op(world, key, single(record(world)))
    cost = max_cost(op)
    small = make_key("small-budget")
    wallet.enable(
        wallet.grant(
            small, permissions=[permission(world.target, RECORD)], max_fee_wei=2 * cost + cost // 2
        )
    )
    op = _op(world, small, single(record(world)))
    for left in (cost + cost // 2, cost // 2):
        world.entry_point.validate(op, cost)
        assert wallet.contract.fee_budget(small.address) == left
    _refused(world, small, op, "FEE_LIMIT_EXCEEDED")
    # A cheaper operation still fits what is left.
    cheap = _op(world, small, single(record(world)), max_fee=10**7, max_priority_fee=10**7)
    assert max_cost(cheap) <= cost // 2
    world.entry_point.validate(cheap, 0)
    assert wallet.contract.fee_budget(small.address) == cost // 2 - max_cost(cheap)


def test_a_session_without_a_fee_budget_is_refused_unless_a_paymaster_pays(
    world: World, wallet: Wallet
) -> None:
    free = make_key("no-budget")
    wallet.enable(wallet.grant(free, permissions=[permission(world.target, RECORD)]))
    _refused(world, free, _op(world, free, single(record(world))), "FEE_LIMIT_EXCEEDED")
    # A zero maxFeePerGas costs nothing (no bundler mines it, but nothing can be taken).
    world.entry_point.validate(
        _op(world, free, single(record(world)), max_fee=0, max_priority_fee=0), 0
    )
    paymaster = bytes.fromhex(make_key("paymaster").address[2:])
    sponsored = _op(
        world, free, single(record(world)), paymaster_and_data=paymaster + bytes(32) + b"data"
    )
    assert world.entry_point.validate(sponsored, 0) & (2**160 - 1) == 0
    assert wallet.contract.fee_budget(free.address) == 0
    # The EntryPoint asks a paymaster's account for nothing; asking for more than the charge is
    # refused.
    _refused(world, free, sponsored, "FEE_LIMIT_EXCEEDED")


def test_paymaster_fields_without_a_paymaster_are_charged_to_the_budget(
    world: World, wallet: Wallet, key: Key
) -> None:
    fields = bytes(20) + (300_000).to_bytes(16, "big") + (70_000).to_bytes(16, "big")
    op = _op(world, key, single(record(world)), paymaster_and_data=fields)
    world.entry_point.validate(op, 0)
    assert wallet.contract.fee_budget(key.address) == BUDGET - max_cost(op)
    assert max_cost(op) == (500_000 + 500_000 + 50_000 + 300_000 + 70_000) * 2 * 10**9
    _refused(
        world,
        key,
        _op(world, key, single(record(world)), paymaster_and_data=bytes(51)),
        "CALLDATA_MALFORMED",
    )


@pytest.mark.parametrize(
    "gas",
    [
        {"pre_verification_gas": 2**129},
        {"max_fee": 2**127, "max_priority_fee": 1},
        {"verification_gas": 2**127, "call_gas": 2**127, "max_fee": 2**127},
    ],
)
def test_extreme_gas_fields_are_refused_without_overflow(
    world: World, key: Key, gas: dict[str, int]
) -> None:
    _refused(world, key, _op(world, key, single(record(world)), **gas), "FEE_LIMIT_EXCEEDED")


def test_the_entry_point_may_not_take_more_than_the_charge(world: World, key: Key) -> None:
    op = _op(world, key, single(record(world)))
    before = _everything(world, key)
    with boa.reverts("FEE_LIMIT_EXCEEDED"):
        world.entry_point.validate(op, max_cost(op) + 1)
    assert _everything(world, key) == before


def test_a_bad_session_signature_fails_validation_after_the_prefund_as_erc4337_asks(
    world: World, key: Key
) -> None:
    """ERC-4337: return SIG_VALIDATION_FAILED, do not revert, and pay the prefund, so a
    bundler's gas estimate (a simulation with changed gas fields, hence a stale signature)
    sees the prefund paid. Through this double the charge stays; the real EntryPoint reverts
    the whole operation (test_entry_point_v07.py: nothing charged or paid on chain)."""
    op = _op(world, key, single(record(world)), signer=make_key("mallory"))
    entry_point_before = boa.env.get_balance(addr(world.entry_point))
    assert world.entry_point.validate(op, PREFUND) == SIG_VALIDATION_FAILED
    assert world.wallet.contract.fee_budget(key.address) == BUDGET - max_cost(op)
    assert boa.env.get_balance(addr(world.entry_point)) == entry_point_before + PREFUND


def test_cumulative_limits_are_checked_in_execution(world: World, wallet: Wallet) -> None:
    limited = make_key("limited")
    wallet.enable(
        wallet.grant(
            limited,
            permissions=[permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer)])],
            token_limits=[token_limit(world.token, UNIT)],
            max_fee_wei=BUDGET,
        )
    )
    op = _op(world, limited, single(transfer(world, world.relayer, 2 * UNIT)))
    assert world.entry_point.validate(op, 0) & (2**160 - 1) == 0
    with boa.reverts("TOKEN_LIMIT_EXCEEDED"):
        world.entry_point.handle_op(op)
    assert world.token.balanceOf(world.relayer) == 0


def test_re_enabling_a_key_replaces_its_fee_budget(world: World, wallet: Wallet, key: Key) -> None:
    world.entry_point.validate(_op(world, key, single(record(world))), 0)
    assert wallet.contract.fee_budget(key.address) < BUDGET
    wallet.contract.revoke_session(key.address, sender=wallet.owner.address)
    wallet.enable(wallet.grant(key, permissions=[permission(world.target, RECORD)]))
    assert wallet.contract.fee_budget(key.address) == 0
    wallet.enable(wallet.grant(key, permissions=[permission(world.target, RECORD)], max_fee_wei=7))
    assert wallet.contract.fee_budget(key.address) == 7


def test_the_relayer_path_spends_no_account_ether_and_no_fee_budget(
    world: World, wallet: Wallet, key: Key
) -> None:
    ether = boa.env.get_balance(wallet.address)
    wallet.run(key, single(record(world)))
    wallet.run(key, single(record(world, value=5)))
    assert boa.env.get_balance(wallet.address) == ether - 5
    assert wallet.contract.fee_budget(key.address) == BUDGET
    assert world.target.calls() == 2
