"""PostgreSQL connections terminated mid-burst on two nodes (issue 13): the server ends every
connection of both service processes (``pg_terminate_backend``) several times while Executes
run on both and the leader relays. Afterwards: no 2xx answer lost, no budget lost or counted
twice, no call relayed twice, the audit chain verified, and the database equal to the chain.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from faults_support import (
    Ledger,
    assert_database_equals_chain,
    execute,
    start_node,
    statuses,
    usdx_balance,
    wait_final,
)
from multinode_support import PG_URL, Cluster, OpsKey, Party, node_environment, wait_until
from sqlalchemy import create_engine, text

from sessionward.chain.demo import DemoDeployment
from sessionward.chain.rpc import RpcChain
from sessionward.sdk import SessionWardApiError
from sessionward.store import open_store
from sessionward.store.database import normalize_url

pytestmark = [pytest.mark.anvil, pytest.mark.postgres, pytest.mark.slow]

APPLICATION = "sw_fault_node"
CONFIG = """\
relayer_lease_ttl_s = 2.0
[anomaly]
velocity_fraction = 0.0
denial_burst_count = 0
"""
CALLS = 48
WORKERS = 8
CUTS = 3


@pytest.fixture(scope="module")
def cluster(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    schema = f"sw_cut_{uuid.uuid4().hex[:12]}"
    data_dir: Path = tmp_path_factory.mktemp("pgcut")
    config = data_dir / "pgcut.toml"
    config.write_text(CONFIG, encoding="utf-8")
    ops = OpsKey("ops-1", secrets.token_bytes(32))
    env = node_environment(
        data_dir=data_dir, schema=schema, rpc_url=anvil_url, ops_keys=ops.entry, config=config
    )
    env["SESSIONWARD_DATABASE_URL"] = f"{PG_URL}?application_name={APPLICATION}"
    nodes = [start_node("node-1", env, data_dir / "node-1.log")]
    admin = create_engine(normalize_url(PG_URL))
    try:
        nodes[0].wait_ready()
        nodes.append(start_node("node-2", env, data_dir / "node-2.log"))
        nodes[1].wait_ready()
        deployment = DemoDeployment(**json.loads((data_dir / "deployment.json").read_text()))
        store = open_store(PG_URL, schema=schema)
        built = Cluster(nodes, data_dir, schema, RpcChain(anvil_url), deployment, store, [ops])
        yield built
        built.chain.close()
        store.close()
    finally:
        for node in nodes:
            node.stop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _cut_every_connection() -> int:
    """End every connection the service nodes have open on the server, as a network cut or a
    server restart would."""
    admin = create_engine(normalize_url(PG_URL))
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :app"
                    ),
                    {"app": APPLICATION},
                ).scalar_one()
            )
    finally:
        admin.dispose()


def test_connections_cut_mid_burst_on_two_nodes_lose_and_repeat_nothing(cluster: Cluster) -> None:
    party: Party = cluster.new_party(usdx=1_000_000)
    session = party.grant_swap_session(max_usd=1_000_000)
    wait_until(
        lambda: party.backends[0].get_session(session)["status"] == "active",
        "the session's installation on chain",
        60,
    )
    ledger = Ledger(start_balance={party.account: usdx_balance(cluster, party.account)})
    quotes = party.quotes(session, CALLS, 1)

    done = threading.Event()
    cuts: list[int] = []

    def cutter() -> None:
        # The first cut early: a burst can take well under half a second.
        for round_ in range(CUTS):
            if done.wait(0.1 if round_ == 0 else 0.3):
                return
            cuts.append(_cut_every_connection())

    knife = threading.Thread(target=cutter)
    knife.start()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(
            pool.map(lambda i: execute(party, quotes[i], 1, ledger, node=i % 2), range(len(quotes)))
        )
    done.set()
    knife.join()
    assert sum(cuts) > 0  # connections were really cut while the burst ran

    # The backend retries what got no 2xx answer; a call that was committed before its answer
    # was lost is already pending (409 TRANSACTION_NOT_QUOTED) and must not be signed again.
    unanswered = [q for q in quotes if q not in ledger.answered]
    deadline = time.monotonic() + 60
    while unanswered and time.monotonic() < deadline:
        for txn_id in list(unanswered):
            try:
                if execute(party, txn_id, 1, ledger, node=0):
                    unanswered.remove(txn_id)
            except SessionWardApiError as refused:
                assert refused.code == "TRANSACTION_NOT_QUOTED", refused
                unanswered.remove(txn_id)
        time.sleep(0.2)
    assert unanswered == []
    wait_final(cluster.store, quotes, timeout_s=120)
    assert set(statuses(cluster.store, quotes).values()) == {"executed"}
    assert_database_equals_chain(cluster, [party], ledger)
