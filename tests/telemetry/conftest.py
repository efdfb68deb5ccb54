"""Telemetry fixtures: every metric is checked on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL uses ``$SESSIONWARD_TEST_PG_URL`` (default: the local server, trust auth) and a fresh
schema per test module, dropped afterwards. If the server is unreachable the PostgreSQL tests
fail (they are never skipped).

The hand-computed week is written once per backend and module (the tests only read it);
``scratch_store`` is a migrated store with no rows, for tests that write their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from telemetry_support import SINCE, UNTIL, record_week

from database_support import (
    BACKENDS,
    empty_store_on,
    migrated_postgresql_store,
    migrated_sqlite_store,
)
from sessionward.domain.report import WeeklyMetrics
from sessionward.store import Store


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with migrated_sqlite_store(tmp_path_factory.mktemp("telemetry")) as store:
        yield store


@pytest.fixture(scope="module")
def postgresql_store() -> Iterator[Store]:
    with migrated_postgresql_store("sw_telemetry") as store:
        yield store


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
def pg_scratch_store() -> Iterator[Store]:
    """A second PostgreSQL store for the module, in its own schema (tests that write their own
    rows must not disturb the week)."""
    with migrated_postgresql_store("sw_telemetry_scratch") as store:
        yield store


@pytest.fixture
def scratch_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on ``backend`` for a test that writes its own rows."""
    with empty_store_on(backend, request, tmp_path, shared_postgresql="pg_scratch_store") as empty:
        yield empty
