"""SessionWard's Vyper 0.4 contracts: where the sources are, their size bounds, and loaders.

Deployable contracts (``*.vy`` with a capital letter) sit next to this file together with the
modules the account is built from: the sessions modules (``sessions``: storage and views;
``session_grants``: the grant type and EIP-712 digests; ``session_catalog``: rule operators and
token functions; ``session_enable``; ``session_enforce``; ``session_fees``;
``session_revocation``), ``erc7579``, ``account_auth``, ``eip712`` and ``reasons``; snekmate is
imported from site-packages. See docs/contracts.md and docs/design.md.

There is one way to compile a source for a JSON-RPC deployment:
``sessionward.chain.contracts.compile_vyper(source_path(name))`` (ABI, initcode, runtime,
cached on disk). :func:`load_deployer` is titanoboa's in-process deployer of the same source.

The bounds below are the contract's: a grant or an execution beyond them does not even decode
on chain, so whoever builds grants (``sessionward.domain.grant``) must refuse them first. A test
keeps them equal to the Vyper constants.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CONTRACTS_DIR",
    "DEPLOYABLE",
    "MAX_BATCH",
    "MAX_CAPABILITIES",
    "MAX_DESTINATIONS",
    "MAX_EXECUTION_BYTES",
    "MAX_OWNER_SIGNATURE",
    "MAX_PERMISSIONS",
    "MAX_RULES",
    "MAX_RULE_VALUES",
    "MAX_TOKEN_LIMITS",
    "STRING_BOUNDS",
    "load_deployer",
    "source_path",
]

from sessionward.domain.bounds import (
    MAX_BATCH,
    MAX_CAPABILITIES,
    MAX_DESTINATIONS,
    MAX_EXECUTION_BYTES,
    MAX_PERMISSIONS,
    MAX_RULE_VALUES,
    MAX_RULES,
    MAX_TOKEN_LIMITS,
    STRING_BOUNDS,
)

CONTRACTS_DIR: Final = Path(__file__).resolve().parent
DEPLOYABLE: Final = (
    "SessionAccount",
    "SessionAccountFactory",
    "SessionAccount7579",
    "SessionAccount7579Factory",
    "DemoToken",
    "DemoRouter",
    "RelayBatch",
)

# The account's size bounds are defined once, in the domain (which must refuse what the account
# cannot hold); a test keeps them equal to the Vyper constants.
MAX_OWNER_SIGNATURE: Final = 1024
"""Length of an owner signature (ERC-1271 signers may need more than 65 bytes)."""


def source_path(name: str) -> Path:
    """Path of the Vyper source ``name`` (``"SessionAccount"`` or ``"SessionAccount.vy"``).

    Raises ``ValueError`` for a name that is not a source of this package.
    """
    stem = name.removesuffix(".vy")
    path = CONTRACTS_DIR / f"{stem}.vy"
    if not stem.isidentifier() or not path.is_file():
        raise ValueError(f"no contract source named {name!r} in {CONTRACTS_DIR}")
    return path


@cache
def load_deployer(name: str) -> Any:
    """The titanoboa deployer of ``name``, compiled once per process (boa also caches on disk).

    ``load_deployer("SessionAccount").deploy(entry_point)`` deploys into the current
    ``boa.env``; ``.deploy_as_blueprint()`` and ``.at(address)`` work as usual.
    """
    import boa  # heavy import, only when a contract is actually needed

    return boa.load_partial(str(source_path(name)))
