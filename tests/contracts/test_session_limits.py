"""Per-execution limits (rules 6-8), refilling periods and the validity window, with counters that
persist across calls."""

from __future__ import annotations

import boa
import pytest
from contracts_support import (
    DAY,
    ETHER,
    RECORD,
    TRANSFER,
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    batch,
    calldata,
    make_key,
    permission,
    record,
    refused,
    rule,
    single,
    token_limit,
    transfer,
)

from sessionward.domain.calldata import Call

# ------------------------------------------------------------------------------ window


def test_the_window_includes_valid_after_and_excludes_expires_at(
    world: World, wallet: Wallet, session: Key
) -> None:
    start = boa.env.timestamp + 100
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, RECORD)],
            valid_after=start,
            expires_at=start + 100,
        )
    )
    boa.env.timestamp = start - 1
    refused(world, session, single(record(world)), "SESSION_NOT_YET_VALID")
    boa.env.timestamp = start
    wallet.run(session, single(record(world)))
    boa.env.timestamp = start + 99
    wallet.run(session, single(record(world)))
    boa.env.timestamp = start + 100
    refused(world, session, single(record(world)), "SESSION_EXPIRED")
    assert wallet.contract.session_nonce(session.address) == 2


def test_a_call_is_void_from_its_deadline_on(world: World, wallet: Wallet, session: Key) -> None:
    wallet.enable(wallet.grant(session, permissions=[permission(world.target, RECORD)]))
    now = boa.env.timestamp
    with boa.reverts("SESSION_EXPIRED"):
        wallet.run(session, single(record(world)), deadline=now)
    wallet.run(session, single(record(world)), deadline=now + 1)
    assert wallet.contract.session_nonce(session.address) == 1


# ------------------------------------------------------------------------------ rule 6


@pytest.fixture
def value_session(world: World, wallet: Wallet, session: Key) -> Key:
    """3 ether per day, at most 2 ether per call, to Target.record."""
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, RECORD, max_value=2 * ETHER)],
            value_limit=3 * ETHER,
            value_period=DAY,
            expires_at=boa.env.timestamp + 3 * DAY,
        )
    )
    return session


def test_native_value_is_capped_per_window_and_refills_exactly_at_the_boundary(
    world: World, wallet: Wallet, value_session: Key
) -> None:
    start = wallet.state(value_session).validAfter
    wallet.run(value_session, single(record(world, value=2 * ETHER)))
    wallet.run(value_session, single(record(world, value=ETHER)))
    refused(world, value_session, single(record(world, value=1)), "VALUE_LIMIT_EXCEEDED")
    boa.env.timestamp = start + DAY - 1
    refused(world, value_session, single(record(world, value=1)), "VALUE_LIMIT_EXCEEDED")
    boa.env.timestamp = start + DAY
    wallet.run(value_session, single(record(world, value=2 * ETHER)))
    state = wallet.state(value_session)
    assert (state.nativeWindow, state.nativeRemaining) == (1, ETHER)


def test_the_value_of_a_batch_is_summed_against_the_limit(world: World, value_session: Key) -> None:
    refused(
        world,
        value_session,
        batch([record(world, value=2 * ETHER), record(world, value=2 * ETHER)]),
        "VALUE_LIMIT_EXCEEDED",
    )


def test_no_value_limit_means_no_native_value_at_all(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(session, permissions=[permission(world.target, RECORD, max_value=ETHER)])
    )
    refused(world, session, single(record(world, value=1)), "VALUE_LIMIT_EXCEEDED")
    wallet.run(session, single(record(world, value=0)))


# ------------------------------------------------------------------------------ rule 7


@pytest.fixture
def token_session(world: World, wallet: Wallet, session: Key) -> Key:
    """DUSD: transfer (at most 3 per call), approve, increaseAllowance, permit, transferFrom;
    12 DUSD per hour."""
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(world.token, TRANSFER, rules=[rule(1, "lte", 3 * UNIT, arg="amount")]),
                permission(world.token, "approve(address,uint256)"),
                permission(world.token, "increaseAllowance(address,uint256)"),
                permission(
                    world.token, "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"
                ),
                permission(world.token, "transferFrom(address,address,uint256)"),
            ],
            token_limits=[token_limit(world.token, 12 * UNIT, 3600)],
        )
    )
    return session


def remaining(world: World, key: Key) -> int:
    return int(world.wallet.contract.token_usage(key.address, addr(world.token))[1])


def test_five_calls_under_the_per_call_cap_cannot_cross_the_total(
    world: World, wallet: Wallet, token_session: Key
) -> None:
    for _ in range(4):
        wallet.run(token_session, single(transfer(world, world.relayer, 3 * UNIT)))
    assert remaining(world, token_session) == 0
    refused(
        world,
        token_session,
        single(transfer(world, world.relayer, 3 * UNIT)),
        "TOKEN_LIMIT_EXCEEDED",
    )
    refused(
        world, token_session, single(transfer(world, world.relayer, 4 * UNIT)), "ARG_RULE_VIOLATED"
    )
    assert world.token.balanceOf(world.relayer) == 12 * UNIT


def test_a_batch_is_summed_per_token(world: World, token_session: Key) -> None:
    five = [transfer(world, world.relayer, 3 * UNIT)] * 5
    refused(world, token_session, batch(five), "TOKEN_LIMIT_EXCEEDED")
    world.wallet.run(token_session, batch(five[:4]))
    assert remaining(world, token_session) == 0


