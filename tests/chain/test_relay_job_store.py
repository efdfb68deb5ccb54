"""The RelayJobStore contract, on memory, SQLite and PostgreSQL alike, and the relayer's crash
recovery through a real database file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_support import CHAIN_ID, ONE_ETH, FaultyChain, SimulatedCrash
from sqlalchemy import delete

from database_support import migrated_postgresql_store, migrated_sqlite_store
from sessionward.chain.contracts import DeployedContract
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.ethereum_transactions import sign_authorization
from sessionward.chain.relay_jobs import (
    DuplicateRelayJob,
    InMemoryRelayJobStore,
    JobState,
    RelayJob,
    RelayJobStore,
)
from sessionward.chain.relayer import Relayer
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.store import Store, open_store
from sessionward.store.relay_jobs import SqlRelayJobStore, relay_jobs
from sessionward.store.schema import relay_job_refs

SENDER = "0x" + "5e" * 20
OTHER_SENDER = "0x" + "0e" * 20
TO = "0x" + "70" * 20


@pytest.fixture(scope="module")
def pg_store() -> Iterator[Store]:
    with migrated_postgresql_store("sw_relay") as store:
        yield store


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RelayJobStore]:
    if request.param == "memory":
        yield InMemoryRelayJobStore()
        return
    if request.param == "sqlite":
        with migrated_sqlite_store(tmp_path) as store:
            yield SqlRelayJobStore(store.db)
        return
    pg: Store = request.getfixturevalue("pg_store")
    with pg.db.writing() as conn:
        conn.execute(delete(relay_job_refs))
        conn.execute(delete(relay_jobs))
    yield SqlRelayJobStore(pg.db)


def job(job_id: str = "j1", **fields: object) -> RelayJob:
    values: dict[str, object] = {
        "job_id": job_id,
        "sender": SENDER,
        "to": TO,
        "data": b"\x01\x02",
        "value": 0,
        "gas_limit": 50_000,
        "created_at_ms": 1_000,
    }
    values.update(fields)
    return RelayJob(**values)  # type: ignore[arg-type]


def signed(base: RelayJob, nonce: int, tag: int = 1) -> RelayJob:
    tx_hash = "0x" + f"{tag:02x}" * 32
    return base.evolve(
        state=JobState.SIGNED,
        nonce=nonce,
        raw_tx=bytes([tag]) * 10,
        tx_hash=tx_hash,
        tx_hashes=(*base.tx_hashes, tx_hash),
        max_fee_per_gas=3 * 10**9,
        max_priority_fee_per_gas=10**9,
    )


def test_every_field_round_trips(jobs: RelayJobStore) -> None:
    authorization = sign_authorization(b"\x11" * 32, chain_id=CHAIN_ID, address=TO, nonce=4)
    original = job(
        value=2**256 - 1,
        fee_cap_wei=2**255,
        authorization_list=(authorization,),
        data=bytes(range(256)),
    )
    jobs.add(original)
    assert jobs.get("j1") == original
    finished = signed(original, 2**62).evolve(
        state=JobState.FAILED,
        submitted_at_ms=2_000,
        updated_at_ms=3_000,
        block_number=77,
        gas_used=48_000,
        effective_gas_price=2 * 10**9,
        revert_reason="UNLUCKY",
        error="UNLUCKY",
        attempts=3,
    )
    assert finished.version == 2
    assert jobs.replace(finished) is False  # the version must advance by exactly one
    assert jobs.get("j1") == original
    assert jobs.replace(dataclasses.replace(finished, version=1)) is True
    assert jobs.get("j1") == dataclasses.replace(finished, version=1)
    assert jobs.get("missing") is None


def test_duplicate_ids_are_refused(jobs: RelayJobStore) -> None:
    jobs.add(job())
    with pytest.raises(DuplicateRelayJob):
        jobs.add(job(value=5))
    stored = jobs.get("j1")
    assert stored is not None and stored.value == 0


def test_a_job_carries_its_refs_in_order(jobs: RelayJobStore) -> None:
    jobs.add(job(), ("txn_b", "txn_a", "txn_c"))
    jobs.add(job(job_id="j2"))
    assert jobs.refs_of("j1") == ("txn_b", "txn_a", "txn_c")
    assert jobs.refs_of("j2") == () and jobs.refs_of("missing") == ()
    carrier = jobs.job_of_ref("txn_a")
    assert carrier is not None and carrier.job_id == "j1"
    assert jobs.job_of_ref("txn_x") is None


def test_a_ref_is_carried_by_one_job_ever(jobs: RelayJobStore) -> None:
    """A call that went into a batch can never be queued again: the second job, and its other
    refs, are not stored at all."""
    jobs.add(job(), ("txn_a", "txn_b"))
    with pytest.raises(DuplicateRelayJob):
        jobs.add(job(job_id="j2"), ("txn_c", "txn_b"))
    assert jobs.get("j2") is None and jobs.job_of_ref("txn_c") is None
    with pytest.raises(DuplicateRelayJob):
        jobs.add(job(job_id="j3"), ("txn_d", "txn_d"))
    assert jobs.get("j3") is None and jobs.job_of_ref("txn_d") is None


def test_compare_and_set_lets_only_one_writer_win(jobs: RelayJobStore) -> None:
    jobs.add(job())
    first, second = signed(job(), 0, tag=1), signed(job(), 0, tag=2)
    assert jobs.replace(first) is True
    assert jobs.replace(second) is False
    assert jobs.get("j1") == first


def test_two_outstanding_jobs_can_never_share_a_nonce(jobs: RelayJobStore) -> None:
    jobs.add(job("a"))
    jobs.add(job("b"))
    holder = signed(job("a"), 5, tag=1)
    assert jobs.replace(holder) is True
    assert jobs.replace(signed(job("b"), 5, tag=2)) is False
    b = jobs.get("b")
    assert b is not None and b.state is JobState.QUEUED
    # Once the holder is final, the nonce is history: a (re-queued) job may be signed again.
    assert jobs.replace(holder.evolve(state=JobState.EXECUTED)) is True
    assert jobs.replace(signed(job("b"), 5, tag=2)) is True
    # Other senders have their own nonces.
    jobs.add(job("c", sender=OTHER_SENDER))
    assert jobs.replace(signed(job("c", sender=OTHER_SENDER), 5, tag=3)) is True


def test_listing_filters_by_sender_and_state_in_nonce_then_fifo_order(
    jobs: RelayJobStore,
) -> None:
    for job_id, created in (("q2", 30), ("q1", 10), ("s9", 5), ("s3", 50), ("x", 1)):
        jobs.add(job(job_id, created_at_ms=created))
    jobs.add(job("elsewhere", sender=OTHER_SENDER))
    assert jobs.replace(signed(job("s9", created_at_ms=5), 9, tag=9))
    assert jobs.replace(signed(job("s3", created_at_ms=50), 3, tag=3))
    assert jobs.replace(job("x", created_at_ms=1).evolve(state=JobState.REFUSED))
    listed = jobs.in_states(SENDER, {JobState.QUEUED, JobState.SIGNED})
    assert [j.job_id for j in listed] == ["s3", "s9", "q1", "q2"]
    assert [j.job_id for j in jobs.in_states(SENDER, {JobState.REFUSED})] == ["x"]
    assert jobs.in_states(SENDER, set()) == []


def test_relayer_recovers_a_crash_through_a_reopened_sqlite_database(
    tmp_path: Path, probe_code: object
) -> None:
    from sessionward.chain.contracts import ContractArtifact, deploy

    assert isinstance(probe_code, ContractArtifact)
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    key = LocalTransactionSigner(b"\x42" * 32)
    chain.set_balance(key.address, ONE_ETH)
    probe: DeployedContract = deploy(chain, key, probe_code, 7)

    first_process = open_store(data_dir=tmp_path)
    first_process.upgrade()
    faulty = FaultyChain(chain)
    faulty.crash_before_send = True
    doomed = Relayer(faulty, key, SqlRelayJobStore(first_process.db), ONE_ETH // 100)  # type: ignore[arg-type]
    doomed.enqueue("job-1", to=probe.address, data=probe_code.encode("store", 5), value=1)
    with pytest.raises(SimulatedCrash):
        doomed.submit()
    first_process.close()

    second_process = open_store(data_dir=tmp_path)
    restarted = Relayer(chain, key, SqlRelayJobStore(second_process.db), ONE_ETH // 100)
    restarted.reconcile()
    restarted.poll()
    done = restarted.job("job-1")
    second_process.close()
    assert done is not None and done.state is JobState.EXECUTED and done.nonce == 1
    assert len(done.tx_hashes) == 1
    assert probe.call_one("deposits") == 1
