"""The reconciler (issue 13.2): it compares sessions with the account's own views and repairs
whatever differs, whoever caused it; each disagreement raises an alert whose action records the
time to agreement. On embedded defaults (SQLite, the in-process chain).

Every test ends with the database and the chain agreeing and the audit chain verifying.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from service_support import (
    ONCHAIN_ACTIVE,
    ONCHAIN_REVOKED,
    USDX_UNIT,
    Backend,
    Session,
    Wallet,
    World,
)
from sqlalchemy import update

from sessionward.api.app import SessionWardApi
from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.relay_jobs import JobState
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.reconciler import DISAGREEMENT, Reconciler, cancel_queued
from sessionward.store.alerts import AlertRecord
from sessionward.store.schema import sessions


def agree(world: World, wallet: Wallet, session_id: str) -> str:
    record = world.record(session_id)
    onchain = world.onchain_status(wallet, record.session_key_address)
    expected = {"active": {ONCHAIN_ACTIVE}, "revoked": {ONCHAIN_REVOKED, 0}}[record.status]
    assert onchain in expected, (record.status, onchain)
    assert world.rt.store.audit.verify(wallet.wallet_id).ok
    return record.status


def disagreements(world: World, session_id: str) -> list[AlertRecord]:
    return [
        a
        for a in world.rt.store.alerts.between(0, world.now() + 10)
        if a.rule == DISAGREEMENT and a.session_id == session_id
    ]


def revoke(world: World, session: Session) -> Any:
    return world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )


def outsider(world: World) -> LocalTransactionSigner:
    """A stranger with a funded account of its own."""
    secret = secrets.token_bytes(32)
    world.chain.set_balance(address_from_secret(secret), 10**18)
    return LocalTransactionSigner(secret)


def owner_calls_the_account(world: World, wallet: Wallet, data: bytes) -> None:
    """The owner sends ``data`` to its account itself, behind the service's back."""
    transact(world.chain, LocalTransactionSigner(wallet.owner_secret), to=wallet.account, data=data)


def outcome(world: World, session: Session, txn: Any) -> tuple[str, str | None]:
    """(status, failure) of call ``txn`` as the service reports it."""
    view = world.waas.transactions.status(session.backend.caller, txn["txnId"])
    return view["status"], view.get("failure")


def assert_revoked_by_the_chain_and_refused(world: World, session: Session) -> None:
    """The database has the session revoked from the chain's word, and a new call in it is
    refused off chain."""
    record = world.record(session.session_id)
    assert (record.status, record.revoked_by) == ("revoked", "chain")
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 1)
    assert refused.value.code is ReasonCode.SESSION_REVOKED


