"""Reads run ahead in one round trip (``sessionward.store.sql.prefetch``, PostgreSQL): the
unit's next statements asking the same are answered from them, and never once anything else
has run on the unit's connection (a write, a lock, a rollback, another read)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from round_trips import RoundTripCounter, Traced
from store_support import PG_URL, Seeder

from sessionward.store import Store, open_store
from sessionward.store.budget import USAGE_COUNTERS
from sessionward.store.freezes import ACTIVE_FREEZES
from sessionward.store.nonces import GRANT_SCOPE
from sessionward.store.sessions import SESSION_BY_ID
from sessionward.store.sql import Sql, prefetch

pytestmark = pytest.mark.postgres

_SET_STATUS = Sql("UPDATE sessions SET status = :status WHERE id = :session_id")


@pytest.fixture
def store(pg_store: Store) -> Iterator[Store]:
    pg_store.empty()
    yield pg_store
    pg_store.empty()


def _session(store: Store) -> tuple[str, str]:
    seeded = Seeder(store).session()
    return seeded.session_id, seeded.wallet_id


@contextmanager
def _prefetched_unit(store: Store, session_id: str, wallet_id: str) -> Iterator[Traced]:
    """A unit of work that starts with the decision reads prefetched; what it sent."""
    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as traced, store.db.unit():
            store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)
            yield traced
    finally:
        counter.remove()


def test_prefetched_reads_are_answered_without_a_round_trip(store: Store) -> None:
    session_id, wallet_id = _session(store)
    with _prefetched_unit(store, session_id, wallet_id) as unit:
        session = store.sessions.get(session_id)
        wallet = store.wallets.get(wallet_id)
        again = store.wallets.get(wallet_id)
        freezes = store.freezes.active()
        usage = store.budget.usage_of(session_id)
    assert unit.round_trips == 2  # BEGIN and the four reads together; COMMIT
    assert session is not None and session.id == session_id
    assert wallet is not None and again == wallet and wallet.id == wallet_id
    assert freezes == [] and usage.counters == {}


@pytest.mark.parametrize("answerless", [False, True], ids=["written", "owed"])
def test_a_read_after_a_write_of_the_unit_sees_the_write(store: Store, answerless: bool) -> None:
    session_id, wallet_id = _session(store)
    suspend = {"status": "suspended", "session_id": session_id}
    with store.db.unit():
        store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)
        if answerless:
            _SET_STATUS.run_later(store.db, suspend)
        else:
            with store.db.writing() as conn:
                _SET_STATUS.run(conn, suspend)
        session = store.sessions.get(session_id)
    assert session is not None and session.status == "suspended"


def test_a_read_after_another_statement_is_asked_again(store: Store) -> None:
    session_id, wallet_id = _session(store)
    with _prefetched_unit(store, session_id, wallet_id) as unit:
        assert store.nonces.use_once(GRANT_SCOPE, "between", 1, None)
        store.sessions.get(session_id)
    # BEGIN with the prefetch; the nonce (its savepoint owed with it); the session read
    # again; COMMIT.
    assert unit.round_trips == 4


def test_a_read_with_other_parameters_is_asked_again(store: Store) -> None:
    session_id, wallet_id = _session(store)
    with store.db.unit():
        store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)
        assert store.sessions.get("ses_not_there") is None
        assert store.sessions.get(session_id) is not None


def test_prefetched_answers_do_not_outlive_their_unit(store: Store) -> None:
    session_id, wallet_id = _session(store)
    with store.db.unit():
        store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)
    with store.db.writing() as conn:
        _SET_STATUS.run(conn, {"status": "suspended", "session_id": session_id})
    with store.db.unit():
        session = store.sessions.get(session_id)
    assert session is not None and session.status == "suspended"


def test_a_grouped_unit_never_sees_what_the_unit_before_it_prefetched(store: Store) -> None:
    session_id, wallet_id = _session(store)

    def first() -> None:
        store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)

    def second() -> str | None:
        with store.db.reading() as conn:  # on the group's connection: no statement between
            row = SESSION_BY_ID.first(conn, {"session_id": session_id})
        return None if row is None else str(row["status"])

    def suspend() -> None:
        with store.db.writing() as conn:
            _SET_STATUS.run(conn, {"status": "suspended", "session_id": session_id})

    outcomes = store.db.run_units([first, suspend, second])
    assert outcomes[2] == "suspended"


def test_outside_a_unit_and_on_sqlite_prefetching_runs_nothing(tmp_path: Path) -> None:
    sqlite = open_store(data_dir=tmp_path)
    try:
        sqlite.upgrade()
        with sqlite.db.unit(), sqlite.db.reading() as conn:
            prefetch(conn, [(ACTIVE_FREEZES.sql, {}), (USAGE_COUNTERS, {"session_id": "s"})])
    finally:
        sqlite.close()
    postgresql = open_store(PG_URL)
    try:
        with postgresql.db.reading() as conn:
            prefetch(conn, [(ACTIVE_FREEZES.sql, {})])  # no unit: nothing kept, nothing sent
    finally:
        postgresql.close()


def _quote(store: Store) -> tuple[str, str, str]:
    """A quoted transaction of a new session: (txn id, session id, wallet id)."""
    seeder = Seeder(store)
    seeded = seeder.session()
    seeder.quote("txn_prefetched", seeded)
    return "txn_prefetched", seeded.session_id, seeded.wallet_id


def test_an_executes_reads_go_in_one_round_trip_found_through_its_transaction(
    store: Store,
) -> None:
    txn_id, session_id, wallet_id = _quote(store)
    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as unit, store.db.unit():
            store.prefetch_execute_reads(txn_id=txn_id)
            txn = store.transactions.get(txn_id)
            store.prefetch_decision_reads(session_id=session_id, wallet_id=wallet_id)  # has them
            session = store.sessions.get(session_id)
            wallet = store.wallets.get(wallet_id)
            usage = store.budget.usage_of(session_id)
            assert store.freezes.active() == []
    finally:
        counter.remove()
    assert unit.round_trips == 2  # BEGIN and the five reads together; COMMIT
    assert txn is not None and txn.value == 2**200 and txn.session_id == session_id
    assert session is not None and session.id == session_id
    assert wallet is not None and wallet.id == wallet_id
    assert usage.counters == {}
    assert (txn, session, wallet) == (
        store.transactions.get(txn_id),
        store.sessions.get(session_id),
        store.wallets.get(wallet_id),
    )  # the same as read on their own


def test_the_reads_of_an_unknown_transaction_find_nothing(store: Store) -> None:
    _, session_id, wallet_id = _quote(store)
    with store.db.unit():
        store.prefetch_execute_reads(txn_id="txn_unknown")
        assert store.transactions.get("txn_unknown") is None
        assert store.sessions.get(session_id) is not None  # asked, not answered from nothing
        assert store.wallets.get(wallet_id) is not None


# --- reads ahead: sent behind the request's replay nonce ----------------------------------


def _nonce(store: Store, nonce: int) -> bool:
    return store.nonces.use_once("request", "cred_ahead", nonce, 2**40)


def test_reads_ahead_go_behind_the_nonce_in_its_round_trip(store: Store) -> None:
    session_id, wallet_id = _session(store)
    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as unit, store.db.unit():
            store.read_decision_reads_ahead(session_id=session_id, wallet_id=wallet_id)
            assert _nonce(store, 1)
            session = store.sessions.get(session_id)
            wallet = store.wallets.get(wallet_id)
            store.freezes.active()
            store.budget.usage_of(session_id)
    finally:
        counter.remove()
    assert unit.round_trips == 2  # BEGIN, the nonce and the four reads together; COMMIT
    assert session is not None and session.id == session_id
    assert wallet is not None and wallet.id == wallet_id
    statements = unit.statements()
    nonce_at = next(i for i, s in enumerate(statements) if "INTO nonces" in s)
    assert all(i > nonce_at for i, s in enumerate(statements) if "FROM sessions" in s)


def test_reads_ahead_see_what_the_write_carrying_them_wrote(store: Store) -> None:
    with store.db.unit():
        store.read_decision_reads_ahead(session_id="ses_x", wallet_id="wal_x")
        assert _nonce(store, 2)
        assert not _nonce(store, 2)  # the first write is seen: the nonce is taken


def test_reads_ahead_are_never_sent_without_the_write_that_carries_them(store: Store) -> None:
    """Registered before a request is authenticated: a request refused before its nonce (a
    forged signature, a rate limit) never has them sent."""
    session_id, wallet_id = _session(store)
    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as unit, store.db.unit():
            store.read_decision_reads_ahead(session_id=session_id, wallet_id=wallet_id)
            store.credentials.get("cred_unknown")  # the credential read of authentication
    finally:
        counter.remove()
    assert not [s for s in unit.statements() if "FROM sessions" in s]


def test_reads_ahead_do_not_outlive_their_unit(store: Store) -> None:
    session_id, wallet_id = _session(store)

    def registers() -> None:
        store.read_decision_reads_ahead(session_id=session_id, wallet_id=wallet_id)

    def suspend() -> None:
        with store.db.writing() as conn:
            _SET_STATUS.run(conn, {"status": "suspended", "session_id": session_id})

    def authenticated_then_reads() -> str | None:
        assert _nonce(store, 3)  # would carry the first unit's reads, were they kept
        session = store.sessions.get(session_id)
        return None if session is None else session.status

    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as group:
            outcomes = store.db.run_units([registers, suspend, authenticated_then_reads])
    finally:
        counter.remove()
    assert outcomes[2] == "suspended"
    nonce_at = next(i for i, s in enumerate(group.statements()) if "INTO nonces" in s)
    assert "FROM wallets" not in " ".join(group.statements()[nonce_at:])
