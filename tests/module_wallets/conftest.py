"""Fixtures of the module-wallet room: the service driving a third-party ERC-7579 account
(OpenZeppelin's ``AccountERC7579``, compiled from npm by npm ``solc``) that installed
SessionWard's module, on anvil with the canonical EntryPoint v0.7 and the real alto bundler.

The anvil node, the EntryPoint and the demo stage come from tests/erc4337; the OZ account and
the module deployment from tests/erc7579. They fail, never skip, when npm packages are missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for room in ("erc4337", "erc7579"):
    sys.path.insert(0, str(TESTS / room))

import pytest  # noqa: E402
from erc4337_fixtures import anvil, chain, rpc, stage  # noqa: E402, F401  (fixtures of this room)
from module_wallet_support import ModuleWorld  # noqa: E402

from networks.networks_support import Backend  # noqa: E402


@pytest.fixture(scope="module")
def backend(world: ModuleWorld) -> Backend:
    """A backend credential of the test module's ``world``."""
    return world.backend()
