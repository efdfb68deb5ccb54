"""The dispatcher carries signed calls to the chain and brings outcomes back. Its work survives
a restart: a new dispatcher (in a new process, with a new relayer over the same job store)
reconciles and relays what was left, exactly once."""

from __future__ import annotations

import pytest
from service_support import USD_UNIT, USDX_UNIT, CrashingChain, Session, SimulatedCrash, World

from sessionward.service.dispatcher import Dispatcher
from sessionward.service.transactions import TransactionView


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
