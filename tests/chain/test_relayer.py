"""The relayer on both chains: nonce order, fee cap, receipts, crashes, restarts, nonce gaps.

Each crash test checks the one property that matters: the job's effect happens exactly once
(the Probe's ``deposits`` counts the wei each execution carried) and the relayer's account
nonce shows exactly the transactions we expect.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from chain_support import ONE_ETH, FaultyChain, SimulatedCrash, send

from sessionward.chain.contracts import DeployedContract, wait_for_receipt
from sessionward.chain.errors import ExecutionReverted, FeeCapExceeded
from sessionward.chain.interface import CallRequest, DevChain, FeeSuggestion
from sessionward.chain.relay_jobs import InMemoryRelayJobStore, JobState, RelayJob
from sessionward.chain.relayer import Relayer
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.reasons import ReasonCode

CAP = ONE_ETH // 100  # 0.01 ETH of fees per job


@dataclass(frozen=True)
class Rig:
    """One relayer scenario on one backend: the ``chain``, the relayer's ``key`` (10 ETH, nonce
    0), the job ``store`` every relayer process shares, and a ``probe`` (``value() == 7``)
    whose ``deposits`` counts the wei each execution carried."""

    chain: DevChain
    key: LocalTransactionSigner
    store: InMemoryRelayJobStore
    probe: DeployedContract

    def relayer(self, on: DevChain | FaultyChain | None = None, **options: Any) -> Relayer:
        """A relayer process on ``on`` (the chain itself unless given) over the shared store;
        calling it again is a restart. Jobs count as stuck at once unless ``stuck_after_s``
        says otherwise."""
        options.setdefault("stuck_after_s", 0.0)
        return Relayer(on or self.chain, self.key, self.store, CAP, **options)  # type: ignore[arg-type]

    def enqueue_store(self, relayer: Relayer, job_id: str, amount: int, **fields: Any) -> RelayJob:
        """Enqueue on ``relayer`` the job ``job_id``: call ``probe.store(amount)`` (``fields``
        as :meth:`Relayer.enqueue` takes them)."""
        return relayer.enqueue(
            job_id, to=self.probe.address, data=self.store_call(amount), **fields
        )

    def store_call(self, amount: int) -> bytes:
        return self.probe.compiled.encode("store", amount)

    def spend_a_nonce_elsewhere(self, nonce: int | None = None) -> None:
        """The relayer key is used outside the relayer: a self-transfer (at ``nonce``, else
        the next one), mined before this returns."""
        tx_hash = send(self.chain, self.key, to=self.key.address, gas=21_000, nonce=nonce)
        wait_for_receipt(self.chain, tx_hash)

    def assert_effects(self, *, deposits: int, mined: int) -> None:
        """The scenario's footprint on chain: the probe holds ``deposits`` wei (one per
        execution of a 1-wei job) and the relayer key's nonce at the latest block is ``mined``."""
        assert self.probe.call_one("deposits") == deposits
        assert self.chain.get_transaction_count(self.key.address, "latest") == mined


@pytest.fixture
def store() -> InMemoryRelayJobStore:
    return InMemoryRelayJobStore()


@pytest.fixture
def rig(
    chain: DevChain,
    make_funded: Callable[..., LocalTransactionSigner],
    store: InMemoryRelayJobStore,
    probe: DeployedContract,
) -> Rig:
    return Rig(chain=chain, key=make_funded(10 * ONE_ETH), store=store, probe=probe)


