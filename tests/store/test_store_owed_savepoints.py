"""Savepoints of a unit of work, sent with the statements after them (PostgreSQL: each
``writing`` block inside a unit is a savepoint whose ``SAVEPOINT`` and ``RELEASE`` are owed to
the connection and sent in the same round trip as the next statement; see
``sessionward.store.database.OwedStatements``). What a block undoes, and what it keeps, is the
same as with savepoints sent at once; these cases are the ones the deferral could get wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from round_trips import RoundTripCounter
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sessionward.store import Store
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
            assert store.nonces.use_once(GRANT_SCOPE, "first", 1, None)  # BEGIN on its own
            with counter.counting() as second:
                assert store.nonces.use_once(GRANT_SCOPE, "second", 1, None)
            with counter.counting() as third:
                assert store.nonces.use_once(GRANT_SCOPE, "third", 1, None)
    finally:
        counter.remove()
    # SAVEPOINT + INSERT, then RELEASE + SAVEPOINT + INSERT: one round trip each.
    assert (second.round_trips, third.round_trips) == (1, 1)
    assert _used(store, "third")
