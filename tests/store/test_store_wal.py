"""SQLite's write-ahead log is copied back into the database file in the background, never by a
committing writer (which would hold the write lock while it copies and syncs)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from database_support import migrated_sqlite_store
from sessionward.store import Store
from sessionward.store.database import SQLITE_FILE_NAME
from sessionward.store.nonces import GRANT_SCOPE

CHECKPOINT_THREAD = "sessionward-wal-checkpoints"


def _checkpoint_threads() -> int:
    return sum(t.name == CHECKPOINT_THREAD for t in threading.enumerate())


def _remember_many(store: Store, count: int) -> None:
    with store.db.unit():
        for n in range(count):
            assert store.nonces.use_once(GRANT_SCOPE, f"key-{n}", n, None)


def test_a_commit_leaves_the_log_to_the_background_checkpoints(tmp_path: Path) -> None:
    with migrated_sqlite_store(tmp_path) as store:
        database_file = tmp_path / SQLITE_FILE_NAME
        time.sleep(0.6)  # the migration's pages are checkpointed
        before = database_file.stat().st_size
        _remember_many(store, 2000)
        # The commit appended to the log only: the database file itself did not grow.
        assert database_file.stat().st_size == before
        deadline = time.monotonic() + 5
        while database_file.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database_file.stat().st_size > before


def test_the_checkpointed_rows_are_all_there_after_reopening(tmp_path: Path) -> None:
    with migrated_sqlite_store(tmp_path) as store:
        _remember_many(store, 300)
    with migrated_sqlite_store(tmp_path) as reopened:
        assert not reopened.nonces.use_once(GRANT_SCOPE, "key-299", 299, None)
        assert not reopened.nonces.use_once(GRANT_SCOPE, "key-0", 0, None)


def test_closing_the_store_stops_its_checkpoint_thread(tmp_path: Path) -> None:
    running = _checkpoint_threads()
    with migrated_sqlite_store(tmp_path):
        assert _checkpoint_threads() == running + 1
    assert _checkpoint_threads() == running