def test_the_token_limit_refills_exactly_at_the_period_boundary(
    world: World, wallet: Wallet, token_session: Key
) -> None:
    start = wallet.state(token_session).validAfter
    for _ in range(4):
        wallet.run(token_session, single(transfer(world, world.relayer, 3 * UNIT)))
    boa.env.timestamp = start + 3599
    refused(world, token_session, single(transfer(world, world.relayer, 1)), "TOKEN_LIMIT_EXCEEDED")
    boa.env.timestamp = start + 3600
    wallet.run(token_session, single(transfer(world, world.relayer, 3 * UNIT)))
    assert wallet.contract.token_usage(token_session.address, addr(world.token)) == (1, 9 * UNIT)


def test_approve_and_increase_allowance_draw_the_limit_down(
    world: World, wallet: Wallet, token_session: Key
) -> None:
    spender = make_key("spender").address
    wallet.run(
        token_session,
        single(Call(addr(world.token), 0, calldata("approve(address,uint256)", spender, 5 * UNIT))),
    )
    wallet.run(
        token_session,
        single(
            Call(
                addr(world.token),
                0,
                calldata("increaseAllowance(address,uint256)", spender, 6 * UNIT),
            )
        ),
    )
    assert world.token.allowance(wallet.address, spender) == 11 * UNIT
    assert remaining(world, token_session) == UNIT
    too_much = Call(addr(world.token), 0, calldata("approve(address,uint256)", spender, 2 * UNIT))
    refused(world, token_session, single(too_much), "TOKEN_LIMIT_EXCEEDED")


def test_a_permit_by_the_account_draws_the_limit_down(
    world: World, wallet: Wallet, token_session: Key
) -> None:
    permit = "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"
    deadline = boa.env.timestamp + 60

    def call(owner: str, value: int) -> Call:
        return Call(
            addr(world.token),
            0,
            calldata(permit, owner, world.relayer, value, deadline, 27, b"\x01" * 32, b"\x02" * 32),
        )

    refused(world, token_session, single(call(wallet.address, 13 * UNIT)), "TOKEN_LIMIT_EXCEEDED")
    # Within the limit the session's checks pass and the token itself refuses the forged permit.
    with boa.reverts():
        wallet.run(token_session, single(call(wallet.address, 12 * UNIT)))
    # A permit for someone else's tokens is not the account's outflow: not counted.
    with boa.reverts():
        wallet.run(token_session, single(call(make_key("other").address, 13 * UNIT)))
    assert remaining(world, token_session) == 12 * UNIT


def test_transfer_from_the_account_counts_and_from_others_does_not(
    world: World, wallet: Wallet, token_session: Key
) -> None:
    other = make_key("other-holder").address
    world.token.mint(other, 50 * UNIT)
    world.token.approve(wallet.address, 50 * UNIT, sender=other)
    wallet.owner_execute(
        single(
            Call(
                addr(world.token),
                0,
                calldata("approve(address,uint256)", wallet.address, 50 * UNIT),
            )
        )
    )
    pull = "transferFrom(address,address,uint256)"
    wallet.run(
        token_session,
        single(Call(addr(world.token), 0, calldata(pull, other, world.relayer, 20 * UNIT))),
    )
    assert remaining(world, token_session) == 12 * UNIT
    wallet.run(
        token_session,
        single(
            Call(addr(world.token), 0, calldata(pull, wallet.address, world.relayer, 10 * UNIT))
        ),
    )
    assert remaining(world, token_session) == 2 * UNIT
    refused(
        world,
        token_session,
        single(Call(addr(world.token), 0, calldata(pull, wallet.address, world.relayer, 3 * UNIT))),
        "TOKEN_LIMIT_EXCEEDED",
    )
    assert world.token.balanceOf(world.relayer) == 30 * UNIT


def test_value_is_checked_before_tokens_and_tokens_before_uses(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[
                permission(world.target, RECORD, max_value=ETHER),
                permission(world.token, TRANSFER),
            ],
            token_limits=[token_limit(world.token, UNIT)],
            max_uses=1,
        )
    )
    over_both = batch([record(world, value=1), transfer(world, world.relayer, 2 * UNIT)])
    refused(world, session, over_both, "VALUE_LIMIT_EXCEEDED")
    wallet.run(session, single(record(world)))
    refused(
        world, session, single(transfer(world, world.relayer, 2 * UNIT)), "TOKEN_LIMIT_EXCEEDED"
    )
    refused(world, session, single(transfer(world, world.relayer, 1)), "USAGE_LIMIT_REACHED")


# ------------------------------------------------------------------------------ rule 8


def test_the_use_count_counts_executions_not_calls(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(wallet.grant(session, permissions=[permission(world.target, RECORD)], max_uses=2))
    wallet.run(session, batch([record(world, 1), record(world, 2), record(world, 3)]))
    wallet.run(session, single(record(world)))
    refused(world, session, single(record(world)), "USAGE_LIMIT_REACHED")
    assert world.target.calls() == 4
    assert wallet.state(session).uses == 2


def test_counters_persist_across_calls(world: World, wallet: Wallet, token_session: Key) -> None:
    for i in range(1, 4):
        wallet.run(token_session, single(transfer(world, world.relayer, UNIT)))
        state = wallet.state(token_session)
        assert wallet.contract.session_nonce(token_session.address) == i
        assert remaining(world, token_session) == (12 - i) * UNIT
        assert state.uses == 0  # no maxUses: the use counter is not kept (no SSTORE)


def test_token_amounts_that_overflow_when_summed_exceed_the_limit(
    world: World, wallet: Wallet, session: Key
) -> None:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.token, "approve(address,uint256)")],
            token_limits=[token_limit(world.token, UNIT)],
        )
    )
    half = Call(addr(world.token), 0, calldata("approve(address,uint256)", world.relayer, 2**255))
    refused(world, session, batch([half, half]), "TOKEN_LIMIT_EXCEEDED")
