"""Two relayer nodes on one PostgreSQL database and one chain, fenced by the relayer lease
(issue 13): after node A loses its lease (its connection dropped, it stalled past the expiry)
and node B takes over with a higher epoch, A's claims are refused in the claiming statement
and every job is sent once, by B."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from chain_support import CHAIN_ID, ONE_ETH
from sqlalchemy import delete, text
from sqlalchemy.exc import OperationalError

from database_support import PG_URL, migrated_postgresql_store
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.relay_jobs import JobState
from sessionward.chain.relayer import Relayer
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.store import Store, open_store
from sessionward.store.lease import LeaseFence, Leases
from sessionward.store.relay_jobs import SqlRelayJobStore, relay_jobs
from sessionward.store.schema import leases

pytestmark = pytest.mark.postgres

TTL_MS = 500
NAME = f"relayer:{CHAIN_ID}"


@pytest.fixture(scope="module")
def pg_store() -> Iterator[Store]:
    with migrated_postgresql_store("sw_lease") as store:
        yield store


@pytest.fixture
def db_store(pg_store: Store) -> Store:
    with pg_store.db.writing() as conn:
        conn.execute(delete(relay_jobs))
        conn.execute(delete(leases))
    return pg_store


def _terminate_connections_of(application: str, *, via: Store) -> int:
    """What a network cut does to a node: the server ends every connection it has open."""
    with via.db.engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :app"
            ),
            {"app": application},
        ).scalar_one()
    return int(killed)


def test_after_a_takeover_the_old_holder_claims_nothing_and_every_job_is_sent_once(
    db_store: Store,
) -> None:
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    key = LocalTransactionSigner(b"\x43" * 32)
    chain.set_balance(key.address, ONE_ETH)
    leases = Leases(db_store.db)
    fence_a, fence_b = LeaseFence(NAME, "node-a"), LeaseFence(NAME, "node-b")
    node_a = Relayer(chain, key, SqlRelayJobStore(db_store.db, fence=fence_a), ONE_ETH // 100)
    node_b = Relayer(chain, key, SqlRelayJobStore(db_store.db, fence=fence_b), ONE_ETH // 100)

    assert leases.acquire(fence_a, ttl_ms=TTL_MS) == 1
    node_a.enqueue("job-1", to=key.address, value=1, gas_limit=21_000)
    [sent] = node_a.submit()
    assert sent.state is JobState.SUBMITTED

    # A stalls past its lease; B takes over (epoch 2). A has not noticed: its fence says 1.
    time.sleep(TTL_MS / 1000 + 0.1)
    assert leases.acquire(fence_b, ttl_ms=TTL_MS) == 2
    assert fence_a.epoch == 1
    node_b.enqueue("job-2", to=key.address, value=2, gas_limit=21_000)
    node_a.enqueue("job-3", to=key.address, value=3, gas_limit=21_000)

    assert node_a.submit() == []  # every claim refused: nothing signed, nothing sent
    node_a.poll()  # nor can it record an outcome: job-1's receipt is left to the new holder
    stored = node_b.job("job-1")
    assert stored is not None and (stored.state, stored.version) == (sent.state, sent.version)
    assert chain.get_transaction_count(key.address, "latest") == 1
    assert {j.job_id for j in node_b.reconcile() + node_b.submit() + node_b.poll()} >= {
        "job-2",
        "job-3",
    }
    node_b.poll()
    for job_id in ("job-1", "job-2", "job-3"):
        job = node_b.job(job_id)
        assert job is not None and job.state is JobState.EXECUTED, job
        assert len(job.tx_hashes) == 1  # signed once, by one node
    assert chain.get_transaction_count(key.address, "latest") == 3


def test_a_node_whose_connections_are_cut_keeps_nobody_else_relaying_and_is_fenced_after(
    db_store: Store,
) -> None:
    """The issue's incident: with an advisory lock, node A's lock died with its connection and
    B relayed next to A for about 50 s. With the lease, a cut connection does not hand the
    lease over; only its expiry does, and from then on A's claims are refused."""
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    key = LocalTransactionSigner(b"\x44" * 32)
    chain.set_balance(key.address, ONE_ETH)
    schema = db_store.db.schema
    assert schema is not None
    node_a_store = open_store(f"{PG_URL}?application_name=sw_node_a", schema=schema)
    try:
        fence_a, fence_b = LeaseFence(NAME, "node-a"), LeaseFence(NAME, "node-b")
        node_a = Relayer(chain, key, SqlRelayJobStore(node_a_store.db, fence=fence_a), ONE_ETH)
        node_b = Relayer(chain, key, SqlRelayJobStore(db_store.db, fence=fence_b), ONE_ETH)
        assert Leases(node_a_store.db).acquire(fence_a, ttl_ms=TTL_MS) == 1
        node_a.enqueue("job-1", to=key.address, value=1, gas_limit=21_000)

        assert _terminate_connections_of("sw_node_a", via=db_store) >= 1
        with pytest.raises(OperationalError):  # A's renewal fails on the dead connection
            Leases(node_a_store.db).acquire(fence_a, ttl_ms=TTL_MS)
        assert fence_a.epoch is None  # so A stops claiming at once
        assert Leases(db_store.db).acquire(fence_b, ttl_ms=TTL_MS) is None  # not handed over
        assert node_a.submit() == [] and node_b.submit() == []

        time.sleep(TTL_MS / 1000 + 0.1)
        assert Leases(db_store.db).acquire(fence_b, ttl_ms=TTL_MS) == 2
        fence_a.hold(1)  # A reconnects believing it still holds term 1
        assert node_a.submit() == []
        assert [j.state for j in node_b.submit()] == [JobState.SUBMITTED]
        assert Leases(node_a_store.db).acquire(fence_a, ttl_ms=TTL_MS) is None
        job = node_b.job("job-1")
        assert job is not None and len(job.tx_hashes) == 1
        assert chain.get_transaction_count(key.address, "latest") == 1
    finally:
        node_a_store.close()
