"""The ERC-4337 rooms' shared fixtures (tests/erc4337 and tests/erc7579 import them into their
conftest): one anvil node per test session (Prague, 127.0.0.1, stopped by its PID through
``anvil_node``), a chain client and a raw JSON-RPC client of it, and EntryPoint v0.7 at its
canonical address with SessionWard's demo world on it (``stage``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
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
    """EntryPoint v0.7 (canonical address) and the demo world whose SessionAccount trusts it."""
    return make_stage(chain)