def test_an_outsider_installing_an_approved_grant_is_recognised_and_then_removed(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    """Issue 13.2: the enable transaction (grant + owner signature) is public; a stranger sends
    it first. The service's own install then reverts; the reconciler reads the account's view,
    records the session active (installed by another), and the owner's revoke removes it."""
    pending = world.authorize(wallet, backend)
    world.waas.sessions.approve(
        wallet.caller,
        session_id=pending["sessionId"],
        signature=wallet.sign(pending["grantDigest"]),
    )
    session_id = pending["sessionId"]
    install = world.rt.relayer.job(f"enable:{session_id}")
    assert install is not None
    transact(world.chain, outsider(world), to=wallet.account, data=install.data, gas=3_000_000)
    assert world.onchain_status(wallet, pending["sessionKey"]) == ONCHAIN_ACTIVE

    world.settle()
    ours = world.rt.relayer.job(f"enable:{session_id}")
    assert ours is not None and ours.state is JobState.FAILED
    assert agree(world, wallet, session_id) == "active"
    installed = [
        r for r in world.rt.store.audit.records(wallet.wallet_id) if r.kind == "session.installed"
    ]
    assert [r.payload["by"] for r in installed] == ["other"]
    [alert] = disagreements(world, session_id)
    assert alert.action_taken == "agreed with chain"

    session = Session(session_id, wallet, backend, pending["sessionKey"])
    revoke(world, session)
    world.settle()
    assert agree(world, wallet, session_id) == "revoked"
    assert world.onchain_status(wallet, pending["sessionKey"]) == ONCHAIN_REVOKED


def test_a_revoked_session_still_live_on_chain_is_removed_again(
    world: World, session: Session
) -> None:
    """The removal never made it (here: refused before it was signed, as a fee-cap refusal
    would): the reconciler sees the session live, raises an alert and queues a new removal."""
    revoke(world, session)
    removal = world.rt.relayer.job(f"revoke:{session.session_id}")
    assert removal is not None and cancel_queued(world.rt, removal, "FEE_LIMIT_EXCEEDED")
    reconciler = world.waas.dispatcher.reconciler
    seen = reconciler.stats.disagreements
    started = time.perf_counter()
    rounds = 0
    while world.record(session.session_id).status != "revoked":
        world.settle(rounds=1)
        rounds += 1
        assert rounds < 10
    repair_s = time.perf_counter() - started
    assert agree(world, session.wallet, session.session_id) == "revoked"
    assert world.rt.relayer.job(f"revoke:{session.session_id}#2") is not None
    assert reconciler.stats.disagreements == seen + 1
    [alert] = disagreements(world, session.session_id)
    assert alert.action_taken == "agreed with chain" and alert.action_at is not None
    assert repair_s < 5, repair_s


def test_a_session_recorded_revoked_while_live_on_chain_is_reopened_and_removed(
    world: World, session: Session
) -> None:
    """What the old code wrote in the approve/revoke race: ``revoked`` with a removal "on chain"
    that never happened. The reconciler's full pass finds it and removes it."""
    now = world.now()
    with world.rt.store.db.writing() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.id == session.session_id)
            .values(
                status="revoked",
                revoked_at=now,
                revoked_by="owner",
                revoke_reason="x",
                onchain_revoked_at=now,
            )
        )
    assert world.onchain_status(session.wallet, session.session_key) == ONCHAIN_ACTIVE
    world.waas.dispatcher.reconciler.run(everything=True)
    assert world.record(session.session_id).status == "revoking"
    world.settle()
    assert agree(world, session.wallet, session.session_id) == "revoked"
    assert "session.removal.repeated" in world.audit_kinds(session.wallet.wallet_id)


def test_a_session_the_owner_removed_on_chain_is_revoked_in_the_database(
    world: World, session: Session
) -> None:
    """The chain wins: the owner revoked the key straight on the account."""
    owner_calls_the_account(
        world, session.wallet, world.rt.calls.revoke_session(session.session_key)
    )
    world.waas.dispatcher.reconciler.run(everything=True)
    record = world.record(session.session_id)
    assert (record.status, record.revoked_by) == ("revoked", "chain")
    assert agree(world, session.wallet, session.session_id) == "revoked"
    [alert] = disagreements(world, session.session_id)
    assert alert.action_taken == "agreed with chain"


def _without_slow_pass(world: World, monkeypatch: pytest.MonkeyPatch) -> Reconciler:
    """The world's reconciler, its slow pass pushed out of the test (it only compares
    ``installing``/``revoking`` sessions, and the ones it is told to)."""
    reconciler = world.waas.dispatcher.reconciler
    monkeypatch.setattr(reconciler, "_slow_every_s", 1e9)
    monkeypatch.setattr(reconciler, "_last_slow", time.monotonic())
    return reconciler


