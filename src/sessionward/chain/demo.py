"""The demo world on a development chain: SessionWard's contracts, two tokens, a router with
liquidity, and a funded relayer.

SessionWard's own contracts are loaded and deployed by :mod:`sessionward.chain.artifacts` (the
service uses them on any chain); this module adds only what the demo needs around them.

:func:`deploy_demo` works on any :class:`~sessionward.chain.interface.DevChain` (the embedded
chain by default, anvil in tests) because it only uses signed transactions plus
``set_balance`` to fund its accounts. What it deploys, in order (one transaction each):

1. the ``SessionAccount`` implementation (constructor: the ERC-4337 EntryPoint, zero for none);
2. the ``SessionAccountFactory`` over that implementation (both by
   :func:`~sessionward.chain.artifacts.deploy_account_contracts`, which also puts the ERC-7739
   verifier at its fixed address first if it is not there yet);
3. the demo tokens ``USDX`` (6 decimals) and ``WETHX`` (18 decimals) — snekmate ERC-20s with
   ``permit`` and ``increaseAllowance``, owned and mintable by the deployer;
4. the ``DemoRouter`` and its reserves (minted straight to it): 2,000,000 USDX and 1,000 WETHX,
   i.e. 2,000 USDX per WETHX;
5. SessionWard's ERC-7579 module (its storage helper at its CREATE2 address first) and
   SessionAccount7579's implementation and factory
   (:func:`~sessionward.chain.artifacts.deploy_module_contracts`), so the addresses of
   everything above are what they were before these existed;
6. the ``RelayBatch`` the relayer sends several session calls of one account through, last
   for the same reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sessionward.chain.artifacts import (
    NO_ENTRY_POINT,
    AccountDeployment,
    contract_artifact,
    deploy_account_contracts,
    deploy_module_contracts,
)
from sessionward.chain.contracts import ContractArtifact, DeployedContract, deploy, transact
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.signer import LocalTransactionSigner, TransactionSigner
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_execute, encode_single_execution, mode_single

__all__ = [
    "DEMO_TOKENS",
    "ROUTER_RESERVES",
    "DemoDeployment",
    "demo_contract",
    "deploy_demo",
    "fund_demo_wallet",
]

ZERO_ADDRESS: Final = NO_ENTRY_POINT
DEMO_TOKENS: Final = (("USDX", "Demo USD", 6), ("WETHX", "Demo Wrapped Ether", 18))
ROUTER_RESERVES: Final = {"USDX": 2_000_000 * 10**6, "WETHX": 1_000 * 10**18}
_DEPLOYER_FUNDING: Final = 1_000 * 10**18
_OWNER_GAS_MONEY: Final = 10**18
_APPROVE: Final = parse_signature("approve(address,uint256)")
USDX_UNIT: Final = 10**6
"""One whole demo USDX (6 decimals)."""


def demo_contract(name: str) -> ContractArtifact:
    """A compiled contract of the demo world (``DemoToken``, ``DemoRouter``, and SessionWard's
    own): :func:`~sessionward.chain.artifacts.contract_artifact`."""
    return contract_artifact(name)


@dataclass(frozen=True)
class DemoDeployment(AccountDeployment):
    """Addresses of the demo world (lower-case ``0x``): SessionWard's contracts, the demo's
    deployer (the tokens' minter), router and tokens."""

    deployer: str
    router: str
    tokens: Mapping[str, str] = field(default_factory=dict)
    relayer: str | None = None
    relay_batch: str | None = None
    """The ``RelayBatch`` contract the relayer sends several session calls of one account
    through, in one transaction; None (a record written before it existed): each call is a
    transaction of its own."""

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
    accounts = deploy_account_contracts(chain, signer, entry_point=entry_point)
    token_code = demo_contract("DemoToken")
    tokens = {
        symbol: deploy(chain, signer, token_code, name, symbol, decimals)
        for symbol, name, decimals in DEMO_TOKENS
    }
    router = deploy(chain, signer, demo_contract("DemoRouter"))
    for symbol, reserve in ROUTER_RESERVES.items():
        tokens[symbol].transact(signer, "mint", router.address, reserve)
    modules = deploy_module_contracts(chain, signer, entry_point=entry_point)
    relay_batch = deploy(chain, signer, demo_contract("RelayBatch"))  # last: see the docstring
    if relayer is not None:
        chain.set_balance(relayer, relayer_funding_wei)
    return DemoDeployment(
        chain_id=accounts.chain_id,
        deployer=signer.address,
        entry_point=accounts.entry_point,
        implementation=accounts.implementation,
        factory=accounts.factory,
        erc7739_verifier=accounts.erc7739_verifier,
        session_module=modules.session_module,
        account7579_factory=modules.factory,
        router=router.address,
        tokens={symbol: token.address for symbol, token in tokens.items()},
        relayer=None if relayer is None else relayer.lower(),
        relay_batch=relay_batch.address,
    )


def fund_demo_wallet(
    chain: Chain,
    deployment: DemoDeployment,
    deployer: TransactionSigner,
    *,
    owner_secret: bytes,
    account: str,
    usdx: int,
    allowance: int = 10**30,
    gas: int | None = None,
) -> None:
    """Give a demo wallet what the demo's swaps need: ``usdx`` whole USDX minted to ``account``
    by ``deployer`` (the tokens' minter), gas money for the owner's key, and the router's
    ``allowance`` to pull the account's USDX, approved by the owner itself through the account
    (the owner's own transaction, not a session's). ``gas`` skips estimation for both
    transactions (bulk set-up). ``chain`` must be a development chain (it sets a balance)."""
    if not isinstance(chain, DevChain):
        raise TypeError("funding a demo wallet needs a development chain")
    usdx_token = deployment.token("USDX")
    deployment.bind(chain, "DemoToken", usdx_token).transact(
        deployer, "mint", account, usdx * USDX_UNIT, gas=gas
    )
    chain.set_balance(address_from_secret(owner_secret), _OWNER_GAS_MONEY)
    approve = encode_call(_APPROVE, (deployment.router, allowance))
    transact(
        chain,
        LocalTransactionSigner(owner_secret),
        to=account,
        data=encode_execute(mode_single(), encode_single_execution(Call(usdx_token, 0, approve))),
        gas=gas,
    )
