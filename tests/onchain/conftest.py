"""Fixtures of the on-chain tests: an anvil node per test session (started on 127.0.0.1 with
the Prague hardfork, stopped by its PID) and a ``chain`` fixture that runs a behavioural test
on both the in-process chain and anvil.

The anvil binary comes from npm (``@foundry-rs/anvil`` in package.json). If it is missing the
tests that need it FAIL (they do not skip): run ``npm install`` in the repository root. The fixture
is a copy of tests/chain's (test folders are not packages, so it cannot be imported).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import anvil_node
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.interface import DevChain
from sessionward.chain.rpc import RpcChain

CHAIN_ID = 31337


@pytest.fixture(scope="session")
def anvil() -> Iterator[str]:
    """Start ``anvil`` (Prague, chain id {CHAIN_ID}) on a free local port; yield its URL."""
    try:
        process, url = anvil_node.start(CHAIN_ID)
    except anvil_node.AnvilUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        anvil_node.stop(process)


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[DevChain]:
    """The same behavioural tests on the in-process chain and on anvil (one chain per module
    and backend: the tests deploy their own accounts and never depend on each other)."""
    if request.param == "embedded":
        yield EmbeddedChain(chain_id=CHAIN_ID)
        return
    url = request.getfixturevalue("anvil")
    rpc = RpcChain(url)
    try:
        yield rpc
    finally:
        rpc.close()
