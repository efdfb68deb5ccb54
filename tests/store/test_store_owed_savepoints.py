"""Savepoints and answerless writes of a unit of work, sent with the statements after them
(PostgreSQL: each ``writing`` block inside a unit is a savepoint whose ``SAVEPOINT`` and
``RELEASE`` are owed to the connection and sent in the same round trip as the next statement,
and so are the writes queued with ``Sql.run_later``, or with the unit's COMMIT; see
``sessionward.store.database.OwedStatements``). What a block undoes, and what it keeps, is the
same as with statements sent at once; these cases are the ones the deferral could get wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from round_trips import RoundTripCounter
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from store_support import PG_URL

from sessionward.store import Store
from sessionward.store.database import GROUP_LOCK_WAIT
from sessionward.store.decisions import DecisionEvent
from sessionward.store.nonces import GRANT_SCOPE
from sessionward.store.sql import Sql, pipeline

pytestmark = pytest.mark.postgres

_INSERT = Sql(
    "INSERT INTO nonces (scope, \"key\", nonce, expires_at) VALUES ('grant', :key, '1', NULL)"
)


@pytest.fixture
def store(pg_store: Store) -> Iterator[Store]:
    pg_store.empty()
    yield pg_store
    pg_store.empty()


def _used(store: Store, key: str) -> bool:
    """Whether nonce 1 of ``key`` is remembered (probing uses it when it was not)."""
    return not store.nonces.use_once(GRANT_SCOPE, key, 1, None)


def test_an_inner_block_that_raises_after_writing_is_undone_and_the_outer_one_kept(
    store: Store,
) -> None:
    with store.db.unit(), store.db.writing():
        assert store.nonces.use_once(GRANT_SCOPE, "outer", 1, None)
        with pytest.raises(LookupError), store.db.writing():
            assert store.nonces.use_once(GRANT_SCOPE, "inner", 1, None)
            raise LookupError("the inner block only")
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "outer")
    assert _used(store, "after")
    assert not _used(store, "inner")


def test_an_outer_block_that_raises_undoes_the_inner_blocks_it_released(store: Store) -> None:
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "kept", 1, None)
        with pytest.raises(LookupError), store.db.writing():
            with store.db.writing():
                assert store.nonces.use_once(GRANT_SCOPE, "inner", 1, None)
            assert store.nonces.use_once(GRANT_SCOPE, "outer", 1, None)
            raise LookupError("the outer block")
    assert _used(store, "kept")
    assert not _used(store, "inner")
    assert not _used(store, "outer")


def test_blocks_that_sent_nothing_leave_nothing_owed(store: Store) -> None:
    """A block that raises (or ends) before any statement owes no SAVEPOINT: what follows
    runs, and no RELEASE names a savepoint that was never made."""
    with store.db.unit():
        with pytest.raises(LookupError), store.db.writing():
            raise LookupError("before any statement")
        with store.db.writing():
            pass
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "after")


def test_a_sqlalchemy_statement_sends_the_owed_savepoint_before_it(store: Store) -> None:
    with store.db.unit():
        with pytest.raises(LookupError), store.db.writing() as conn:
            conn.execute(
                text(
                    'INSERT INTO nonces (scope, "key", nonce, expires_at) '
                    "VALUES ('grant', 'core', '1', NULL)"
                )
            )
            raise LookupError("undo the SQLAlchemy insert")
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert not _used(store, "core")
    assert _used(store, "after")


def test_a_pipelined_statement_that_fails_raises_as_sqlalchemy_does_and_undoes_its_block(
    store: Store,
) -> None:
    assert store.nonces.use_once(GRANT_SCOPE, "taken", 1, None)
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "kept", 1, None)
        with pytest.raises(IntegrityError), store.db.writing() as conn, pipeline(conn):
            _INSERT.run(conn, {"key": "undone"})
            _INSERT.run(conn, {"key": "taken"})  # the primary key refuses it
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "kept")
    assert _used(store, "after")
    assert not _used(store, "undone")


def test_a_one_statement_block_inside_a_unit_costs_one_round_trip(store: Store) -> None:
    counter = RoundTripCounter(store.db.engine)
    try:
        with store.db.unit():
            assert store.nonces.use_once(GRANT_SCOPE, "first", 1, None)  # with the BEGIN
            with counter.counting() as second:
                assert store.nonces.use_once(GRANT_SCOPE, "second", 1, None)
            with counter.counting() as third:
                assert store.nonces.use_once(GRANT_SCOPE, "third", 1, None)
    finally:
        counter.remove()
    # SAVEPOINT + INSERT, then RELEASE + SAVEPOINT + INSERT: one round trip each.
    assert (second.round_trips, third.round_trips) == (1, 1)
    assert _used(store, "third")


def _decision(event_id: str) -> DecisionEvent:
    return DecisionEvent(event_id, 1, "allow", (), 10, "prepare")


def test_an_owed_write_is_seen_by_the_unit_and_committed_with_it(store: Store) -> None:
    with store.db.unit():
        store.decisions.record(_decision("dec_seen"))
        assert [e.id for e in store.decisions.between(0, 2)] == ["dec_seen"]
        store.decisions.record(_decision("dec_last"))
    assert [e.id for e in store.decisions.between(0, 2)] == ["dec_last", "dec_seen"]


def test_the_owed_write_and_the_commit_go_in_one_round_trip(store: Store) -> None:
    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as unit, store.db.unit():
            assert store.nonces.use_once(GRANT_SCOPE, "first", 1, None)  # BEGIN, INSERT
            store.decisions.record(_decision("dec_1"))
    finally:
        counter.remove()
    # BEGIN with the SAVEPOINT and the INSERT; the owed RELEASE is dropped, the decision goes
    # with the COMMIT.
    assert unit.round_trips == 2
    assert [e.id for e in store.decisions.between(0, 2)] == ["dec_1"]


def test_an_owed_write_of_a_block_that_raises_is_never_sent(store: Store) -> None:
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "kept", 1, None)
        with pytest.raises(LookupError), store.db.writing():
            store.decisions.record(_decision("dec_undone"))
            raise LookupError("before anything was sent")
        store.decisions.record(_decision("dec_kept"))
    assert [e.id for e in store.decisions.between(0, 2)] == ["dec_kept"]
    assert _used(store, "kept")


def test_an_owed_write_that_fails_rolls_the_whole_unit_back(store: Store) -> None:
    store.decisions.record(_decision("dec_taken"))
    with pytest.raises(IntegrityError), store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "undone", 1, None)
        store.decisions.record(_decision("dec_taken"))  # refused by the primary key, at COMMIT
    assert not _used(store, "undone")
    assert [e.id for e in store.decisions.between(0, 2)] == ["dec_taken"]


def test_outside_a_unit_a_later_write_is_written_at_once(store: Store) -> None:
    store.decisions.record(_decision("dec_now"))
    other = store.decisions.between(0, 2)
    assert [e.id for e in other] == ["dec_now"]


def test_a_unit_whose_connection_was_cut_leaves_its_thread_free_for_the_next(
    store: Store,
) -> None:
    """The server ends the unit's connection mid-unit (SQLAlchemy then invalidates it): the
    unit fails, and the next unit of the same thread gets a connection of its own (not the
    dead one, still named its unit's)."""
    admin = create_engine(PG_URL)
    try:
        with pytest.raises(DBAPIError), store.db.unit(), store.db.reading() as conn:
            assert store.nonces.use_once(GRANT_SCOPE, "undone", 1, None)
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with admin.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.execute(text("SELECT 1"))  # SQLAlchemy: it invalidates the connection
    finally:
        admin.dispose()
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "after")
    assert not _used(store, "undone")


