"""ERC-4337 v0.7: owner and session user operations through an EntryPoint double."""

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
    events,
    make_key,
    max_cost,
    permission,
    rule,
    single,
    user_op,
    with_signature,
)
from test_session_rules import RECORD, TRANSFER, record, transfer

from sessionward.contracts.encoding import owner_user_op_signature, session_user_op_signature
from sessionward.crypto.secp256k1 import SECP256K1_N, personal_message_hash
from sessionward.domain.calldata import Call

SIG_VALIDATION_FAILED = 1
MAX_UINT256 = 2**256 - 1


def _signed(
    world: World, op: tuple[Any, ...], signer: Key, session: Key | None = None
) -> tuple[Any, ...]:
    digest = personal_message_hash(world.entry_point.get_user_op_hash(op))
    signature = signer.sign(digest)
    envelope = (
        owner_user_op_signature(signature)
        if session is None
        else session_user_op_signature(session.address, signature)
    )
    return with_signature(op, envelope)


def _session_op(
    wallet: Wallet, key: Key, execution: tuple[bytes, bytes], nonce: int = 0
) -> tuple[Any, ...]:
    return user_op(
        wallet.address,
        wallet.contract.execute_session_op.prepare_calldata(key.address, *execution),
        nonce=nonce,
    )


@pytest.fixture
def enabled(world: World, wallet: Wallet, session: Key) -> Key:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer)]),
                permission(world.target, RECORD),
            ],
            max_fee_wei=ETHER,
        )
    )
    return session


