"""Fixtures of the service room: one Waas per test module on embedded defaults (it deploys the
demo contracts on the in-process chain, so it is built once per module), and per test a fresh
funded wallet, a fresh backend credential and an approved session between them.

A module changes the anomaly rules of its Waas by overriding the ``anomaly_rules`` fixture.
Each test uses its own wallet and backend, so tests sharing a Waas do not see each other's
sessions, budgets or anomaly counters; a test that freezes globally or by action class lifts
the freeze before it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service_support import Backend, Session, Wallet, World

from sessionward.service.config import AnomalyRules
from sessionward.store import faults


@pytest.fixture(scope="module")
def anomaly_rules() -> AnomalyRules:
    """The anomaly rules of the module's Waas (defaults of docs/design.md section 8)."""
    return AnomalyRules()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, anomaly_rules: AnomalyRules) -> Iterator[World]:
    built = World.build(tmp_path_factory.mktemp("waas"), anomaly=anomaly_rules)
    yield built
    built.close()


@pytest.fixture
def wallet(world: World) -> Wallet:
    """A fresh owner's wallet: deployed, holding 1,000 USDX, router approved by the owner."""
    return world.wallet()


@pytest.fixture
def backend(world: World) -> Backend:
    """A fresh backend credential (24 h lifetime)."""
    return world.backend()


@pytest.fixture
def session(world: World, wallet: Wallet, backend: Backend) -> Session:
    """An approved, installed session of ``backend`` on ``wallet`` for the seed envelope
    (swap on the demo router, at most 500 USD, 30 minutes)."""
    return world.session(wallet, backend)


@pytest.fixture
def no_faults() -> Iterator[None]:
    """Clears every installed fault point when the test ends (however it ends)."""
    yield
    faults.clear()
