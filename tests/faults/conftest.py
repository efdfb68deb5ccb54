"""Fixtures of the crash tests: one anvil node per module and the multi-node room's helpers
(service processes on loopback ports, the SDK actors), imported from ``tests/multinode``.

Every process started here is stopped by its own PID; anvil and PostgreSQL are required (the
tests fail, never skip, without them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "multinode"))

import anvil_node

CHAIN_ID = 1


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    """A fresh anvil node (Prague, chain id 1) for the module."""
    yield from anvil_node.session_node(CHAIN_ID)
