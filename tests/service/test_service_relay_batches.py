"""Several session calls of one account in one transaction (issue 16, item 3): the dispatcher
queues the calls of an account that are pending together as one job through the network's
``RelayBatch``; each call is recorded from the batch contract's own event for it. Played
against the in-process chain: a call that reverts inside a batch, an outsider re-sending a
batch's public calldata, and a crash between the batch's receipt and its outcomes."""

from __future__ import annotations

import secrets

import pytest
from service_support import USD_UNIT, USDX_UNIT, Session, World

from sessionward.chain.contracts import transact
from sessionward.chain.relay_batch import relayed_outcomes
from sessionward.chain.revert import decode_revert_reason
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.service.dispatcher import Dispatcher, batch_job_id
from sessionward.service.transactions import TransactionView
from sessionward.store import faults


def _sent_by_relayer(world: World) -> int:
    return world.chain.get_transaction_count(world.rt.relayer.address, "latest")


def _views(world: World, session: Session, txns: list[TransactionView]) -> list[dict[str, object]]:
    status = world.waas.transactions.status
    return [dict(status(session.backend.caller, t["txnId"])) for t in txns]


def _executed(world: World, session: Session) -> int:
    return world.audit_kinds(session.wallet.wallet_id).count("session.call.executed")


def test_calls_of_one_account_pending_together_go_in_one_transaction(world: World) -> None:
    session = world.session()
    other = world.session()  # another account: its call goes in a transaction of its own
    usdx = world.balance(world.usdx, session.wallet.account)
    sent = _sent_by_relayer(world)
    txns = [world.swap(session, amount) for amount in (1, 2, 3)]
    alone = world.swap(other, 4)

    world.settle()

    views = _views(world, session, txns)
    assert [(v["status"], v["failure"]) for v in views] == [("executed", None)] * 3
    assert len({v["txHash"] for v in views}) == 1  # one transaction for the three
    assert _views(world, other, [alone])[0]["txHash"] != views[0]["txHash"]
    assert _sent_by_relayer(world) == sent + 2
    assert world.balance(world.usdx, session.wallet.account) == usdx - 6 * USDX_UNIT
    assert world.usd_spent(session.session_id) == 6 * USD_UNIT
    assert _executed(world, session) == 3
    job = world.rt.relayer.job_of_ref(txns[0]["txnId"])
    ids = tuple(t["txnId"] for t in txns)
    assert job is not None and job.job_id == batch_job_id(ids)
    assert job.to == world.rt.deployment.relay_batch
    assert world.rt.relayer.refs_of(job.job_id) == ids
    assert all(world.rt.relayer.job_of_ref(t["txnId"]) == job for t in txns)


def test_a_call_that_reverts_in_a_batch_fails_alone_and_its_budget_comes_back(
    world: World,
) -> None:
    wallet = world.wallet(usdx=5 * USDX_UNIT)
    session = world.session(wallet)
    txns = [world.swap(session, amount) for amount in (2, 4, 3)]  # the 4 is more than is left

    world.settle()

    views = _views(world, session, txns)
    assert [v["status"] for v in views] == ["executed", "failed", "executed"]
    assert views[1]["failure"] is not None
    assert len({v["txHash"] for v in views}) == 1
    assert world.balance(world.usdx, wallet.account) == 0  # 2 + 3 of the 5
    assert world.usd_spent(session.session_id) == 5 * USD_UNIT  # the failed call's released
    assert _executed(world, session) == 2


def test_an_outsider_resending_a_batch_moves_nothing(world: World) -> None:
    session = world.session()
    txns = [world.swap(session, amount) for amount in (1, 1)]
    world.settle()
    job = world.rt.relayer.job_of_ref(txns[0]["txnId"])
    assert job is not None and job.state == "executed"
    before = (
        world.balance(world.usdx, session.wallet.account),
        world.usd_spent(session.session_id),
        _views(world, session, txns),
        world.audit_kinds(session.wallet.wallet_id),
    )

    outsider = LocalTransactionSigner(secrets.token_bytes(32))
    world.chain.set_balance(outsider.address, 10**18)
    receipt = transact(
        world.chain, outsider, to=job.to, data=job.data, gas=job.gas_limit, check=False
    )
    world.settle()

    outcomes = relayed_outcomes(receipt, batch=job.to, calls=2)
    assert outcomes is not None
    assert [(o.success, decode_revert_reason(o.revert_data)) for o in outcomes] == [
        (False, "NONCE_REPLAYED")
    ] * 2
    after = (
        world.balance(world.usdx, session.wallet.account),
        world.usd_spent(session.session_id),
        _views(world, session, txns),
        world.audit_kinds(session.wallet.wallet_id),
    )
    assert after == before


CRASH_STEPS = (
    "relay_job.before_save.signed",
    "relay_job.after_save.signed",
    "relay_job.after_save.submitted",
    "relay_job.after_save.executed",
    *sorted(step for step in faults.STEPS if step.startswith("outcome.")),
)
"""Every step between a batch's write-ahead record and its calls' outcomes (the first
call's outcome, between its writes and after its commit)."""


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_batch_whose_outcomes_a_crash_cut_short_is_finished_not_sent_again(
    world: World, no_faults: None, step: str
) -> None:
    session = world.session()
    usdx = world.balance(world.usdx, session.wallet.account)
    txns = [world.swap(session, amount) for amount in (1, 2)]
    sent = _sent_by_relayer(world)
    dying = Dispatcher(world.process())
    faults.install(step)  # the process dies once the batch is mined, before all is recorded
    with pytest.raises(faults.FaultInjected):
        for _ in range(3):
            dying.step()
    faults.clear()
    assert "pending" in [v["status"] for v in _views(world, session, txns)]

    restarted = Dispatcher(world.process())
    restarted.reconcile()  # as a node starting up: the relayer's outstanding jobs first
    restarted.recover(grace_s=0)
    for _ in range(3):
        restarted.step()

    job = world.rt.relayer.job_of_ref(txns[0]["txnId"])
    assert job is not None and job.state == "executed"
    views = _views(world, session, txns)
    assert [(v["status"], v["txHash"]) for v in views] == [("executed", job.tx_hash)] * 2
    assert _sent_by_relayer(world) == sent + 1  # the batch, once
    assert world.balance(world.usdx, session.wallet.account) == usdx - 3 * USDX_UNIT
    assert world.usd_spent(session.session_id) == 3 * USD_UNIT
    assert _executed(world, session) == 2
    assert world.rt.store.audit.verify().ok


def test_calls_signed_before_a_revocation_reach_the_chain_before_the_removal(
    world: World,
) -> None:
    """The revocation queues the session's removal in its own unit of work; the calls the
    session signed before it, still waiting for the dispatcher, get their jobs in that unit
    first, so the relayer sends them ahead of the removal: they execute, and the session is
    removed after them (before, they reached the chain after the removal and failed
    ``SESSION_REVOKED``)."""
    session = world.session()
    usdx = world.balance(world.usdx, session.wallet.account)
    txns = [world.swap(session, amount) for amount in (1, 2)]  # signed, not yet relayed
    world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )

    world.settle(rounds=4)

    views = _views(world, session, txns)
    assert [(v["status"], v["failure"]) for v in views] == [("executed", None)] * 2
    assert world.balance(world.usdx, session.wallet.account) == usdx - 3 * USDX_UNIT
    assert world.record(session.session_id).status == "revoked"
    kinds = world.audit_kinds(session.wallet.wallet_id)
    assert kinds.count("session.call.executed") == 2
