"""Service settings: embedded defaults, overridden by a TOML file and then by the environment.

Embedded defaults need nothing installed: SQLite under the data directory, the local vault with
a generated key file, and the in-process chain with the demo contracts. Production-like setups
point ``database_url`` at PostgreSQL and ``rpc_url`` at a node.

Environment variables (each overrides the file):

=================================  ====================================================
``SESSIONWARD_DATA_DIR``           data directory (default ``./data``)
``SESSIONWARD_DATABASE_URL``       ``postgresql://…`` (default: SQLite in the data dir)
``SESSIONWARD_DATABASE_SCHEMA``    PostgreSQL schema to use (default: the server's search_path)
``SESSIONWARD_RPC_URL``            JSON-RPC node (default: the in-process chain)
``SESSIONWARD_NETWORKS``           several networks: a TOML or JSON file, or inline JSON (see
                                   :class:`NetworkSettings`); exclusive with ``RPC_URL``
``SESSIONWARD_ENTRY_POINT``        the ERC-4337 EntryPoint; ``_BUNDLER_URL``, ``_PAYMASTER``,
                                   ``_PAYMASTER_KEY_FILE``: the single network's ERC-4337 path
``SESSIONWARD_SESSION_MODULE``     the single network's SessionWard ERC-7579 module
``SESSIONWARD_CONFIG``             a TOML file with the keys below
``SESSIONWARD_CATALOG``            an extra action-catalog TOML
``SESSIONWARD_OPS_KEYS``           ``id:alg:publicKey`` entries separated by commas
``SESSIONWARD_RELAYER_KEY``        the relayer's hot key (hex); default: a 0600 file in the data dir
``SESSIONWARD_WEBHOOK_URLS``       alert webhook URLs, comma separated (default: none)
``SESSIONWARD_WEBHOOK_KEY``        the webhooks' Ed25519 key (base64 of 32 bytes); default: a 0600 file
``SESSIONWARD_WEBHOOK_*``          MAX_ATTEMPTS, TIMEOUT_S, BACKOFF_S, BACKOFF_MAX_S, QUEUE_SIZE
``SESSIONWARD_HTTP_*``             MAX_HEAD_BYTES, MAX_HEADERS, MAX_TARGET_BYTES, HEAD_TIMEOUT_S,
                                   BODY_TIMEOUT_S, KEEP_ALIVE_S (the HTTP edge's limits)
``SESSIONWARD_CORS_ORIGINS``       browser origins allowed to call the API, comma separated
``SESSIONWARD_SERVICE_ID``          this deployment's name in wallet-registration challenges
``SESSIONWARD_RATE_LIMIT_*``       ENABLED, PER_CREDENTIAL_RPS, PER_OWNER_RPS, BURST, HOLD_S
``SESSIONWARD_FAIR_*``             SCHEDULING_ENABLED, MAX_RUNNING, MAX_RUNNING_UNITS,
                                   MAX_QUEUED_PER_TENANT (fair scheduling between tenants)
``SESSIONWARD_VAULT``              vault backend: ``local`` (default) or ``pkcs11`` (keys in a token)
``SESSIONWARD_VAULT_KEK``          the local vault's KEK: ``local`` (default) or ``pkcs11`` (in a token)
``SESSIONWARD_PKCS11_*``           MODULE (default Debian's SoftHSM2), TOKEN_LABEL or SLOT, PIN_FILE,
                                   KEK_LABEL; the PIN: ``SESSIONWARD_PKCS11_PIN`` (read by the vault)
=================================  ====================================================
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from sessionward.crypto.request_signature import ALG_P256, ALG_SECP256K1

MAX_DEVICE_TTL_S: Final = 90 * 86400
"""The longest an owner device may stay paired, whatever the configuration says."""
MAX_PAIRING_CODE_TTL_S: Final = 3600
VAULT_BACKENDS: Final = ("local", "pkcs11")
DEFAULT_NETWORK: Final = "default"
"""The name of the one network of the single-chain settings (``rpc_url`` or the in-process
chain), as requests may name it."""
NETWORK_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
"""A network's name: starts with a letter (so it is never read as a chain id)."""
MAX_CONFIRMATIONS: Final = 1000
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PAYMASTER_KEY_ENV: Final = "SESSIONWARD_PAYMASTER_KEY"
"""Where the single network's paymaster signer key is read when no key file is given."""


