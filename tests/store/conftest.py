"""Store fixtures: every store test runs on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL tests use ``$SESSIONWARD_TEST_PG_URL`` (default: the local server, trust auth) and a
fresh schema per test module, dropped afterwards; each test starts from empty tables. If the
server is unreachable the PostgreSQL tests fail (they are never skipped).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from store_support import Seeder

from database_support import BACKENDS, PG_URL, empty_store_on, migrated_postgresql_store
from sessionward.store import Store, open_store


@pytest.fixture(scope="module")
def pg_store() -> Iterator[Store]:
    """The module's migrated PostgreSQL store, in its own schema."""
    with migrated_postgresql_store("sw_test") as store:
        yield store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on ``backend``."""
    with empty_store_on(backend, request, tmp_path, shared_postgresql="pg_store") as empty:
        yield empty


@pytest.fixture(params=BACKENDS)
def unmigrated_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A never-migrated store on SQLite or in a fresh PostgreSQL schema (dropped after), for
    the migration tests, which upgrade it step by step themselves."""
    if request.param == "sqlite":
        opened = open_store(data_dir=tmp_path)
        yield opened
        opened.close()
        return
    schema = f"sw_mig_{uuid.uuid4().hex[:16]}"
    opened = open_store(PG_URL, schema=schema)
    yield opened
    opened.close()
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def open_another(store: Store, tmp_path: Path) -> Iterator[Callable[[int], Store]]:
    """``open_another(pool_size)``: another Store (own pool) on the same database as ``store``,
    as another node would open it."""
    opened: list[Store] = []

    def make(pool_size: int) -> Store:
        if store.db.is_sqlite:
            other = open_store(data_dir=tmp_path, pool_size=pool_size)
        else:
            other = open_store(PG_URL, schema=store.db.schema, pool_size=pool_size)
        opened.append(other)
        return other

    yield make
    for other in opened:
        other.close()


@pytest.fixture
def seed(store: Store) -> Seeder:
    return Seeder(store)
