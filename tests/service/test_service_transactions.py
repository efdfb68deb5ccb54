"""Prepare and Execute: denials are recorded decisions on a ``denied`` row; Execute decides
again, because state may have changed since the quote, and a refusal there signs, reserves and
changes nothing."""

from __future__ import annotations

import threading

import pytest
from service_support import USD_UNIT, Backend, Session, Wallet, World, codes

from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.policy import SessionView
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller
from sessionward.service.errors import ServiceError
from sessionward.store.sessions import SessionRecord

TRANSFER = parse_signature("transfer(address,uint256)")
STRANGER = "0x4444444444444444444444444444444444444444"


def _only_txn(world: World, session: Session) -> str:
    (txn,) = world.rt.store.transactions.of_session(session.session_id)
    return txn.id


# --- Prepare -----------------------------------------------------------------------------------


def test_a_denied_prepare_is_recorded_as_a_decision_and_a_denied_transaction(
    world: World, session: Session
) -> None:
    before = world.snapshot(session.session_id)
    data = encode_call(TRANSFER, (STRANGER, 10**6))
    with pytest.raises(ServiceError) as refused:
        world.prepare(session, to=world.usdx, data=data)
    assert refused.value.kind == "denied"
    assert refused.value.code is ReasonCode.TARGET_NOT_ALLOWED
    assert refused.value.decision_id is not None

    (txn,) = world.rt.store.transactions.of_session(session.session_id)
    assert txn.status == "denied"
    assert txn.reasons == "TARGET_NOT_ALLOWED"
    assert txn.signature is None and txn.reservation_id is None
    events = world.rt.store.decisions.of_session(session.session_id)
    event = next(e for e in events if e.id == refused.value.decision_id)
    assert event.verdict == "deny"
    assert event.request_kind == "prepare"
    assert event.reasons == ("TARGET_NOT_ALLOWED",)
    assert event.credential_id == session.backend.credential_id
    assert event.wallet_id == session.wallet.wallet_id
    world.assert_unchanged(before, except_txn=txn.id)


def test_a_prepare_over_the_usd_cap_is_denied_with_the_usd_code(
    world: World, session: Session
) -> None:
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 501)
    assert refused.value.code is ReasonCode.USD_LIMIT_EXCEEDED
    world.assert_unchanged(before, except_txn=_only_txn(world, session))


def test_a_prepare_on_a_session_still_pending_approval_is_denied(
    world: World, backend: Backend
) -> None:
    wallet = world.wallet()
    pending = world.authorize(wallet, backend)
    session = Session(pending["sessionId"], wallet, backend, pending["sessionKey"])
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 1)
    assert refused.value.code is ReasonCode.SESSION_PENDING_APPROVAL
    world.assert_unchanged(before, except_txn=_only_txn(world, session))


def test_a_backend_cannot_prepare_on_a_session_bound_to_another_credential(
    world: World, session: Session
) -> None:
    intruder = world.backend()
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 1, caller=intruder.caller)
    assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    world.assert_unchanged(before)
    assert world.rt.store.transactions.of_session(session.session_id) == []


def _swap_naming_wallet(
    world: World, session: Session, named: Wallet, *, recipient: Wallet
) -> None:
    """Prepare a 1-USDX swap into ``recipient`` in ``session``, naming wallet ``named``."""
    world.waas.transactions.prepare(
        session.backend.caller,
        wallet_id=named.wallet_id,
        session_id=session.session_id,
        to=world.router,
        value=0,
        data=world.swap_data(recipient, 1),
    )


def test_a_session_aimed_at_another_owners_wallet_is_denied_revoked_and_never_signs(
    world: World, session: Session
) -> None:
    """The backend names another owner's wallet with its own session: the policy sees the
    session's own account (read in the same unit), refuses ``ACCOUNT_MISMATCH``, the anomaly
    rules revoke the session for drifting out of its context, and the denied row can never
    be executed; neither wallet has anything signed or spent."""
    other = world.wallet()
    usage = world.usage(session.session_id)
    with pytest.raises(ServiceError) as refused:
        _swap_naming_wallet(world, session, other, recipient=other)
    assert refused.value.kind == "denied"
    # (The swap's recipient, the other account, breaks the session's argument rule too.)
    assert ReasonCode.ACCOUNT_MISMATCH in codes(refused.value)
    assert world.record(session.session_id).status == "revoking"
    txn_id = _only_txn(world, session)
    with pytest.raises(ServiceError) as again:
        world.execute(session, txn_id)
    assert again.value.code is ReasonCode.TRANSACTION_NOT_QUOTED
    (txn,) = world.rt.store.transactions.of_session(session.session_id)
    assert txn.status == "denied" and txn.signature is None and txn.reservation_id is None
    assert world.usage(session.session_id) == usage
    assert world.signed_calls(session.wallet.wallet_id) == []
    assert world.signed_calls(other.wallet_id) == []


def test_a_prepare_naming_another_wallet_is_judged_on_the_sessions_own_wallet(
    world: World, session: Session
) -> None:
    """The wallet a request names is read first; the session's view must still be built on
    the session's own wallet: here the named one is frozen and the session's is not, so the
    refusal says the account is wrong, never that the (session's) wallet is frozen."""
    other = world.wallet()
    world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="wallet", target=other.wallet_id, reason="the other one"
    )
    with pytest.raises(ServiceError) as refused:
        _swap_naming_wallet(world, session, other, recipient=session.wallet)
    assert codes(refused.value) == (ReasonCode.ACCOUNT_MISMATCH,)


