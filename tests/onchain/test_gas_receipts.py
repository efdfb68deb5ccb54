"""The gas goals hold for mined transactions (receipt ``gasUsed``, refunds and the calldata
floor included) on the in-process chain and on anvil, measured by ``bench/gas.py`` itself."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from sessionward.chain.interface import DevChain

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gas.py"


@cache
def _bench() -> ModuleType:
    """bench/gas.py as a module (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_gas", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gas(chain: DevChain) -> dict[str, int]:
    return dict(_bench().measure(chain))


def test_a_session_call_costs_at_most_25k_more_than_the_owners(gas: dict[str, int]) -> None:
    assert gas["session single call"] <= gas["owner single call"] + 25_000
    assert gas["session batch of 3"] <= gas["owner batch of 3"] + 25_000


def test_a_token_limited_transfer_costs_at_most_30k_more_than_the_owners(
    gas: dict[str, int],
) -> None:
    assert gas["session ERC-20 transfer, token limit"] <= gas["owner single call"] + 30_000


def test_revoking_a_session_costs_at_most_30k(gas: dict[str, int]) -> None:
    assert gas["revoke (owner)"] <= 30_000
    assert gas["revoke (grant's revoker)"] <= 30_000


def test_the_bench_reports_every_goal_it_checks(gas: dict[str, int]) -> None:
    bench = _bench()
    lines = bench.table("t", gas).splitlines()
    assert sum("met, margin" in line for line in lines) == len(bench.GOALS)
    assert not any("MISSED" in line for line in lines)
