"""The demo world deploys on both chains and works: accounts at their CREATE2 address, tokens,
a router with liquidity, a funded relayer."""

from __future__ import annotations

import secrets

from chain_support import ONE_ETH

from sessionward.chain.demo import ROUTER_RESERVES, deploy_demo
from sessionward.chain.interface import DevChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.proxy import account_address, proxy_runtime


def test_demo_world_deploys_and_a_swap_moves_real_balances(chain: DevChain) -> None:
    deployer = LocalTransactionSigner(secrets.token_bytes(32))
    relayer = "0x" + secrets.token_bytes(20).hex()
    demo = deploy_demo(chain, deployer=deployer, relayer=relayer, relayer_funding_wei=5 * ONE_ETH)

    assert demo.chain_id == chain.chain_id
    assert chain.get_balance(relayer) == 5 * ONE_ETH
    usdx = demo.bind(chain, "DemoToken", demo.token("USDX"))
    wethx = demo.bind(chain, "DemoToken", demo.token("WETHX"))
    assert (usdx.call_one("symbol"), usdx.call_one("decimals")) == ("USDX", 6)
    assert (wethx.call_one("symbol"), wethx.call_one("decimals")) == ("WETHX", 18)
    for symbol, token in (("USDX", usdx), ("WETHX", wethx)):
        assert token.call_one("balanceOf", demo.router) == ROUTER_RESERVES[symbol]

    # A trader swaps 1,000 USDX for WETHX at the quoted price.
    trader = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(trader.address, ONE_ETH)
    usdx.transact(deployer, "mint", trader.address, 1_000 * 10**6)
    usdx.transact(trader, "approve", demo.router, 1_000 * 10**6)
    router = demo.bind(chain, "DemoRouter", demo.router)
    path = [demo.token("USDX"), demo.token("WETHX")]
    (amounts,) = router.call("getAmountsOut", 1_000 * 10**6, path)
    assert isinstance(amounts, tuple)
    deadline = chain.block_timestamp() + 600
    router.transact(
        trader, "swapExactTokensForTokens", 1_000 * 10**6, 1, path, trader.address, deadline
    )
    assert usdx.call_one("balanceOf", trader.address) == 0
    assert wethx.call_one("balanceOf", trader.address) == amounts[-1]
    assert 0.49 * 10**18 < int(str(amounts[-1])) < 0.5 * 10**18  # ~2,000 USDX per WETHX


def test_factory_creates_the_owners_account_at_its_create2_address(chain: DevChain) -> None:
    deployer = LocalTransactionSigner(secrets.token_bytes(32))
    demo = deploy_demo(chain, deployer=deployer)
    factory = demo.bind(chain, "SessionAccountFactory", demo.factory)
    assert factory.call_one("IMPLEMENTATION") == demo.implementation
    owner = "0x" + secrets.token_bytes(20).hex()
    salt = secrets.token_bytes(32)
    expected = account_address(demo.factory, demo.implementation, owner, salt)
    assert factory.call_one("get_address", owner, salt) == expected

    factory.transact(deployer, "create_account", owner, salt)
    assert chain.get_code(expected) == proxy_runtime(demo.implementation, owner)
    account = demo.bind(chain, "SessionAccount", expected)
    assert account.call_one("owner") == owner
    factory.transact(deployer, "create_account", owner, salt)  # idempotent
    assert chain.get_code(expected) == proxy_runtime(demo.implementation, owner)
