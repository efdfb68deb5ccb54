"""End to end: one ``sessionward`` server configured by ``SESSIONWARD_NETWORKS`` on two anvil
nodes with different chain ids (started and stopped by PID), driven over HTTP by the SDK with
the same owner key and the same backend on both networks.

Each network relays under its own lease; a request naming the other network is refused
``403 CHAIN_MISMATCH`` and an unknown one ``404 NETWORK_UNKNOWN``, neither writing anything; the
owner's client refuses to sign a grant made for another chain than its wallet's; a swap and a
revocation on one network leave the other as it was.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from networks_support import ALPHA_CHAIN_ID, APPROVE, BETA_CHAIN_ID, Networks, two_networks

import anvil_node
from sessionward.chain.contracts import transact
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.domain.abi import encode_call
from sessionward.domain.calldata import Call, encode_execute, encode_single_execution, mode_single
from sessionward.sdk import BackendClient, OwnerClient
from sessionward.sdk.errors import SessionWardApiError
from sessionward.sdk.grants import GrantVerificationError
from sessionward.server import BackgroundServer
from sessionward.service.config import ConfigError, NetworkSettings, Settings
from sessionward.service.runtime import build_runtime
from sessionward.service.waas import Waas

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Networks, str]]:
    """The server on ``alpha`` and ``beta`` (two anvil nodes), relaying; its base URL."""
    processes = []
    try:
        urls = []
        for chain_id in (ALPHA_CHAIN_ID, BETA_CHAIN_ID):
            try:
                process, url = anvil_node.start(chain_id)
            except anvil_node.AnvilUnavailable as exc:
                pytest.fail(str(exc), pytrace=False)
            processes.append(process)
            urls.append(url)
        data_dir = tmp_path_factory.mktemp("served")
        alpha, beta = two_networks(data_dir, alpha_rpc=urls[0], beta_rpc=urls[1])
        config = [
            {"name": n.name, "chain_id": n.chain_id, "rpc_url": n.rpc_url} for n in (alpha, beta)
        ]
        settings = Settings.load(
            {"SESSIONWARD_DATA_DIR": str(data_dir), "SESSIONWARD_NETWORKS": json.dumps(config)}
        )
        waas = Waas.from_settings(replace(settings, relayer_poll_s=0.05))
        with BackgroundServer(waas) as base_url:
            yield Networks(waas), base_url
        waas.stop()
    finally:
        for process in processes:
            anvil_node.stop(process)


def _wait(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)


def _fund(world: Networks, network: str, owner: OwnerClient, secret: bytes) -> None:
    """1,000 USDX into the account on ``network`` and the router approved by the owner."""
    rt, chain = world.net(network), world.chain(network)
    assert owner.account is not None
    _wait(lambda: bool(chain.get_code(str(owner.account))), f"the account on {network}")
    chain.set_balance(Secp256k1RequestSigner(secret).address, 10**18)
    usdx = rt.deployment.token("USDX")
    world.token(network, usdx).transact(rt.deployer, "mint", owner.account, 1_000 * 10**6)
    inner = encode_call(APPROVE, (rt.deployment.router, 2**255))
    data = encode_execute(mode_single(), encode_single_execution(Call(usdx, 0, inner)))
    transact(chain, LocalTransactionSigner(secret), to=owner.account, data=data)


def _session(world: Networks, network: str, owner: OwnerClient, backend: BackendClient) -> str:
    assert backend.credential_id is not None
    pending = owner.authorize_remote_access(
        backend.credential_id, None, world.envelope(network), network=network
    )
    owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
    session_id = str(pending["sessionId"])
    _wait(
        lambda: owner.get_session(session_id)["status"] == "active",
        f"the session on {network} installed",
    )
    return session_id


def _swap(world: Networks, backend: BackendClient, owner: OwnerClient, session: str) -> Any:
    rt = world.net("alpha" if owner.chain_id == ALPHA_CHAIN_ID else "beta")
    d = rt.deployment
    args = [10 * 10**6, 0, [d.token("USDX"), d.token("WETHX")], owner.account, 2**40]
    assert owner.wallet_id is not None
    quote = backend.prepare_contract_call(
        owner.wallet_id,
        session,
        d.router,
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        args,
        network=rt.network_name,
    )
    backend.execute(quote["txnId"])
    return backend.wait_for_transaction(quote["txnId"])


def test_one_server_serves_two_anvil_chains_in_isolation(served: tuple[Networks, str]) -> None:
    world, url = served
    secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
    owners = {name: OwnerClient(url, secret) for name in ("alpha", "beta")}
    for name, owner in owners.items():
        owner.create_wallet(salt, network=name)
    alpha, beta = owners["alpha"], owners["beta"]
    assert (alpha.chain_id, beta.chain_id) == (ALPHA_CHAIN_ID, BETA_CHAIN_ID)
    assert alpha.account == beta.account and alpha.wallet_id != beta.wallet_id
    for name, owner in owners.items():
        _fund(world, name, owner, secret)
    backend = BackendClient(url, Secp256k1RequestSigner(secrets.token_bytes(32)))
    backend.register("Acme Agent", "https://acme.example", int(time.time()) + 86_400)
    sessions = {name: _session(world, name, owner, backend) for name, owner in owners.items()}
    # Each network relays under its own lease, on this (only) node.
    _wait(lambda: world.waas.relay_leases() == {"alpha": True, "beta": True}, "both leases")
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks["chain"]["networks"]) == {"alpha", "beta"}
    assert all(c["ok"] for c in checks["chain"]["networks"].values())
    assert checks["relayer"]["networks"] == {"alpha": "held", "beta": "held"}

    # The owner's client never signs a grant for another chain than its wallet's.
    assert backend.credential_id is not None
    beta_pending = beta.authorize_remote_access(
        backend.credential_id, None, world.envelope("beta"), network=beta_chain_id_text()
    )
    with pytest.raises(GrantVerificationError, match="another chain"):
        alpha.grant_digest(beta_pending)

    # Naming the other network, or an unknown one: refused, nothing written.
    before = world.db_counts()
    assert alpha.wallet_id is not None
    for named, status, code in (
        ("beta", 403, "CHAIN_MISMATCH"),
        (BETA_CHAIN_ID, 403, "CHAIN_MISMATCH"),
        ("gamma", 404, "NETWORK_UNKNOWN"),
    ):
        with pytest.raises(SessionWardApiError) as refused:
            backend.prepare_transaction(
                alpha.wallet_id, sessions["alpha"], world.net("alpha").deployment.router, 0,
                b"\x00" * 4, network=named,
            )  # fmt: skip
        assert (refused.value.status, refused.value.code) == (status, code)
        with pytest.raises(SessionWardApiError) as usage:
            backend.get_session_usage(sessions["alpha"], network=named)
        assert (usage.value.status, usage.value.code) == (status, code)
    assert world.db_counts() == before

    # A swap on alpha moves alpha only.
    assert _swap(world, backend, alpha, sessions["alpha"])["status"] == "executed"
    assert (world.usdx_of("alpha", alpha), world.usdx_of("beta", beta)) == (990 * 10**6, 10**9)

    # Revoked on alpha: removed there; beta's session lives on and still swaps.
    alpha.revoke_access(None, backend.credential_id, sessions["alpha"])
    key = backend.get_session(sessions["alpha"])["sessionKey"]
    _wait(lambda: world.onchain_status("alpha", str(alpha.account), key) == 2, "the removal")
    assert backend.get_session(sessions["beta"])["status"] == "active"
    assert _swap(world, backend, beta, sessions["beta"])["status"] == "executed"
    assert (world.usdx_of("alpha", alpha), world.usdx_of("beta", beta)) == (990 * 10**6,) * 2
    for client in (*owners.values(), backend):
        client.close()


def beta_chain_id_text() -> str:
    """Beta named by its chain id as a string of digits (a network may be named so)."""
    return str(BETA_CHAIN_ID)


def test_a_node_answering_another_chain_id_than_configured_stops_the_start(
    tmp_path: Path,
) -> None:
    with anvil_node.running(ALPHA_CHAIN_ID) as node:
        networks = (NetworkSettings("beta", BETA_CHAIN_ID, rpc_url=node),)
        with pytest.raises(ConfigError, match=f"answers chain id {ALPHA_CHAIN_ID}, not"):
            build_runtime(Settings(data_dir=tmp_path, networks=networks))
        assert not (tmp_path / "deployment-beta.json").exists()  # nothing deployed
