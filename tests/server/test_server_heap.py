"""What ``sessionward serve`` does to the garbage collector once it has started."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from sessionward.server import freeze_start_up_heap


class _Node:
    """An object that can take part in a reference cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def restores_the_collector() -> Iterator[None]:
    """This test process builds many services: give every frozen object back afterwards."""
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("restores_the_collector")
def test_start_up_objects_are_frozen_and_start_up_garbage_is_collected_first() -> None:
    kept = _Node()
    cycle_a, cycle_b = _Node(), _Node()
    cycle_a.other, cycle_b.other = cycle_b, cycle_a
    garbage = weakref.ref(cycle_a)
    del cycle_a, cycle_b
    frozen_before = gc.get_freeze_count()

    freeze_start_up_heap()

    assert garbage() is None  # the cycle was collected, not frozen for good
    assert gc.get_freeze_count() > frozen_before
    # What is alive is out of the collector's generations: no collection walks it any more.
    assert not any(kept is obj for generation in range(3) for obj in gc.get_objects(generation))
