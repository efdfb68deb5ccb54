"""Crash-test helpers: start a node with a fault point armed to SIGKILL it, and check what
issue 13 asks after every crash: no 2xx answer lost, no budget lost or counted twice, no call
relayed twice, the audit chain verified, and the database equal to the chain.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from multinode_support import REPO_ROOT, USDX, Cluster, Party, ServiceNode, wait_until
from sqlalchemy import func, select

from loopback_processes import free_port
from sessionward.chain.contracts import DeployedContract
from sessionward.chain.demo import demo_contract
from sessionward.chain.relay_batch import relayed_outcomes
from sessionward.chain.relay_jobs import JobState
from sessionward.sdk import SessionWardApiError
from sessionward.service.onchain import job_of_call
from sessionward.store import Store
from sessionward.store.relay_jobs import SqlRelayJobStore
from sessionward.store.schema import reservations, transactions

FAULT_NODE = Path(__file__).resolve().parent / "fault_node.py"
FINAL = ("executed", "failed")
OUTCOME_KINDS = ("session.call.executed", "session.call.failed")


def start_node(
    name: str,
    env: Mapping[str, str],
    log: Path,
    *,
    port: int | None = None,
    kill_at: str | None = None,
    script: Path = FAULT_NODE,
) -> ServiceNode:
    """``sessionward serve`` through ``fault_node.py`` on ``port`` (default: a free one; a
    restarted node takes its predecessor's, so clients keep their URL); ``kill_at`` arms that
    fault point; ``script``: another node script with fault points of its own."""
    node_env = {k: v for k, v in env.items() if k != "SW_TEST_KILL_AT"}
    if kill_at is not None:
        node_env["SW_TEST_KILL_AT"] = kill_at
    port = port or free_port()
    log_file = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, str(script), "serve", "--port", str(port)],
        env=node_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    return ServiceNode(name, port, log, process, log_file)


def wait_killed(node: ServiceNode, timeout_s: float = 60.0) -> int:
    """Wait for the node to die at its fault point; its return code (-9 for SIGKILL)."""
    try:
        return node.process.wait(timeout=timeout_s)
    finally:
        node.stop()


@dataclass
class Ledger:
    """What the backend was told, and what the test knows of every call it made."""

    amounts: dict[str, int] = field(default_factory=dict)
    """txn id → USDX it swaps, for every quote the test executes."""
    answered: set[str] = field(default_factory=set)
    """txn ids whose Execute was answered ``pending`` (2xx)."""
    doomed: set[str] = field(default_factory=set)
    """txn ids that swap more USDX than their wallet holds (they revert on chain)."""
    start_balance: dict[str, int] = field(default_factory=dict)
    """account → its USDX before the test's first call."""


def execute(party: Party, txn_id: str, usdx: int, ledger: Ledger, node: int = 0) -> bool:
    """Execute ``txn_id``; a 2xx answer goes into the ledger. False if no answer came (the node
    died mid-request) or the answer was 5xx."""
    ledger.amounts[txn_id] = usdx
    if not answered_execute(party, txn_id, node=node):
        return False
    ledger.answered.add(txn_id)
    return True


def answered_execute(
    party: Party,
    txn_id: str,
    *,
    node: int = 0,
    submission: Literal["relayer", "userop"] = "relayer",
) -> bool:
    """Execute ``txn_id`` (``submission``: ``relayer`` or ``userop``) and assert it is
    pending; False if no answer came (the node died mid-request) or the answer was 5xx."""
    try:
        view = party.backends[node].execute(txn_id, submission=submission)
    except httpx.HTTPError:
        return False
    except SessionWardApiError as refused:
        if refused.status >= 500:
            return False
        refused.add_note(f"violations: {refused.violations}")  # the refusal's why, on failure
        raise
    assert view["status"] == "pending", view
    return True


def statuses(store: Store, txn_ids: list[str]) -> dict[str, str]:
    with store.db.reading() as conn:
        rows = conn.execute(
            select(transactions.c.id, transactions.c.status).where(transactions.c.id.in_(txn_ids))
        )
        return {str(i): str(s) for i, s in rows}


def wait_final(store: Store, txn_ids: list[str], timeout_s: float = 90.0) -> None:
    wait_until(
        lambda: all(s in FINAL for s in statuses(store, txn_ids).values()),
        f"{len(txn_ids)} call(s) to be finished",
        timeout_s,
    )


def usdx_balance(cluster: Cluster, holder: str) -> int:
    token = DeployedContract(
        cluster.chain, cluster.deployment.token("USDX"), demo_contract("DemoToken")
    )
    value = token.call_one("balanceOf", holder)
    assert isinstance(value, int)
    return value


def assert_database_equals_chain(cluster: Cluster, parties: list[Party], ledger: Ledger) -> None:
    """The crash invariants, over every call the test has made so far."""
    store = cluster.store
    jobs = SqlRelayJobStore(store.db)
    # No 2xx answer lost: every Execute answered 2xx is in the database, finished as the chain
    # decided (a doomed swap reverts).
    for txn_id in ledger.answered:
        txn = store.transactions.get(txn_id)
        assert txn is not None, txn_id
        expected = "failed" if txn_id in ledger.doomed else "executed"
        assert txn.status == expected, (txn_id, txn.status, txn.failure)
    # No reservation held with no call in flight, no call left pending.
    with store.db.reading() as conn:
        held = conn.execute(
            select(func.count()).select_from(reservations).where(reservations.c.status == "held")
        ).scalar_one()
        pending = conn.execute(
            select(func.count()).select_from(transactions).where(transactions.c.status == "pending")
        ).scalar_one()
    assert (held, pending) == (0, 0)
    for party in parties:
        finished = [
            t
            for session in party.sessions
            for t in store.transactions.of_session(session)
            if t.status in FINAL
        ]
        for t in finished:
            # No call relayed twice: of every transaction ever signed for the call, exactly
            # one was mined, and the database records its receipt as the chain does.
            job = job_of_call(jobs, t.id)
            assert job is not None and job.state in (JobState.EXECUTED, JobState.FAILED), t.id
            mined = [h for h in job.tx_hashes if cluster.chain.get_receipt(h) is not None]
            assert mined == [job.tx_hash], (t.id, job.tx_hashes)
            receipt = cluster.chain.get_receipt(mined[0])
            assert receipt is not None and t.tx_hash == receipt.tx_hash, t.id
            ran = receipt.succeeded
            if job.job_id.startswith("batch:"):  # the call's own outcome within its batch
                calls = jobs.refs_of(job.job_id)
                outcomes = relayed_outcomes(receipt, batch=job.to, calls=len(calls))
                assert outcomes is not None, job.job_id
                ran = outcomes[calls.index(t.id)].success
            assert ran == (t.status == "executed"), t.id
        # No budget lost or counted twice: spent = what executed (failed calls came back),
        # in the service's counters and on chain.
        for session in party.sessions:
            usage = party.backends[0].get_session_usage(session)
            usd = next(i for i in usage["limits"] if i["limit"] == "maxValueUsd")
            spent_usd = sum(
                ledger.amounts[t.id]
                for t in finished
                if t.session_id == session and t.status == "executed"
            )
            assert int(usd["spent"]) == spent_usd * 10**6, (session, usd)
        executed = sum(ledger.amounts[t.id] for t in finished if t.status == "executed")
        balance = usdx_balance(cluster, party.account)
        assert balance == ledger.start_balance[party.account] - executed * USDX
        # Every finished call has exactly one outcome record in the wallet's audit stream.
        records = store.audit.records(party.wallet_id)
        outcomes = sorted(str(r.payload["txn"]) for r in records if r.kind in OUTCOME_KINDS)
        assert outcomes == sorted(t.id for t in finished)
    # The audit chain verifies.
    assert store.audit.verify().ok
