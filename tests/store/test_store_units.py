"""Units of work (``Database.unit``): one transaction for everything a thread does inside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from store_support import T0, Seeder

from sessionward.store import Store, open_store
from sessionward.store.database import driver_of
from sessionward.store.errors import AlreadyExists
from sessionward.store.nonces import GRANT_SCOPE


def _used(store: Store, key: str, nonce: int) -> bool:
    """Whether ``nonce`` is remembered (probing uses it when it was not: probe fresh keys)."""
    return not store.nonces.use_once(GRANT_SCOPE, key, nonce, None)


def _nonces_in(store: Store) -> int:
    """How many nonces ``store`` sees, read in a transaction of its own (outside any unit of
    this thread's on that store: what another node would see)."""
    with store.db.reading() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM nonces").scalar_one())


def test_writes_inside_a_unit_commit_together(store: Store) -> None:
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        assert store.nonces.use_once(GRANT_SCOPE, "b", 1, None)
    assert _used(store, "a", 1)
    assert _used(store, "b", 1)


def test_a_unit_that_raises_leaves_nothing(store: Store) -> None:
    with pytest.raises(LookupError), store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        raise LookupError("the request failed")
    assert not _used(store, "a", 1)


def test_reads_inside_a_unit_see_its_own_writes(store: Store) -> None:
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        assert not store.nonces.use_once(GRANT_SCOPE, "a", 1, None)


def test_a_failing_block_inside_a_unit_is_undone_alone(store: Store) -> None:
    """A ``writing`` block inside a unit is a savepoint: its exception undoes it, not the rest."""
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "kept", 1, None)
        with pytest.raises(LookupError), store.db.writing() as conn:
            store.nonces.use_once(GRANT_SCOPE, "undone", 1, None)
            assert conn is not None
            raise LookupError("this block only")
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "kept", 1)
    assert _used(store, "after", 1)
    assert not _used(store, "undone", 1)


def test_a_block_without_a_savepoint_that_fails_fails_its_whole_unit(store: Store) -> None:
    """``writing(savepoint=False)``: the block is the unit's transaction as it is, so its error
    undoes the unit, not the block alone."""
    with pytest.raises(LookupError), store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "before", 1, None)
        with store.db.writing(savepoint=False):
            store.nonces.use_once(GRANT_SCOPE, "inside", 1, None)
            raise LookupError("fails the unit")
    assert not _used(store, "before", 1)
    assert not _used(store, "inside", 1)


def test_a_grouped_unit_whose_block_without_a_savepoint_fails_is_undone_alone(
    store: Store,
) -> None:
    def failing() -> str:
        store.nonces.use_once(GRANT_SCOPE, "b0", 1, None)
        with store.db.writing(savepoint=False):
            store.nonces.use_once(GRANT_SCOPE, "b1", 1, None)
            raise LookupError("b")

    outcomes = store.db.run_units([_use(store, "a"), failing, _use(store, "c")])
    assert outcomes[0] == "a" and outcomes[2] == "c"
    assert isinstance(outcomes[1], LookupError)
    assert _used(store, "a", 1) and _used(store, "c", 1)
    assert not _used(store, "b0", 1) and not _used(store, "b1", 1)


def test_a_nonce_used_again_inside_a_unit_leaves_the_unit_going(store: Store) -> None:
    """The nonce upsert runs without a savepoint of its own: a nonce seen before is an answer
    (False), never a failed statement, so the unit writes on (on PostgreSQL a failed
    statement would end the transaction)."""
    assert store.nonces.use_once(GRANT_SCOPE, "seen", 1, None)
    with store.db.unit():
        assert not store.nonces.use_once(GRANT_SCOPE, "seen", 1, None)
        assert store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "after", 1)


