"""The demo token (ERC-20 + EIP-2612) and router (V2- and V3-style swaps over its reserves)."""

from __future__ import annotations

import boa
from contracts_support import UNIT, World, addr, make_key

from sessionward.crypto.eip712 import TypedDataSchema, domain_separator, typed_data_digest

PERMIT = TypedDataSchema(
    {
        "Permit": [
            ("address", "owner"),
            ("address", "spender"),
            ("uint256", "value"),
            ("uint256", "nonce"),
            ("uint256", "deadline"),
        ]
    }
)


def test_the_token_mints_only_for_minters_and_supports_increase_allowance(world: World) -> None:
    holder, spender = make_key("holder").address, make_key("spender").address
    with boa.reverts():
        world.token.mint(holder, UNIT, sender=holder)
    world.token.mint(holder, 5 * UNIT)
    world.token.approve(spender, UNIT, sender=holder)
    world.token.increaseAllowance(spender, 2 * UNIT, sender=holder)
    assert world.token.allowance(holder, spender) == 3 * UNIT
    world.token.transferFrom(holder, spender, 3 * UNIT, sender=spender)
    assert (world.token.balanceOf(spender), world.token.allowance(holder, spender)) == (3 * UNIT, 0)


def test_the_token_accepts_an_eip2612_permit_from_its_holder(world: World) -> None:
    holder, spender = make_key("permit-holder"), make_key("permit-spender").address
    deadline = boa.env.timestamp + 100
    message = {
        "owner": holder.address,
        "spender": spender,
        "value": 7 * UNIT,
        "nonce": 0,
        "deadline": deadline,
    }
    domain = domain_separator(
        "Demo Dollar", "1", int(boa.env.evm.patch.chain_id), addr(world.token)
    )
    signature = holder.sign(typed_data_digest(domain, PERMIT.hash_struct("Permit", message)))
    r, s, v = signature[:32], signature[32:64], signature[64]
    world.token.permit(holder.address, spender, 7 * UNIT, deadline, v, r, s)
    assert world.token.allowance(holder.address, spender) == 7 * UNIT
    with boa.reverts():
        world.token.permit(holder.address, spender, 7 * UNIT, deadline, v, r, s)  # nonce spent


def _trader(world: World, amount: int) -> str:
    trader = make_key("trader").address
    world.token.mint(trader, amount)
    world.token.approve(addr(world.router), amount, sender=trader)
    return trader


def test_a_v2_swap_pays_the_quoted_amount_from_the_reserves(world: World) -> None:
    trader = _trader(world, 1_000 * UNIT)
    path = [addr(world.token), addr(world.token2)]
    quoted = world.router.getAmountsOut(1_000 * UNIT, path)
    reserve_in, reserve_out = (
        world.token.balanceOf(addr(world.router)),
        world.token2.balanceOf(addr(world.router)),
    )
    expected = 1_000 * UNIT * 997 * reserve_out // (reserve_in * 1000 + 1_000 * UNIT * 997)
    assert quoted == [1_000 * UNIT, expected]
    amounts = world.router.swapExactTokensForTokens(
        1_000 * UNIT, expected, path, trader, boa.env.timestamp, sender=trader
    )
    assert amounts == quoted
    assert (world.token.balanceOf(trader), world.token2.balanceOf(trader)) == (0, expected)
    assert world.token2.balanceOf(addr(world.router)) == reserve_out - expected


def test_a_v2_swap_enforces_slippage_deadline_and_path(world: World) -> None:
    trader = _trader(world, 10 * UNIT)
    path = [addr(world.token), addr(world.token2)]
    (_, out) = world.router.getAmountsOut(10 * UNIT, path)
    with boa.reverts("INSUFFICIENT_OUTPUT_AMOUNT"):
        world.router.swapExactTokensForTokens(
            10 * UNIT, out + 1, path, trader, boa.env.timestamp, sender=trader
        )
    with boa.reverts("EXPIRED"):
        world.router.swapExactTokensForTokens(
            10 * UNIT, 0, path, trader, boa.env.timestamp - 1, sender=trader
        )
    with boa.reverts("INVALID_PATH"):
        world.router.swapExactTokensForTokens(
            10 * UNIT, 0, path[:1], trader, boa.env.timestamp, sender=trader
        )
    assert world.token.balanceOf(trader) == 10 * UNIT


def test_a_v3_exact_input_single_swap_uses_its_fee(world: World) -> None:
    trader = _trader(world, 100 * UNIT)
    reserve_in, reserve_out = (
        world.token.balanceOf(addr(world.router)),
        world.token2.balanceOf(addr(world.router)),
    )
    expected = 100 * UNIT * 995_000 * reserve_out // (reserve_in * 1_000_000 + 100 * UNIT * 995_000)
    params = (
        addr(world.token),
        addr(world.token2),
        5_000,
        trader,
        boa.env.timestamp,
        100 * UNIT,
        expected,
        0,
    )
    assert world.router.exactInputSingle(params, sender=trader) == expected
    assert world.token2.balanceOf(trader) == expected
    with boa.reverts("TOO_LITTLE_RECEIVED"):
        world.router.exactInputSingle((*params[:5], 1, 10**30, 0), sender=trader)
