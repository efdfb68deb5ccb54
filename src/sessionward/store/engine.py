"""Opening the store: the database, its migrations, and the repositories over it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url

from .alerts import Alerts
from .audit import AuditLog
from .budget import Budget
from .credentials import CredentialRecords
from .database import Database, resolve_url
from .decisions import Decisions
from .execution import Executions
from .freezes import Freezes
from .idempotency import IdempotencyKeys
from .nonces import Nonces, SqlReplayStore
from .prefetches import (
    prefetch_decision_reads,
    prefetch_execute_reads,
    read_decision_reads_ahead,
    read_execute_reads_ahead,
)
from .relay_jobs import SqlRelayJobStore
from .schema import ALL_TABLES
from .sessions import SessionRecords
from .telemetry import Telemetry
from .transaction_records import TransactionRecords
from .user_operations import UserOperationRecords
from .vault_keys import SqlKeyRecordStore
from .wallets import WalletRecords

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK: Final = 0x5E55_1011_3A7D  # advisory lock serialising concurrent upgrades


class Store:
    """The system of record: one repository per domain noun, over one :class:`Database`.

    The schema is created and changed only by :meth:`upgrade` (Alembic, programmatically).
    """

    def __init__(self, db: Database) -> None:
        self.db: Final = db
        self.wallets: Final = WalletRecords(db)
        self.credentials: Final = CredentialRecords(db)
        self.sessions: Final = SessionRecords(db)
        self.budget: Final = Budget(db)
        self.nonces: Final = Nonces(db)
        self.replay: Final = SqlReplayStore(self.nonces)
        self.decisions: Final = Decisions(db)
        self.alerts: Final = Alerts(db)
        self.freezes: Final = Freezes(db)
        self.audit: Final = AuditLog(db)
        self.vault_keys: Final = SqlKeyRecordStore(db)
        self.transactions: Final = TransactionRecords(db)
        self.relay_jobs: Final = SqlRelayJobStore(db)
        self.user_operations: Final = UserOperationRecords(db)
        self.executions: Final = Executions(db, self.budget, self.audit)
        self.idempotency: Final = IdempotencyKeys(db)
        self.telemetry: Final = Telemetry(db)

    def __repr__(self) -> str:
        return f"Store({self.db.dialect_name}, schema={self.db.schema!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def dialect_name(self) -> str:
        return self.db.dialect_name

    def prefetch_decision_reads(self, *, session_id: str, wallet_id: str) -> None:
        """Inside a unit of work on PostgreSQL: the session, wallet, freezes and counters
        reads of a decision, run now in one round trip, so that the same reads made next by
        the unit are answered without one (:mod:`.prefetches`). No-op elsewhere."""
        prefetch_decision_reads(self.db, session_id=session_id, wallet_id=wallet_id)

    def prefetch_execute_reads(self, *, txn_id: str) -> None:
        """Inside a unit of work on PostgreSQL: the read of transaction ``txn_id`` and those
        of its decision, run now in one round trip (:mod:`.prefetches`). No-op elsewhere."""
        prefetch_execute_reads(self.db, txn_id=txn_id)

    def read_decision_reads_ahead(self, *, session_id: str, wallet_id: str) -> None:
        """Inside a unit of work on PostgreSQL: the reads of :meth:`prefetch_decision_reads`,
        sent behind the request's replay nonce once its signature has verified (in that
        write's round trip), not now (:func:`sessionward.store.sql.read_ahead`). No-op
        elsewhere."""
        read_decision_reads_ahead(self.db, session_id=session_id, wallet_id=wallet_id)

    def read_execute_reads_ahead(self, *, txn_id: str) -> None:
        """:meth:`prefetch_execute_reads` as :meth:`read_decision_reads_ahead` does it."""
        read_execute_reads_ahead(self.db, txn_id=txn_id)

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision`` (creating the PostgreSQL schema if needed)."""
        self.db.ensure_schema()
        self._run(lambda config: command.upgrade(config, revision))

    def downgrade(self, revision: str = "base") -> None:
        """Migrate the schema down to ``revision`` (``base`` drops every table)."""
        self._run(lambda config: command.downgrade(config, revision))

    def current_revision(self) -> str | None:
        """The migration the database is at (None when never migrated)."""
        with self.db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def _run(self, action: object) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        config.set_main_option("path_separator", "os")
        with self.db.writing() as conn:
            if self.db.is_postgresql:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            config.attributes["connection"] = conn
            assert callable(action)
            action(config)

    def empty(self) -> None:
        """Delete every row of every table (tests and demos; the schema stays)."""
        with self.db.writing() as conn:
            for table in ALL_TABLES:
                conn.execute(table.delete())

    def close(self) -> None:
        self.db.dispose()


def open_store(
    url: str | None = None,
    *,
    data_dir: Path | None = None,
    schema: str | None = None,
    pool_size: int | None = None,
) -> Store:
    """Open the store at ``url``, else ``$SESSIONWARD_DATABASE_URL``, else the SQLite file
    ``<data_dir>/sessionward.db`` (WAL, foreign keys, busy timeout).

    ``postgresql://`` URLs use psycopg 3; ``schema`` (PostgreSQL) selects the ``search_path``.
    The schema is not migrated here: call :meth:`Store.upgrade`.
    """
    resolved = resolve_url(url, data_dir)
    restrict_sqlite_files(resolved, data_dir=data_dir)
    return Store(Database(resolved, schema=schema, pool_size=pool_size))


_SQLITE_SIDE_FILES: Final = ("", "-wal", "-shm", "-journal")


def restrict_sqlite_files(url: str, *, data_dir: Path | None = None) -> None:
    """Custody at rest (issue 14.8): a SQLite database file is 0600, made so *before* SQLite
    first opens it, so that the ``-wal``/``-shm`` files SQLite creates later take the same
    mode; side files left by an earlier run are narrowed too. The data directory, when the
    database lives in it, is 0700 (a directory named by a URL alone is left as it is: it may be
    shared, like ``/tmp``). Nothing to do for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir is not None and path.parent.resolve() == Path(data_dir).resolve():
        os.chmod(path.parent, 0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)
