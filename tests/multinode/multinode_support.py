"""Helpers for the multi-node tests: an anvil node, ``sessionward serve`` processes, and the
three actors talking to them through the SDK.

A plain module (not a conftest) so that test modules can import it by name. Every process
started here is stopped by its own PID (terminate, then kill if it lingers).

The cluster: THREE service processes sharing one data directory (so one vault key-encryption
key, one relayer key and one ``deployment.json``), one PostgreSQL schema and one anvil node
(chain id 1). Node 1 starts first and deploys the demo world; nodes 2 and 3 reuse it. Only the
node holding the dispatcher lease relays; every node decides, reserves and signs.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from loopback_processes import free_port, listens_on, serves_health, stop
from sessionward.chain.demo import DemoDeployment, fund_demo_wallet
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import ALG_SECP256K1, Secp256k1RequestSigner
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.sdk import BackendClient, OpsClient, OwnerClient, SessionWardApiError
from sessionward.store import Store

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
PG_URL: Final = os.environ.get(
    "SESSIONWARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
CHAIN_ID: Final = 1
USDX: Final = 10**6
"""One USDX in base units (6 decimals); the demo prices 1 USDX at 1 USD."""
MICRO_USD: Final = 10**6
"""USD amounts in usage documents are in micro-dollars."""

SWAP: Final = parse_signature(
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)"
)
APPROVE: Final = parse_signature("approve(address spender,uint256 amount)")

# The anomaly rules that would blur what these tests measure are switched off: value velocity
# (it suspends a session after half its budget in five minutes) and denial bursts (they revoke
# a session after five denials, turning USD_LIMIT_EXCEEDED refusals into SESSION_REVOKED).
# Those rules have their own tests; here the database alone must hold the line.
CLUSTER_CONFIG: Final = """\
[anomaly]
velocity_fraction = 0.0
denial_burst_count = 0
"""


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return "<no log>"


# --- anvil ---------------------------------------------------------------------------------


# --- service nodes -------------------------------------------------------------------------


@dataclass
class ServiceNode:
    """One ``sessionward serve`` process on a loopback port; its output goes to ``log``."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]
    _log_file: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, name: str, env: Mapping[str, str], log: Path) -> ServiceNode:
        port = free_port()
        log_file = log.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "sessionward.cli", "serve", "--port", str(port)],
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        return cls(name, port, log, process, log_file)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait for ``GET /healthz`` to answer 200; ``RuntimeError`` with the log's tail if the
        process dies or does not answer in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{_tail(self.log)}"
                )
            # Ours only: another worker's node may answer on a port it took meanwhile.
            if listens_on(self.process, self.port) and serves_health(self.url):
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not answer /healthz in {timeout_s} s:\n{_tail(self.log)}"
        )

    def stop(self) -> None:
        try:
            stop(self.process, grace_s=10)
        finally:
            self._log_file.close()


def node_environment(
    *, data_dir: Path, schema: str, rpc_url: str, ops_keys: str, config: Path
) -> dict[str, str]:
    """The environment of every node: ours, minus any SESSIONWARD_* setting of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env.update(
        SESSIONWARD_DATA_DIR=str(data_dir),
        SESSIONWARD_DATABASE_URL=PG_URL,
        SESSIONWARD_DATABASE_SCHEMA=schema,
        SESSIONWARD_RPC_URL=rpc_url,
        SESSIONWARD_OPS_KEYS=ops_keys,
        SESSIONWARD_CONFIG=str(config),
    )
    return env


@dataclass(frozen=True)
class OpsKey:
    """An ops credential configured on every node, and its secret (test-only)."""

    id: str
    secret: bytes

    @property
    def entry(self) -> str:
        """Its ``SESSIONWARD_OPS_KEYS`` entry."""
        return f"{self.id}:{ALG_SECP256K1}:{address_from_secret(self.secret)}"


# --- the cluster and its actors ------------------------------------------------------------


@dataclass
class Cluster:
    """Three nodes over one database and one chain, and the test's own view of both."""

    nodes: list[ServiceNode]
    data_dir: Path
    schema: str
    chain: RpcChain
    deployment: DemoDeployment
    store: Store
    """Opened by the test on the nodes' schema, to read the audit log and the transactions."""
    ops_keys: list[OpsKey]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def ops(self, which: int, node: int) -> OpsClient:
        """Ops credential ``which`` (0-based) talking to node ``node`` (0-based)."""
        key = self.ops_keys[which]
        return OpsClient(self.urls[node], Secp256k1RequestSigner(key.secret), key.id)

    def deployer(self) -> LocalTransactionSigner:
        """The demo world's deployer (owner and minter of the demo tokens)."""
        return LocalTransactionSigner.from_file(self.data_dir / "deployer.key")

    def new_party(self, *, usdx: int = 1_000_000) -> Party:
        """A fresh backend and owner with a deployed, funded wallet whose owner has let the
        router pull its USDX (as in ``sessionward demo``)."""
        backend_secret = secrets.token_bytes(32)
        first = BackendClient(self.urls[0], Secp256k1RequestSigner(backend_secret))
        credential = first.register(
            "Multi-node Agent", "https://agent.example", int(time.time()) + 86_400
        )
        credential_id = str(credential["credentialId"])
        backends = [first] + [
            BackendClient(url, Secp256k1RequestSigner(backend_secret), credential_id)
            for url in self.urls[1:]
        ]
        owner_secret = secrets.token_bytes(32)
        owner = OwnerClient(self.urls[0], owner_secret)
        wallet = owner.create_wallet()
        account = str(wallet["account"])
        owners = [owner] + [
            OwnerClient(
                url,
                owner_secret,
                owner.credential_id,
                wallet_id=owner.wallet_id,
                account=account,
            )
            for url in self.urls[1:]
        ]
        wait_until(lambda: bool(self.chain.get_code(account)), "the wallet's deployment", 30)
        self._fund(owner_secret, account, usdx)
        return Party(
            cluster=self,
            wallet_id=str(wallet["walletId"]),
            account=account,
            credential_id=credential_id,
            backends=backends,
            owners=owners,
        )

    def _fund(self, owner_secret: bytes, account: str, usdx: int) -> None:
        fund_demo_wallet(
            self.chain,
            self.deployment,
            self.deployer(),
            owner_secret=owner_secret,
            account=account,
            usdx=usdx,
        )


