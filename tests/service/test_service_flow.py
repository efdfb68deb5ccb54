"""The whole delegation flow through the service layer (docs/design.md section 2): authorize → approve →
prepare → execute → dispatcher → executed, checked in the store, the audit log and on chain."""

from __future__ import annotations

from service_support import USD_UNIT, USDX_UNIT, Backend, Wallet, World

from sessionward.domain.usage import USD, USES


def test_a_delegated_swap_goes_from_grant_to_chain_and_is_accounted_for(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    waas = world.waas
    pending = world.authorize(wallet, backend)
    assert pending["status"] == "pending"
    assert "Acme Agent" in pending["summary"] and "500 USD" in pending["summary"]

    detail = waas.sessions.approve(
        wallet.caller,
        session_id=pending["sessionId"],
        signature=wallet.sign(pending["grantDigest"]),
    )
    assert (detail["status"], detail["lifecycle"]) == ("pending", "installing")
    assert detail["approvedAt"] is not None
    world.settle()
    session_id = pending["sessionId"]
    assert world.record(session_id).status == "active"  # the chain showed it installed
    assert world.record(session_id).onchain_enabled_at is not None
    assert world.onchain_status(wallet, pending["sessionKey"]) == 1

    usdx_before = world.balance(world.usdx, wallet.account)
    wethx_before = world.balance(world.wethx, wallet.account)
    quote = waas.transactions.prepare(
        backend.caller,
        wallet_id=wallet.wallet_id,
        session_id=session_id,
        to=world.router,
        value=0,
        data=world.swap_data(wallet, 100),
    )
    assert quote["status"] == "quoted"
    assert quote["verdict"] == {"allowed": True, "reasons": [], "violations": []}
    assert [i["actionClass"] for i in quote["intent"]] == ["swap.execute"]
    assert quote["expiresAt"] == world.rt.store.transactions.get(quote["txnId"]).quote_expires_at  # type: ignore[union-attr]

    executed = waas.transactions.execute(backend.caller, quote["txnId"])
    assert executed["status"] == "pending"
    txn = world.rt.store.transactions.get(quote["txnId"])
    assert txn is not None and txn.signature is not None and txn.reservation_id is not None
    reservation = world.rt.store.budget.reservation(txn.reservation_id)
    assert reservation is not None and reservation.status == "held"

    world.settle()
    final = waas.transactions.status(backend.caller, quote["txnId"])
    assert final["status"] == "executed"
    assert final["txHash"] is not None and final["failure"] is None
    receipt = world.chain.get_receipt(final["txHash"])
    assert receipt is not None and receipt.succeeded

    # Balances moved on chain: 100 USDX out, some WETHX in.
    assert world.balance(world.usdx, wallet.account) == usdx_before - 100 * USDX_UNIT
    assert world.balance(world.wethx, wallet.account) > wethx_before

    # The reservation is settled and the usage equals the charge.
    reservation = world.rt.store.budget.reservation(txn.reservation_id)
    assert reservation is not None and reservation.status == "settled"
    usage_now = world.usage(session_id)
    assert (usage_now[USD], usage_now[USES]) == (100 * USD_UNIT, 1)
    usage = {u["limit"]: u for u in waas.sessions.usage(backend.caller, session_id)["limits"]}
    assert usage["maxValueUsd"]["spent"] == str(100 * USD_UNIT)
    assert usage["maxValueUsd"]["max"] == str(500 * USD_UNIT)

    # The wallet's audit stream verifies and tells the story in order.
    verdict = world.rt.store.audit.verify(wallet.wallet_id)
    assert verdict.ok, verdict
    records = world.rt.store.audit.records(wallet.wallet_id)
    story = [
        (r.kind, r.payload.get("session") or r.payload.get("txn"))
        for r in records
        if r.kind.startswith("session.")
    ]
    assert story == [
        ("session.authorized", session_id),
        ("session.approved", session_id),
        ("session.installed", session_id),
        ("session.call.signed", session_id),
        ("session.call.executed", quote["txnId"]),
    ]
    signed = next(r for r in records if r.kind == "session.call.signed")
    assert signed.payload["txn"] == quote["txnId"]
    assert signed.payload["reservation"] == txn.reservation_id
    assert signed.payload["callNonce"] == txn.call_nonce == 0


def test_the_owner_reads_the_transaction_and_the_session_the_backend_acted_on(
    world: World,
) -> None:
    session = world.session()
    txn = world.swap(session, 10)
    world.settle()
    as_owner = world.waas.transactions.status(session.wallet.caller, txn["txnId"])
    assert as_owner["status"] == "executed"
    detail = world.waas.sessions.get(session.wallet.caller, session.session_id)
    assert detail["status"] == "active"
    assert detail["credentialId"] == session.backend.credential_id
    assert detail["actionClasses"] == ["swap.execute"]


def test_consecutive_swaps_of_one_session_each_settle_on_chain(world: World) -> None:
    session = world.session()
    before = world.balance(world.usdx, session.wallet.account)
    for amount in (5, 7, 11):
        txn = world.swap(session, amount)
        world.settle()
        assert (
            world.waas.transactions.status(session.backend.caller, txn["txnId"])["status"]
            == "executed"
        )
    assert world.balance(world.usdx, session.wallet.account) == before - 23 * USDX_UNIT
    assert world.onchain_nonce(session.wallet, session.session_key) == 3
    assert world.usd_spent(session.session_id) == 23 * USD_UNIT