class ConfigError(ValueError):
    """The configuration is invalid (names the setting, never echoes secret values)."""


@dataclass(frozen=True, slots=True)
class OpsCredential:
    """An ops credential from configuration: ``public_key`` is an address (secp256k1) or the
    hex of an uncompressed P-256 key."""

    id: str
    alg: str
    public_key: str


@dataclass(frozen=True, slots=True)
class AnomalyRules:
    """The policy path's automatic revocation rules (docs/design.md section 8). 0 disables a count rule."""

    denial_burst_count: int = 5
    denial_burst_window_s: int = 60
    revoke_on_context_mismatch: bool = True
    revoke_on_forbidden_attempt: bool = True
    post_revocation_attempts: int = 3
    post_revocation_window_s: int = 600
    velocity_fraction: float = 0.5
    velocity_window_s: int = 300


def check_user_operation_settings(
    where: str,
    *,
    entry_point: str | None,
    bundler_url: str | None,
    paymaster: str | None,
    paymaster_key_file: Path | None,
    paymaster_key_env: str | None,
) -> None:
    """The ERC-4337 settings of one network: a bundler needs the EntryPoint it serves, a
    paymaster needs a bundler and exactly one place for its signer key."""
    if bundler_url is not None:
        if not bundler_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: bundler_url must be an http(s) URL")
        if entry_point is None:
            raise ConfigError(f"{where}: bundler_url needs the entry_point it serves")
    if paymaster is None:
        if paymaster_key_file is not None or paymaster_key_env is not None:
            raise ConfigError(f"{where}: a paymaster key without a paymaster")
        return
    if not _ADDRESS.match(paymaster):
        raise ConfigError(f"{where}: paymaster must be a 0x address")
    if bundler_url is None:
        raise ConfigError(f"{where}: a paymaster needs a bundler_url")
    if (paymaster_key_file is None) == (paymaster_key_env is None):
        raise ConfigError(
            f"{where}: give the paymaster's signer key in exactly one of "
            "paymaster_key_file and paymaster_key_env"
        )
    if paymaster_key_env is not None and not _ENV_NAME.match(paymaster_key_env):
        raise ConfigError(f"{where}: paymaster_key_env must name an environment variable")


