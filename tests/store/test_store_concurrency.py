"""Concurrency: budgets and revocation hold under racing threads, each with its own connection
(the same guarantees hold across nodes: the database does the enforcing, not a Python lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from store_support import T0, Seeder

from sessionward.domain.usage import NATIVE, Charge, Counter
from sessionward.reasons import ReasonCode
from sessionward.store import Store
from sessionward.store.budget import ReservationOutcome, ReservationRecord

WORKERS = 32


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` on ``count`` threads; re-raise the first exception any of them hit."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # re-raised by the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if errors:
        raise errors[0]


def test_racing_reservations_never_exceed_the_limit(
    store: Store, seed: Seeder, open_another: Callable[[int], Store]
) -> None:
    # limit 10_000, each charge 700: exactly 14 of the 64 racing requests fit.
    s = seed.session()
    node = open_another(WORKERS)
    barrier = threading.Barrier(WORKERS)
    outcomes: list[tuple[bool, tuple[ReasonCode, ...]]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        for round_ in range(2):
            charge = Charge(NATIVE, 0, 700, 10_000, ReasonCode.VALUE_LIMIT_EXCEEDED)
            outcome = node.budget.reserve(s.session_id, f"r{i}-{round_}", [charge], now=T0 + 1)
            with lock:
                outcomes.append((outcome.accepted, outcome.reasons))

    run_threads(WORKERS, worker)

    assert len(outcomes) == 2 * WORKERS
    assert sum(accepted for accepted, _ in outcomes) == 14
    assert all(reasons == (ReasonCode.VALUE_LIMIT_EXCEEDED,) for ok, reasons in outcomes if not ok)
    assert store.budget.usage_of(s.session_id).counters[NATIVE] == Counter(0, 9_800)


def test_racing_releases_and_reservations_keep_the_total_exact(
    store: Store, seed: Seeder, open_another: Callable[[int], Store]
) -> None:
    s = seed.session()
    node = open_another(16)
    held: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for j in range(6):
            rid = f"r{i}-{j}"
            charge = Charge(NATIVE, 0, 100, 10**9, ReasonCode.VALUE_LIMIT_EXCEEDED)
            assert node.budget.reserve(s.session_id, rid, [charge], now=T0 + 1).accepted
            if j % 2 == 0:
                assert node.budget.release(rid)
            else:
                with lock:
                    held.append(rid)

    run_threads(16, worker)
    assert store.budget.usage_of(s.session_id).counters[NATIVE] == Counter(0, 100 * len(held))


@dataclass(frozen=True)
class Attempt:
    started_ns: int
    accepted: bool
    reasons: tuple[ReasonCode, ...]


KILLS: dict[str, tuple[ReasonCode, Callable[[Store, str, str, str], object]]] = {
    "revoke_session": (
        ReasonCode.SESSION_REVOKED,
        lambda st, sid, cid, wid: st.sessions.revoke_session(sid, by="owner", reason="x", now=T0),
    ),
    "revoke_credential": (
        ReasonCode.CREDENTIAL_REVOKED,
        lambda st, sid, cid, wid: st.credentials.revoke(cid, reason="x", now=T0),
    ),
    "global_freeze": (
        ReasonCode.GLOBAL_FREEZE,
        lambda st, sid, cid, wid: st.freezes.freeze("global", None, reason="x", by="o", now=T0),
    ),
    "wallet_freeze": (
        ReasonCode.WALLET_FROZEN,
        lambda st, sid, cid, wid: st.freezes.freeze("wallet", wid, reason="x", by="o", now=T0),
    ),
}


@pytest.mark.parametrize("kill", sorted(KILLS))
def test_no_reservation_succeeds_after_a_revocation_returned(
    store: Store, seed: Seeder, open_another: Callable[[int], Store], kill: str
) -> None:
    reason, action = KILLS[kill]
    s = seed.session()
    node = open_another(16)
    attempts: list[Attempt] = []
    lock = threading.Lock()
    enough_traffic = threading.Event()
    revoked_at_ns: list[int] = []
    deadline = time.monotonic() + 30

    def worker(i: int) -> None:
        refusals_after = 0
        n = 0
        while refusals_after < 3 and time.monotonic() < deadline:
            n += 1
            started = time.monotonic_ns()
            charge = Charge(NATIVE, 0, 1, 10**30, ReasonCode.VALUE_LIMIT_EXCEEDED)
            outcome = node.budget.reserve(s.session_id, f"r{i}-{n}", [charge], now=T0 + 1)
            with lock:
                attempts.append(Attempt(started, outcome.accepted, outcome.reasons))
                if len(attempts) >= 60:
                    enough_traffic.set()
                if revoked_at_ns and started > revoked_at_ns[0]:
                    refusals_after += 1

    def killer() -> None:
        assert enough_traffic.wait(timeout=30)
        action(store, s.session_id, s.credential_id, s.wallet_id)
        with lock:
            revoked_at_ns.append(time.monotonic_ns())

    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    run_threads(16, worker)
    kill_thread.join()

    assert revoked_at_ns, "the revocation never ran"
    returned = revoked_at_ns[0]
    before = [a for a in attempts if a.started_ns < returned]
    after = [a for a in attempts if a.started_ns > returned]
    assert any(a.accepted for a in before), "the race never had a successful reservation"
    assert after, "no reservation was attempted after the revocation returned"
    assert not any(a.accepted for a in after)
    assert all(a.reasons == (reason,) for a in after)
    accepted = sum(a.accepted for a in attempts)
    assert store.budget.usage_of(s.session_id).counters[NATIVE] == Counter(0, accepted)


@pytest.mark.parametrize("kill", sorted(KILLS))
def test_revocation_waits_for_a_reservation_already_in_flight(
    store: Store, seed: Seeder, open_another: Callable[[int], Store], kill: str
) -> None:
    # Deterministic interleaving: a reservation R is blocked behind another transaction that
    # holds the session row; the revocation K starts while R is in flight. Whatever the
    # outcome of R, K must not *return* before R has committed if R succeeds; otherwise a
    # reservation (and its signature) would follow a revocation that already reported success.
    # So the moment K returns, R's reservation is read: if R succeeded, it must be there.
    # (Comparing when each thread got control back instead failed under load: R's thread can
    # be descheduled between its commit and its clock reading while K runs on.)
    reason, action = KILLS[kill]
    s = seed.session()
    node = open_another(4)
    outcome_box: list[ReservationOutcome] = []
    reservation_at_kill_return: list[ReservationRecord | None] = []
    holder_ready = threading.Event()
    release_holder = threading.Event()

    def holder() -> None:
        with node.db.writing() as conn:
            if node.db.is_postgresql:
                conn.exec_driver_sql(
                    "SELECT id FROM sessions WHERE id = %(id)s FOR UPDATE", {"id": s.session_id}
                )
            holder_ready.set()
            release_holder.wait(timeout=30)

    def reserve() -> None:
        charge = Charge(NATIVE, 0, 1, 100, ReasonCode.VALUE_LIMIT_EXCEEDED)
        outcome = node.budget.reserve(s.session_id, "r-inflight", [charge], now=T0 + 1)
        outcome_box.append(outcome)

    def revoke() -> None:
        action(node, s.session_id, s.credential_id, s.wallet_id)
        reservation_at_kill_return.append(node.budget.reservation("r-inflight"))

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert holder_ready.wait(timeout=10)
    threads.append(threading.Thread(target=reserve))
    threads[1].start()
    time.sleep(0.3)  # R is now waiting for the session row (or the SQLite write lock)
    threads.append(threading.Thread(target=revoke))
    threads[2].start()
    time.sleep(0.3)  # K is now waiting for R (with the gate) — or done (without it)
    release_holder.set()
    for thread in threads:
        thread.join(timeout=30)

    (outcome,) = outcome_box
    assert outcome.accepted or outcome.reasons == (reason,)
    (seen,) = reservation_at_kill_return
    if outcome.accepted:
        assert seen is not None, "the revocation returned before the reservation committed"
    else:
        assert seen is None
    after = store.budget.reserve(
        s.session_id,
        "r-after",
        [Charge(NATIVE, 0, 1, 100, ReasonCode.VALUE_LIMIT_EXCEEDED)],
        now=T0 + 2,
    )
    assert after.reasons == (reason,)