# --- units committed together (Database.run_units) on PostgreSQL ---------------------------


def test_a_group_of_units_costs_its_units_no_savepoint_round_trips(store: Store) -> None:
    def unit(key: str) -> Callable[[], str]:
        def use() -> str:
            assert store.nonces.use_once(GRANT_SCOPE, key, 1, None)
            return key

        return use

    counter = RoundTripCounter(store.db.engine)
    try:
        with counter.counting() as group:
            outcomes = store.db.run_units([unit("a"), unit("b"), unit("c")])
    finally:
        counter.remove()
    assert outcomes == ["a", "b", "c"]
    # One INSERT per unit, each with the savepoints owed before it (the first with the BEGIN);
    # COMMIT.
    assert group.round_trips == 4
    assert all(_used(store, key) for key in "abc")


def test_an_owed_write_that_fails_is_the_failure_of_its_own_grouped_unit(store: Store) -> None:
    store.decisions.record(_decision("dec_taken"))

    def first() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, "first", 1, None)
        store.decisions.record(_decision("dec_first"))
        return "first"

    def failing() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, "failing", 1, None)
        store.decisions.record(_decision("dec_taken"))  # refused by the primary key, later
        return "failing"

    def after() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
        store.decisions.record(_decision("dec_after"))
        return "after"

    outcomes = store.db.run_units([first, failing, after])
    assert outcomes[0] == "first" and outcomes[2] == "after"
    assert isinstance(outcomes[1], IntegrityError)
    assert _used(store, "first") and _used(store, "after")
    assert not _used(store, "failing")
    assert sorted(e.id for e in store.decisions.between(0, 2)) == [
        "dec_after",
        "dec_first",
        "dec_taken",
    ]


