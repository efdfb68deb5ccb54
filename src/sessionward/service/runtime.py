"""The composition root: everything the use cases need, built from :class:`Settings`.

Embedded defaults: SQLite in the data directory, the local vault (key file made on first run;
``vault = "pkcs11"`` keeps session keys in a PKCS#11 token instead),
and the in-process chain (chain id 1) with the demo world deployed at start-up. With
``rpc_url`` the chain is a JSON-RPC node; on a development node (anvil) without a deployment
file the demo world is deployed once and its addresses written to ``<data_dir>/deployment.json``
so that other nodes reuse it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from sessionward.chain.artifacts import ERC7739_VERIFIER, ensure_erc7739_verifier
from sessionward.chain.demo import DemoDeployment, deploy_demo
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.relayer import Relayer
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.domain.catalog import Catalog, KnownContract, load_catalog
from sessionward.domain.prices import DEFAULT_PRICES, NATIVE_ASSET, FixedPrices, Price
from sessionward.service.vault_tamper import tamper_alerts
from sessionward.store import Store, open_store
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.vault.backends import open_vault
from sessionward.vault.interface import RecordVault

from .config import Settings
from .onchain import AccountCalls

EMBEDDED_CHAIN_ID = 1
DEPLOYMENT_FILE = "deployment.json"
RELAYER_KEY_FILE = "relayer.key"
DEPLOYER_KEY_FILE = "deployer.key"

_log = logging.getLogger("sessionward.runtime")


@dataclass
class Runtime:
    """The service's collaborators. Built once per process by :func:`build_runtime`."""

    settings: Settings
    store: Store
    vault: RecordVault
    chain: Chain
    relayer: Relayer
    catalog: Catalog
    prices: FixedPrices
    calls: AccountCalls
    deployment: DemoDeployment
    clock: Callable[[], int]
    deployer: LocalTransactionSigner
    """The demo world's deployer: owner and minter of the demo tokens (dev chains only)."""

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    def now(self) -> int:
        return self.clock()

    def close(self) -> None:
        self.vault.close()
        self.store.close()


def wall_clock() -> int:
    return int(time.time())


def build_runtime(settings: Settings, *, clock: Callable[[], int] = wall_clock) -> Runtime:
    """Open (and migrate) the store, the vault, the chain and the relayer."""
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # custody at rest: owner only
    store = open_store(settings.database_url, data_dir=data_dir, schema=settings.database_schema)
    store.upgrade()
    vault = open_vault(  # local (the default) or pkcs11: settings.vault
        settings.vault,
        store.vault_keys,
        data_dir=data_dir,
        kek=settings.vault_kek,
        pkcs11_module=settings.pkcs11_module,
        pkcs11_token_label=settings.pkcs11_token_label,
        pkcs11_slot=settings.pkcs11_slot,
        pkcs11_pin_file=settings.pkcs11_pin_file,
        pkcs11_kek_label=settings.pkcs11_kek_label,
        on_tamper=tamper_alerts(store.alerts, clock),  # a critical alert (issue 14.8)
    )
    signer = LocalTransactionSigner.from_file(data_dir / RELAYER_KEY_FILE, create=True)
    chain: Chain
    if settings.rpc_url:
        chain = RpcChain(settings.rpc_url)
    else:
        # Imported here: the in-process EVM is heavy and unused when a node is configured.
        from sessionward.chain.embedded import EmbeddedChain

        chain = EmbeddedChain(chain_id=EMBEDDED_CHAIN_ID, clock=lambda: float(clock()))
        _warn_of_wallets_from_an_earlier_chain(store)
    deployer = LocalTransactionSigner.from_file(data_dir / DEPLOYER_KEY_FILE, create=True)
    deployment = _deployment(
        chain, data_dir, signer.address, deployer, embedded=not settings.rpc_url
    )
    catalog = load_catalog(*([settings.catalog_file] if settings.catalog_file else []))
    catalog = catalog.with_contracts(demo_contracts(deployment))
    relayer = Relayer(chain, signer, SqlRelayJobStore(store.db), settings.relayer_fee_cap_wei)
    return Runtime(
        settings=settings,
        store=store,
        vault=vault,
        chain=chain,
        relayer=relayer,
        catalog=catalog,
        prices=demo_prices(deployment),
        calls=AccountCalls(),
        deployment=deployment,
        clock=clock,
        deployer=deployer,
    )


def _warn_of_wallets_from_an_earlier_chain(store: Store) -> None:
    """The in-process chain starts empty at every start, while the database persists: wallets
    created by an earlier run have no account on it, and their sessions cannot execute."""
    earlier = store.wallets.count(EMBEDDED_CHAIN_ID)
    if earlier:
        _log.warning(
            "the in-process chain starts empty at every start: the %d wallet(s) in this data "
            "directory from an earlier run have no account on it and their sessions cannot "
            "execute; use a fresh data directory, or a node (SESSIONWARD_RPC_URL) that keeps "
            "its state",
            earlier,
        )


def demo_contracts(deployment: DemoDeployment) -> list[KnownContract]:
    """The demo router and tokens as catalog entries (so capabilities expand onto them)."""
    chain_id = deployment.chain_id
    known = [KnownContract(chain_id, deployment.router, frozenset({"router"}), "Demo Router")]
    decimals = {"USDX": 6, "WETHX": 18}
    for symbol, address in deployment.tokens.items():
        kinds = frozenset({"erc20", "weth"} if symbol == "WETHX" else {"erc20"})
        known.append(
            KnownContract(chain_id, address, kinds, f"Demo {symbol}", symbol, decimals[symbol])
        )
    return known


def demo_prices(deployment: DemoDeployment) -> FixedPrices:
    """The default price table plus the demo tokens (1 USDX = 1 USD, 1 WETHX = 2,000 USD)."""
    chain_id = deployment.chain_id
    extra = {
        (chain_id, NATIVE_ASSET): Price(Decimal(2000), 18),
        (chain_id, deployment.token("USDX")): Price(Decimal(1), 6),
        (chain_id, deployment.token("WETHX")): Price(Decimal(2000), 18),
    }
    return DEFAULT_PRICES.with_prices(extra)


def _deployment(
    chain: Chain, data_dir: Path, relayer: str, deployer: LocalTransactionSigner, *, embedded: bool
) -> DemoDeployment:
    path = data_dir / DEPLOYMENT_FILE
    if not embedded and path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(chain, DevChain):  # a record older than the ERC-7739 verifier: add it
            ensure_erc7739_verifier(chain, deployer)
        elif not chain.get_code(ERC7739_VERIFIER):
            # Not ours to deploy on a real network without being asked; say what it costs.
            _log.warning(
                "no ERC-7739 verifier at %s on chain %d: the wallets' owners' nested typed-data "
                "signatures (ERC-1271 through ERC-7739) will be refused until it is deployed",
                ERC7739_VERIFIER,
                chain.chain_id,
            )
        return DemoDeployment(**doc)
    if not isinstance(chain, DevChain):
        raise RuntimeError(
            f"no {DEPLOYMENT_FILE} in {data_dir} and the node is not a development chain"
        )
    deployment = deploy_demo(chain, deployer=deployer, relayer=relayer)
    if not embedded:
        path.write_text(json.dumps(asdict(deployment), indent=2), encoding="utf-8")
        path.chmod(0o600)  # custody at rest: every file in the data directory is owner-only
    return deployment
