"""The USD budget: every Execute reserves its charge atomically, so sequential or concurrent
executions draw the cap down exactly and never past it; a relayed call that fails on chain gives
its reservation back. (The velocity rule is off in this module: it would suspend a session that
spends half its cap within minutes, which is what these tests do on purpose.)"""

from __future__ import annotations

import threading

import pytest
from service_support import USD_UNIT, USDX_UNIT, World

from sessionward.reasons import ReasonCode
from sessionward.service.config import AnomalyRules
from sessionward.service.errors import ServiceError


@pytest.fixture(scope="module")
def anomaly_rules() -> AnomalyRules:
    return AnomalyRules(velocity_fraction=0)


def test_sequential_executes_draw_the_cap_down_exactly_and_the_crossing_one_is_refused_at_prepare(
    world: World,
) -> None:
    session = world.session(maxValueUsd=10)
    for spent in (3, 6, 9):
        world.swap(session, 3)
        assert world.usd_spent(session.session_id) == spent * USD_UNIT
        world.settle()  # settled: the amount stays spent
        assert world.usd_spent(session.session_id) == spent * USD_UNIT
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 2)
    assert refused.value.code is ReasonCode.USD_LIMIT_EXCEEDED
    denied = [
        t
        for t in world.rt.store.transactions.of_session(session.session_id)
        if t.status == "denied"
    ]
    assert len(denied) == 1
    world.assert_unchanged(before, except_txn=denied[0].id)
    # Exactly up to the cap is allowed.
    last = world.swap(session, 1)
    assert world.usd_spent(session.session_id) == 10 * USD_UNIT
    world.settle()
    assert (
        world.waas.transactions.status(session.backend.caller, last["txnId"])["status"]
        == "executed"
    )
    assert world.usd_spent(session.session_id) == 10 * USD_UNIT


def test_a_quote_that_fit_when_made_is_refused_at_execute_once_the_budget_is_spent(
    world: World,
) -> None:
    session = world.session(maxValueUsd=10)
    first = world.quote(session, 6)
    second = world.quote(session, 6)  # each fits alone: both are quoted
    world.execute(session, first["txnId"])
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, second["txnId"])
    assert refused.value.code is ReasonCode.USD_LIMIT_EXCEEDED
    world.assert_unchanged(before, except_txn=second["txnId"])
    assert world.usd_spent(session.session_id) == 6 * USD_UNIT


def test_concurrent_executes_never_spend_past_the_cap(world: World) -> None:
    session = world.session(maxValueUsd=10)
    quotes = [world.quote(session, 4)["txnId"] for _ in range(6)]
    outcomes: dict[str, str] = {}
    start = threading.Barrier(len(quotes))

    def run(txn_id: str) -> None:
        start.wait()
        try:
            outcomes[txn_id] = world.execute(session, txn_id)["status"]
        except ServiceError as refused:
            outcomes[txn_id] = refused.code.value

    threads = [threading.Thread(target=run, args=(q,)) for q in quotes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["USD_LIMIT_EXCEEDED"] * 4 + ["pending"] * 2
    assert world.usd_spent(session.session_id) == 8 * USD_UNIT
    assert len(world.signed_calls(session.wallet.wallet_id)) == 2
    held = [r for r in world.reservations_of(session.session_id) if r[1] == "held"]
    assert len(held) == 2


def test_a_call_that_fails_on_chain_ends_failed_and_its_reservation_is_released(
    world: World,
) -> None:
    session = world.session(maxValueUsd=100)
    world.swap(session, 10)
    world.settle()
    assert world.usd_spent(session.session_id) == 10 * USD_UNIT
    usdx = world.balance(world.usdx, session.wallet.account)

    world.owner_approves_router(session.wallet, 0)  # the router's transferFrom will revert
    txn = world.swap(session, 20)
    assert world.usd_spent(session.session_id) == 30 * USD_UNIT  # reserved while in flight
    world.settle()
    view = world.waas.transactions.status(session.backend.caller, txn["txnId"])
    assert view["status"] == "failed"
    assert view["failure"]
    record = world.rt.store.transactions.get(txn["txnId"])
    assert record is not None and record.reservation_id is not None
    reservation = world.rt.store.budget.reservation(record.reservation_id)
    assert reservation is not None and reservation.status == "released"
    assert world.usd_spent(session.session_id) == 10 * USD_UNIT
    assert world.balance(world.usdx, session.wallet.account) == usdx
    kinds = world.audit_kinds(session.wallet.wallet_id)
    assert kinds[-1] == "session.call.failed"


def test_a_session_keeps_working_after_one_of_its_calls_failed_on_chain(world: World) -> None:
    """A reverted relay does not consume the account's session-call nonce; the service must not
    let its own call numbering run ahead of the account's, or every later call of the session
    is signed for a nonce the account never reaches."""
    session = world.session(maxValueUsd=100)
    world.owner_approves_router(session.wallet, 0)
    failed = world.swap(session, 5)
    world.settle()
    assert (
        world.waas.transactions.status(session.backend.caller, failed["txnId"])["status"]
        == "failed"
    )

    world.owner_approves_router(session.wallet, 2**255)
    usdx = world.balance(world.usdx, session.wallet.account)
    retry = world.swap(session, 5)
    world.settle()
    view = world.waas.transactions.status(session.backend.caller, retry["txnId"])
    assert (view["status"], view["failure"]) == ("executed", None)
    assert world.balance(world.usdx, session.wallet.account) == usdx - 5 * USDX_UNIT
