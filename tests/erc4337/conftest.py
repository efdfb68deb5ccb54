"""Fixtures of the ERC-4337 tests: one anvil node per test session (Prague, 127.0.0.1, stopped by
its PID, through ``anvil_node``), EntryPoint v0.7 at its canonical address with SessionWard's
demo world on it (``stage``), and a fresh wallet with an enabled session per test.

anvil and the EntryPoint artifacts come from npm (package.json, installed by ``./run test``);
when they are missing these tests FAIL with how to get them, they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from erc4337_support import Stage, Wallet, make_stage

import anvil_node
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.chain.rpc import RpcChain

CHAIN_ID = 31337


@pytest.fixture(scope="session")
def anvil() -> Iterator[str]:
    """``anvil`` (Prague, chain id ``CHAIN_ID``) on a free local port, for the whole session."""
    yield from anvil_node.session_node(CHAIN_ID)


@pytest.fixture(scope="session")
def chain(anvil: str) -> Iterator[RpcChain]:
    with RpcChain(anvil, timeout=60) as rpc:
        yield rpc


@pytest.fixture(scope="session")
def rpc(anvil: str) -> Iterator[JsonRpcClient]:
    """A raw JSON-RPC client of the node (``debug_traceCall``)."""
    client = JsonRpcClient(anvil, timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session")
def stage(chain: RpcChain) -> Stage:
    """EntryPoint v0.7 (canonical address) and the demo world whose SessionAccount trusts it."""
    return make_stage(chain)


@pytest.fixture
def wallet(stage: Stage) -> Wallet:
    """A fresh account with 1,000 USDX, 10 ether and one enabled session."""
    return stage.new_wallet()
