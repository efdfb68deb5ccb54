"""Fixtures of the ERC-4337 tests: one anvil node per test session (Prague, 127.0.0.1, stopped by
its PID, through ``anvil_node``), EntryPoint v0.7 at its canonical address with SessionWard's
demo world on it (``stage``), and a fresh wallet with an enabled session per test.

anvil and the EntryPoint artifacts come from npm (package.json, installed by ``./run test``);
when they are missing these tests FAIL with how to get them, they never skip.
"""

from __future__ import annotations

import pytest
from erc4337_fixtures import anvil, chain, rpc, stage  # noqa: F401  (fixtures of this room)
from erc4337_support import Stage, Wallet


@pytest.fixture
def wallet(stage: Stage) -> Wallet:  # noqa: F811  (the imported fixture)
    """A fresh account with 1,000 USDX, 10 ether and one enabled session."""
    return stage.new_wallet()