def test_a_call_the_chain_refuses_for_a_removed_session_revokes_it_at_once(
    world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner removes the key on the account behind the service's back, after the service
    signed a call: the chain refuses the call, and its failure has the session compared with
    the chain at once, not at its turn in the slow pass. The next call is refused off chain:
    the service never again allows what the chain refuses."""
    _without_slow_pass(world, monkeypatch)
    before = world.balance(world.usdx, session.wallet.account)
    txn = world.swap(session, 1)
    owner_calls_the_account(
        world, session.wallet, world.rt.calls.revoke_session(session.session_key)
    )
    world.settle()
    assert outcome(world, session, txn) == ("failed", "SESSION_REVOKED")
    assert agree(world, session.wallet, session.session_id) == "revoked"
    assert world.usd_spent(session.session_id) == 0
    assert world.balance(world.usdx, session.wallet.account) == before
    assert_revoked_by_the_chain_and_refused(world, session)


def test_after_an_owners_revoke_all_on_chain_a_failed_call_revokes_every_session_of_the_wallet(
    world: World, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``revoke_all`` on the account (a new epoch) removes every session of the wallet at
    once. The first call that fails for it has its session found removed, and then the
    wallet's other live sessions are compared too: none of them is allowed another call."""
    _without_slow_pass(world, monkeypatch)
    wallet = world.wallet()
    first, second = world.session(wallet, backend), world.session(wallet, backend)
    txn = world.swap(first, 1)
    owner_calls_the_account(world, wallet, world._account.encode("revoke_all"))
    world.settle()
    assert outcome(world, first, txn) == ("failed", "SESSION_REVOKED")
    account = DeployedContract(world.chain, wallet.account, world._account)
    assert account.call_one("epoch") == 1  # every session of epoch 0 is removed on chain
    assert world.rt.store.audit.verify(wallet.wallet_id).ok
    for session in (first, second):
        assert_revoked_by_the_chain_and_refused(world, session)


def test_a_call_that_fails_for_its_own_reasons_leaves_a_live_session_alone(
    world: World, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain decides, not the failure: a call that reverts because the account lacks the
    tokens has its session compared with the chain, which still has it, so nothing changes and
    no disagreement is raised."""
    _without_slow_pass(world, monkeypatch)
    wallet = world.wallet(usdx=1 * USDX_UNIT)
    session = world.session(wallet, backend)
    txn = world.swap(session, 5)  # more than the account holds
    world.settle()
    assert outcome(world, session, txn)[0] == "failed"
    assert agree(world, wallet, session.session_id) == "active"
    assert disagreements(world, session.session_id) == []
    assert world.uses(session.session_id) == 0


def test_metrics_expose_the_disagreements_the_reconciler_counted(world: World) -> None:
    api = SessionWardApi(world.waas)
    stats = world.waas.dispatcher.reconciler.stats.snapshot()
    text = api.metrics.render().decode()
    assert f"sessionward_chain_disagreements_total {float(stats['disagreements'])}" in text
    assert "sessionward_chain_disagreements_open " in text
    assert "sessionward_reconciler_repairs_total " in text
    api.close()


def test_the_weekly_report_counts_disagreements_and_their_time_to_agreement(
    world: World, session: Session
) -> None:
    # The module's world is shared: an earlier test's disagreement, settled in the same
    # second, would fall in a window starting now (seen under -n 2). Start it a second later.
    world.settle()
    world.clock.advance(1)
    since = world.now()
    revoke(world, session)
    removal = world.rt.relayer.job(f"revoke:{session.session_id}")
    assert removal is not None and cancel_queued(world.rt, removal, "FEE_LIMIT_EXCEEDED")
    world.settle()
    assert agree(world, session.wallet, session.session_id) == "revoked"
    week = world.rt.store.telemetry.weekly(since, world.now() + 1)
    tta = week.time_to_agreement
    assert (tta.disagreements, tta.agreed) == (1, 1)
    assert tta.p50_seconds is not None and tta.p50_seconds >= 0
    assert type(week).from_json(week.to_json()) == week


def test_each_disagreement_alert_goes_to_the_alert_sink_once(
    world: World, session: Session
) -> None:
    sent: list[AlertRecord] = []
    reconciler = world.waas.dispatcher.reconciler
    reconciler.sink = sent.append
    try:
        revoke(world, session)
        removal = world.rt.relayer.job(f"revoke:{session.session_id}")
        assert removal is not None and cancel_queued(world.rt, removal, "FEE_LIMIT_EXCEEDED")
        world.settle()
    finally:
        reconciler.sink = None
    assert agree(world, session.wallet, session.session_id) == "revoked"
    assert [(a.rule, a.session_id) for a in sent] == [(DISAGREEMENT, session.session_id)]


def test_the_slow_pass_walks_settled_sessions_a_batch_at_a_time_and_wraps_around(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    for _ in range(3):
        world.session(wallet, backend)
    settled = world.rt.store.sessions.watch_page(after="", limit=10_000, now=world.now())
    reconciler = Reconciler(world.rt, slow_every_s=0.0, slow_batch=2)
    seen: list[str] = []
    reconciler.check = lambda record: seen.append(record.id)  # type: ignore[method-assign]
    passes = (len(settled) + 1) // 2 + (1 if len(settled) % 2 == 0 else 0)
    for _ in range(passes + 1):
        reconciler.run()
    ids = [r.id for r in settled]
    assert seen[: len(ids)] == ids  # every settled session once, in id order
    assert seen[len(ids) :] == ids[: len(seen) - len(ids)]  # then from the start again
