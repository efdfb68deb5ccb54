"""kill -9 at every named step of an Execute and of a relayed call's outcome, then a restart
(issue 13): no 2xx answer lost, no budget lost or counted twice, no call relayed twice, the
audit chain verified (``sessionward audit verify`` too), and the database equal to the chain.

One service process on SQLite (the embedded default store) and an anvil node. For each step a
node is started with that fault point armed to SIGKILL it, a call is made that reaches the
step, the node dies there; a clean node is started on the same data directory, it recovers
(reconciles the relayer, finishes interrupted outcomes), and every invariant is checked over
every call made so far. Steps on a failing path use a swap larger than its wallet holds, which
the policy allows and the chain reverts.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
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
    wait_killed,
)
from multinode_support import REPO_ROOT, Cluster, OpsKey, Party, node_environment, wait_until

from sessionward.chain.demo import DemoDeployment
from sessionward.chain.rpc import RpcChain
from sessionward.store import faults, open_store

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

CONFIG = """\
relayer_lease_ttl_s = 2.0
[anomaly]
velocity_fraction = 0.0
denial_burst_count = 0
"""

EXECUTE_STEPS = sorted(s for s in faults.STEPS if s.startswith("execute."))
# A relayed call that executes passes these; one that reverts passes the ``failed`` ones.
RELAY_STEPS = sorted(s for s in faults.STEPS if s.startswith(("relay_job.", "outcome.")))
CASES = [(s, False) for s in EXECUTE_STEPS] + [
    (s, s.endswith(".failed") or s.startswith("outcome.")) for s in RELAY_STEPS
]


class Harness:
    """The module's data directory, chain, parties and ledger."""

    def __init__(self, data_dir: Path, env: dict[str, str], cluster: Cluster, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = env
        self.cluster = cluster
        self.ledger = Ledger()
        self.rich: Party
        self.poor: Party
        self.runs = 0

    def log(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"


@pytest.fixture(scope="module")
def harness(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    data_dir = tmp_path_factory.mktemp("kill9")
    config = data_dir / "kill9.toml"
    config.write_text(CONFIG, encoding="utf-8")
    ops = OpsKey("ops-1", secrets.token_bytes(32))
    env = node_environment(
        data_dir=data_dir, schema="unused", rpc_url=anvil_url, ops_keys=ops.entry, config=config
    )
    for name in ("SESSIONWARD_DATABASE_URL", "SESSIONWARD_DATABASE_SCHEMA"):
        env.pop(name)  # the embedded default: SQLite in the data directory
    first = start_node("setup", env, data_dir / "setup.log")
    port = first.port
    try:
        first.wait_ready()
        deployment = DemoDeployment(**json.loads((data_dir / "deployment.json").read_text()))
        store = open_store(data_dir=data_dir)
        cluster = Cluster([first], data_dir, "", RpcChain(anvil_url), deployment, store, [ops])
        built = Harness(data_dir, env, cluster, port)
        built.rich = cluster.new_party(usdx=1_000_000)
        built.poor = cluster.new_party(usdx=1)  # any swap above 1 USDX reverts on chain
        for party in (built.rich, built.poor):
            session = party.grant_swap_session(max_usd=1_000_000, ttl_s=3600)
            wait_until(
                lambda p=party, s=session: p.backends[0].get_session(s)["status"] == "active",
                "the session's installation on chain",
                60,
            )
            built.ledger.start_balance[party.account] = usdx_balance(cluster, party.account)
        # The sessions are installed before the first crash, so only exec jobs hit a fault.
        warm = built.rich.quote(built.rich.sessions[0], 1)
        assert execute(built.rich, warm, 1, built.ledger)
        wait_final(store, [warm], timeout_s=60)
    finally:
        first.stop()
    try:
        yield built
    finally:
        cluster.chain.close()
        store.close()


@pytest.mark.parametrize(("step", "doomed"), CASES, ids=[c[0] for c in CASES])
def test_a_node_killed_at_this_step_loses_nothing_and_repeats_nothing(
    harness: Harness, step: str, doomed: bool
) -> None:
    harness.runs += 1
    party = harness.poor if doomed else harness.rich
    usdx = 5 if doomed else 2
    dying = start_node(
        f"dying-{harness.runs}", harness.env, harness.log(step), port=harness.port, kill_at=step
    )
    try:
        dying.wait_ready()
        txn_id = party.quote(party.sessions[0], usdx)
        if doomed:
            harness.ledger.doomed.add(txn_id)
        answered = execute(party, txn_id, usdx, harness.ledger)
        assert wait_killed(dying) == -9, f"the node did not die at {step}"
    finally:
        dying.stop()
    if step.startswith("execute."):
        assert not answered  # died inside Execute's transaction: no answer, nothing written
        assert statuses(harness.cluster.store, [txn_id]) == {txn_id: "quoted"}

    clean = start_node(
        f"clean-{harness.runs}", harness.env, harness.log(f"{step}-clean"), port=harness.port
    )
    try:
        clean.wait_ready()
        if not answered:  # the backend retries the same quote on the restarted service
            assert execute(party, txn_id, usdx, harness.ledger)
        wait_final(harness.cluster.store, [txn_id])
        assert_database_equals_chain(harness.cluster, [harness.rich, harness.poor], harness.ledger)
    finally:
        clean.stop()
    verify = subprocess.run(
        [sys.executable, "-m", "sessionward.cli", "audit", "verify"],
        env=harness.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