def check_session_module(where: str, session_module: str | None) -> None:
    """The network's SessionWard module, if any, is a ``0x`` address."""
    if session_module is not None and not _ADDRESS.match(str(session_module)):
        raise ConfigError(f"{where}: session_module must be a 0x address")


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """One network the service serves (``[[networks]]`` in a TOML file, or an object of the
    ``SESSIONWARD_NETWORKS`` JSON list). A wallet belongs to exactly one network, named by
    ``name`` or ``chain_id`` in requests.

    - ``rpc_url``: its JSON-RPC node; absent, an in-process chain with ``chain_id`` (new and
      empty at every start: development and tests only). A node's own ``eth_chainId`` must be
      ``chain_id`` or the service refuses to start.
    - ``entry_point``: the ERC-4337 EntryPoint the account implementation is deployed with on a
      development chain, and the one its deployment record must name (absent: none).
    - ``relayer_key_file`` (hex, mode 0600; made on first run) or ``relayer_key_env`` (the name
      of an environment variable holding it): the network's relayer key, default
      ``<data_dir>/relayer-<name>.key``. Two networks never share a relayer key (its jobs and
      nonces are kept per sender). The key itself is never a setting.
    - ``deployment_file``: the deployment record (factory, implementation, demo contracts),
      default ``<data_dir>/deployment-<name>.json``; on a development node without one, the
      contracts are deployed and the record written.
    - ``confirmations``: blocks a relayed transaction's receipt must have (1: the including
      block) before its outcome is recorded.
    - ``fee_cap_wei``: the most the relayer pays for one transaction (gas limit x max fee per
      gas) on this network; absent, ``relayer_fee_cap_wei``.
    - ``bundler_url``: an ERC-4337 bundler (ERC-7769 JSON-RPC) for ``entry_point``; with it,
      Execute may submit a session call as a UserOperation (``submission: userop``).
    - ``paymaster``: a ``VerifyingPaymaster`` (v0.7 sample interface) whose signer the service
      is, with ``paymaster_key_file`` (hex, mode 0600) or ``paymaster_key_env``: it sponsors the
      operations of sessions whose grant gives the account no fee budget.
    - ``session_module``: SessionWard's ERC-7579 module (``SessionWardModule.vy``) deployed on
      this chain; with it, RegisterWallet accepts any ERC-7579 account that has installed it
      (``accountKind: erc7579``) and the service drives that account's sessions through it.
    """

    name: str
    chain_id: int
    rpc_url: str | None = None
    entry_point: str | None = None
    relayer_key_file: Path | None = None
    relayer_key_env: str | None = None
    deployment_file: Path | None = None
    confirmations: int = 1
    fee_cap_wei: int | None = None
    bundler_url: str | None = None
    paymaster: str | None = None
    paymaster_key_file: Path | None = None
    paymaster_key_env: str | None = None
    session_module: str | None = None

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        where = f"network {self.name!r}"
        check_session_module(where, self.session_module)
        check_user_operation_settings(
            where,
            entry_point=self.entry_point,
            bundler_url=self.bundler_url,
            paymaster=self.paymaster,
            paymaster_key_file=self.paymaster_key_file,
            paymaster_key_env=self.paymaster_key_env,
        )
        if not isinstance(self.name, str) or not NETWORK_NAME.match(self.name):
            raise ConfigError(
                "a network name is 1-64 letters, digits, '.', '_' or '-', starting with a letter"
            )
        if not isinstance(self.chain_id, int) or not 0 < self.chain_id < 2**63:
            raise ConfigError(f"{where}: chain_id must be a positive integer below 2**63")
        if self.rpc_url is not None and not self.rpc_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: rpc_url must be an http(s) URL")
        if self.entry_point is not None and not _ADDRESS.match(self.entry_point):
            raise ConfigError(f"{where}: entry_point must be a 0x address")
        if self.relayer_key_file is not None and self.relayer_key_env is not None:
            raise ConfigError(f"{where}: relayer_key_file and relayer_key_env are exclusive")
        if self.relayer_key_env is not None and not _ENV_NAME.match(self.relayer_key_env):
            raise ConfigError(f"{where}: relayer_key_env must name an environment variable")
        confirmations = self.confirmations
        if not isinstance(confirmations, int) or not 1 <= confirmations <= MAX_CONFIRMATIONS:
            raise ConfigError(f"{where}: confirmations must be between 1 and {MAX_CONFIRMATIONS}")
        if self.fee_cap_wei is not None and (
            not isinstance(self.fee_cap_wei, int) or self.fee_cap_wei <= 0
        ):
            raise ConfigError(f"{where}: fee_cap_wei must be a positive integer")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str | None = None
    database_schema: str | None = None
    """PostgreSQL schema (``search_path``) to use, e.g. one per test run on a shared database."""
    rpc_url: str | None = None
    entry_point: str | None = None
    bundler_url: str | None = None
    paymaster: str | None = None
    paymaster_key_file: Path | None = None
    session_module: str | None = None
    """The single network's ERC-4337 and ERC-7579 settings (see :class:`NetworkSettings`);
    with ``networks``, each network has its own."""
    networks: tuple[NetworkSettings, ...] = ()
    """Several networks (:class:`NetworkSettings`), exclusive with ``rpc_url``; none: the one
    network of ``rpc_url`` (or the in-process chain), named :data:`DEFAULT_NETWORK`."""
    catalog_file: Path | None = None
    ops_credentials: tuple[OpsCredential, ...] = ()
    anomaly: AnomalyRules = field(default_factory=AnomalyRules)
    request_window_s: int = 60
    replay_ttl_s: int = 600
    max_body_bytes: int = 256 * 1024
    quote_ttl_s: int = 120
    call_deadline_s: int = 600
    relayer_fee_cap_wei: int = 10**17
    relayer_poll_s: float = 0.2
    run_relayer: bool = True
    relayer_lease_ttl_s: float = 15.0
    """How long the relayer lease lasts unrenewed (renewed every third of it): the longest a
    dead leader delays relaying, and never two relaying nodes at once (the lease is fenced)."""
    max_clock_skew_s: int = 30
    """Execute refuses to sign (``CLOCK_SKEW``) while the node's clock is behind the chain
    head's timestamp by more than this (see :mod:`sessionward.service.chain_time`)."""
    max_clock_lead_s: int | None = None
    """Execute refuses to sign while the node's clock is ahead of the chain head by more than
    this; off by default (an idle development chain mines no blocks to compare with)."""
    chain_time_ttl_s: float = 2.0
    """How long the chain head's timestamp is reused before the chain is asked again."""
    session_close_margin_s: int = 60
    """Calls stop being signed this long before a session's ``expiresAt`` (a signed call
    must still be included on chain before the session expires there)."""
    webhook_urls: tuple[str, ...] = ()
    webhook_max_attempts: int = 6
    webhook_timeout_s: float = 5.0
    webhook_backoff_s: float = 1.0
    webhook_backoff_max_s: float = 300.0
    webhook_queue_size: int = 1000
    # The HTTP edge (sessionward.api.http_guard.HttpLimits; README, configuration table).
    http_max_head_bytes: int = 16 * 1024
    http_max_headers: int = 64
    http_max_target_bytes: int = 4 * 1024
    http_head_timeout_s: float = 10.0
    http_body_timeout_s: float = 30.0
    http_keep_alive_s: int = 5
    service_id: str = "sessionward"
    """This deployment's name in wallet-registration challenges (a proof for one service is
    worthless at another): give every deployment its own, e.g. its public URL."""
    registration_ttl_s: int = 600
    """How far ahead a registration challenge's deadline may be."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser (owner apps); none by default."""
    device_ttl_s: int = 30 * 86400
    """How long an owner device (review page) stays paired: the default and the longest an
    owner may ask for (bounded by ``MAX_DEVICE_TTL_S``); then it is paired again."""
    pairing_code_ttl_s: int = 600
    """How long a one-time pairing code can be used (bounded by ``MAX_PAIRING_CODE_TTL_S``)."""
    # Tenant isolation (issue 14; sessionward.api.rate_limit, README configuration table).
    rate_limit_enabled: bool = True
    """Per-signer and per-owner-wallet request rate limits (429 ``RATE_LIMITED_REQUESTS``);
    in memory per node."""
    rate_limit_per_credential_rps: float = 50.0
    rate_limit_per_owner_rps: float = 20.0
    rate_limit_burst: int = 100
    wallet_creation_per_owner_per_day: int = 10
    """Wallets one owner may create (the relayer pays each deployment) in any 24 hours;
    0 turns the budget off."""
    rate_limit_hold_s: float = 0.25
    """A 429 is answered only after this wait (backpressure: a client ignoring Retry-After
    gets one answer per hold and connection); 0 answers at once."""
    # Fair scheduling between tenants (sessionward.api.fairness, README configuration table).
    fair_scheduling_enabled: bool = True
    """Requests wait for a slot in per-tenant queues served round-robin before any expensive
    work, and a request naming a credential over its rate is refused on the event loop; off,
    every request goes straight to a worker thread (and is refused there)."""
    fair_max_running: int = 2
    """Requests (other than units of work) on worker threads at once, all tenants together;
    the others wait, costing no CPU. About the cores one interpreter can use; raise it where
    requests mostly wait on a remote database or node."""
    fair_max_running_units: int = 32
    """Units of work (Execute, revocations) running at once; on SQLite Executes commit in
    groups of up to 16, so fewer than 32 would shrink the groups."""
    fair_max_queued_per_tenant: int = 64
    """Requests one tenant may have waiting; past it, 429 ``RATE_LIMITED_REQUESTS`` at once."""

    # The vault backend (sessionward.vault.backends; README configuration table).
    vault: str = "local"
    """``local``: keys encrypted at rest under the key-encryption key; ``pkcs11``: keys
    generated and kept in a PKCS#11 token (an HSM), which signs."""
    pkcs11_module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    """The PKCS#11 module (default: Debian's SoftHSM2)."""
    pkcs11_token_label: str | None = None
    pkcs11_slot: int | None = None
    """The token, by label (preferred) or slot id; with neither, the module's only token."""
    pkcs11_pin_file: Path | None = None
    """A file (mode 0600) holding the token's user PIN, used when ``SESSIONWARD_PKCS11_PIN``
    is unset. The PIN itself is never a setting (nor in a configuration file)."""
    vault_kek: str = "local"
    """Where the local vault's key-encryption key is: ``local`` (``SESSIONWARD_VAULT_KEY``,
    ``SESSIONWARD_VAULT_KEY_FILE`` or the data directory's key file) or ``pkcs11`` (an AES key
    in the token above, made on first use, never extractable)."""
    pkcs11_kek_label: str = "sessionward-kek"
    """The label of that AES key in the token."""

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, *, file: Path | None = None
    ) -> Settings:
        """Defaults, then ``file`` (or ``$SESSIONWARD_CONFIG``), then the environment."""
        env = os.environ if environ is None else environ
        settings = cls()
        path = file or (Path(env["SESSIONWARD_CONFIG"]) if env.get("SESSIONWARD_CONFIG") else None)
        if path is not None:
            settings = settings.with_document(_read_toml(path))
        settings = replace(settings, **vault_environment(env))
        settings = replace(settings, **_environment_overrides(env))
        if env.get("SESSIONWARD_NETWORKS"):
            settings = replace(settings, networks=networks_from_text(env["SESSIONWARD_NETWORKS"]))
        settings._check_networks()
        return settings

    def with_document(self, doc: Mapping[str, Any]) -> Settings:
        """These settings with the values of a parsed TOML document (unknown keys refused)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(doc) - known - {"ops", "anomaly"})
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}")
        changes: dict[str, Any] = {}
        for name, value in doc.items():
            if name == "ops":
                changes["ops_credentials"] = tuple(_ops_entry(e, i) for i, e in enumerate(value))
            elif name == "anomaly":
                changes["anomaly"] = _anomaly(value)
            elif name == "networks":
                changes["networks"] = networks_from_document(value)
            elif name in ("data_dir", "catalog_file", "pkcs11_module", "pkcs11_pin_file"):
                changes[name] = Path(value)
            elif name in ("webhook_urls", "cors_origins"):
                changes[name] = tuple(value)
            else:
                changes[name] = value
        result = replace(self, **changes)
        result.check()
        return result

    def check(self) -> None:
        if self.request_window_s <= 0 or self.replay_ttl_s <= self.request_window_s:
            raise ConfigError("replay_ttl_s must outlive request_window_s (both positive)")
        if self.max_body_bytes <= 0 or self.quote_ttl_s <= 0 or self.call_deadline_s <= 0:
            raise ConfigError("size and time limits must be positive")
        if self.relayer_lease_ttl_s <= 0 or self.max_clock_skew_s <= 0:
            raise ConfigError("relayer_lease_ttl_s and max_clock_skew_s must be positive")
        if self.chain_time_ttl_s < 0 or self.session_close_margin_s < 0:
            raise ConfigError("chain_time_ttl_s and session_close_margin_s cannot be negative")
        if any(not o.startswith(("https://", "http://")) for o in self.cors_origins):
            raise ConfigError("cors_origins are origins (https://host[:port]); no wildcard")
        if not 60 <= self.device_ttl_s <= MAX_DEVICE_TTL_S:
            raise ConfigError(f"device_ttl_s must be between 60 and {MAX_DEVICE_TTL_S}")
        if not 30 <= self.pairing_code_ttl_s <= MAX_PAIRING_CODE_TTL_S:
            raise ConfigError(f"pairing_code_ttl_s must be between 30 and {MAX_PAIRING_CODE_TTL_S}")
        if self.rate_limit_per_credential_rps <= 0 or self.rate_limit_per_owner_rps <= 0:
            raise ConfigError("rate limits must be positive (rate_limit_enabled turns them off)")
        if self.rate_limit_burst < 1 or self.wallet_creation_per_owner_per_day < 0:
            raise ConfigError("rate_limit_burst >= 1 and wallet_creation_per_owner_per_day >= 0")
        if self.rate_limit_hold_s < 0 or self.fair_max_queued_per_tenant < 0:
            raise ConfigError("rate_limit_hold_s and fair_max_queued_per_tenant cannot be negative")
        if self.fair_max_running < 1 or self.fair_max_running_units < 1:
            raise ConfigError("fair_max_running and fair_max_running_units must be at least 1")
        if self.vault not in VAULT_BACKENDS:
            raise ConfigError(f"vault must be one of {', '.join(VAULT_BACKENDS)}")
        if self.vault_kek not in VAULT_BACKENDS:
            raise ConfigError(f"vault_kek must be one of {', '.join(VAULT_BACKENDS)}")
        ids = [o.id for o in self.ops_credentials]
        if len(set(ids)) != len(ids):
            raise ConfigError("ops credential ids must be distinct")
        self._check_networks()

    def _check_networks(self) -> None:
        if not self.networks:
            check_session_module("the network", self.session_module)
            # The single network's paymaster key: the file, else SESSIONWARD_PAYMASTER_KEY.
            check_user_operation_settings(
                "the network",
                entry_point=self.entry_point,
                bundler_url=self.bundler_url,
                paymaster=self.paymaster,
                paymaster_key_file=self.paymaster_key_file,
                paymaster_key_env=(
                    PAYMASTER_KEY_ENV
                    if self.paymaster is not None and self.paymaster_key_file is None
                    else None
                ),
            )
            return
        single = (
            self.entry_point,
            self.bundler_url,
            self.paymaster,
            self.paymaster_key_file,
            self.session_module,
        )
        if any(value is not None for value in single):
            raise ConfigError(
                "entry_point, bundler_url, paymaster and session_module settings go in each "
                "network of networks"
            )
        if self.rpc_url:
            raise ConfigError("rpc_url and networks are exclusive: name the node in its network")
        for network in self.networks:
            network.check()
        names = [n.name.lower() for n in self.networks]
        if len(set(names)) != len(names):
            raise ConfigError("network names must be distinct (ignoring case)")
        chain_ids = [n.chain_id for n in self.networks]
        if len(set(chain_ids)) != len(chain_ids):
            raise ConfigError("network chain ids must be distinct")
        keys = [n.relayer_key_file or n.relayer_key_env for n in self.networks]
        named = [k for k in keys if k is not None]
        if len(set(named)) != len(named):
            raise ConfigError("two networks cannot share a relayer key")


def _environment_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets (see the module docstring), by kind."""
    return {
        **_env_locations(env),
        **_env_lists(env),
        **_env_flags(env),
        **_env_numbers(env),
    }


