"""Fixtures of the on-chain tests: an anvil node per test session (started on 127.0.0.1 with
the Prague hardfork, stopped by its PID) and a ``chain`` fixture that runs a behavioural test
on both the in-process chain and anvil.

The anvil binary comes from npm (``@foundry-rs/anvil`` in package.json). If it is missing the
tests that need it FAIL (they do not skip): run ``npm install`` in the repository root. Both
fixtures share their bodies with tests/chain's through ``anvil_node`` (test folders are not
packages, so one conftest cannot import the other).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import anvil_node
from sessionward.chain.interface import DevChain

CHAIN_ID = 31337


@pytest.fixture(scope="session")
def anvil() -> Iterator[str]:
    """``anvil`` (Prague, chain id ``CHAIN_ID``) on a free local port, for the whole session."""
    yield from anvil_node.session_node(CHAIN_ID)


@pytest.fixture(scope="module", params=anvil_node.BACKENDS)
def chain(request: pytest.FixtureRequest) -> Iterator[DevChain]:
    """The same behavioural tests on the in-process chain and on anvil (one chain per module
    and backend: the tests deploy their own accounts and never depend on each other)."""
    yield from anvil_node.dev_chain(request, CHAIN_ID)
