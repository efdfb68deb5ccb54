"""SessionWard's own contracts as the service uses them on any chain: the compiled
``SessionAccount`` and ``SessionAccountFactory`` and their deployment.

The artifacts (ABI, initcode, runtime) come from the Vyper sources of
:mod:`sessionward.contracts` through :func:`~sessionward.chain.contracts.compile_vyper`, which
caches them on disk, so encodings cannot drift from the contracts. Nothing here is a demo:
:mod:`sessionward.chain.demo` deploys the demo tokens and router beside these contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sessionward.chain.contracts import ContractArtifact, compile_vyper, deploy
from sessionward.chain.interface import Chain
from sessionward.chain.signer import TransactionSigner
from sessionward.contracts import source_path

__all__ = [
    "NO_ENTRY_POINT",
    "SESSION_ACCOUNT",
    "SESSION_ACCOUNT_FACTORY",
    "AccountDeployment",
    "contract_artifact",
    "deploy_account_contracts",
    "session_account",
    "session_account_factory",
]

SESSION_ACCOUNT: Final = "SessionAccount"
SESSION_ACCOUNT_FACTORY: Final = "SessionAccountFactory"
NO_ENTRY_POINT: Final = "0x" + "00" * 20
"""The implementation's EntryPoint when there is none (ERC-4337 off)."""


def contract_artifact(name: str) -> ContractArtifact:
    """The compiled contract ``name`` of :mod:`sessionward.contracts` (``"SessionAccount"``,
    ``"SessionAccountFactory"``, the demo's ``"DemoToken"``, ``"DemoRouter"``), from the disk
    cache when its sources are unchanged. ``ValueError`` for an unknown name."""
    return compile_vyper(source_path(name))


def session_account() -> ContractArtifact:
    """The account implementation: its ABI encodes every call the service makes to a wallet."""
    return contract_artifact(SESSION_ACCOUNT)


def session_account_factory() -> ContractArtifact:
    """The CREATE2 factory of accounts over one implementation (see
    :mod:`sessionward.contracts.proxy`)."""
    return contract_artifact(SESSION_ACCOUNT_FACTORY)


@dataclass(frozen=True)
class AccountDeployment:
    """Where SessionWard's contracts live on one chain (lower-case ``0x`` addresses)."""

    chain_id: int
    entry_point: str
    implementation: str
    factory: str


def deploy_account_contracts(
    chain: Chain, signer: TransactionSigner, *, entry_point: str = NO_ENTRY_POINT
) -> AccountDeployment:
    """Deploy the implementation (constructor: the ERC-4337 ``entry_point``) and the factory
    over it, one signed transaction each from ``signer`` (which must hold the gas money)."""
    implementation = deploy(chain, signer, session_account(), entry_point)
    factory = deploy(chain, signer, session_account_factory(), implementation.address)
    return AccountDeployment(
        chain_id=chain.chain_id,
        entry_point=entry_point.lower(),
        implementation=implementation.address,
        factory=factory.address,
    )
