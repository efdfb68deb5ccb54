"""Fixtures of the ERC-7579 module tests: one anvil node per test session (Prague, 127.0.0.1,
stopped by its PID through ``anvil_node``), the canonical EntryPoint v0.7 with SessionWard's demo
world on it (``erc4337_support.make_stage``, imported from tests/erc4337), and OpenZeppelin's
``AccountERC7579`` compiled from npm (``oz_account``).

anvil, solc, the EntryPoint artifacts and @openzeppelin/contracts come from npm (package.json);
when they are missing these tests FAIL with how to get them, they never skip.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "erc4337"))

from erc4337_support import Stage, make_stage

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
    """EntryPoint v0.7 (canonical address) and the demo world (USDX, SessionAccount)."""
    return make_stage(chain)
