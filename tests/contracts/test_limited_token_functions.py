"""A token under a limit may only be called through functions whose outflow the account measures
(rule 7: transfer, approve, increaseAllowance, transferFrom, permit, WETH withdraw; WETH
deposit moves nothing out; swap and Permit2 selectors are metered through their arguments).
Any other function on a limited token — a custom ``transferAndCall(dest, amount)``, an
``increaseApproval(spender, amount)`` look-alike — would move the token uncounted, so the
account refuses the grant at enable (TOKEN_FUNCTION_UNDEFINED, as the grant builder does) and
nothing of it is stored.
"""

from __future__ import annotations

import boa
import pytest
from contracts_support import Wallet, World, make_key, permission, token_limit

from sessionward.contracts.encoding import grant_struct


@pytest.mark.parametrize(
    "function",
    [
        "transferAndCall(address,uint256,bytes)",
        "increaseApproval(address,uint256)",
        "burn(uint256)",
    ],
)
def test_an_unmeasured_function_on_a_limited_token_is_refused_at_enable(
    world: World, wallet: Wallet, function: str
) -> None:
    key = make_key("uncounted")
    grant = wallet.grant(
        key,
        permissions=[permission(world.token, function)],
        token_limits=[token_limit(world.token, 10**18)],
    )
    with boa.reverts("TOKEN_FUNCTION_UNDEFINED"):
        wallet.contract.enable_session(
            grant_struct(grant), wallet.sign_grant(grant), sender=wallet.relayer
        )
    assert wallet.state(key).status == 0
    assert not wallet.contract.grant_nonce_used(grant["nonce"])


@pytest.mark.parametrize(
    "function",
    [
        "transfer(address,uint256)",
        "approve(address,uint256)",
        "increaseAllowance(address,uint256)",
        "transferFrom(address,address,uint256)",
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
        "withdraw(uint256)",
        "deposit()",
    ],
)
def test_the_measured_functions_on_a_limited_token_are_enabled(
    world: World, wallet: Wallet, function: str
) -> None:
    key = make_key("measured")
    wallet.enable(
        wallet.grant(
            key,
            permissions=[permission(world.token, function)],
            token_limits=[token_limit(world.token, 10**18)],
        )
    )
    assert wallet.state(key).status == 1


def test_any_function_on_a_token_without_a_limit_is_enabled(world: World, wallet: Wallet) -> None:
    key = make_key("unlimited")
    wallet.enable(
        wallet.grant(
            key,
            permissions=[permission(world.token2, "transferAndCall(address,uint256,bytes)")],
            token_limits=[token_limit(world.token, 10**18)],
        )
    )
    assert wallet.state(key).status == 1