def _env_locations(env: Mapping[str, str]) -> dict[str, Any]:
    """Paths, URLs and names: taken as they are."""
    overrides: dict[str, Any] = {}
    if env.get("SESSIONWARD_DATA_DIR"):
        overrides["data_dir"] = Path(env["SESSIONWARD_DATA_DIR"])
    if env.get("SESSIONWARD_DATABASE_URL"):
        overrides["database_url"] = env["SESSIONWARD_DATABASE_URL"]
    if env.get("SESSIONWARD_DATABASE_SCHEMA"):
        overrides["database_schema"] = env["SESSIONWARD_DATABASE_SCHEMA"]
    if env.get("SESSIONWARD_RPC_URL"):
        overrides["rpc_url"] = env["SESSIONWARD_RPC_URL"]
    if env.get("SESSIONWARD_CATALOG"):
        overrides["catalog_file"] = Path(env["SESSIONWARD_CATALOG"])
    if env.get("SESSIONWARD_SERVICE_ID"):
        overrides["service_id"] = env["SESSIONWARD_SERVICE_ID"]
    for name in ("entry_point", "bundler_url", "paymaster", "session_module"):
        if env.get(f"SESSIONWARD_{name.upper()}"):
            overrides[name] = env[f"SESSIONWARD_{name.upper()}"]
    if env.get("SESSIONWARD_PAYMASTER_KEY_FILE"):
        overrides["paymaster_key_file"] = Path(env["SESSIONWARD_PAYMASTER_KEY_FILE"])
    return overrides