def test_an_owed_write_of_the_last_grouped_unit_that_fails_undoes_the_group(
    store: Store,
) -> None:
    store.decisions.record(_decision("dec_taken"))

    def first() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, "first", 1, None)
        return "first"

    def last() -> str:
        store.decisions.record(_decision("dec_taken"))  # refused at the group's COMMIT
        return "last"

    outcomes = store.db.run_units([first, last])
    assert all(isinstance(outcome, IntegrityError) for outcome in outcomes)
    assert not _used(store, "first")


def test_a_grouped_unit_that_raises_after_sending_is_undone_alone(store: Store) -> None:
    def kept(key: str) -> Callable[[], str]:
        def unit() -> str:
            assert store.nonces.use_once(GRANT_SCOPE, key, 1, None)
            store.decisions.record(_decision(f"dec_{key}"))
            return key

        return unit

    def sent_then_raised() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, "undone", 1, None)
        store.decisions.record(_decision("dec_undone"))
        raise LookupError("after a statement was sent")

    outcomes = store.db.run_units([kept("before"), sent_then_raised, kept("after")])
    assert outcomes[0] == "before" and outcomes[2] == "after"
    assert isinstance(outcomes[1], LookupError)
    assert not _used(store, "undone")
    assert _used(store, "before") and _used(store, "after")
    assert sorted(e.id for e in store.decisions.between(0, 2)) == ["dec_after", "dec_before"]


def test_a_grouped_unit_whose_statement_fails_is_undone_alone(store: Store) -> None:
    def failing() -> str:
        store.decisions.record(_decision("dec_undone"))
        _INSERT.run_later(store.db, {"key": "dup"})
        _INSERT.run_later(store.db, {"key": "dup"})  # the primary key refuses it
        with store.db.reading() as conn:  # the owed writes go with this read, which fails
            conn.exec_driver_sql("SELECT 1")
        return "failing"

    def after() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
        return "after"

    outcomes = store.db.run_units([failing, after])
    assert isinstance(outcomes[0], DBAPIError) and outcomes[1] == "after"
    assert _used(store, "after")
    assert not _used(store, "dup")
    assert store.decisions.between(0, 2) == []


def test_a_grouped_unit_that_would_close_a_lock_cycle_gives_way_and_runs_again_alone(
    store: Store,
) -> None:
    """A group holds every unit's locks until it commits: a unit waiting for a transaction
    that waits for the group gives up after GROUP_LOCK_WAIT (before the server's deadlock
    timeout, so the other transaction is never the one cancelled), and runs again alone once
    the group has committed."""
    group_holds_a, other_holds_b = threading.Event(), threading.Event()
    other_done: list[str] = []
    runs: list[int] = []

    def other() -> None:
        assert group_holds_a.wait(timeout=30)
        with store.db.unit():
            with store.db.reading() as conn:
                store.db.lock_key(conn, "b")
            other_holds_b.set()
            with store.db.reading() as conn:
                store.db.lock_key(conn, "a")  # waits for the group's commit
            other_done.append("committed")

    def takes_a() -> str:
        with store.db.reading() as conn:
            store.db.lock_key(conn, "a")
        group_holds_a.set()
        return "a"

    def takes_b() -> str:
        runs.append(1)
        assert other_holds_b.wait(timeout=30)
        time.sleep(0.1)  # the other transaction now waits for "a"
        with store.db.reading() as conn:
            store.db.lock_key(conn, "b")
        assert store.nonces.use_once(GRANT_SCOPE, "b", 1, None)
        return "b"

    worker = threading.Thread(target=other)
    worker.start()
    try:
        started = time.monotonic()
        outcomes = store.db.run_units([takes_a, takes_b])
        took = time.monotonic() - started
    finally:
        worker.join(timeout=30)
    assert outcomes == ["a", "b"]
    assert other_done == ["committed"]  # not cancelled to break a deadlock
    assert len(runs) == 2  # given way once, then run alone
    assert GROUP_LOCK_WAIT <= took < 1.0  # well before the server's deadlock timeout
    assert _used(store, "b")


def test_the_nonce_upsert_inside_a_unit_owes_no_savepoint(store: Store) -> None:
    """``writing(savepoint=False)`` (the nonce upsert's): nothing owed for the block itself,
    where a plain ``writing`` block owes its SAVEPOINT and RELEASE."""
    with store.db.unit():
        owed = store.db._units.owed
        assert owed is not None
        assert store.nonces.use_once(GRANT_SCOPE, "upsert", 1, None)
        after_upsert = [s for s, _ in owed.statements]  # what was owed went with the upsert
        with store.db.writing():
            assert store.nonces.use_once(GRANT_SCOPE, "plain", 1, None)
        after_plain = [s for s, _ in owed.statements]
    assert not any("SAVEPOINT" in s for s in after_upsert)
    assert after_plain == ["RELEASE SAVEPOINT sessionward_unit"]
    assert _used(store, "upsert") and _used(store, "plain")
