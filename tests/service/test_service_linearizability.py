"""Revocation is linearizable (docs/design.md section 8), on the embedded SQLite store: while many
threads execute quotes of one session and another thread revokes it, every signature the
service produced is ordered before the revocation in the wallet's audit stream, and none after.
(The PostgreSQL multi-node version lives with the store's concurrency tests.)"""

from __future__ import annotations

import queue
import threading

from service_support import World

from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError

QUOTES = 40
WORKERS = 6
SIGNED_BEFORE_REVOKE = 8


def test_every_signature_precedes_the_revocation_in_the_audit_stream(world: World) -> None:
    session = world.session(maxValueUsd=10_000)
    quotes: queue.Queue[str] = queue.Queue()
    for _ in range(QUOTES):
        quotes.put(world.quote(session, 1)["txnId"])
    outcomes: dict[str, str] = {}
    lock = threading.Lock()
    enough_signed = threading.Event()
    revoked_returned = threading.Event()
    signed_after_return: list[str] = []

    def execute_all() -> None:
        while True:
            try:
                txn_id = quotes.get_nowait()
            except queue.Empty:
                return
            started_after_revoke = revoked_returned.is_set()
            try:
                status = world.execute(session, txn_id)["status"]
            except ServiceError as refused:
                status = refused.code.value
            with lock:
                outcomes[txn_id] = status
                if status == "pending":
                    if started_after_revoke:
                        signed_after_return.append(txn_id)
                    if sum(s == "pending" for s in outcomes.values()) >= SIGNED_BEFORE_REVOKE:
                        enough_signed.set()

    def revoke() -> None:
        enough_signed.wait(timeout=30)
        world.waas.revocations.revoke_access(
            session.wallet.caller,
            wallet_id=session.wallet.wallet_id,
            credential_id=session.backend.credential_id,
            session_id=session.session_id,
        )
        revoked_returned.set()

    threads = [threading.Thread(target=execute_all) for _ in range(WORKERS)]
    threads.append(threading.Thread(target=revoke))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == QUOTES

    # Once the revoke returned, no execution that started afterwards was signed.
    assert signed_after_return == []
    pending = {t for t, s in outcomes.items() if s == "pending"}
    refused = {t: s for t, s in outcomes.items() if s != "pending"}
    assert len(pending) >= SIGNED_BEFORE_REVOKE
    assert refused, "the revoke came after every execution: the test proved nothing"
    # A refusal after the revoke names the revocation (or, after three such refusals, the
    # credential the anomaly rules then revoked), never anything else.
    assert set(refused.values()) <= {
        ReasonCode.SESSION_REVOKED.value,
        ReasonCode.CREDENTIAL_REVOKED.value,
    }

    records = world.rt.store.audit.records(session.wallet.wallet_id)
    kinds = [r.kind for r in records]
    revoked_at = kinds.index("session.revoked")
    signed = {
        str(r.payload["txn"]): i for i, r in enumerate(records) if r.kind == "session.call.signed"
    }
    assert set(signed) == pending
    late = sorted(t for t, i in signed.items() if i > revoked_at)
    assert late == [], f"signed after the revocation record: {late}"
    # The store agrees: exactly the pending transactions carry a signature and a reservation.
    for txn_id in outcomes:
        txn = world.rt.store.transactions.get(txn_id)
        assert txn is not None
        assert (txn.signature is not None) == (txn_id in pending)
        assert (txn.reservation_id is not None) == (txn_id in pending)
    assert world.uses(session.session_id) == len(pending)
    assert world.audit_kinds(session.wallet.wallet_id).count("session.revoked") == 1
    assert world.rt.store.audit.verify(session.wallet.wallet_id).ok
