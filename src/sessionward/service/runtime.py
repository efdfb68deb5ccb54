"""The composition root: everything the use cases need, built from :class:`Settings`.

Embedded defaults: SQLite in the data directory, the local vault (key file made on first run;
``vault = "pkcs11"`` keeps session keys in a PKCS#11 token instead),
and the in-process chain (chain id 1) with the demo world deployed at start-up. With
``rpc_url`` the chain is a JSON-RPC node; on a development node (anvil) without a deployment
file the demo world is deployed once and its addresses written to ``<data_dir>/deployment.json``
so that other nodes reuse it. With ``networks`` (:class:`~.config.NetworkSettings`) the service
serves several chains at once, each a :class:`Network` with its own node, relayer key, relayer
job store (fenced by its own lease) and deployment record (``deployment-<name>.json``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from sessionward.chain.artifacts import ERC7739_VERIFIER, NO_ENTRY_POINT, ensure_erc7739_verifier
from sessionward.chain.bundler import BundlerClient
from sessionward.chain.demo import DemoDeployment, deploy_demo
from sessionward.chain.interface import Chain, DevChain
from sessionward.chain.paymaster import VerifyingPaymasterSponsor
from sessionward.chain.relayer import Relayer
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import RELAYER_KEY_ENV, LocalTransactionSigner, RelayerKeyError
from sessionward.domain.catalog import Catalog, KnownContract, load_catalog
from sessionward.domain.prices import DEFAULT_PRICES, NATIVE_ASSET, FixedPrices, Price
from sessionward.reasons import ReasonCode
from sessionward.service.vault_tamper import tamper_alerts
from sessionward.store import Store, open_store
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.vault.backends import open_vault
from sessionward.vault.interface import RecordVault

from .config import DEFAULT_NETWORK, PAYMASTER_KEY_ENV, ConfigError, NetworkSettings, Settings
from .errors import forbidden, not_found
from .onchain import AccountCalls
from .user_operations import UserOperationPath

EMBEDDED_CHAIN_ID = 1
DEPLOYMENT_FILE = "deployment.json"
RELAYER_KEY_FILE = "relayer.key"
DEPLOYER_KEY_FILE = "deployer.key"

_log = logging.getLogger("sessionward.runtime")


@dataclass(frozen=True, slots=True)
class Network:
    """One network the service serves: its chain client, its relayer (own key, own job store
    fenced by the network's own lease), its deployment record and confirmation depth."""

    name: str
    chain: Chain
    relayer: Relayer
    deployment: DemoDeployment
    deployer: LocalTransactionSigner
    confirmations: int = 1
    embedded: bool = False
    user_operations: UserOperationPath | None = None
    """The ERC-4337 path (bundler, and paymaster if any), when the network has a bundler."""
    session_module: str | None = None
    """SessionWard's ERC-7579 module on this chain (lower-case): the ``session_module``
    setting, else the one the deployment record names (a development chain's demo world
    deploys it), else none."""

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id


@dataclass
class Runtime:
    """The service's collaborators. Built once per process by :func:`build_runtime`.

    A runtime is *on* one network: ``chain``, ``relayer``, ``deployment`` and ``deployer``
    are that network's (the first configured one for the runtime :func:`build_runtime`
    returns). :meth:`on` and :meth:`for_wallet` give the runtime on another network, sharing
    everything else (store, vault, catalog, prices, clock); every chain-facing path takes the
    wallet's."""

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
    network: Network | None = None
    """The network this runtime is on (None only for a runtime assembled by hand)."""
    networks: tuple[Network, ...] = ()
    """Every network the service serves, the first one the default."""
    views: dict[int, Runtime] = field(default_factory=dict, repr=False)
    """The runtime on each network by chain id (shared by all of them)."""

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    @property
    def user_operations(self) -> UserOperationPath | None:
        """This network's ERC-4337 submission path, if it has a bundler."""
        return None if self.network is None else self.network.user_operations

    @property
    def session_module(self) -> str | None:
        """This network's SessionWard ERC-7579 module, if configured."""
        return None if self.network is None else self.network.session_module

    @property
    def network_name(self) -> str:
        return DEFAULT_NETWORK if self.network is None else self.network.name

    @property
    def confirmations(self) -> int:
        return 1 if self.network is None else self.network.confirmations

    @property
    def several_networks(self) -> bool:
        """Whether the service serves more than one network (work is then split by network)."""
        return len(self.networks) > 1

    def now(self) -> int:
        return self.clock()

    def on(self, chain_id: int) -> Runtime:
        """The runtime on the network of ``chain_id`` (this one when it is already on it).
        Raises ``not_found`` ``NETWORK_UNKNOWN`` for a chain the service does not serve."""
        if chain_id == self.chain_id:
            return self
        view = self.views.get(chain_id)
        if view is None:
            raise not_found(f"network with chain id {chain_id}", ReasonCode.NETWORK_UNKNOWN)
        return view

    def select(self, network: str | int | None) -> Runtime:
        """The runtime on the network a request names: its name (any case) or its chain id
        (an integer, or a string of decimal digits); ``None`` is the default network. Raises
        ``not_found`` ``NETWORK_UNKNOWN`` for one the service does not serve."""
        if network is None:
            return self.views.get(self.networks[0].chain_id, self) if self.networks else self
        if isinstance(network, int) or network.isdigit():
            return self.on(int(network))
        wanted = network.lower()
        if not self.networks and wanted == DEFAULT_NETWORK:
            return self
        for candidate in self.networks:
            if candidate.name.lower() == wanted:
                return self.on(candidate.chain_id)
        raise not_found(f"network {network[:64]!r}", ReasonCode.NETWORK_UNKNOWN)

    def for_wallet(self, chain_id: int, network: str | int | None = None) -> Runtime:
        """The runtime on a wallet's network (its ``chain_id``), after checking the network a
        request named, if any: another network than the wallet's is refused ``forbidden``
        ``CHAIN_MISMATCH`` (a context mismatch; nothing is done), an unknown one
        ``NETWORK_UNKNOWN``. Nothing is read or written either way."""
        if network is not None:
            named = self.select(network)
            if named.chain_id != chain_id:
                raise forbidden(
                    f"the wallet is on chain {chain_id}, not on network {named.network_name!r} "
                    f"(chain {named.chain_id})",
                    ReasonCode.CHAIN_MISMATCH,
                )
            return named
        return self.on(chain_id)

    def close(self) -> None:
        self.vault.close()
        self.store.close()


def wall_clock() -> int:
    return int(time.time())


def build_runtime(settings: Settings, *, clock: Callable[[], int] = wall_clock) -> Runtime:
    """Open (and migrate) the store and the vault, then every network: its chain (checked to
    be the configured chain id), its relayer and its deployment."""
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
    try:
        networks = _networks(settings, store, clock)
    except BaseException:  # a network that cannot start: nothing stays open
        vault.close()
        store.close()
        raise
    deployments = [n.deployment for n in networks]
    catalog = load_catalog(*([settings.catalog_file] if settings.catalog_file else []))
    catalog = catalog.with_contracts([c for d in deployments for c in demo_contracts(d)])
    first = networks[0]
    runtime = Runtime(
        settings=settings,
        store=store,
        vault=vault,
        chain=first.chain,
        relayer=first.relayer,
        catalog=catalog,
        prices=demo_prices(*deployments),
        calls=AccountCalls(),
        deployment=first.deployment,
        clock=clock,
        deployer=first.deployer,
        network=first,
        networks=networks,
    )
    runtime.views[first.chain_id] = runtime
    for network in networks[1:]:
        runtime.views[network.chain_id] = replace(
            runtime,
            chain=network.chain,
            relayer=network.relayer,
            deployment=network.deployment,
            deployer=network.deployer,
            network=network,
        )
    return runtime


def _networks(settings: Settings, store: Store, clock: Callable[[], int]) -> tuple[Network, ...]:
    """Every network of ``settings`` (the single-chain one without ``networks``), checked to
    use distinct relayer keys."""
    if settings.networks:
        networks = tuple(_configured_network(settings, store, n, clock) for n in settings.networks)
    else:
        networks = (_single_network(settings, store, clock),)
    relayers = [n.relayer.address for n in networks]
    if len(set(relayers)) != len(relayers):
        raise ConfigError("two networks cannot share a relayer key (its jobs are per sender)")
    return networks


def _single_network(settings: Settings, store: Store, clock: Callable[[], int]) -> Network:
    """The one network of the single-chain settings (``rpc_url`` or the in-process chain),
    with the data directory's ``relayer.key``, ``deployer.key`` and ``deployment.json``."""
    data_dir = settings.data_dir
    signer = LocalTransactionSigner.from_file(data_dir / RELAYER_KEY_FILE, create=True)
    chain: Chain
    if settings.rpc_url:
        chain = RpcChain(settings.rpc_url)
    else:
        # Imported here: the in-process EVM is heavy and unused when a node is configured.
        from sessionward.chain.embedded import EmbeddedChain

        chain = EmbeddedChain(chain_id=EMBEDDED_CHAIN_ID, clock=lambda: float(clock()))
        _warn_of_wallets_from_an_earlier_chain(store, EMBEDDED_CHAIN_ID)
    deployer = LocalTransactionSigner.from_file(data_dir / DEPLOYER_KEY_FILE, create=True)
    deployment = _deployment(
        chain,
        data_dir,
        signer.address,
        deployer,
        embedded=not settings.rpc_url,
        entry_point=settings.entry_point,
    )
    relayer = Relayer(chain, signer, SqlRelayJobStore(store.db), settings.relayer_fee_cap_wei)
    user_operations = _user_operation_path(
        chain,
        entry_point=settings.entry_point,
        bundler_url=settings.bundler_url,
        paymaster=settings.paymaster,
        paymaster_key_file=settings.paymaster_key_file,
        paymaster_key_env=PAYMASTER_KEY_ENV,
    )
    return Network(
        DEFAULT_NETWORK,
        chain,
        relayer,
        deployment,
        deployer,
        embedded=not settings.rpc_url,
        user_operations=user_operations,
        session_module=_lower(settings.session_module or deployment.session_module),
    )


def _configured_network(
    settings: Settings, store: Store, config: NetworkSettings, clock: Callable[[], int]
) -> Network:
    """One network of ``settings.networks``: its node (or an in-process chain with its chain
    id), its relayer key, its deployment record (``deployment-<name>.json`` by default)."""
    data_dir = settings.data_dir
    if config.relayer_key_env is not None:
        signer = LocalTransactionSigner.from_env(
            {RELAYER_KEY_ENV: os.environ.get(config.relayer_key_env, "")}
        )
    else:
        key_file = config.relayer_key_file or data_dir / f"relayer-{config.name}.key"
        signer = LocalTransactionSigner.from_file(key_file, create=True)
    chain: Chain
    embedded = config.rpc_url is None
    if config.rpc_url is not None:
        chain = RpcChain(config.rpc_url)
        answered = chain.chain_id
        if answered != config.chain_id:
            chain.close()
            raise ConfigError(
                f"network {config.name!r}: its node answers chain id {answered}, "
                f"not {config.chain_id}"
            )
    else:
        from sessionward.chain.embedded import EmbeddedChain

        chain = EmbeddedChain(chain_id=config.chain_id, clock=lambda: float(clock()))
        _warn_of_wallets_from_an_earlier_chain(store, config.chain_id)
    deployer = LocalTransactionSigner.from_file(
        data_dir / f"deployer-{config.name}.key", create=True
    )
    deployment = _deployment(
        chain,
        data_dir,
        signer.address,
        deployer,
        embedded=embedded,
        path=config.deployment_file or data_dir / f"deployment-{config.name}.json",
        entry_point=config.entry_point,
    )
    if deployment.chain_id != config.chain_id:
        raise ConfigError(
            f"network {config.name!r}: its deployment record is for chain {deployment.chain_id}"
        )
    fee_cap = settings.relayer_fee_cap_wei if config.fee_cap_wei is None else config.fee_cap_wei
    relayer = Relayer(
        chain, signer, SqlRelayJobStore(store.db), fee_cap, confirmations=config.confirmations
    )
    user_operations = _user_operation_path(
        chain,
        entry_point=config.entry_point,
        bundler_url=config.bundler_url,
        paymaster=config.paymaster,
        paymaster_key_file=config.paymaster_key_file,
        paymaster_key_env=config.paymaster_key_env,
    )
    return Network(
        config.name,
        chain,
        relayer,
        deployment,
        deployer,
        confirmations=config.confirmations,
        embedded=embedded,
        user_operations=user_operations,
        session_module=_lower(config.session_module or deployment.session_module),
    )


def _lower(address: str | None) -> str | None:
    return None if address is None else address.lower()


def _user_operation_path(
    chain: Chain,
    *,
    entry_point: str | None,
    bundler_url: str | None,
    paymaster: str | None,
    paymaster_key_file: Path | None,
    paymaster_key_env: str | None,
) -> UserOperationPath | None:
    """The network's ERC-4337 path when it has a bundler; its paymaster's signer key comes
    from its file (which must exist: it is the signer the paymaster was deployed with) or
    from the environment variable named."""
    if bundler_url is None or entry_point is None:
        return None
    sponsor = None
    if paymaster is not None:
        try:
            if paymaster_key_file is not None:
                key = LocalTransactionSigner.from_file(paymaster_key_file)
            else:
                variable = paymaster_key_env or PAYMASTER_KEY_ENV
                key = LocalTransactionSigner.from_env(
                    {RELAYER_KEY_ENV: os.environ.get(variable, "")}
                )
        except RelayerKeyError as exc:
            raise ConfigError(f"the paymaster's signer key: {exc}") from None
        sponsor = VerifyingPaymasterSponsor(
            paymaster=paymaster, chain_id=chain.chain_id, signer=key
        )
    bundler = BundlerClient(bundler_url, entry_point=entry_point)
    return UserOperationPath(chain=chain, bundler=bundler, calls=AccountCalls(), sponsor=sponsor)


def _warn_of_wallets_from_an_earlier_chain(store: Store, chain_id: int) -> None:
    """The in-process chain starts empty at every start, while the database persists: wallets
    created by an earlier run have no account on it, and their sessions cannot execute."""
    earlier = store.wallets.count(chain_id)
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


def demo_prices(*deployments: DemoDeployment) -> FixedPrices:
    """The default price table plus the demo tokens of every deployment (1 USDX = 1 USD,
    1 WETHX = 2,000 USD), each on its own chain."""
    extra: dict[tuple[int, str | None], Price] = {}
    for deployment in deployments:
        chain_id = deployment.chain_id
        extra[(chain_id, NATIVE_ASSET)] = Price(Decimal(2000), 18)
        extra[(chain_id, deployment.token("USDX"))] = Price(Decimal(1), 6)
        extra[(chain_id, deployment.token("WETHX"))] = Price(Decimal(2000), 18)
    return DEFAULT_PRICES.with_prices(extra)


def _deployment(
    chain: Chain,
    data_dir: Path,
    relayer: str,
    deployer: LocalTransactionSigner,
    *,
    embedded: bool,
    path: Path | None = None,
    entry_point: str | None = None,
) -> DemoDeployment:
    """The deployment record at ``path`` (default ``<data_dir>/deployment.json``), or the demo
    world deployed on a development chain (with ``entry_point``) and its record written. A
    record naming another EntryPoint than ``entry_point`` (when given) is refused."""
    path = path or data_dir / DEPLOYMENT_FILE
    if not embedded and path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        recorded = str(doc.get("entry_point", NO_ENTRY_POINT)).lower()
        if entry_point is not None and recorded != entry_point.lower():
            raise ConfigError(f"the deployment record {path.name} names another EntryPoint")
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
    deployment = deploy_demo(
        chain, deployer=deployer, relayer=relayer, entry_point=entry_point or NO_ENTRY_POINT
    )
    if not embedded:
        path.write_text(json.dumps(asdict(deployment), indent=2), encoding="utf-8")
        path.chmod(0o600)  # custody at rest: every file in the data directory is owner-only
    return deployment