def test_only_the_entry_point_validates_and_runs_session_ops(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    op = _signed(world, _session_op(wallet, enabled, single(record(world))), enabled, enabled)
    with boa.reverts("NOT_AUTHORIZED"):
        wallet.contract.validateUserOp(op, b"\x00" * 32, 0, sender=world.relayer)
    with boa.reverts("NOT_AUTHORIZED"):
        wallet.contract.execute_session_op(
            enabled.address, *single(record(world)), sender=world.relayer
        )


def test_an_owner_op_validates_and_executes(world: World, wallet: Wallet) -> None:
    pay = single(Call(addr(world.token), 0, calldata(TRANSFER, world.relayer, UNIT)))
    op = _signed(
        world, user_op(wallet.address, wallet.contract.execute.prepare_calldata(*pay)), wallet.owner
    )
    world.entry_point.handle_op(op)
    assert world.entry_point.last_validation_data() == 0
    assert world.token.balanceOf(world.relayer) == UNIT


def test_a_bad_owner_signature_fails_validation_without_reverting(
    world: World, wallet: Wallet
) -> None:
    op = user_op(wallet.address, wallet.contract.execute.prepare_calldata(*single(record(world))))
    assert (
        world.entry_point.validate(_signed(world, op, make_key("mallory")), 0)
        == SIG_VALIDATION_FAILED
    )
    for envelope in (b"", b"\x02" + b"\x01" * 65, b"\x00" + b"\x01" * 64):
        assert world.entry_point.validate(with_signature(op, envelope), 0) == SIG_VALIDATION_FAILED
    with boa.reverts("AA24 signature error"):
        world.entry_point.handle_op(_signed(world, op, make_key("mallory")))


def test_a_session_op_packs_the_window_and_runs_under_the_session_rules(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    state = wallet.state(enabled)
    op = _signed(
        world,
        _session_op(wallet, enabled, single(transfer(world, world.relayer, UNIT))),
        enabled,
        enabled,
    )
    data = world.entry_point.validate(op, 0)
    assert data & (2**160 - 1) == 0
    assert (data >> 160) & (2**48 - 1) == state.expiresAt - 1
    assert data >> 208 == state.validAfter - 1
    world.entry_point.handle_op(op)
    assert world.token.balanceOf(world.relayer) == UNIT
    # The EntryPoint's nonce, not the session's, was used.
    assert not wallet.contract.session_nonce_used(enabled.address, 0)


def test_session_ops_count_against_max_uses(world: World, wallet: Wallet) -> None:
    key = make_key("twice")
    wallet.enable(wallet.grant(key, permissions=[permission(world.target, RECORD)], max_uses=2))
    for _ in range(2):
        wallet.contract.execute_session_op(
            key.address, *single(record(world)), sender=addr(world.entry_point)
        )
    assert wallet.state(key).uses == 2
    with boa.reverts("USAGE_LIMIT_REACHED"):
        wallet.contract.execute_session_op(
            key.address, *single(record(world)), sender=addr(world.entry_point)
        )
    assert world.target.calls() == 2


def test_a_session_op_reports_the_entry_point_nonce_in_its_event(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    wallet.contract.execute_session_op(
        enabled.address, *single(record(world)), sender=addr(world.entry_point)
    )
    (event,) = events(wallet.contract, "SessionExecuted")
    assert (addr(event.session_key), event.nonce) == (enabled.address, MAX_UINT256)


def test_a_zero_valid_after_stays_zero_in_the_validation_data(world: World, wallet: Wallet) -> None:
    key = make_key("from-genesis")
    wallet.enable(
        wallet.grant(
            key,
            permissions=[permission(world.target, RECORD)],
            valid_after=0,
            expires_at=boa.env.timestamp + 10,
            max_fee_wei=ETHER,
        )
    )
    op = _signed(world, _session_op(wallet, key, single(record(world))), key, key)
    data = world.entry_point.validate(op, 0)
    assert (data >> 208, (data >> 160) & (2**48 - 1)) == (0, boa.env.timestamp + 9)


def test_session_rules_refuse_user_operations_in_validation(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    """Before issue 12 these reverted only in execution (mined, paid by the account); now the
    validation a bundler simulates refuses them."""
    stranger = make_key("stranger").address
    op = _signed(
        world,
        _session_op(wallet, enabled, single(transfer(world, stranger, UNIT))),
        enabled,
        enabled,
    )
    with boa.reverts("ARG_RULE_VIOLATED"):
        world.entry_point.validate(op, 0)
    other = Call(addr(world.token2), 0, calldata(TRANSFER, world.relayer, UNIT))
    with boa.reverts("TARGET_NOT_ALLOWED"):
        world.entry_point.validate(
            _signed(world, _session_op(wallet, enabled, single(other)), enabled, enabled), 0
        )
    assert world.token.balanceOf(stranger) == 0
    assert wallet.contract.fee_budget(enabled.address) == ETHER


def test_a_session_op_may_only_call_the_session_path_for_its_own_key(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    steal = single(Call(addr(world.token), 0, calldata(TRANSFER, make_key("thief").address, UNIT)))
    owner_path = user_op(wallet.address, wallet.contract.execute.prepare_calldata(*steal))
    other_key = user_op(
        wallet.address,
        wallet.contract.execute_session_op.prepare_calldata(make_key("k2").address, *steal),
    )
    revoke = user_op(wallet.address, wallet.contract.revoke_all.prepare_calldata())
    for op in (owner_path, other_key, revoke):
        with boa.reverts("SELF_CALL_FORBIDDEN"):
            world.entry_point.validate(_signed(world, op, enabled, enabled), 0)


def test_a_session_op_of_an_unknown_or_revoked_session_is_refused(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    stranger = make_key("never-granted")
    with boa.reverts("SESSION_UNKNOWN"):
        world.entry_point.validate(
            _signed(
                world, _session_op(wallet, stranger, single(record(world))), stranger, stranger
            ),
            0,
        )
    wallet.contract.revoke_session(enabled.address, sender=wallet.owner.address)
    with boa.reverts("SESSION_REVOKED"):
        world.entry_point.validate(
            _signed(world, _session_op(wallet, enabled, single(record(world))), enabled, enabled), 0
        )


def test_a_bad_session_signature_fails_validation(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    op = _session_op(wallet, enabled, single(record(world)))
    assert (
        world.entry_point.validate(_signed(world, op, make_key("mallory"), enabled), 0)
        == SIG_VALIDATION_FAILED
    )
    good = _signed(world, op, enabled, enabled)[8]
    s = int.from_bytes(good[53:85], "big")
    twin = good[:53] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - good[85]])
    assert world.entry_point.validate(with_signature(op, twin), 0) == SIG_VALIDATION_FAILED
    assert world.entry_point.validate(with_signature(op, good[:-1]), 0) == SIG_VALIDATION_FAILED


def test_on_entry_point_v07_an_op_one_second_early_passes_validation_but_not_execution(
    world: World, wallet: Wallet, session: Key
) -> None:
    start = boa.env.timestamp + 50
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, RECORD)],
            valid_after=start,
            max_fee_wei=ETHER,
        )
    )
    op = _signed(world, _session_op(wallet, session, single(record(world))), session, session)
    boa.env.timestamp = start - 1  # v0.7 accepts validAfter' = start - 1 inclusively
    with boa.reverts("SESSION_NOT_YET_VALID"):
        world.entry_point.handle_op(op)
    boa.env.timestamp = start
    world.entry_point.handle_op(op)
    assert world.target.calls() == 1


def test_validation_pays_the_missing_prefund_to_the_entry_point(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    op = _signed(world, _session_op(wallet, enabled, single(record(world))), enabled, enabled)
    before = boa.env.get_balance(addr(world.entry_point))
    world.entry_point.validate(op, 12_345)
    assert boa.env.get_balance(addr(world.entry_point)) == before + 12_345
    # The fee budget is charged the operation's maximum cost, not what the EntryPoint asked.
    assert wallet.contract.fee_budget(enabled.address) == ETHER - max_cost(op)