def test_on_sqlite_the_nonce_upsert_inside_a_unit_takes_no_savepoint(tmp_path: Path) -> None:
    store = open_store(data_dir=tmp_path)
    store.upgrade()
    seen: list[str] = []
    try:
        with store.db.unit():
            conn = store.db._units.connection
            assert conn is not None
            conn.connection.driver_connection.set_trace_callback(seen.append)
            assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
            with store.db.writing():
                pass
            conn.connection.driver_connection.set_trace_callback(None)
    finally:
        store.close()
    assert [s.split()[0] for s in seen] == ["INSERT", "SAVEPOINT", "RELEASE"]


def test_a_quote_with_a_taken_id_fails_its_whole_unit(store: Store) -> None:
    """The quote's insert has no savepoint of its own (on PostgreSQL it is owed, sent with the
    unit's next statement or commit): a taken id fails the unit, and nothing of it stays."""
    seeder = Seeder(store)
    seeded = seeder.session()
    seeder.quote("txn_taken", seeded)
    with pytest.raises((AlreadyExists, IntegrityError)), store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "with the quote", 1, None)
        seeder.quote("txn_taken", seeded)
    assert not _used(store, "with the quote", 1)
    taken = store.transactions.get("txn_taken")
    assert taken is not None and taken.status == "quoted" and taken.value == 2**200


def test_a_grouped_unit_whose_quote_id_is_taken_is_undone_alone(store: Store) -> None:
    seeder = Seeder(store)
    seeded = seeder.session()
    seeder.quote("txn_taken", seeded)

    def unit(nonce_key: str, txn_id: str) -> Callable[[], None]:
        def run() -> None:
            assert store.nonces.use_once(GRANT_SCOPE, nonce_key, 1, None)
            seeder.quote(txn_id, seeded)

        return run

    outcomes = store.db.run_units(
        [unit("before", "txn_a"), unit("taken", "txn_taken"), unit("after", "txn_b")]
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], (AlreadyExists, IntegrityError))
    assert not _used(store, "taken", 1)
    assert _used(store, "before", 1) and _used(store, "after", 1)
    assert store.transactions.get("txn_a") is not None
    assert store.transactions.get("txn_b") is not None


