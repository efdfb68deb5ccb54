"""The same seed gives the same simulation (counts of every kind, decisions and reasons, in the
summary and in the store); another seed gives another one."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulation_support import Run, recorded, simulate


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Seed 11 twice (the second with the progress bar), seed 12 once; one day each."""
    made = {}
    for name, seed, progress in (("a", 11, False), ("b", 11, True), ("other", 12, False)):
        data_dir: Path = tmp_path_factory.mktemp(f"sim-{name}")
        made[name] = simulate(data_dir, days=1, seed=seed, progress=progress)
    return made


def test_the_same_seed_gives_the_same_summary(runs: dict[str, Run]) -> None:
    a, b = runs["a"].summary, runs["b"].summary

    assert a == b
    assert a.counts == b.counts and a.denial_reasons == b.denial_reasons


def test_the_same_seed_gives_the_same_decisions_in_the_store(runs: dict[str, Run]) -> None:
    a, b = recorded(runs["a"].data_dir), recorded(runs["b"].data_dir)

    assert a.decisions == b.decisions
    assert a.denial_reasons == b.denial_reasons
    assert a.alerts == b.alerts
    assert (a.first_at, a.last_at) == (b.first_at, b.last_at)


def test_another_seed_gives_another_simulation(runs: dict[str, Run]) -> None:
    assert runs["other"].summary != runs["a"].summary
    other, a = recorded(runs["other"].data_dir), recorded(runs["a"].data_dir)
    assert (other.decisions, other.denial_reasons, other.executed) != (
        a.decisions,
        a.denial_reasons,
        a.executed,
    )


def test_the_progress_bar_counts_the_days(runs: dict[str, Run]) -> None:
    assert "simulating" in runs["b"].output
    assert "1/1" in runs["b"].output
    assert "simulating" not in runs["a"].output