def _env_lists(env: Mapping[str, str]) -> dict[str, Any]:
    """Comma-separated lists (ops keys, webhook URLs, CORS origins)."""
    overrides: dict[str, Any] = {}
    if env.get("SESSIONWARD_OPS_KEYS"):
        overrides["ops_credentials"] = tuple(_ops_from_text(env["SESSIONWARD_OPS_KEYS"]))
    for name, variable in (
        ("webhook_urls", "SESSIONWARD_WEBHOOK_URLS"),
        ("cors_origins", "SESSIONWARD_CORS_ORIGINS"),
    ):
        if env.get(variable):
            overrides[name] = tuple(p.strip() for p in env[variable].split(",") if p.strip())
    return overrides


def _env_flags(env: Mapping[str, str]) -> dict[str, bool]:
    """On/off settings: true/false, yes/no, on/off or 1/0; anything else is refused."""
    overrides: dict[str, bool] = {}
    for name in _FLAGS:
        variable = f"SESSIONWARD_{name.upper()}"
        flag = env.get(variable, "").strip().lower()
        if not flag:
            continue
        if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{variable} must be true or false")
        overrides[name] = flag in ("1", "true", "yes", "on")
    return overrides


def _env_numbers(env: Mapping[str, str]) -> dict[str, int | float]:
    """Numeric settings, ``SESSIONWARD_<NAME>``; a value that is not a number is refused."""
    overrides: dict[str, int | float] = {}
    for name, cast in _NUMBERS.items():
        text = env.get(f"SESSIONWARD_{name.upper()}")
        if text:
            try:
                overrides[name] = cast(text)
            except ValueError:
                raise ConfigError(f"SESSIONWARD_{name.upper()} must be a number") from None
    return overrides


