"""The dispatcher carries signed calls to the chain and brings outcomes back. Its work survives
a restart: a new dispatcher (in a new process, with a new relayer over the same job store)
reconciles and relays what was left, exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from service_support import USD_UNIT, USDX_UNIT, CrashingChain, Session, SimulatedCrash, World

from sessionward.chain.relay_jobs import JobState
from sessionward.service.dispatcher import Dispatcher, DispatcherLoop
from sessionward.service.transactions import TransactionView
from sessionward.store import faults


def _status(world: World, session: Session, txn: TransactionView) -> str:
    return world.waas.transactions.status(session.backend.caller, txn["txnId"])["status"]


def _sent_by_relayer(world: World) -> int:
    return world.chain.get_transaction_count(world.rt.relayer.address, "latest")


def _run(dispatcher: Dispatcher, world: World, rounds: int = 3) -> None:
    for _ in range(rounds):
        dispatcher.step()
    world.clock.catch_up(world.chain.block_timestamp())


def test_a_new_dispatcher_relays_executions_left_pending_exactly_once(world: World) -> None:
    sessions = [world.session() for _ in range(3)]
    txns = [world.swap(s, 2) for s in sessions]  # signed and pending; nobody relayed them
    balances = [world.balance(world.usdx, s.wallet.account) for s in sessions]
    sent = _sent_by_relayer(world)

    restarted = Dispatcher(world.process())
    restarted.reconcile()
    _run(restarted, world)

    for s, txn, before in zip(sessions, txns, balances, strict=True):
        view = world.waas.transactions.status(s.backend.caller, txn["txnId"])
        assert (view["status"], view["failure"]) == ("executed", None)
        assert world.balance(world.usdx, s.wallet.account) == before - 2 * USDX_UNIT
        assert world.usd_spent(s.session_id) == 2 * USD_UNIT
        job = world.rt.relayer.job(f"exec:{txn['txnId']}")
        assert job is not None and len(job.tx_hashes) == 1 and job.tx_hash == view["txHash"]
    assert _sent_by_relayer(world) == sent + len(txns)
    # Running the old dispatcher too (a second node that lost the lease) relays nothing again.
    world.settle()
    assert _sent_by_relayer(world) == sent + len(txns)
    for s in sessions:
        assert world.audit_kinds(s.wallet.wallet_id).count("session.call.executed") == 1


@pytest.mark.parametrize("before_send", [True, False], ids=["died-before-send", "died-after-send"])
def test_a_relay_interrupted_by_a_crash_is_finished_by_the_next_process_exactly_once(
    world: World, session: Session, before_send: bool
) -> None:
    txn = world.swap(session, 3)
    sent = _sent_by_relayer(world)
    usdx = world.balance(world.usdx, session.wallet.account)

    dying = Dispatcher(world.process(CrashingChain(world.rt.chain, before_send=before_send)))
    with pytest.raises(SimulatedCrash):
        dying.step()
    job = world.rt.relayer.job(f"exec:{txn['txnId']}")
    assert job is not None and job.state == "signed"  # persisted before the bytes left
    assert _status(world, session, txn) == "pending"

    restarted = Dispatcher(world.process())
    restarted.reconcile()
    _run(restarted, world)
    view = world.waas.transactions.status(session.backend.caller, txn["txnId"])
    assert (view["status"], view["txHash"]) == ("executed", job.tx_hash)
    assert _sent_by_relayer(world) == sent + 1
    assert world.balance(world.usdx, session.wallet.account) == usdx - 3 * USDX_UNIT
    record = world.rt.store.transactions.get(txn["txnId"])
    assert record is not None and record.reservation_id is not None
    reservation = world.rt.store.budget.reservation(record.reservation_id)
    assert reservation is not None and reservation.status == "settled"
    assert world.usd_spent(session.session_id) == 3 * USD_UNIT
    assert world.audit_kinds(session.wallet.wallet_id).count("session.call.executed") == 1


def test_a_burst_of_calls_of_one_session_is_relayed_and_executed(
    world: World, session: Session
) -> None:
    """Several Executes of one session inside the same second are all signed before the
    dispatcher runs; each must still execute on chain."""
    usdx = world.balance(world.usdx, session.wallet.account)
    txns = [world.swap(session, 1) for _ in range(5)]
    world.settle()
    outcomes = [
        (view["status"], view["failure"])
        for view in (
            world.waas.transactions.status(session.backend.caller, t["txnId"]) for t in txns
        )
    ]
    assert outcomes == [("executed", None)] * 5
    assert world.balance(world.usdx, session.wallet.account) == usdx - 5 * USDX_UNIT
    assert world.usd_spent(session.session_id) == 5 * USD_UNIT


# --- a relayed call's outcome: one transaction, and the recovery pass ------------------------

OUTCOME_STEPS = (
    "outcome.after_status",
    "outcome.after_reservation",
    "outcome.after_audit",
    "outcome.after_decision",
)


def _outcome_rows(world: World, session: Session, txn_id: str) -> tuple[object, ...]:
    """Everything an outcome writes: the status, the reservation's status, the USD counter,
    the outcome audit records and the outcome decision events."""
    record = world.rt.store.transactions.get(txn_id)
    assert record is not None and record.reservation_id is not None
    reservation = world.rt.store.budget.reservation(record.reservation_id)
    assert reservation is not None
    kinds = world.audit_kinds(session.wallet.wallet_id)
    relayed = [e for e in world.rt.store.decisions.of_session(session.session_id)]
    return (
        record.status,
        reservation.status,
        world.usd_spent(session.session_id),
        kinds.count("session.call.executed") + kinds.count("session.call.failed"),
        sum(1 for e in relayed if e.request_kind == "relay"),
    )


@pytest.mark.parametrize("step", OUTCOME_STEPS)
@pytest.mark.parametrize("executed", [True, False], ids=["executed", "failed"])
def test_an_outcome_interrupted_at_any_step_writes_nothing_and_is_finished_once_later(
    world: World, session: Session, step: str, executed: bool, no_faults: None
) -> None:
    txn = world.swap(session, 4)
    before = _outcome_rows(world, session, txn["txnId"])
    assert before == ("pending", "held", 4 * USD_UNIT, 0, 0)
    dispatcher = Dispatcher(world.process())
    state = JobState.EXECUTED if executed else JobState.FAILED

    faults.install(step)  # a dropped connection or a full disk at this step
    with pytest.raises(faults.FaultInjected):
        dispatcher._finish_execution(txn["txnId"], state, "0x" + "ab" * 32, "reverted")
    assert _outcome_rows(world, session, txn["txnId"]) == before  # all or nothing

    faults.clear()
    dispatcher._finish_execution(txn["txnId"], state, "0x" + "ab" * 32, "reverted")
    dispatcher._finish_execution(txn["txnId"], state, "0x" + "ab" * 32, "reverted")
    if executed:
        assert _outcome_rows(world, session, txn["txnId"]) == (
            "executed",
            "settled",
            4 * USD_UNIT,
            1,
            1,
        )
    else:  # the failed call's budget comes back, with its reason on the decision event
        assert _outcome_rows(world, session, txn["txnId"]) == ("failed", "released", 0, 1, 1)
        (event,) = [
            e
            for e in world.rt.store.decisions.of_session(session.session_id)
            if e.request_kind == "relay"
        ]
        assert (event.verdict, event.reasons) == ("deny", ("CALL_FAILED_ON_CHAIN",))
    assert world.rt.store.audit.verify().ok


def test_a_crash_between_a_mined_job_and_its_outcome_is_finished_by_the_recovery_pass(
    world: World, session: Session, no_faults: None
) -> None:
    txn = world.swap(session, 2)
    dispatcher = Dispatcher(world.process())
    faults.install("relay_job.after_save.executed")  # the process dies right after the receipt
    with pytest.raises(faults.FaultInjected):
        for _ in range(3):
            dispatcher.step()
    faults.clear()
    job = world.rt.relayer.job(f"exec:{txn['txnId']}")
    assert job is not None and job.state is JobState.EXECUTED
    assert _outcome_rows(world, session, txn["txnId"])[:2] == ("pending", "held")

    restarted = Dispatcher(world.process())
    assert restarted.recover() == 1
    assert _outcome_rows(world, session, txn["txnId"]) == (
        "executed",
        "settled",
        2 * USD_UNIT,
        1,
        1,
    )
    assert restarted.recover() == 0
    assert world.rt.store.audit.verify().ok


def test_the_recovery_pass_returns_a_reservation_that_no_call_in_flight_carries(
    world: World, session: Session
) -> None:
    """What the three-transaction outcome of earlier versions left after a crash: the call
    failed on chain, its reservation still held. Recovery releases it (the budget comes back)
    with an audit record; a reservation of a call still in flight is left alone."""
    failed = world.swap(session, 3)
    in_flight = world.swap(session, 1)
    assert world.rt.store.transactions.finish(failed["txnId"], status="failed", now=world.now())
    assert world.usd_spent(session.session_id) == 4 * USD_UNIT
    dispatcher = Dispatcher(world.process())

    assert dispatcher.recover() == 0  # too recent: a grace period first
    assert dispatcher.recover(grace_s=0) == 1
    assert world.usd_spent(session.session_id) == 1 * USD_UNIT
    record = world.rt.store.transactions.get(in_flight["txnId"])
    assert record is not None and record.reservation_id is not None
    reservation = world.rt.store.budget.reservation(record.reservation_id)
    assert reservation is not None and reservation.status == "held"
    assert "session.reservation.released" in world.audit_kinds(session.wallet.wallet_id)
    assert dispatcher.recover(grace_s=0) == 0
    world.settle()
    assert world.usd_spent(session.session_id) == 1 * USD_UNIT
    assert world.rt.store.audit.verify().ok


def test_of_two_dispatcher_loops_one_relays_and_the_other_takes_over_with_a_new_epoch(
    world: World, session: Session
) -> None:
    first = DispatcherLoop(
        Dispatcher(world.process()), world.rt.store.db, 0.05, lease_ttl_s=1.0, holder="node-a"
    )
    second = DispatcherLoop(
        Dispatcher(world.process()), world.rt.store.db, 0.05, lease_ttl_s=1.0, holder="node-b"
    )
    first.start()
    try:
        _wait(lambda: first.holds_lease)
        second.start()
        time.sleep(0.5)
        assert (first.holds_lease, second.holds_lease) == (True, False)
        term = first.lease_epoch
        txn = world.swap(session, 1)
        _wait(lambda: _status(world, session, txn) == "executed")  # relayed by the holder
        first.stop()  # a clean stop gives the lease up at once
        _wait(lambda: second.holds_lease)
        assert term is not None and second.lease_epoch == term + 1
        later = world.swap(session, 1)
        _wait(lambda: _status(world, session, later) == "executed")
    finally:
        first.stop()
        second.stop()
    for done in (txn, later):
        job = world.rt.relayer.job(f"exec:{done['txnId']}")
        assert job is not None and len(job.tx_hashes) == 1


def _wait(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_execute_wakes_the_relaying_loop_which_does_not_wait_for_its_poll(
    tmp_path: Path,
) -> None:
    """The loop polls every 30 s here; an Execute is relayed and mined at once all the same,
    because its commit rings the dispatcher (issue 16)."""
    world = World.build(tmp_path, relayer_poll_s=30.0)
    try:
        session = world.session()
        world.waas.start()
        time.sleep(0.5)  # the loop takes the lease and begins its term
        started = time.monotonic()
        txn = world.swap(session, 1)
        _wait(lambda: _status(world, session, txn) == "executed", timeout_s=10.0)
        assert time.monotonic() - started < 5.0
    finally:
        world.close()
