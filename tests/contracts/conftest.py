"""Fixtures of the on-chain tests: one world per test module, every test rolled back.

Every contract is compiled once per test session; each module deploys one world (see
``contracts_support.deploy_world``) and every test runs inside ``boa.env.anchor()``, so state
changes, time travel and chain-id patches never leak from one test into another.
"""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest
from contracts_support import Key, Wallet, World, deploy_world, make_key


@pytest.fixture(scope="module")
def world() -> World:
    return deploy_world()


@pytest.fixture(autouse=True)
def _rollback(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run every test inside an anchor: state, time and chain id are restored afterwards."""
    if "world" in request.fixturenames:
        request.getfixturevalue("world")  # deploy the module's world outside the anchor
    with boa.env.anchor():
        yield


@pytest.fixture
def wallet(world: World) -> Wallet:
    return world.wallet


@pytest.fixture
def session() -> Key:
    return make_key("session-1")
