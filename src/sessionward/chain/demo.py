"""The demo world on a development chain: SessionWard's contracts, two tokens, a router with
liquidity, and a funded relayer.

:func:`deploy_demo` works on any :class:`~sessionward.chain.interface.DevChain` (the embedded
chain by default, anvil in tests) because it only uses signed transactions plus
``set_balance`` to fund its accounts. What it deploys, in order (one transaction each):

1. the ``SessionAccount`` implementation (constructor: the ERC-4337 EntryPoint, zero for none);
2. the ``SessionAccountFactory`` over that implementation (CREATE2 accounts, see
   :mod:`sessionward.contracts.proxy`);
3. the demo tokens ``USDX`` (6 decimals) and ``WETHX`` (18 decimals) — snekmate ERC-20s with
   ``permit`` and ``increaseAllowance``, owned and mintable by the deployer;
4. the ``DemoRouter`` and its reserves (minted straight to it): 2,000,000 USDX and 1,000 WETHX,
   i.e. 2,000 USDX per WETHX.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sessionward.chain.contracts import (
    ContractArtifact,
    DeployedContract,
    compile_vyper,
    deploy,
)
from sessionward.chain.interface import DevChain
from sessionward.chain.signer import LocalTransactionSigner, TransactionSigner
from sessionward.contracts import source_path

__all__ = ["DEMO_TOKENS", "ROUTER_RESERVES", "DemoDeployment", "demo_contract", "deploy_demo"]

ZERO_ADDRESS: Final = "0x" + "00" * 20
DEMO_TOKENS: Final = (("USDX", "Demo USD", 6), ("WETHX", "Demo Wrapped Ether", 18))
ROUTER_RESERVES: Final = {"USDX": 2_000_000 * 10**6, "WETHX": 1_000 * 10**18}
_DEPLOYER_FUNDING: Final = 1_000 * 10**18


def demo_contract(name: str) -> ContractArtifact:
    """A compiled SessionWard contract (``SessionAccount``, ``SessionAccountFactory``,
    ``DemoToken``, ``DemoRouter``), from the disk cache when unchanged."""
    return compile_vyper(source_path(name))


@dataclass(frozen=True)
class DemoDeployment:
    """Addresses of the demo world (lower-case ``0x``)."""

    chain_id: int
    deployer: str
    entry_point: str
    implementation: str
    factory: str
    router: str
    tokens: Mapping[str, str] = field(default_factory=dict)
    relayer: str | None = None

    def token(self, symbol: str) -> str:
        """Address of demo token ``symbol`` (``"USDX"``, ``"WETHX"``)."""
        return self.tokens[symbol]

    def bind(self, chain: DevChain, name: str, address: str) -> DeployedContract:
        """A :class:`DeployedContract` handle for ``name``'s ABI at ``address``."""
        return DeployedContract(chain, address, demo_contract(name))


def deploy_demo(
    chain: DevChain,
    *,
    deployer: TransactionSigner | None = None,
    relayer: str | None = None,
    relayer_funding_wei: int = 100 * 10**18,
    entry_point: str = ZERO_ADDRESS,
) -> DemoDeployment:
    """Deploy the demo world; fund ``deployer`` (a fresh random key by default) and, if
    given, ``relayer`` with ``relayer_funding_wei``."""
    signer = deployer or LocalTransactionSigner(secrets.token_bytes(32))
    if chain.get_balance(signer.address) < _DEPLOYER_FUNDING:
        chain.set_balance(signer.address, _DEPLOYER_FUNDING)
    implementation = deploy(chain, signer, demo_contract("SessionAccount"), entry_point)
    factory = deploy(chain, signer, demo_contract("SessionAccountFactory"), implementation.address)
    token_code = demo_contract("DemoToken")
    tokens = {
        symbol: deploy(chain, signer, token_code, name, symbol, decimals)
        for symbol, name, decimals in DEMO_TOKENS
    }
    router = deploy(chain, signer, demo_contract("DemoRouter"))
    for symbol, reserve in ROUTER_RESERVES.items():
        tokens[symbol].transact(signer, "mint", router.address, reserve)
    if relayer is not None:
        chain.set_balance(relayer, relayer_funding_wei)
    return DemoDeployment(
        chain_id=chain.chain_id,
        deployer=signer.address,
        entry_point=entry_point.lower(),
        implementation=implementation.address,
        factory=factory.address,
        router=router.address,
        tokens={symbol: token.address for symbol, token in tokens.items()},
        relayer=None if relayer is None else relayer.lower(),
    )