_FLAGS: Final = ("rate_limit_enabled", "fair_scheduling_enabled")

_NUMBERS: dict[str, type[int] | type[float]] = {
    "webhook_max_attempts": int,
    "webhook_timeout_s": float,
    "webhook_backoff_s": float,
    "webhook_backoff_max_s": float,
    "webhook_queue_size": int,
    "http_max_head_bytes": int,
    "http_max_headers": int,
    "http_max_target_bytes": int,
    "http_head_timeout_s": float,
    "http_body_timeout_s": float,
    "http_keep_alive_s": int,
    "device_ttl_s": int,
    "pairing_code_ttl_s": int,
    "rate_limit_per_credential_rps": float,
    "rate_limit_per_owner_rps": float,
    "rate_limit_burst": int,
    "wallet_creation_per_owner_per_day": int,
    "rate_limit_hold_s": float,
    "fair_max_running": int,
    "fair_max_running_units": int,
    "fair_max_queued_per_tenant": int,
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None


def _ops_entry(entry: Any, index: int) -> OpsCredential:
    if not isinstance(entry, Mapping) or set(entry) != {"id", "alg", "public_key"}:
        raise ConfigError(f"ops[{index}] needs exactly id, alg and public_key")
    if entry["alg"] not in (ALG_SECP256K1, ALG_P256):
        raise ConfigError(f"ops[{index}].alg must be {ALG_SECP256K1} or {ALG_P256}")
    return OpsCredential(str(entry["id"]), str(entry["alg"]), str(entry["public_key"]).lower())


def _ops_from_text(text: str) -> list[OpsCredential]:
    entries = []
    for i, part in enumerate(p for p in text.split(",") if p.strip()):
        pieces = part.strip().split(":")
        if len(pieces) != 3:
            raise ConfigError(f"SESSIONWARD_OPS_KEYS entry {i} must be id:alg:publicKey")
        entries.append(_ops_entry(dict(zip(("id", "alg", "public_key"), pieces, strict=True)), i))
    return entries


def _anomaly(doc: Any) -> AnomalyRules:
    if not isinstance(doc, Mapping):
        raise ConfigError("anomaly must be a table")
    known = {f.name for f in fields(AnomalyRules)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"unknown anomaly rule {unknown[0]!r}")
    return replace(AnomalyRules(), **doc)


def vault_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The vault settings the environment sets: ``SESSIONWARD_VAULT``, ``SESSIONWARD_VAULT_KEK``
    and ``SESSIONWARD_PKCS11_{MODULE,TOKEN_LABEL,SLOT,PIN_FILE,KEK_LABEL}`` (the demo reads
    these too)."""
    overrides: dict[str, Any] = {}
    backend = env.get("SESSIONWARD_VAULT", "").strip().lower()
    if backend:
        if backend not in VAULT_BACKENDS:
            raise ConfigError(f"SESSIONWARD_VAULT must be one of {', '.join(VAULT_BACKENDS)}")
        overrides["vault"] = backend
    kek = env.get("SESSIONWARD_VAULT_KEK", "").strip().lower()
    if kek:
        if kek not in VAULT_BACKENDS:
            raise ConfigError(f"SESSIONWARD_VAULT_KEK must be one of {', '.join(VAULT_BACKENDS)}")
        overrides["vault_kek"] = kek
    for name in ("module", "pin_file"):
        if env.get(f"SESSIONWARD_PKCS11_{name.upper()}"):
            overrides[f"pkcs11_{name}"] = Path(env[f"SESSIONWARD_PKCS11_{name.upper()}"])
    for name in ("token_label", "kek_label"):
        if env.get(f"SESSIONWARD_PKCS11_{name.upper()}"):
            overrides[f"pkcs11_{name}"] = env[f"SESSIONWARD_PKCS11_{name.upper()}"]
    if env.get("SESSIONWARD_PKCS11_SLOT"):
        try:
            overrides["pkcs11_slot"] = int(env["SESSIONWARD_PKCS11_SLOT"], 0)
        except ValueError:
            raise ConfigError("SESSIONWARD_PKCS11_SLOT must be a slot id (a number)") from None
    return overrides


_NETWORK_FIELDS: Final = frozenset(f.name for f in fields(NetworkSettings))


def networks_from_document(doc: Any) -> tuple[NetworkSettings, ...]:
    """Networks from a parsed TOML or JSON value: a list of tables/objects, or a table with
    such a list under ``networks``. Unknown keys are refused; every network is checked."""
    if isinstance(doc, Mapping) and set(doc) == {"networks"}:
        doc = doc["networks"]
    if not isinstance(doc, list) or not doc:
        raise ConfigError("networks must be a non-empty list of tables")
    result = []
    for index, entry in enumerate(doc):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"networks[{index}] must be a table")
        unknown = sorted(set(entry) - _NETWORK_FIELDS)
        if unknown:
            raise ConfigError(f"networks[{index}]: unknown setting {unknown[0]!r}")
        if "name" not in entry or "chain_id" not in entry:
            raise ConfigError(f"networks[{index}] needs a name and a chain_id")
        values = dict(entry)
        for name in ("relayer_key_file", "deployment_file", "paymaster_key_file"):
            if values.get(name) is not None:
                values[name] = Path(str(values[name]))
        if isinstance(values.get("chain_id"), bool):
            raise ConfigError(f"networks[{index}].chain_id must be an integer")
        network = NetworkSettings(**values)
        network.check()
        result.append(network)
    return tuple(result)


def networks_from_text(text: str) -> tuple[NetworkSettings, ...]:
    """``SESSIONWARD_NETWORKS``: inline JSON (starting with ``[`` or ``{``), or the path of a
    ``.json`` or TOML file (``[[networks]]`` tables)."""
    body = text.strip()
    if body.startswith(("[", "{")):
        try:
            return networks_from_document(json.loads(body))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"SESSIONWARD_NETWORKS is not valid JSON: {exc.msg}") from None
    path = Path(body)
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read networks {path}: {exc}") from None
        return networks_from_document(doc)
    return networks_from_document(_read_toml(path))
