"""On chain, a swap's input counts against the input token's limit (docs/protocol.md rule 7), as
off chain: ``swapExactTokensForTokens``'s ``amountIn`` of ``path[0]``, ``exactInputSingle``'s
``params.amountIn`` of ``params.tokenIn``, and Permit2 approvals. Under a grant with token
limits, a swap whose input token has no limit has nothing to spend (TOKEN_LIMIT_EXCEEDED), so a
compromised service cannot swap the account's whole balance of an unlimited token either. The
router pulls the input through an allowance the owner gave it beforehand, so only the swap
itself is counted in these tests.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    UNIT,
    Key,
    Wallet,
    World,
    addr,
    batch,
    calldata,
    make_key,
    permission,
    refused,
    rule,
    single,
    token_limit,
    transfer,
)

from sessionward.domain.calldata import Call

SWAP_V2 = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
SWAP_V3 = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
TRANSFER = "transfer(address,uint256)"
PERMIT2_APPROVE = "approve(address,address,uint160,uint48)"
LIMIT = 100 * UNIT
HOUR = 3_600


def _v2(world: World, amount: int, token_in: Any = None, to: str | None = None) -> Call:
    path = [addr(token_in or world.token), addr(world.token2 if token_in is None else world.token)]
    deadline = boa.env.timestamp + 60
    data = calldata(SWAP_V2, amount, 1, path, to or world.wallet.address, deadline)
    return Call(addr(world.router), 0, data)


def _v3(world: World, amount: int, token_in: Any, token_out: Any) -> Call:
    params = (
        addr(token_in),
        addr(token_out),
        3_000,
        world.wallet.address,
        boa.env.timestamp + 60,
        amount,
        1,
        0,
    )
    return Call(addr(world.router), 0, calldata(SWAP_V3, params))


@pytest.fixture
def swapper(world: World, wallet: Wallet) -> Key:
    """A session that may swap on the router (output to the account only) and transfer DUSD,
    with an hourly limit of 100 DUSD and none on DETH; the router may pull both tokens."""
    for token in (world.token, world.token2):
        wallet.owner_execute(
            single(
                Call(
                    addr(token), 0, calldata("approve(address,uint256)", addr(world.router), 10**30)
                )
            )
        )
    key = make_key("swapper")
    wallet.enable(
        wallet.grant(
            key,
            permissions=[
                permission(world.router, SWAP_V2, rules=[rule(3, "eq", wallet.address, arg="to")]),
                permission(
                    world.router, SWAP_V3, rules=[rule(3, "eq", wallet.address, arg="recipient")]
                ),
                permission(world.token, TRANSFER, rules=[rule(0, "in", world.relayer)]),
            ],
            token_limits=[token_limit(world.token, LIMIT, HOUR)],
        )
    )
    return key


def _left(world: World, key: Key) -> int:
    return int(world.wallet.contract.token_usage(key.address, addr(world.token))[1])


def test_a_swaps_input_counts_against_its_tokens_limit(world: World, swapper: Key) -> None:
    world.wallet.run(swapper, single(_v2(world, 60 * UNIT)))
    assert _left(world, swapper) == 40 * UNIT
    world.wallet.run(swapper, single(_v3(world, 40 * UNIT, world.token, world.token2)))
    assert _left(world, swapper) == 0
    refused(world, swapper, single(_v2(world, 1)), "TOKEN_LIMIT_EXCEEDED")


def test_a_swap_beyond_the_limit_moves_nothing(world: World, swapper: Key) -> None:
    refused(world, swapper, single(_v2(world, LIMIT + 1)), "TOKEN_LIMIT_EXCEEDED")
    refused(
        world,
        swapper,
        single(_v3(world, LIMIT + 1, world.token, world.token2)),
        "TOKEN_LIMIT_EXCEEDED",
    )


def test_swaps_and_transfers_of_a_token_add_up_in_a_batch(world: World, swapper: Key) -> None:
    over = batch([_v2(world, 60 * UNIT), transfer(world, world.relayer, 41 * UNIT)])
    refused(world, swapper, over, "TOKEN_LIMIT_EXCEEDED")
    world.wallet.run(
        swapper, batch([_v2(world, 60 * UNIT), transfer(world, world.relayer, 40 * UNIT)])
    )
    assert _left(world, swapper) == 0


def test_a_swap_of_a_token_without_a_limit_is_refused_when_the_grant_has_limits(
    world: World, swapper: Key
) -> None:
    refused(
        world,
        swapper,
        single(_v3(world, 1, world.token2, world.token)),
        "TOKEN_LIMIT_EXCEEDED",
    )
    refused(world, swapper, single(_v2(world, 1, token_in=world.token2)), "TOKEN_LIMIT_EXCEEDED")


def test_a_swaps_output_may_only_go_to_the_account(world: World, swapper: Key) -> None:
    for to in (addr(world.router), make_key("thief").address):
        refused(world, swapper, single(_v2(world, UNIT, to=to)), "ARG_RULE_VIOLATED")


def test_a_swap_limit_refills_with_the_tokens_period(world: World, swapper: Key) -> None:
    world.wallet.run(swapper, single(_v2(world, LIMIT)))
    refused(world, swapper, single(_v2(world, 1)), "TOKEN_LIMIT_EXCEEDED")
    boa.env.time_travel(seconds=HOUR)
    world.wallet.run(swapper, single(_v2(world, LIMIT)))
    assert _left(world, swapper) == 0


def test_a_malformed_swap_path_is_refused(world: World, swapper: Key) -> None:
    good = _v2(world, UNIT).data
    bad_offset = good[:68] + (2**200).to_bytes(32, "big") + good[100:]
    empty_path = good[:164] + bytes(32)
    for data in (bad_offset, empty_path):
        refused(world, swapper, single(Call(addr(world.router), 0, data)), "CALLDATA_MALFORMED")


def test_permit2_approvals_count_against_the_limit(world: World, wallet: Wallet) -> None:
    permit2 = make_key("permit2-contract").address
    key = make_key("permit2-session")
    wallet.enable(
        wallet.grant(
            key,
            permissions=[permission(permit2, PERMIT2_APPROVE)],
            token_limits=[token_limit(world.token, LIMIT)],
        )
    )
    approve = Call(
        permit2, 0, calldata(PERMIT2_APPROVE, addr(world.token), world.relayer, LIMIT + 1, 0)
    )
    refused(world, key, single(approve), "TOKEN_LIMIT_EXCEEDED")


def test_without_token_limits_swaps_are_not_metered(world: World, wallet: Wallet) -> None:
    key = make_key("unmetered")
    wallet.owner_execute(
        single(
            Call(
                addr(world.token),
                0,
                calldata("approve(address,uint256)", addr(world.router), 10**30),
            )
        )
    )
    wallet.enable(wallet.grant(key, permissions=[permission(world.router, SWAP_V2)]))
    wallet.run(key, single(_v2(world, 500 * UNIT)))
