"""Units of work (``Database.unit``): one transaction for everything a thread does inside it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from store_support import T0

from sessionward.store import Store
from sessionward.store.nonces import GRANT_SCOPE


def _used(store: Store, key: str, nonce: int) -> bool:
    """Whether ``nonce`` is remembered (probing uses it when it was not: probe fresh keys)."""
    return not store.nonces.use_once(GRANT_SCOPE, key, nonce, None)


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


def test_nothing_of_an_open_unit_is_visible_to_another_thread(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    other = open_another(2)
    seen: list[bool] = []
    with store.db.unit():
        assert store.nonces.use_once(GRANT_SCOPE, "a", 1, None)
        with other.db.reading() as conn:
            seen.append(conn.exec_driver_sql("SELECT count(*) FROM nonces").scalar_one() == 0)
    assert seen == [True]
    assert _used(other, "a", 1)


def test_after_commit_callbacks_run_after_the_commit_in_order(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    other = open_another(2)
    calls: list[tuple[str, bool]] = []

    def visible() -> bool:
        with other.db.reading() as conn:
            return bool(conn.exec_driver_sql("SELECT count(*) FROM nonces").scalar_one())

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
