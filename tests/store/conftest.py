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
from store_support import PG_URL, Seeder

from sessionward.store import Store, open_store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for the module, dropped at the end."""
    name = f"sw_test_{uuid.uuid4().hex[:16]}"
    yield name
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def pg_store(pg_schema: str) -> Iterator[Store]:
    store = open_store(PG_URL, schema=pg_schema)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on ``backend``."""
    if backend == "sqlite":
        sqlite_store = open_store(data_dir=tmp_path)
        sqlite_store.upgrade()
        yield sqlite_store
        sqlite_store.close()
        return
    shared: Store = request.getfixturevalue("pg_store")
    shared.empty()
    yield shared
    shared.empty()


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
