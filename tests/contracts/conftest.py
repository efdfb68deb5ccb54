"""Fixtures of the on-chain tests: one world per test module, every test rolled back.

Every contract is compiled once per test session; each module deploys one world (see
``contracts_support.deploy_world``). Isolation is titanoboa's pytest plugin: every fixture and
every test body runs inside ``boa.env.anchor()``, so state changes, time travel and chain-id
patches never leak from one test into another (gas tests opt out with ``ignore_isolation``).
"""

from __future__ import annotations

from typing import Any

import pytest
from contracts_support import Key, Wallet, World, deploy_world, double_deployer, make_key


@pytest.fixture(scope="module")
def world() -> World:
    return deploy_world()


@pytest.fixture
def wallet(world: World) -> Wallet:
    return world.wallet


@pytest.fixture
def session() -> Key:
    return make_key("session-1")


@pytest.fixture(scope="module")
def harness() -> Any:
    """The Harness double (internal pieces of the account made callable), one per module."""
    return double_deployer("Harness").deploy()
