"""Fixtures of the simulation tests: one two-day simulation shared by the module that reads
it (each simulated day costs several seconds of EVM work)."""

from __future__ import annotations

import pytest
from simulation_support import Run, simulate


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Two simulated days, seed 7, into a fresh data directory."""
    return simulate(tmp_path_factory.mktemp("sim"), days=2, seed=7)