@dataclass
class Party:
    """One owner's wallet and one backend credential, with a client per node for each."""

    cluster: Cluster
    wallet_id: str
    account: str
    credential_id: str
    backends: list[BackendClient]
    owners: list[OwnerClient]
    sessions: list[str] = field(default_factory=list)

    def grant_swap_session(
        self, *, max_usd: int, ttl_s: int = 900, fee_budget: int | None = None
    ) -> str:
        """Authorize and approve (on node 1) a ``swap.execute`` session on the demo router,
        capped at ``max_usd`` dollars; ``fee_budget``: its ``maxFeeWei`` (the account then
        pays its own UserOperations within it)."""
        deployment = self.cluster.deployment
        envelope: dict[str, Any] = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": max_usd,
            "allowedDestinations": [deployment.router],
            "chainId": self.cluster.chain.chain_id,
            "expiresAt": int(time.time()) + ttl_s,
        }
        if fee_budget is not None:
            envelope["maxFeeWei"] = str(fee_budget)
        owner = self.owners[0]
        pending = owner.authorize_remote_access(self.credential_id, self.wallet_id, envelope)
        owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
        session_id = str(pending["sessionId"])
        # Usable once the relaying node has seen it installed on chain (installing → active).
        wait_until(
            lambda: owner.get_session(session_id)["lifecycle"] == "active",
            f"session {session_id} installed on chain",
            60.0,
        )
        self.sessions.append(session_id)
        return session_id

    def swap_data(self, usdx: int) -> bytes:
        deployment = self.cluster.deployment
        path = (deployment.token("USDX"), deployment.token("WETHX"))
        return encode_call(SWAP, (usdx * USDX, 0, path, self.account, int(time.time()) + 3600))

    def quote(self, session_id: str, usdx: int, node: int = 0) -> str:
        """A quote (``txnId``) for swapping ``usdx`` USDX, prepared on ``node``."""
        quote = self.backends[node].prepare_transaction(
            self.wallet_id, session_id, self.cluster.deployment.router, 0, self.swap_data(usdx)
        )
        assert quote["status"] == "quoted", quote
        return str(quote["txnId"])

    def quotes(self, session_id: str, count: int, usdx: int) -> list[str]:
        """``count`` quotes, prepared round-robin over the nodes."""
        nodes = len(self.backends)
        return [self.quote(session_id, usdx, i % nodes) for i in range(count)]

    def close(self) -> None:
        for client in [*self.backends, *self.owners]:
            client.close()


# --- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One Execute as the backend saw it: when it was sent and answered (wall clock, seconds)
    and its status or refusal code."""

    txn_id: str
    node: int
    sent_at: float
    answered_at: float
    outcome: str
    """``pending`` (signed) or the refusal's reason code."""

    @property
    def signed(self) -> bool:
        return self.outcome == "pending"


def execute_once(party: Party, txn_id: str, node: int) -> Attempt:
    """Execute ``txn_id`` on ``node``; a refusal is an outcome, not an exception."""
    sent = time.time()
    try:
        outcome = str(party.backends[node].execute(txn_id)["status"])
    except SessionWardApiError as refused:
        outcome = refused.code
    return Attempt(txn_id, node, sent, time.time(), outcome)


def usd_usage(party: Party, session_id: str) -> tuple[int, int]:
    """``(spent, max)`` of the session's ``maxValueUsd`` limit, in micro-dollars."""
    usage = party.backends[0].get_session_usage(session_id)
    item = next(i for i in usage["limits"] if i["limit"] == "maxValueUsd")
    return int(item["spent"]), int(item["max"])


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def outcome_counts(attempts: Sequence[Attempt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.outcome] = counts.get(attempt.outcome, 0) + 1
    return counts
