"""Telemetry fixtures: every metric is checked on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL uses ``$SESSIONWARD_TEST_PG_URL`` (default: the local server, trust auth) and a fresh
schema per test module, dropped afterwards. If the server is unreachable the PostgreSQL tests
fail (they are never skipped).

The hand-computed week is written once per backend and module (the tests only read it);
``empty_store`` is a migrated store with no rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from telemetry_support import PG_URL, SINCE, UNTIL, record_week

from sessionward.store import Store, open_store
from sessionward.store.telemetry import WeeklyMetrics

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for the module, dropped at the end."""
    name = f"sw_telemetry_{uuid.uuid4().hex[:12]}"
    yield name
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(data_dir=tmp_path_factory.mktemp("telemetry"))
    store.upgrade()
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgresql_store(pg_schema: str) -> Iterator[Store]:
    store = open_store(PG_URL, schema=pg_schema)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture(scope="module")
def sqlite_week(sqlite_store: Store) -> Store:
    """The SQLite store holding the hand-computed week."""
    sqlite_store.empty()
    record_week(sqlite_store)
    return sqlite_store


@pytest.fixture(scope="module")
def postgresql_week(postgresql_store: Store) -> Store:
    """The PostgreSQL store holding the hand-computed week."""
    postgresql_store.empty()
    record_week(postgresql_store)
    return postgresql_store


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def week_store(backend: str, request: pytest.FixtureRequest) -> Store:
    """The hand-computed week on ``backend``."""
    store: Store = request.getfixturevalue(f"{backend}_week")
    return store


@pytest.fixture(scope="module")
def week(week_store: Store) -> WeeklyMetrics:
    """The metrics of the hand-computed week [SINCE, UNTIL) on ``backend``."""
    return week_store.telemetry.weekly(SINCE, UNTIL)


@pytest.fixture(scope="module")
def pg_scratch_schema() -> Iterator[str]:
    """A second fresh PostgreSQL schema for the module (tests that write their own rows)."""
    name = f"sw_telemetry_scratch_{uuid.uuid4().hex[:8]}"
    yield name
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def pg_scratch_store(pg_scratch_schema: str) -> Iterator[Store]:
    store = open_store(PG_URL, schema=pg_scratch_schema)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def scratch_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on ``backend`` for a test that writes its own rows."""
    if backend == "sqlite":
        store = open_store(data_dir=tmp_path)
        store.upgrade()
        yield store
        store.close()
        return
    shared: Store = request.getfixturevalue("pg_scratch_store")
    shared.empty()
    yield shared
    shared.empty()