def test_nothing_of_an_open_unit_is_visible_to_another_thread(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    other = open_another(2)
    seen: list[bool] = []
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        seen.append(_nonces_in(other) == 0)
    assert seen == [True]
    assert _used(other, "a", 1)


def test_after_commit_callbacks_run_after_the_commit_in_order(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    other = open_another(2)
    calls: list[tuple[str, bool]] = []

    def visible() -> bool:
        return bool(_nonces_in(other))

    with store.db.unit():
        store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        store.db.after_commit(lambda: calls.append(("first", visible())))
        store.db.after_commit(lambda: calls.append(("second", visible())))
        assert calls == []
    assert calls == [("first", True), ("second", True)]


def test_after_commit_callbacks_of_a_rolled_back_unit_never_run(store: Store) -> None:
    calls: list[str] = []
    with pytest.raises(LookupError), store.db.unit():
        store.db.after_commit(lambda: calls.append("ran"))
        raise LookupError
    assert calls == []


def test_after_commit_outside_a_unit_runs_at_once(store: Store) -> None:
    calls: list[str] = []
    store.db.after_commit(lambda: calls.append("ran"))
    assert calls == ["ran"]


def test_a_durable_write_refuses_to_join_a_unit(store: Store) -> None:
    """Revocations commit durably; a unit must not silently weaken that."""
    with store.db.unit():
        with pytest.raises(RuntimeError, match="durable"), store.db.writing(durable=True):
            pass
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
    assert _used(store, "a", 1)


def test_a_unit_inside_a_unit_joins_it(store: Store) -> None:
    with pytest.raises(LookupError), store.db.unit():
        with store.db.unit():
            store.nonces.use_once(GRANT_SCOPE, "inner", 1, None)
        raise LookupError
    assert not _used(store, "inner", 1)


def test_units_are_per_thread(store: Store) -> None:
    """Another thread's writes during a unit are its own transactions, not the unit's."""
    done = threading.Event()

    def elsewhere() -> None:
        store.nonces.use_once(GRANT_SCOPE, "thread", 1, T0)
        done.set()

    with pytest.raises(LookupError), store.db.unit():
        worker = threading.Thread(target=elsewhere)
        if store.db.is_postgresql:  # SQLite's writer lock would make it wait for the unit
            worker.start()
            worker.join(timeout=30)
            assert done.is_set()
        raise LookupError
    if store.db.is_sqlite:
        worker.start()
        worker.join(timeout=30)
    assert done.is_set()
    assert _used(store, "thread", 1)


def test_a_unit_finds_its_driver_once_and_leaves_nothing_of_it_on_the_connection(
    store: Store,
) -> None:
    """The driver a unit's statements run on is looked up once, at its start, and forgotten
    at its end: a unit after the pool's connections were replaced runs on the new one."""
    with store.db.unit(), store.db.reading() as conn:
        assert driver_of(conn) is driver_of(conn)
        store.nonces.use_once(GRANT_SCOPE, "before", 1, None)
    assert getattr(conn, "_sessionward_driver", None) is None
    store.db.engine.dispose()  # every pooled connection closed: the next unit gets a new one
    with store.db.unit():
        store.nonces.use_once(GRANT_SCOPE, "after", 1, None)
    assert _used(store, "before", 1) and _used(store, "after", 1)


# --- units committed together (Database.run_units) ---------------------------------------


def _use(store: Store, key: str) -> Callable[[], str]:
    def unit() -> str:
        assert store.nonces.use_once(GRANT_SCOPE, key, 1, None)
        return key

    return unit


def _fail(store: Store, key: str) -> Callable[[], str]:
    def unit() -> str:
        store.nonces.use_once(GRANT_SCOPE, key, 1, None)
        raise LookupError(key)

    return unit


def test_grouped_units_commit_together_with_their_outcomes_in_order(store: Store) -> None:
    assert store.db.run_units([_use(store, "a"), _use(store, "b"), _use(store, "c")]) == [
        "a",
        "b",
        "c",
    ]
    assert all(_used(store, key, 1) for key in "abc")


def test_a_grouped_unit_that_raises_is_undone_alone(store: Store) -> None:
    outcomes = store.db.run_units([_use(store, "a"), _fail(store, "b"), _use(store, "c")])
    assert outcomes[0] == "a" and outcomes[2] == "c"
    assert isinstance(outcomes[1], LookupError)
    assert _used(store, "a", 1)
    assert not _used(store, "b", 1)
    assert _used(store, "c", 1)


def test_a_grouped_unit_sees_the_writes_of_the_units_before_it(store: Store) -> None:
    outcomes = store.db.run_units(
        [
            _use(store, "a"),
            lambda: store.nonces.use_once(GRANT_SCOPE, "a", 1, None),
        ]
    )
    assert outcomes == ["a", False]  # the second unit found the nonce already used


def test_nothing_of_a_group_is_visible_to_another_connection_before_its_commit(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    other = open_another(2)

    def count_elsewhere() -> int:
        return _nonces_in(other)

    outcomes = store.db.run_units([_use(store, "a"), count_elsewhere])
    assert outcomes == ["a", 0]
    assert count_elsewhere() == 1


def test_a_group_whose_commit_fails_leaves_nothing_and_every_unit_gets_the_error(
    store: Store,
) -> None:
    def refuse_commit(_conn: object) -> None:
        raise OSError("injected: the disk refused the commit")

    event.listen(store.db.engine, "commit", refuse_commit)
    try:
        outcomes = store.db.run_units([_use(store, "a"), _use(store, "b")])
    finally:
        event.remove(store.db.engine, "commit", refuse_commit)
    assert [type(outcome) for outcome in outcomes] == [OSError, OSError]
    assert not _used(store, "a", 1)
    assert not _used(store, "b", 1)


def test_grouped_after_commit_callbacks_run_after_the_commit_for_units_that_succeeded(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    other = open_another(2)
    calls: list[tuple[str, int]] = []

    def seen() -> int:
        return _nonces_in(other)

    def with_callback(key: str, fails: bool) -> Callable[[], str]:
        def unit() -> str:
            store.db.after_commit(lambda: calls.append((key, seen())))
            return (_fail if fails else _use)(store, key)()

        return unit

    store.db.run_units(
        [with_callback("a", False), with_callback("b", True), with_callback("c", False)]
    )
    assert calls == [("a", 2), ("c", 2)]


def test_a_failing_callback_makes_its_grouped_unit_fail_but_keeps_what_committed(
    store: Store,
) -> None:
    def unit() -> str:
        store.db.after_commit(lambda: (_ for _ in ()).throw(LookupError("after")))
        return _use(store, "a")()

    outcomes = store.db.run_units([unit, _use(store, "b")])
    assert isinstance(outcomes[0], LookupError) and outcomes[1] == "b"
    assert _used(store, "a", 1) and _used(store, "b", 1)


def test_an_interrupt_in_a_group_rolls_every_unit_back_and_propagates(store: Store) -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.db.run_units([_use(store, "a"), interrupted])
    assert not _used(store, "a", 1)


def test_units_cannot_be_grouped_inside_a_unit(store: Store) -> None:
    with store.db.unit(), pytest.raises(RuntimeError, match="inside a unit"):
        store.db.run_units([_use(store, "a")])


def test_on_sqlite_a_waiting_writer_goes_before_a_writer_that_asks_again(tmp_path: Path) -> None:
    """Writers of one process queue first come, first served: the Execute writer, which takes
    the write lock again as soon as it released it, cannot starve a revocation."""
    store = open_store(data_dir=tmp_path)
    store.upgrade()
    holding, asking = threading.Event(), threading.Event()
    order: list[str] = []  # appended inside each write transaction: the order they held the lock

    def waiter() -> None:
        assert holding.wait(timeout=30)
        asking.set()
        with store.db.writing():
            order.append("waiter")

    other = threading.Thread(target=waiter)
    other.start()
    try:
        for round_ in range(20):
            with store.db.writing():  # BEGIN IMMEDIATE: the write lock, nothing written
                order.append(f"round {round_}")
                if round_ == 0:
                    holding.set()
                    assert asking.wait(timeout=30)
                    time.sleep(0.2)  # the waiter is now queued behind this transaction
        other.join(timeout=30)
    finally:
        store.close()
    assert order[:3] == ["round 0", "waiter", "round 1"]


# --- durable units (a revocation request) ------------------------------------------------


def test_a_durable_write_joins_a_durable_unit(store: Store) -> None:
    with store.db.unit(durable=True):
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        with store.db.writing(durable=True) as conn:
            assert conn is not None
            store.nonces.use_once(GRANT_SCOPE, "b", 1, None)
    assert _used(store, "a", 1) and _used(store, "b", 1)


def test_a_durable_unit_that_raises_leaves_nothing(store: Store) -> None:
    with pytest.raises(LookupError), store.db.unit(durable=True):
        with store.db.writing(durable=True):
            store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        raise LookupError("the request failed")
    assert not _used(store, "a", 1)


def test_a_durable_unit_refuses_to_join_a_unit_that_is_not(store: Store) -> None:
    with store.db.unit():
        with pytest.raises(RuntimeError, match="durable"), store.db.unit(durable=True):
            pass
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
    assert _used(store, "a", 1)


def test_on_sqlite_a_durable_unit_commits_with_full_sync_and_a_plain_one_does_not(
    tmp_path: Path,
) -> None:
    store = open_store(data_dir=tmp_path)
    store.upgrade()

    def safety_level() -> int:
        with store.db.reading() as conn:  # inside a unit: the unit's own connection
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())

    try:
        with store.db.unit(durable=True):
            durable = safety_level()
        with store.db.unit():
            plain = safety_level()
    finally:
        store.close()
    assert (durable, plain) == (2, 1)  # FULL: the WAL is synced before the commit returns
