"""The fenced relayer lease (issue 13): one holder at a time on the database's clock, an epoch
that grows with every takeover, and relay-job moves refused to a node that lost its lease, in
the very statement that would have made them."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from database_support import PG_URL
from sessionward.chain.relay_jobs import JobState, RelayJob
from sessionward.store import Store, open_store
from sessionward.store.lease import FENCE_CONDITION, LeaseFence, Leases
from sessionward.store.relay_jobs import SqlRelayJobStore

NAME = "relayer:1"
TTL_MS = 400
SENDER = "0x" + "5e" * 20


def _expire() -> None:
    time.sleep(TTL_MS / 1000 + 0.1)


def _signed(job: RelayJob, nonce: int) -> RelayJob:
    return job.evolve(
        state=JobState.SIGNED, nonce=nonce, raw_tx=b"\x02raw", tx_hash="0x" + "ab" * 32
    )


def test_one_holder_at_a_time_and_every_takeover_bumps_the_epoch(store: Store) -> None:
    leases = Leases(store.db)
    a, b = LeaseFence(NAME, "node-a"), LeaseFence(NAME, "node-b")

    assert leases.acquire(a, ttl_ms=TTL_MS) == 1
    assert leases.acquire(a, ttl_ms=TTL_MS) == 1  # a renewal keeps the term
    assert leases.acquire(b, ttl_ms=TTL_MS) is None  # a live lease of another holder
    assert (a.epoch, b.epoch) == (1, None)

    _expire()
    assert leases.acquire(b, ttl_ms=TTL_MS) == 2  # taken over: a new term
    assert leases.acquire(a, ttl_ms=TTL_MS) is None
    assert a.epoch is None  # the old holder knows it lost the lease
    record = leases.get(NAME)
    assert record is not None and (record.holder, record.epoch, record.live) == ("node-b", 2, True)

    leases.release(b)  # a clean stop: the next node need not wait for the expiry
    assert leases.acquire(a, ttl_ms=TTL_MS) == 3


def test_a_holder_that_comes_back_after_its_lease_expired_starts_a_new_term(store: Store) -> None:
    leases = Leases(store.db)
    a = LeaseFence(NAME, "node-a")
    assert leases.acquire(a, ttl_ms=TTL_MS) == 1
    _expire()
    assert leases.acquire(a, ttl_ms=TTL_MS) == 2  # it must re-read what moved meanwhile


def test_a_node_that_lost_its_lease_cannot_claim_a_job(store: Store) -> None:
    leases = Leases(store.db)
    a, b = LeaseFence(NAME, "node-a"), LeaseFence(NAME, "node-b")
    on_a, on_b = SqlRelayJobStore(store.db, fence=a), SqlRelayJobStore(store.db, fence=b)
    job = RelayJob(job_id="exec:1", sender=SENDER, to=SENDER, data=b"", value=0, gas_limit=21_000,
                   created_at_ms=1)  # fmt: skip
    on_a.add(job)
    assert leases.acquire(a, ttl_ms=TTL_MS) == 1

    _expire()
    assert leases.acquire(b, ttl_ms=TTL_MS) == 2
    stale = LeaseFence(NAME, "node-a")
    stale.hold(1)  # node A has not noticed: it still believes it holds term 1
    on_a.fence = stale
    assert not on_a.replace(_signed(job, 7))  # refused in the claiming statement itself
    stored = on_a.get("exec:1")
    assert stored is not None and (stored.state, stored.version) == (JobState.QUEUED, 0)

    assert on_b.replace(_signed(job, 7))  # the holder of the new term claims it
    stored = on_b.get("exec:1")
    assert stored is not None and stored.state is JobState.SIGNED


def test_without_a_term_a_fenced_store_moves_nothing(store: Store) -> None:
    fence = LeaseFence(NAME, "node-a")
    jobs = SqlRelayJobStore(store.db, fence=fence)
    job = RelayJob(job_id="exec:2", sender=SENDER, to=SENDER, data=b"", value=0, gas_limit=21_000,
                   created_at_ms=1)  # fmt: skip
    jobs.add(job)
    assert not jobs.replace(_signed(job, 1))
    Leases(store.db).acquire(fence, ttl_ms=TTL_MS)
    assert jobs.replace(_signed(job, 1))


@pytest.mark.postgres
def test_a_takeover_waits_for_a_claim_in_flight_and_a_later_claim_sees_the_new_epoch(
    pg_store: Store,
) -> None:
    """On PostgreSQL the claim reads the lease row FOR SHARE: a takeover that starts while a
    claim is in flight waits for it, so no claim made under an old epoch commits after the
    new term began. (SQLite serialises writers: nothing to interleave there.)"""
    name = f"relayer:interleave:{uuid.uuid4().hex[:8]}"
    job_id = f"exec:{uuid.uuid4().hex[:8]}"
    other = open_store(PG_URL, schema=pg_store.db.schema, pool_size=2)
    try:
        leases = Leases(pg_store.db)
        a, b = LeaseFence(name, "node-a"), LeaseFence(name, "node-b")
        assert leases.acquire(a, ttl_ms=TTL_MS) == 1
        on_a = SqlRelayJobStore(pg_store.db, fence=a)
        job = RelayJob(job_id=job_id, sender=SENDER, to=SENDER, data=b"", value=0,
                       gas_limit=21_000, created_at_ms=1)  # fmt: skip
        on_a.add(job)
        took_over: list[int | None] = []
        with pg_store.db.writing() as conn:  # node A's claim, held open past the lease's expiry
            claimed = conn.execute(
                text(
                    "UPDATE relay_jobs SET version = 1 WHERE job_id = :job_id AND "
                    + FENCE_CONDITION["postgresql"]
                ),
                {"job_id": job_id, "lease_name": name, "lease_holder": "node-a", "lease_epoch": 1},
            ).rowcount
            assert claimed == 1
            _expire()
            taker = threading.Thread(
                target=lambda: took_over.append(Leases(other.db).acquire(b, ttl_ms=TTL_MS))
            )
            taker.start()
            taker.join(0.5)
            assert taker.is_alive()  # the takeover waits for the claim in flight
        taker.join(5)
        assert took_over == [2]
        claimed_job = on_a.get(job_id)
        assert claimed_job is not None
        assert not on_a.replace(_signed(claimed_job, 4))  # term 1 is over
    finally:
        other.close()
