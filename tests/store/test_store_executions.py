"""The execution step (:class:`sessionward.store.execution.Executions`): a quote's row is
locked while it is quoted, before anything is signed, and what follows the signature is
written in the same transaction, never apart from it.

Each test runs on SQLite and on PostgreSQL, inside a unit of work as the service runs it (on
PostgreSQL the signature, the audit record and the decision are then owed to the unit and go
with its end)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError
from store_support import T0, Seeded, Seeder

from sessionward.domain.usage import NATIVE, Charge
from sessionward.reasons import ReasonCode, SessionWardError
from sessionward.store import Store, faults
from sessionward.store.decisions import DecisionEvent
from sessionward.store.errors import MarkingMissed
from sessionward.store.execution import ExecutionOutcome, SignedCall
from sessionward.store.transaction_records import TransactionRecords
from sessionward.vault.interface import KeyRecord

NOW = T0 + 10


def _signature_of(reservation_id: str) -> bytes:
    return reservation_id.encode().ljust(65, b"\x00")


class Signer:
    """The ``sign`` callback: records every call (who asked, with which call nonce) and can
    hold the first caller inside it until released."""

    def __init__(self, *, hold_first: bool = False, refuse: bool = False) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, int]] = []
        self.inside = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def for_reservation(self, reservation_id: str) -> Callable[[int, KeyRecord | None], SignedCall]:
        def sign(call_nonce: int, _key: KeyRecord | None) -> SignedCall:
            self.calls.append((reservation_id, call_nonce))
            self.inside.set()
            assert self.release.wait(30), "never released"
            if self.refuse:
                raise SessionWardError(ReasonCode.SIGNING_REFUSED, "the key is disabled")
            return SignedCall(
                signature=_signature_of(reservation_id),
                deadline=NOW + 300,
                mode=b"\x00" * 32,
                execution=b"\x01\x02",
            )

        return sign


def _execute(
    store: Store, seeded: Seeded, txn_id: str, reservation_id: str, signer: Signer
) -> ExecutionOutcome:
    decision = DecisionEvent(
        id=f"dec_{reservation_id}",
        at=NOW,
        verdict="allow",
        reasons=(),
        latency_us=1,
        request_kind="execute",
        session_id=seeded.session_id,
        wallet_id=seeded.wallet_id,
        credential_id=seeded.credential_id,
    )
    with store.db.unit():
        return store.executions.execute(
            txn_id=txn_id,
            session_id=seeded.session_id,
            reservation_id=reservation_id,
            charges=[Charge(NATIVE, 0, 700, 10_000, ReasonCode.VALUE_LIMIT_EXCEEDED)],
            action_classes=["swap.execute"],
            now=NOW,
            sign=signer.for_reservation(reservation_id),
            audit_stream=seeded.wallet_id,
            audit_payload={"txn": txn_id},
            decision=decision,
        )


def _signed_records(store: Store, wallet_id: str) -> list[Mapping[str, Any]]:
    return [r.payload for r in store.audit.records(wallet_id) if r.kind == "session.call.signed"]


def assert_nothing_of_it_committed(store: Store, seeded: Seeded, *, status: str) -> None:
    """The Execute of ``txn_1`` with reservation ``res_1`` left no trace: the transaction as
    it was (``status``, unsigned), no reservation, the call nonce untaken, no audit record,
    no decision."""
    record = store.transactions.get("txn_1")
    assert record is not None
    assert (record.status, record.reservation_id, record.signature) == (status, None, None)
    assert store.budget.reservation("res_1") is None
    assert store.sessions.get(seeded.session_id).call_nonce == 0  # type: ignore[union-attr]
    assert _signed_records(store, seeded.wallet_id) == []
    assert store.decisions.count_since(0, session_id=seeded.session_id) == 0


def test_an_execute_writes_the_signature_the_audit_record_and_the_decision_in_its_transaction(
    store: Store, seed: Seeder
) -> None:
    seeded = seed.session()
    seed.quote("txn_1", seeded)
    signer = Signer()

    outcome = _execute(store, seeded, "txn_1", "res_1", signer)

    assert outcome.accepted, outcome.reasons
    record = store.transactions.get("txn_1")
    assert record is not None
    assert (record.status, record.reservation_id, record.call_nonce) == ("pending", "res_1", 0)
    assert record.signature == _signature_of("res_1")
    assert (record.deadline, record.mode, record.execution) == (
        NOW + 300,
        b"\x00" * 32,
        b"\x01\x02",
    )
    assert _signed_records(store, seeded.wallet_id) == [
        {"txn": "txn_1", "callNonce": 0, "reservation": "res_1"}
    ]
    assert store.audit.verify(seeded.wallet_id).ok
    assert store.decisions.count_since(0, session_id=seeded.session_id, verdict="allow") == 1


def test_a_quote_no_longer_quoted_is_refused_before_anything_is_signed(
    store: Store, seed: Seeder
) -> None:
    seeded = seed.session()
    seed.quote("txn_1", seeded)
    assert store.transactions.deny("txn_1", ["POLICY_DENIED"], now=T0 + 1)
    signer = Signer()

    outcome = _execute(store, seeded, "txn_1", "res_1", signer)

    assert (outcome.accepted, outcome.reasons) == (False, (ReasonCode.TRANSACTION_NOT_QUOTED,))
    assert signer.calls == []
    assert_nothing_of_it_committed(store, seeded, status="denied")


def test_a_quote_another_node_is_executing_is_refused_there_unsigned_and_nothing_of_it_is_kept(
    store: Store, seed: Seeder, open_another: Callable[[int], Store]
) -> None:
    """Two nodes execute one quote at once: the first holds it (inside its signature) while
    the second's Execute runs. The second waits for the first's locks, then finds the quote
    taken and is refused without its key ever being asked to sign; only the first's
    signature, reservation, call nonce, audit record and decision exist."""
    seeded = seed.session()
    seed.quote("txn_1", seeded)
    other_node = open_another(2)
    signer = Signer(hold_first=True)
    outcomes: dict[str, ExecutionOutcome] = {}

    def first() -> None:
        outcomes["first"] = _execute(store, seeded, "txn_1", "res_first", signer)

    def second() -> None:
        outcomes["second"] = _execute(other_node, seeded, "txn_1", "res_second", signer)

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert signer.inside.wait(30), "the first Execute never reached its signature"
    second_thread = threading.Thread(target=second)
    second_thread.start()
    second_thread.join(0.5)
    assert second_thread.is_alive(), "the second Execute did not wait for the first's locks"
    signer.release.set()
    first_thread.join(30)
    second_thread.join(30)

    assert outcomes["first"].accepted, outcomes["first"].reasons
    assert (outcomes["second"].accepted, outcomes["second"].reasons) == (
        False,
        (ReasonCode.TRANSACTION_NOT_QUOTED,),
    )
    assert signer.calls == [("res_first", 0)]
    record = store.transactions.get("txn_1")
    assert record is not None
    assert (record.reservation_id, record.signature) == ("res_first", _signature_of("res_first"))
    assert store.budget.reservation("res_second") is None
    assert store.sessions.get(seeded.session_id).call_nonce == 1  # type: ignore[union-attr]
    assert len(_signed_records(store, seeded.wallet_id)) == 1
    assert store.audit.verify(seeded.wallet_id).ok
    assert store.decisions.count_since(0, session_id=seeded.session_id) == 1


@pytest.mark.parametrize("refusing", ["vault", "fault"])
def test_a_failure_after_the_quote_lock_leaves_the_quote_quoted_and_nothing_written(
    store: Store, seed: Seeder, refusing: str
) -> None:
    """After the quote's lock, a vault refusing to sign (a refusal) or a crash after the owed
    writes were queued (a fault) undoes everything: the quote stays quoted."""
    seeded = seed.session()
    seed.quote("txn_1", seeded)
    signer = Signer(refuse=refusing == "vault")
    if refusing == "fault":
        faults.install("execute.after_decision")
    try:
        if refusing == "vault":
            outcome = _execute(store, seeded, "txn_1", "res_1", signer)
            assert outcome.reasons == (ReasonCode.SIGNING_REFUSED,)
        else:
            with pytest.raises(faults.FaultInjected):
                _execute(store, seeded, "txn_1", "res_1", signer)
    finally:
        faults.clear()

    assert signer.calls == [("res_1", 0)]
    assert_nothing_of_it_committed(store, seeded, status="quoted")


class _StaleQuoteLock:
    """An injected fault: the quote's lock answers "quoted" for a quote that is not."""

    def fetchone(self) -> tuple[int]:
        return (1,)


def test_a_marking_that_misses_fails_the_unit_and_commits_no_signature(
    store: Store, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the lock's invariant ever break (here: a lock that lies about a denied quote),
    the marking itself refuses to pass unnoticed: on SQLite it raises at once, on PostgreSQL
    its owed statement fails where it is sent (the unit's commit). The signature was made in
    process but nothing of it commits: no reservation, call nonce, audit record or decision."""
    seeded = seed.session()
    seed.quote("txn_1", seeded)
    assert store.transactions.deny("txn_1", ["POLICY_DENIED"], now=T0 + 1)
    monkeypatch.setattr(
        TransactionRecords, "send_quote_lock", staticmethod(lambda _conn, _txn: _StaleQuoteLock())
    )
    signer = Signer()

    with pytest.raises((MarkingMissed, DBAPIError)):
        _execute(store, seeded, "txn_1", "res_1", signer)

    assert signer.calls == [("res_1", 0)]
    assert_nothing_of_it_committed(store, seeded, status="denied")