def settle(relayer: Relayer, *job_ids: str, timeout: float = 10.0) -> list[RelayJob]:
    """Run relayer rounds until every job is final (anvil mines asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        relayer.process()
        jobs = [relayer.job(job_id) for job_id in job_ids]
        if all(job is not None and job.state.is_final for job in jobs):
            return [job for job in jobs if job is not None]
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not settled: {jobs}")
        time.sleep(0.02)


def crash_while_submitting(rig: Rig, crash: Literal["before_send", "after_send"]) -> RelayJob:
    """A relayer process enqueues ``job-1`` (``store(5)`` carrying 1 wei) and dies while
    submitting it: before the node sees the signed bytes, or after (the answer is lost).

    Returns the job as the dead process left it in the store: SIGNED, with its hash.
    """
    faulty = FaultyChain(rig.chain)
    faulty.crash_before_send = crash == "before_send"
    faulty.crash_after_send = crash == "after_send"
    doomed = rig.relayer(faulty)
    rig.enqueue_store(doomed, "job-1", 5, value=1)
    with pytest.raises(SimulatedCrash):
        doomed.submit()
    persisted = doomed.job("job-1")
    assert persisted is not None and persisted.state is JobState.SIGNED
    assert persisted.tx_hash is not None
    return persisted


def submit_into_the_void(relayer: Relayer, lossy: FaultyChain) -> None:
    """One submission round whose transactions ``lossy`` acknowledges but never forwards:
    the jobs take their nonces and hashes, the chain sees nothing."""
    lossy.swallow_all = True
    relayer.submit()
    lossy.swallow_all = False


# ------------------------------------------------------------------------ happy path


def test_jobs_are_submitted_in_order_and_executed_once(rig: Rig) -> None:
    relayer = rig.relayer()
    for index in range(3):
        rig.enqueue_store(relayer, f"job-{index}", 20 + index, value=1)
    jobs = settle(relayer, "job-0", "job-1", "job-2")
    assert [job.state for job in jobs] == [JobState.EXECUTED] * 3
    assert [job.nonce for job in jobs] == [0, 1, 2]
    assert all(len(job.tx_hashes) == 1 and job.gas_used for job in jobs)
    assert rig.probe.call_one("value") == 22
    rig.assert_effects(deposits=3, mined=3)


def test_enqueue_is_idempotent_per_job_id(rig: Rig) -> None:
    relayer = rig.relayer()
    first = rig.enqueue_store(relayer, "job-1", 5)
    assert rig.enqueue_store(relayer, "job-1", 5) == first
    with pytest.raises(ValueError):
        rig.enqueue_store(relayer, "job-1", 6)


def test_gas_estimate_gets_the_safety_margin(rig: Rig) -> None:
    job = rig.enqueue_store(rig.relayer(gas_margin_percent=50), "job-1", 5)
    estimate = rig.chain.estimate_gas(
        CallRequest(to=rig.probe.address, data=rig.store_call(5), sender=job.sender)
    )
    assert job.gas_limit == estimate + estimate // 2


# ------------------------------------------------------------------------ receipts


def test_reverted_transaction_ends_failed_with_its_reason(rig: Rig) -> None:
    relayer = rig.relayer()
    rig.enqueue_store(relayer, "job-13", 13, gas_limit=100_000)
    (job,) = settle(relayer, "job-13")
    assert job.state is JobState.FAILED
    assert job.revert_reason == "UNLUCKY" and job.error == "UNLUCKY"
    assert job.gas_used is not None and 21_000 < job.gas_used < 100_000
    assert rig.probe.call_one("value") == 7
    rig.assert_effects(deposits=0, mined=1)  # the gas was spent


def test_call_that_would_revert_is_refused_at_enqueue_and_nothing_is_stored(rig: Rig) -> None:
    with pytest.raises(ExecutionReverted) as reverted:
        rig.enqueue_store(rig.relayer(), "job-13", 13)
    assert reverted.value.reason == "UNLUCKY"
    assert rig.store.get("job-13") is None


# ------------------------------------------------------------------------ fee cap


def test_job_over_the_fee_cap_is_refused_and_nothing_is_sent(rig: Rig) -> None:
    balance = rig.chain.get_balance(rig.key.address)
    too_much_gas = CAP // rig.chain.max_fee().max_fee_per_gas + 1
    with pytest.raises(FeeCapExceeded) as refused:
        rig.enqueue_store(rig.relayer(), "greedy", 5, gas_limit=too_much_gas)
    assert refused.value.code is ReasonCode.FEE_LIMIT_EXCEEDED
    assert refused.value.required_wei > refused.value.cap_wei == CAP
    assert rig.store.get("greedy") is None
    assert rig.chain.get_transaction_count(rig.key.address) == 0
    assert rig.chain.get_balance(rig.key.address) == balance


def test_job_fee_cap_below_the_relayers_applies(rig: Rig) -> None:
    with pytest.raises(FeeCapExceeded) as refused:
        rig.enqueue_store(rig.relayer(), "thrifty", 5, fee_cap_wei=1)
    assert refused.value.code is ReasonCode.FEE_LIMIT_EXCEEDED and refused.value.cap_wei == 1
    assert rig.store.get("thrifty") is None


def test_fee_spike_before_signing_refuses_the_job_without_burning_a_nonce(rig: Rig) -> None:
    faulty = FaultyChain(rig.chain)
    relayer = rig.relayer(faulty, fee_ttl_s=0.0)
    rig.enqueue_store(relayer, "spiked", 5, gas_limit=100_000)
    rig.enqueue_store(relayer, "cheap", 6, gas_limit=60_000)
    normal = rig.chain.max_fee()
    spike = CAP // 80_000  # 100k gas no longer fits under the cap, 60k still does
    faulty.fees = FeeSuggestion(normal.base_fee, normal.max_priority_fee_per_gas, spike)
    relayer.submit()
    spiked = relayer.job("spiked")
    assert spiked is not None and spiked.state is JobState.REFUSED
    assert spiked.error == ReasonCode.FEE_LIMIT_EXCEEDED.value
    assert spiked.nonce is None and spiked.tx_hashes == ()
    cheap = relayer.job("cheap")
    assert cheap is not None and cheap.nonce == 0  # the refused job took no nonce
    (cheap,) = settle(relayer, "cheap")
    assert cheap.state is JobState.EXECUTED
    assert faulty.sent == [cheap.tx_hash]


# ------------------------------------------------------------------------ crashes


def test_crash_between_sign_and_send_is_resent_with_the_same_bytes_after_restart(
    rig: Rig,
) -> None:
    persisted = crash_while_submitting(rig, "before_send")
    assert persisted.tx_hash is not None and rig.chain.get_transaction(persisted.tx_hash) is None

    restarted = rig.relayer()
    restarted.reconcile()
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED
    assert job.tx_hash == persisted.tx_hash and job.tx_hashes == persisted.tx_hashes
    rig.assert_effects(deposits=1, mined=1)


def test_crash_after_send_before_recording_is_not_sent_again(rig: Rig) -> None:
    persisted = crash_while_submitting(rig, "after_send")
    assert persisted.tx_hash is not None
    wait_for_receipt(rig.chain, persisted.tx_hash)

    watcher = FaultyChain(rig.chain)
    restarted = rig.relayer(watcher)
    restarted.reconcile()
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED and job.tx_hash == persisted.tx_hash
    assert watcher.sent == []  # reconciliation found it on chain: nothing re-sent
    rig.assert_effects(deposits=1, mined=1)


def test_restart_rebroadcasts_a_submitted_transaction_the_node_lost(rig: Rig) -> None:
    lossy = FaultyChain(rig.chain)
    first = rig.relayer(lossy)
    rig.enqueue_store(first, "job-1", 5, value=1)
    submit_into_the_void(first, lossy)
    lost = first.job("job-1")
    assert lost is not None and lost.state is JobState.SUBMITTED and lost.tx_hash is not None
    assert rig.chain.get_transaction(lost.tx_hash) is None

    restarted = rig.relayer()
    restarted.reconcile()
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED
    assert job.tx_hashes == lost.tx_hashes  # the same signed bytes, never re-signed
    assert rig.probe.call_one("deposits") == 1


def test_restart_resigns_only_when_the_nonce_was_provably_taken_by_another_transaction(
    rig: Rig,
) -> None:
    crash_while_submitting(rig, "before_send")
    rig.spend_a_nonce_elsewhere(nonce=0)  # someone else spends nonce 0 meanwhile

    restarted = rig.relayer()
    restarted.reconcile()
    requeued = restarted.job("job-1")
    assert requeued is not None and requeued.state is JobState.QUEUED and requeued.nonce is None
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED and job.nonce == 1
    assert len(job.tx_hashes) == 2  # the dead transaction is remembered
    rig.assert_effects(deposits=1, mined=2)


# ------------------------------------------------------------------------ nonce gaps


def test_stale_local_nonce_resyncs_after_nonce_too_low(rig: Rig) -> None:
    relayer = rig.relayer()
    rig.enqueue_store(relayer, "job-1", 5, value=1)
    settle(relayer, "job-1")
    rig.spend_a_nonce_elsewhere()  # the relayer's cached next nonce (1) is now taken
    rig.enqueue_store(relayer, "job-2", 6, value=1)
    (job,) = settle(relayer, "job-2")
    assert job.state is JobState.EXECUTED and job.nonce == 2
    rig.assert_effects(deposits=2, mined=3)


def test_gap_left_by_a_lost_transaction_is_closed_by_rebroadcasting_it(rig: Rig) -> None:
    lossy = FaultyChain(rig.chain)
    relayer = rig.relayer(lossy)
    rig.enqueue_store(relayer, "job-a", 5, gas_limit=60_000, value=1)
    rig.enqueue_store(relayer, "job-b", 6, gas_limit=60_000, value=1)
    submit_into_the_void(relayer, lossy)  # job-a "sent" but lost ...
    job_a = relayer.job("job-a")
    assert job_a is not None and job_a.tx_hash is not None
    rig.enqueue_store(relayer, "job-c", 7, gas_limit=60_000, value=1)
    relayer.submit()  # ... while job-c waits behind the gap
    job_b, job_c = relayer.job("job-b"), relayer.job("job-c")
    assert job_b is not None and job_c is not None and job_c.tx_hash is not None
    assert rig.chain.get_receipt(job_c.tx_hash) is None

    jobs = settle(relayer, "job-a", "job-b", "job-c")
    assert [job.state for job in jobs] == [JobState.EXECUTED] * 3
    assert [job.nonce for job in jobs] == [0, 1, 2]
    assert all(len(job.tx_hashes) == 1 for job in jobs)
    rig.assert_effects(deposits=3, mined=3)


def test_gap_no_job_holds_is_filled_with_a_no_op_so_later_jobs_proceed(rig: Rig) -> None:
    lossy = FaultyChain(rig.chain)
    relayer = rig.relayer(lossy)
    rig.enqueue_store(relayer, "job-a", 5, gas_limit=60_000, value=1)
    submit_into_the_void(relayer, lossy)
    job_a = relayer.job("job-a")
    assert job_a is not None and job_a.tx_hash is not None
    rig.enqueue_store(relayer, "job-b", 6, gas_limit=60_000, value=1)
    relayer.submit()
    lossy.reject.add(job_a.tx_hash)  # the lost transaction turns out to be unsendable

    jobs = settle(relayer, "job-a", "job-b")
    assert [job.state for job in jobs] == [JobState.FAILED, JobState.EXECUTED]
    assert jobs[1].nonce == 1
    assert rig.probe.call_one("value") == 6
    # nonce 0 went to the no-op self-transfer, nonce 1 to job-b
    rig.assert_effects(deposits=1, mined=2)


# ------------------------------------------------------------------------ frugality


@pytest.mark.anvil
def test_steady_state_costs_estimate_send_and_receipt_per_job(
    anvil: str, store: InMemoryRelayJobStore
) -> None:
    jobs = 10
    relayer_key = LocalTransactionSigner(secrets.token_bytes(32))
    with RpcChain(anvil) as rpc:
        rpc.set_balance(relayer_key.address, 10 * ONE_ETH)
        relayer = Relayer(rpc, relayer_key, store, CAP, fee_ttl_s=60.0)
        start = rpc.round_trips
        for index in range(jobs):
            relayer.enqueue(f"job-{index}", to=relayer_key.address, value=index)
        relayer.submit()
        # chain id (first use) + one fee suggestion + one nonce read, then per job:
        # eth_estimateGas + eth_sendRawTransaction.
        assert rpc.round_trips - start == 3 + 2 * jobs
        before_poll = rpc.round_trips
        changed = relayer.poll()
        # One receipt request per job mined, plus at most one for the first unmined one.
        assert rpc.round_trips - before_poll <= len(changed) + 1
        settle(relayer, *(f"job-{i}" for i in range(jobs)))