# --- Execute re-checks -----------------------------------------------------------------------------


def test_a_quote_made_before_the_owner_revoked_is_refused_at_execute(
    world: World, session: Session
) -> None:
    quote = world.quote(session, 10)
    world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, quote["txnId"])
    assert refused.value.code is ReasonCode.SESSION_REVOKED
    assert codes(refused.value) == (ReasonCode.SESSION_REVOKED,)
    world.assert_unchanged(before, except_txn=quote["txnId"])
    event = world.rt.store.decisions.of_session(session.session_id)
    assert any(e.request_kind == "execute" and e.reasons == ("SESSION_REVOKED",) for e in event)


def test_a_quote_made_before_ops_froze_the_wallet_is_refused_at_execute(
    world: World, session: Session
) -> None:
    quote = world.quote(session, 10)
    world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="wallet", target=session.wallet.wallet_id, reason="drained?"
    )
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, quote["txnId"])
    # The wallet freeze also revoked the wallet's sessions: both causes are reported.
    assert codes(refused.value) == (ReasonCode.SESSION_REVOKED, ReasonCode.WALLET_FROZEN)
    assert refused.value.code is ReasonCode.SESSION_REVOKED
    world.assert_unchanged(before, except_txn=quote["txnId"])


def test_executing_a_quote_twice_is_refused_as_not_quoted(world: World, session: Session) -> None:
    quote = world.quote(session, 10)
    world.execute(session, quote["txnId"])
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, quote["txnId"])
    assert refused.value.code is ReasonCode.TRANSACTION_NOT_QUOTED
    world.assert_unchanged(before)
    assert world.signed_calls(session.wallet.wallet_id) == [quote["txnId"]]


def test_a_denied_transaction_cannot_be_executed(world: World, session: Session) -> None:
    with pytest.raises(ServiceError):
        world.quote(session, 501)
    txn_id = _only_txn(world, session)
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, txn_id)
    assert refused.value.code is ReasonCode.TRANSACTION_NOT_QUOTED
    world.assert_unchanged(before)


def test_a_quote_is_executable_until_the_second_before_it_expires(
    world: World, session: Session
) -> None:
    now = world.clock.pin()
    try:
        late = world.quote(session, 1)
        on_time = world.quote(session, 1)
        assert late["expiresAt"] == now + world.rt.settings.quote_ttl_s
        world.clock.advance(world.rt.settings.quote_ttl_s - 1)
        assert world.execute(session, on_time["txnId"])["status"] == "pending"
        world.clock.advance(1)
        before = world.snapshot(session.session_id)
        with pytest.raises(ServiceError) as refused:
            world.execute(session, late["txnId"])
        assert refused.value.code is ReasonCode.QUOTE_EXPIRED
        world.assert_unchanged(before)
        assert world.rt.store.transactions.get(late["txnId"]).status == "quoted"  # type: ignore[union-attr]
    finally:
        world.clock.release()
    world.settle()


def test_another_backends_quote_cannot_be_executed(world: World, session: Session) -> None:
    quote = world.quote(session, 10)
    intruder = world.backend()
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, quote["txnId"], caller=intruder.caller)
    assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    world.assert_unchanged(before)
    with pytest.raises(ServiceError) as reading:
        world.waas.transactions.status(intruder.caller, quote["txnId"])
    assert reading.value.code is ReasonCode.ROLE_FORBIDDEN


def test_an_unknown_transaction_is_refused(world: World, backend: Backend) -> None:
    with pytest.raises(ServiceError) as refused:
        world.waas.transactions.execute(backend.caller, "txn_" + "0" * 32)
    assert refused.value.code is ReasonCode.TRANSACTION_UNKNOWN


def test_when_the_vault_refuses_inside_execute_the_reservation_and_nonce_roll_back(
    world: World, session: Session
) -> None:
    """The vault signs inside the execution transaction: its refusal undoes the reservation
    and the call nonce, and the transaction is denied with SIGNING_REFUSED."""
    quote = world.quote(session, 10)
    record = world.record(session.session_id)
    world.rt.vault.disable(record.session_key_id, now=world.now())
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.execute(session, quote["txnId"])
    assert refused.value.code is ReasonCode.SIGNING_REFUSED
    world.assert_unchanged(before, except_txn=quote["txnId"])
    assert world.record(session.session_id).call_nonce == record.call_nonce


def test_a_quote_executed_twice_at_the_same_moment_is_signed_once_and_refused_once(
    world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both Executes read the quote while it is still ``quoted``; the database decides which
    one signs, and the other is told the quote is no longer quoted."""
    both_read = threading.Barrier(2, timeout=10)
    view = world.waas.directory.view

    def view_after_both_read(
        record: SessionRecord, *, now: int, caller: Caller | None = None
    ) -> SessionView:
        both_read.wait()
        return view(record, now=now, caller=caller)

    quote = world.quote(session, 10)
    monkeypatch.setattr(world.waas.directory, "view", view_after_both_read)
    outcomes: list[str] = []

    def run() -> None:
        try:
            outcomes.append(world.execute(session, quote["txnId"])["status"])
        except ServiceError as refused:
            outcomes.append(refused.code.value)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    monkeypatch.undo()
    assert sorted(outcomes) == ["TRANSACTION_NOT_QUOTED", "pending"]
    assert world.signed_calls(session.wallet.wallet_id) == [quote["txnId"]]
    assert world.usd_spent(session.session_id) == 10 * USD_UNIT
    assert [s for _, s in world.reservations_of(session.session_id)] == ["held"]
    assert world.record(session.session_id).call_nonce == 1
