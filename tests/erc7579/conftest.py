"""Fixtures of the ERC-7579 module tests: one anvil node per test session (Prague, 127.0.0.1,
stopped by its PID through ``anvil_node``), the canonical EntryPoint v0.7 with SessionWard's demo
world on it (``erc4337_support.make_stage``, imported from tests/erc4337), and OpenZeppelin's
``AccountERC7579`` compiled from npm (``oz_account``).

anvil, solc, the EntryPoint artifacts and @openzeppelin/contracts come from npm (package.json);
when they are missing these tests FAIL with how to get them, they never skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "erc4337"))

from erc4337_fixtures import anvil, chain, rpc, stage  # noqa: F401  (fixtures of this room)
