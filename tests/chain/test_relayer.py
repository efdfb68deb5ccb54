"""The relayer on both chains: nonce order, fee cap, receipts, crashes, restarts, nonce gaps.

Each crash test checks the one property that matters: the job's effect happens exactly once
(the Probe's ``deposits`` counts the wei each execution carried) and the relayer's account
nonce shows exactly the transactions we expect.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest
from chain_support import ONE_ETH, FaultyChain, SimulatedCrash, send

from sessionward.chain.contracts import DeployedContract, wait_for_receipt
from sessionward.chain.errors import ExecutionReverted, FeeCapExceeded
from sessionward.chain.interface import CallRequest, DevChain, FeeSuggestion
from sessionward.chain.relay_jobs import InMemoryRelayJobStore, JobState, RelayJob
from sessionward.chain.relayer import Relayer
from sessionward.chain.rpc import RpcChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.domain.reasons import ReasonCode

CAP = ONE_ETH // 100  # 0.01 ETH of fees per job


@pytest.fixture
def store() -> InMemoryRelayJobStore:
    return InMemoryRelayJobStore()


@pytest.fixture
def relayer_key(make_funded: Callable[..., LocalTransactionSigner]) -> LocalTransactionSigner:
    return make_funded(10 * ONE_ETH)


@pytest.fixture
def new_relayer(
    chain: DevChain, relayer_key: LocalTransactionSigner, store: InMemoryRelayJobStore
) -> Callable[..., Relayer]:
    """``new_relayer(chain=..., **options)``: a relayer process over the shared store (calling
    it again is a restart)."""

    def make(on: object | None = None, **options: object) -> Relayer:
        options.setdefault("stuck_after_s", 0.0)
        return Relayer(on or chain, relayer_key, store, CAP, **options)  # type: ignore[arg-type]

    return make


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


def store_call(probe: DeployedContract, amount: int) -> bytes:
    return probe.compiled.encode("store", amount)


# ------------------------------------------------------------------------ happy path


def test_jobs_are_submitted_in_order_and_executed_once(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    relayer = new_relayer()
    for index in range(3):
        relayer.enqueue(
            f"job-{index}", to=probe.address, data=store_call(probe, 20 + index), value=1
        )
    jobs = settle(relayer, "job-0", "job-1", "job-2")
    assert [job.state for job in jobs] == [JobState.EXECUTED] * 3
    assert [job.nonce for job in jobs] == [0, 1, 2]
    assert all(len(job.tx_hashes) == 1 and job.gas_used for job in jobs)
    assert probe.call_one("value") == 22 and probe.call_one("deposits") == 3
    assert chain.get_transaction_count(relayer_key.address, "latest") == 3


def test_enqueue_is_idempotent_per_job_id(
    new_relayer: Callable[..., Relayer], probe: DeployedContract
) -> None:
    relayer = new_relayer()
    first = relayer.enqueue("job-1", to=probe.address, data=store_call(probe, 5))
    assert relayer.enqueue("job-1", to=probe.address, data=store_call(probe, 5)) == first
    with pytest.raises(ValueError):
        relayer.enqueue("job-1", to=probe.address, data=store_call(probe, 6))


def test_gas_estimate_gets_the_safety_margin(
    chain: DevChain, new_relayer: Callable[..., Relayer], probe: DeployedContract
) -> None:
    job = new_relayer(gas_margin_percent=50).enqueue(
        "job-1", to=probe.address, data=store_call(probe, 5)
    )
    estimate = chain.estimate_gas(
        CallRequest(to=probe.address, data=store_call(probe, 5), sender=job.sender)
    )
    assert job.gas_limit == estimate + estimate // 2


# ------------------------------------------------------------------------ receipts


def test_reverted_transaction_ends_failed_with_its_reason(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    relayer = new_relayer()
    relayer.enqueue("job-13", to=probe.address, data=store_call(probe, 13), gas_limit=100_000)
    (job,) = settle(relayer, "job-13")
    assert job.state is JobState.FAILED
    assert job.revert_reason == "UNLUCKY" and job.error == "UNLUCKY"
    assert job.gas_used is not None and 21_000 < job.gas_used < 100_000
    assert probe.call_one("value") == 7
    assert chain.get_transaction_count(relayer_key.address, "latest") == 1  # the gas was spent


def test_call_that_would_revert_is_refused_at_enqueue_and_nothing_is_stored(
    new_relayer: Callable[..., Relayer], store: InMemoryRelayJobStore, probe: DeployedContract
) -> None:
    with pytest.raises(ExecutionReverted) as reverted:
        new_relayer().enqueue("job-13", to=probe.address, data=store_call(probe, 13))
    assert reverted.value.reason == "UNLUCKY"
    assert store.get("job-13") is None


# ------------------------------------------------------------------------ fee cap


def test_job_over_the_fee_cap_is_refused_and_nothing_is_sent(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    store: InMemoryRelayJobStore,
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    balance = chain.get_balance(relayer_key.address)
    too_much_gas = CAP // chain.max_fee().max_fee_per_gas + 1
    with pytest.raises(FeeCapExceeded) as refused:
        new_relayer().enqueue(
            "greedy", to=probe.address, data=store_call(probe, 5), gas_limit=too_much_gas
        )
    assert refused.value.code is ReasonCode.FEE_LIMIT_EXCEEDED
    assert refused.value.required_wei > refused.value.cap_wei == CAP
    assert store.get("greedy") is None
    assert chain.get_transaction_count(relayer_key.address) == 0
    assert chain.get_balance(relayer_key.address) == balance


def test_job_fee_cap_below_the_relayers_applies(
    new_relayer: Callable[..., Relayer], store: InMemoryRelayJobStore, probe: DeployedContract
) -> None:
    with pytest.raises(FeeCapExceeded) as refused:
        new_relayer().enqueue("thrifty", to=probe.address, data=store_call(probe, 5), fee_cap_wei=1)
    assert refused.value.code is ReasonCode.FEE_LIMIT_EXCEEDED and refused.value.cap_wei == 1
    assert store.get("thrifty") is None


def test_fee_spike_before_signing_refuses_the_job_without_burning_a_nonce(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    faulty = FaultyChain(chain)
    relayer = new_relayer(faulty, fee_ttl_s=0.0)
    relayer.enqueue("spiked", to=probe.address, data=store_call(probe, 5), gas_limit=100_000)
    relayer.enqueue("cheap", to=probe.address, data=store_call(probe, 6), gas_limit=60_000)
    normal = chain.max_fee()
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
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    faulty = FaultyChain(chain)
    faulty.crash_before_send = True
    doomed = new_relayer(faulty)
    doomed.enqueue("job-1", to=probe.address, data=store_call(probe, 5), value=1)
    with pytest.raises(SimulatedCrash):
        doomed.submit()
    persisted = doomed.job("job-1")
    assert persisted is not None and persisted.state is JobState.SIGNED
    assert persisted.tx_hash is not None and chain.get_transaction(persisted.tx_hash) is None

    restarted = new_relayer()
    restarted.reconcile()
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED
    assert job.tx_hash == persisted.tx_hash and job.tx_hashes == persisted.tx_hashes
    assert probe.call_one("deposits") == 1
    assert chain.get_transaction_count(relayer_key.address, "latest") == 1


def test_crash_after_send_before_recording_is_not_sent_again(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    faulty = FaultyChain(chain)
    faulty.crash_after_send = True
    doomed = new_relayer(faulty)
    doomed.enqueue("job-1", to=probe.address, data=store_call(probe, 5), value=1)
    with pytest.raises(SimulatedCrash):
        doomed.submit()
    persisted = doomed.job("job-1")
    assert persisted is not None and persisted.state is JobState.SIGNED
    assert persisted.tx_hash is not None
    wait_for_receipt(chain, persisted.tx_hash)

    watcher = FaultyChain(chain)
    restarted = new_relayer(watcher)
    restarted.reconcile()
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED and job.tx_hash == persisted.tx_hash
    assert watcher.sent == []  # reconciliation found it on chain: nothing re-sent
    assert probe.call_one("deposits") == 1
    assert chain.get_transaction_count(relayer_key.address, "latest") == 1


def test_restart_rebroadcasts_a_submitted_transaction_the_node_lost(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    lossy = FaultyChain(chain)
    lossy.swallow_all = True
    first = new_relayer(lossy)
    first.enqueue("job-1", to=probe.address, data=store_call(probe, 5), value=1)
    first.submit()
    lost = first.job("job-1")
    assert lost is not None and lost.state is JobState.SUBMITTED and lost.tx_hash is not None
    assert chain.get_transaction(lost.tx_hash) is None

    restarted = new_relayer()
    restarted.reconcile()
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED
    assert job.tx_hashes == lost.tx_hashes  # the same signed bytes, never re-signed
    assert probe.call_one("deposits") == 1


def test_restart_resigns_only_when_the_nonce_was_provably_taken_by_another_transaction(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    faulty = FaultyChain(chain)
    faulty.crash_before_send = True
    doomed = new_relayer(faulty)
    doomed.enqueue("job-1", to=probe.address, data=store_call(probe, 5), value=1)
    with pytest.raises(SimulatedCrash):
        doomed.submit()
    # Someone else spends nonce 0 of the relayer key meanwhile.
    wait_for_receipt(chain, send(chain, relayer_key, to=relayer_key.address, gas=21_000, nonce=0))

    restarted = new_relayer()
    restarted.reconcile()
    requeued = restarted.job("job-1")
    assert requeued is not None and requeued.state is JobState.QUEUED and requeued.nonce is None
    (job,) = settle(restarted, "job-1")
    assert job.state is JobState.EXECUTED and job.nonce == 1
    assert len(job.tx_hashes) == 2  # the dead transaction is remembered
    assert probe.call_one("deposits") == 1
    assert chain.get_transaction_count(relayer_key.address, "latest") == 2


# ------------------------------------------------------------------------ nonce gaps


def test_stale_local_nonce_resyncs_after_nonce_too_low(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    relayer = new_relayer()
    relayer.enqueue("job-1", to=probe.address, data=store_call(probe, 5), value=1)
    settle(relayer, "job-1")
    # The key is used outside the relayer: its cached next nonce (1) is now taken.
    wait_for_receipt(chain, send(chain, relayer_key, to=relayer_key.address, gas=21_000))
    relayer.enqueue("job-2", to=probe.address, data=store_call(probe, 6), value=1)
    (job,) = settle(relayer, "job-2")
    assert job.state is JobState.EXECUTED and job.nonce == 2
    assert probe.call_one("deposits") == 2
    assert chain.get_transaction_count(relayer_key.address, "latest") == 3


def test_gap_left_by_a_lost_transaction_is_closed_by_rebroadcasting_it(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    lossy = FaultyChain(chain)
    relayer = new_relayer(lossy)
    relayer.enqueue("job-a", to=probe.address, data=store_call(probe, 5), gas_limit=60_000, value=1)
    relayer.enqueue("job-b", to=probe.address, data=store_call(probe, 6), gas_limit=60_000, value=1)
    lossy.swallow_all = True
    relayer.submit()  # job-a "sent" but lost ...
    lossy.swallow_all = False
    job_a = relayer.job("job-a")
    assert job_a is not None and job_a.tx_hash is not None
    relayer.enqueue("job-c", to=probe.address, data=store_call(probe, 7), gas_limit=60_000, value=1)
    relayer.submit()  # ... while job-c waits behind the gap
    job_b, job_c = relayer.job("job-b"), relayer.job("job-c")
    assert job_b is not None and job_c is not None and job_c.tx_hash is not None
    assert chain.get_receipt(job_c.tx_hash) is None

    jobs = settle(relayer, "job-a", "job-b", "job-c")
    assert [job.state for job in jobs] == [JobState.EXECUTED] * 3
    assert [job.nonce for job in jobs] == [0, 1, 2]
    assert all(len(job.tx_hashes) == 1 for job in jobs)
    assert probe.call_one("deposits") == 3
    assert chain.get_transaction_count(relayer_key.address, "latest") == 3


def test_gap_no_job_holds_is_filled_with_a_no_op_so_later_jobs_proceed(
    chain: DevChain,
    new_relayer: Callable[..., Relayer],
    relayer_key: LocalTransactionSigner,
    probe: DeployedContract,
) -> None:
    lossy = FaultyChain(chain)
    relayer = new_relayer(lossy)
    relayer.enqueue("job-a", to=probe.address, data=store_call(probe, 5), gas_limit=60_000, value=1)
    lossy.swallow_all = True
    relayer.submit()
    lossy.swallow_all = False
    job_a = relayer.job("job-a")
    assert job_a is not None and job_a.tx_hash is not None
    relayer.enqueue("job-b", to=probe.address, data=store_call(probe, 6), gas_limit=60_000, value=1)
    relayer.submit()
    lossy.reject.add(job_a.tx_hash)  # the lost transaction turns out to be unsendable

    jobs = settle(relayer, "job-a", "job-b")
    assert [job.state for job in jobs] == [JobState.FAILED, JobState.EXECUTED]
    assert jobs[1].nonce == 1
    assert probe.call_one("value") == 6 and probe.call_one("deposits") == 1
    # nonce 0 went to the no-op self-transfer, nonce 1 to job-b
    assert chain.get_transaction_count(relayer_key.address, "latest") == 2


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
