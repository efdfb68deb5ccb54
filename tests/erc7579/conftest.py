"""Fixtures of the ERC-7579 module tests: one anvil node per test session (Prague, 127.0.0.1,
stopped by its PID through ``anvil_node``), the canonical EntryPoint v0.7 with SessionWard's demo
world on it (``erc4337_support.make_stage``, imported from tests/erc4337), and OpenZeppelin's
``AccountERC7579`` compiled from npm (``oz_account``); ``account_kind`` parametrizes a test
over it and SessionWard's own SessionAccount7579 (``account7579_support``).

anvil, solc, the EntryPoint artifacts and @openzeppelin/contracts come from npm (package.json);
when they are missing these tests FAIL with how to get them, they never skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "erc4337"))

import pytest
from erc4337_fixtures import anvil, chain, rpc, stage  # noqa: F401  (fixtures of this room)
from module_support import ACCOUNT_KINDS


@pytest.fixture(scope="module", params=ACCOUNT_KINDS)
def account_kind(request: pytest.FixtureRequest) -> str:
    """Each ERC-7579 account the module's behavioural tests run on: OpenZeppelin's
    AccountERC7579 and SessionWard's SessionAccount7579 (``module_support.ACCOUNT_KINDS``)."""
    value = request.param
    assert isinstance(value, str)
    return value
