"""Connections, transactions and the revocation gate, for SQLite and PostgreSQL alike.

Transactions
    :meth:`Database.writing` opens a transaction meant to write. On SQLite it starts with
    ``BEGIN IMMEDIATE``, which takes the database's single write lock up front: everything read
    inside it is then current until commit, so read-compute-write sequences done in Python are
    atomic (and a deferred transaction that later writes could fail with ``SQLITE_BUSY`` instead
    of waiting). On PostgreSQL it is an ordinary READ COMMITTED transaction; atomicity there comes
    from row locks and conditional statements.

    :meth:`Database.reading` opens a transaction that only reads (deferred ``BEGIN`` on SQLite, so
    readers never wait for the writer in WAL mode).

    On SQLite, writers of one process also queue on a process-local lock before ``BEGIN
    IMMEDIATE``. That is scheduling, not enforcement: SQLite's busy handler polls with growing
    sleeps, so threads contending for the write lock leave it idle and some wait for seconds;
    queueing them in-process keeps the lock busy and the waits fair. Correctness still rests on
    the database lock (other processes, and other ``Database`` objects, contend on it directly).

The revocation gate (PostgreSQL only)
    A reservation checks, in one ``UPDATE`` of the session row, that no freeze covers it and that
    its credential is live. Row locks make that linearizable with a revoke of *the session* (it
    updates the same row), but not with a freeze or a credential revocation, which write other
    rows: a READ COMMITTED statement does not see a freeze committed after its snapshot was
    taken. So every reservation holds a *shared* transaction-level advisory lock, and every freeze
    or credential revocation takes it *exclusively*: the freeze waits for reservations in flight
    and every reservation that starts after the freeze commits sees it. SQLite needs no gate: its
    writers are serialised by the database lock.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

ENV_DATABASE_URL: Final = "SESSIONWARD_DATABASE_URL"
SQLITE_FILE_NAME: Final = "sessionward.db"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BEGIN_OPTION: Final = "sessionward_sqlite_begin"


def resolve_url(url: str | None, data_dir: Path | None) -> str:
    """The database URL to use: ``url``, else ``$SESSIONWARD_DATABASE_URL``, else the SQLite file
    ``<data_dir>/sessionward.db``. PostgreSQL URLs are mapped to the psycopg 3 driver.

    Raises ``ValueError`` when none of the three is given.
    """
    chosen = url or os.environ.get(ENV_DATABASE_URL)
    if not chosen:
        if data_dir is None:
            raise ValueError(f"no database: pass a URL, set {ENV_DATABASE_URL} or give a data_dir")
        chosen = f"sqlite:///{Path(data_dir) / SQLITE_FILE_NAME}"
    return normalize_url(chosen)


def normalize_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to ``postgresql+psycopg://`` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """An engine plus the transaction discipline described in the module docstring.

    ``schema`` (PostgreSQL only) sets the connection's ``search_path``, so one database can hold
    several isolated SessionWard schemas (tests use a fresh one per module). ``pool_size`` bounds
    the connections kept per process; every thread that works concurrently needs its own.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int | None = None,
        busy_timeout_s: float = 30.0,
    ) -> None:
        parsed = make_url(url)
        self.dialect_name: Final = parsed.get_backend_name()
        if self.dialect_name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database backend {self.dialect_name!r}")
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError("a schema name is lower-case letters, digits and underscores")
        if schema is not None and self.dialect_name != "postgresql":
            raise ValueError("a schema can only be chosen on PostgreSQL")
        self.schema: Final = schema
        kwargs: dict[str, Any] = {}
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 0
        if self.dialect_name == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout_s, "check_same_thread": False}
        elif schema is not None:
            kwargs["connect_args"] = {"options": f"-c search_path={schema}"}
        self.engine: Final[Engine] = create_engine(url, **kwargs)
        if self.dialect_name == "sqlite":
            _install_sqlite_discipline(self.engine, busy_timeout_s)
        self._gate_key: Final = _gate_key(schema or "public")
        self._sqlite_writers: Final = threading.RLock()

    @property
    def is_postgresql(self) -> bool:
        return self.dialect_name == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect_name == "sqlite"

    @contextmanager
    def writing(self, *, durable: bool = False) -> Iterator[Connection]:
        """A transaction that may write; committed on normal exit, rolled back on exception.

        ``durable``: on SQLite, commit with ``synchronous=FULL`` (the WAL is synced before the
        commit returns). Revocations, freezes and credential revocations use it, so once they
        have returned they survive a power cut; other writes run with ``synchronous=NORMAL``
        (WAL mode: never corrupt, but the last commits before a power cut may be lost). A FULL
        commit also syncs every earlier commit in the WAL. PostgreSQL is always durable.
        """
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._sqlite_writers, self.engine.connect() as conn:
            # Straight on the driver connection: SQLAlchemy would wrap the pragma in a
            # transaction, and SQLite refuses to change the safety level inside one.
            raw = conn.connection.driver_connection
            assert raw is not None
            if durable:
                raw.execute("PRAGMA synchronous=FULL")
            try:
                conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
                with conn.begin():
                    yield conn
            finally:
                if durable:
                    raw.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A transaction that only reads (never takes SQLite's write lock)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def pass_gate(self, conn: Connection) -> None:
        """Enter the revocation gate shared (reservations). No-op on SQLite."""
        if self.is_postgresql:
            conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": self._gate_key})

    def close_gate(self, conn: Connection) -> None:
        """Hold the revocation gate exclusively until the transaction ends (freezes, credential
        revocations). No-op on SQLite."""
        if self.is_postgresql:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._gate_key})

    def lease_key(self, name: str) -> int:
        """A session-level advisory-lock key for ``name``, distinct per schema (so two
        deployments sharing a PostgreSQL database each elect their own leader)."""
        return _gate_key(f"{self.schema or 'public'}:lease:{name}")

    def lock_key(self, conn: Connection, name: str) -> None:
        """Serialise transactions on ``name`` until the transaction ends (PostgreSQL advisory
        lock; no-op on SQLite, whose write transactions are already serial)."""
        if self.is_postgresql:
            key = _gate_key(f"{self.schema or 'public'}:{name}")
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def ensure_schema(self) -> None:
        """Create the configured PostgreSQL schema if it does not exist yet."""
        if self.is_postgresql and self.schema is not None:
            with self.engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _gate_key(namespace: str) -> int:
    """A signed 64-bit advisory-lock key, distinct per schema."""
    digest = hashlib.sha256(b"sessionward.revocation-gate:" + namespace.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _install_sqlite_discipline(engine: Engine, busy_timeout_s: float) -> None:
    """WAL, foreign keys, a busy timeout, and SQLAlchemy-emitted BEGINs.

    The sqlite3 module's own transaction handling is switched off (``isolation_level = None``)
    so that SQLAlchemy's ``begin`` event decides between ``BEGIN`` and ``BEGIN IMMEDIATE``.
    ``synchronous=NORMAL`` by default; :meth:`Database.writing` with ``durable=True`` commits
    with ``FULL`` (revocations must survive a power cut once they have returned).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
