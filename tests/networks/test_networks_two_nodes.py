"""Two ``sessionward serve`` processes on one PostgreSQL schema, both configured with the same
two networks (two anvil nodes with different chain ids): each network's relayer lease is held by
exactly one node, and when that node stops the other takes over each network's relaying.

Needs PostgreSQL (``$SESSIONWARD_TEST_PG_URL``, default the local server) and anvil: the test
fails if either is missing. Every process is stopped by its PID; the schema is dropped.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from networks_support import ALPHA_CHAIN_ID, APPROVE, BETA_CHAIN_ID, two_networks
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

import anvil_node
from loopback_processes import free_port, listens_on, serves_health, stop
from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.demo import DemoDeployment, demo_contract
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.domain.abi import encode_call
from sessionward.domain.calldata import Call, encode_execute, encode_single_execution, mode_single
from sessionward.sdk import BackendClient, OwnerClient, SessionWardApiError
from sessionward.store.database import normalize_url

pytestmark = [pytest.mark.anvil, pytest.mark.postgres]

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("SESSIONWARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SWAP = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def readiness(self) -> dict[str, Any]:
        document = httpx.get(f"{self.url}/readyz", timeout=5).json()
        assert isinstance(document, dict)
        return document

    def leases(self) -> dict[str, str]:
        networks = self.readiness()["checks"]["relayer"].get("networks", {})
        assert isinstance(networks, dict)
        return networks

    def stop(self) -> None:
        """Stop by PID: terminate, then kill if it lingers."""
        stop(self.process, grace_s=15)


def _start(name: str, env: dict[str, str], data_dir: Path) -> Node:
    port, log = free_port(), data_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sessionward.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    node = Node(name, port, process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-3000:]}")
        # Ours only: another worker's node may answer on a port it took meanwhile.
        if listens_on(process, port) and serves_health(node.url):
            return node
        time.sleep(0.1)
    node.stop()
    raise RuntimeError(f"{name} did not start: {log.read_text(errors='replace')[-3000:]}")


def _wait(check: Callable[[], bool], what: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.1)


@dataclass
class Cluster:
    nodes: list[Node]
    data_dir: Path
    chains: dict[str, RpcChain]

    def deployment(self, network: str) -> DemoDeployment:
        doc = json.loads((self.data_dir / f"deployment-{network}.json").read_text())
        return DemoDeployment(**doc)

    def deployer(self, network: str) -> LocalTransactionSigner:
        return LocalTransactionSigner.from_file(self.data_dir / f"deployer-{network}.key")

    def usdx(self, network: str, account: str) -> int:
        token = DeployedContract(
            self.chains[network], self.deployment(network).token("USDX"), demo_contract("DemoToken")
        )
        value = token.call_one("balanceOf", account)
        assert isinstance(value, int)
        return value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    admin = create_engine(normalize_url(PG_URL))
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is unavailable at {PG_URL}: {exc}", pytrace=False)
    schema = f"sw_networks_{uuid.uuid4().hex[:12]}"
    data_dir = tmp_path_factory.mktemp("two-nodes")
    anvils: list[subprocess.Popen[bytes]] = []
    nodes: list[Node] = []
    chains: dict[str, RpcChain] = {}
    try:
        urls = {}
        for name, chain_id in (("alpha", ALPHA_CHAIN_ID), ("beta", BETA_CHAIN_ID)):
            try:
                process, urls[name] = anvil_node.start(chain_id)
            except anvil_node.AnvilUnavailable as exc:
                pytest.fail(str(exc), pytrace=False)
            anvils.append(process)
        networks = two_networks(data_dir, alpha_rpc=urls["alpha"], beta_rpc=urls["beta"])
        config = data_dir / "sessionward.toml"
        config.write_text(
            "relayer_lease_ttl_s = 3.0\nrelayer_poll_s = 0.05\n\n[anomaly]\nvelocity_fraction = 0.0\n"
            + "".join(
                f'\n[[networks]]\nname = "{n.name}"\nchain_id = {n.chain_id}\n'
                f'rpc_url = "{n.rpc_url}"\n'
                for n in networks
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
        env.update(
            SESSIONWARD_DATA_DIR=str(data_dir),
            SESSIONWARD_DATABASE_URL=PG_URL,
            SESSIONWARD_DATABASE_SCHEMA=schema,
            SESSIONWARD_CONFIG=str(config),
        )
        try:
            nodes.append(_start("node-1", env, data_dir))  # deploys on both networks
            nodes.append(_start("node-2", env, data_dir))
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        chains = {name: RpcChain(url) for name, url in urls.items()}
        yield Cluster(nodes, data_dir, chains)
    finally:
        for node in nodes:
            node.stop()
        for chain in chains.values():
            chain.close()
        for process in anvils:
            anvil_node.stop(process)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _fund(cluster: Cluster, network: str, owner: OwnerClient, secret: bytes) -> None:
    chain, deployment = cluster.chains[network], cluster.deployment(network)
    assert owner.account is not None
    _wait(lambda: bool(chain.get_code(str(owner.account))), f"the account on {network}")
    chain.set_balance(Secp256k1RequestSigner(secret).address, 10**18)
    usdx = deployment.token("USDX")
    token = DeployedContract(chain, usdx, demo_contract("DemoToken"))
    token.transact(cluster.deployer(network), "mint", owner.account, 1_000 * 10**6)
    inner = encode_call(APPROVE, (deployment.router, 2**255))
    data = encode_execute(mode_single(), encode_single_execution(Call(usdx, 0, inner)))
    transact(chain, LocalTransactionSigner(secret), to=owner.account, data=data)


def _swap(
    cluster: Cluster, network: str, backend: BackendClient, owner: OwnerClient, ses: str
) -> str:
    d = cluster.deployment(network)
    assert owner.wallet_id is not None
    path = [d.token("USDX"), d.token("WETHX")]
    quote = backend.prepare_contract_call(
        owner.wallet_id, ses, d.router, SWAP, [10 * 10**6, 0, path, owner.account, 2**40],
        network=network,
    )  # fmt: skip
    backend.execute(quote["txnId"])
    return str(backend.wait_for_transaction(quote["txnId"], timeout=60)["status"])


def test_each_network_lease_is_held_by_one_node_and_taken_over_when_it_stops(
    cluster: Cluster,
) -> None:
    first, second = cluster.nodes

    def holders(network: str) -> list[str]:
        return [n.name for n in cluster.nodes if n.process.poll() is None
                and n.leases().get(network) == "held"]  # fmt: skip

    _wait(lambda: holders("alpha") == ["node-1"] and holders("beta") == ["node-1"], "leases")
    assert second.leases() == {"alpha": "another node relays", "beta": "another node relays"}
    assert all(n.readiness()["status"] == "ready" for n in cluster.nodes)

    # The same owner and backend on both networks, through the second node.
    secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
    owners = {name: OwnerClient(second.url, secret) for name in ("alpha", "beta")}
    backend = BackendClient(second.url, Secp256k1RequestSigner(secrets.token_bytes(32)))
    backend.register("Acme Agent", "https://acme.example", int(time.time()) + 86_400)
    assert backend.credential_id is not None
    sessions = {}
    for name, owner in owners.items():
        owner.create_wallet(salt, network=name)
        _fund(cluster, name, owner, secret)
        envelope = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": 500,
            "allowedDestinations": [cluster.deployment(name).router],
            "chainId": owner.chain_id,
            "expiresAt": int(time.time()) + 1800,
        }
        pending = owner.authorize_remote_access(backend.credential_id, None, envelope, network=name)
        owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
        sessions[name] = str(pending["sessionId"])
    for name, owner in owners.items():
        _wait(lambda o=owner, n=name: o.get_session(sessions[n])["status"] == "active", name)

    # Naming the other network on PostgreSQL, across nodes: refused, nothing written.
    alpha = owners["alpha"]
    assert alpha.wallet_id is not None
    with pytest.raises(SessionWardApiError) as refused:
        backend.prepare_transaction(
            alpha.wallet_id, sessions["alpha"], cluster.deployment("alpha").router, 0,
            b"\x00" * 4, network="beta",
        )  # fmt: skip
    assert (refused.value.status, refused.value.code) == (403, "CHAIN_MISMATCH")
    assert _swap(cluster, "alpha", backend, alpha, sessions["alpha"]) == "executed"

    # The relaying node stops: the other takes each network's lease and relays both.
    first.stop()
    _wait(lambda: holders("alpha") == ["node-2"] and holders("beta") == ["node-2"], "takeover")
    for name, owner in owners.items():
        assert _swap(cluster, name, backend, owner, sessions[name]) == "executed"
    assert owners["alpha"].account == owners["beta"].account
    account = str(owners["alpha"].account)
    assert (cluster.usdx("alpha", account), cluster.usdx("beta", account)) == (
        980 * 10**6,
        990 * 10**6,
    )
    for client in (*owners.values(), backend):
        client.close()
