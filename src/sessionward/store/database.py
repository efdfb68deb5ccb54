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

    :meth:`Database.unit` makes everything one thread does inside the block ONE write transaction
    (a unit of work): ``reading`` there uses the unit's connection, and ``writing`` becomes a
    savepoint of it (an exception inside it undoes that block only, as a transaction of its own
    would). Nothing in the unit is visible to others before the unit commits, and if the block
    raises, all of it is rolled back. Work that must follow the commit (listeners that write
    durably, such as the anomaly rules) is registered with :meth:`Database.after_commit`. A
    durable write can join only a durable unit (SQLite cannot change its safety level inside a
    transaction): elsewhere it raises, so that a unit never silently weakens a revocation. A
    revocation request is one durable unit: its nonce, its idempotency key, the revocation and
    its audit record commit together, and on SQLite it takes the write lock once.

    :meth:`Database.run_units` commits several units together (group commit): each runs in a
    savepoint of ONE transaction, one after another on the calling thread, and one commit writes
    them all (grouped units are not durable ones: a revocation never joins a group). On SQLite, where writers take turns on one lock anyway, that spares every
    unit but one its own BEGIN, commit and WAL write, and pages that several units touch (the
    same leaf of an index, the same session row) are written to the log once.

    On SQLite, writers of one process also queue on a process-local lock before ``BEGIN
    IMMEDIATE``. That is scheduling, not enforcement: SQLite's busy handler polls with growing
    sleeps, so threads contending for the write lock leave it idle and some wait for seconds;
    queueing them in-process keeps the lock busy and the waits fair. The queue is first come,
    first served (:class:`_WriterQueue`): the thread committing Execute batches releases it and
    asks again at once, and with an ordinary lock it would usually win again, so a revocation
    could wait for as long as Executes keep coming. Correctness still rests on the database lock
    (other processes, and other ``Database`` objects, contend on it directly).

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
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from .pg_wire import wire_of

ENV_DATABASE_URL: Final = "SESSIONWARD_DATABASE_URL"
SQLITE_FILE_NAME: Final = "sessionward.db"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BEGIN_OPTION: Final = "sessionward_sqlite_begin"
_WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
"""Bytes a SQLite write-ahead log is cut back to once checkpointed (it is reused, not regrown)."""

_SHARED_LOCK: Final = "SELECT pg_advisory_xact_lock_shared(%s)"
_EXCLUSIVE_LOCK: Final = "SELECT pg_advisory_xact_lock(%s)"

_log = logging.getLogger("sessionward.store")

T = TypeVar("T")


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


def missing_sqlite_file(url: str) -> str | None:
    """The SQLite file ``url`` names when it does not exist (opening the store would create an
    empty database there); ``None`` when it exists or ``url`` is not SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return str(parsed.database)
    return None


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
        else:
            # psycopg prepares nothing itself: it would answer a ROLLBACK with DEALLOCATE ALL,
            # which drops the statements the store's wire prepared (.pg_wire) too.
            kwargs["connect_args"] = {"prepare_threshold": None}
            if schema is not None:
                kwargs["connect_args"]["options"] = f"-c search_path={schema}"
        # Last in, first out: the connection just returned is the next one handed out. SQLite
        # keeps a page cache per connection and empties it whenever another connection has
        # written since; rotating writers through the whole pool (first in, first out) made
        # every write transaction start cold.
        self.engine: Final[Engine] = create_engine(url, pool_use_lifo=True, **kwargs)
        if self.dialect_name == "sqlite":
            _install_sqlite_discipline(self.engine, busy_timeout_s)
        self._checkpoints: _WalCheckpoints | None = None
        if self.dialect_name == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._checkpoints = _WalCheckpoints(self.engine)
        if self.dialect_name == "postgresql":
            _install_owed_statements(self.engine)
        self._gate_key: Final = _gate_key(schema or "public")
        self._sqlite_writers: Final = _WriterQueue()
        self._units: Final = _Units()

    @property
    def is_postgresql(self) -> bool:
        return self.dialect_name == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect_name == "sqlite"

    @contextmanager
    def writing(self, *, durable: bool = False, savepoint: bool = True) -> Iterator[Connection]:
        """A transaction that may write; committed on normal exit, rolled back on exception.

        ``durable``: on SQLite, commit with ``synchronous=FULL`` (the WAL is synced before the
        commit returns). Revocations, freezes and credential revocations use it, so once they
        have returned they survive a power cut; other writes run with ``synchronous=NORMAL``
        (WAL mode: never corrupt, but the last commits before a power cut may be lost). A FULL
        commit also syncs every earlier commit in the WAL. PostgreSQL is always durable.

        Inside a :meth:`unit` of this thread: a savepoint of the unit's transaction (and a
        ``RuntimeError`` if ``durable`` and the unit is not), so that an error the unit catches
        undoes the block alone and the unit goes on. ``savepoint=False``: inside a unit, the
        block runs in the unit's transaction as it is, with no savepoint of its own; for a block
        whose error nothing in the unit catches (one statement that fails only as the database
        fails, such as an upsert): its error then fails the whole unit, which is undone
        (SQLite undoes a failed statement alone anyway; a PostgreSQL transaction cannot go on
        after one). Spares the unit two statements per block. Outside a unit it changes
        nothing.
        """
        ambient = self._units.connection
        if ambient is not None:
            if durable and not self._units.durable:
                raise RuntimeError("a durable write cannot join a unit of work that is not durable")
            if not savepoint:
                yield ambient
                return
            owed = self._units.owed
            with _savepoint(ambient) if owed is None else _owed_savepoint(ambient, owed):
                yield ambient
            return
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._sqlite_writers, self.engine.connect() as conn:
            # Straight on the driver connection: SQLAlchemy would wrap the pragma in a
            # transaction, and SQLite refuses to change the safety level inside one.
            raw = driver_of(conn)
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
        """A transaction that only reads (never takes SQLite's write lock); inside a
        :meth:`unit` of this thread, the unit's own transaction."""
        ambient = self._units.connection
        if ambient is not None:
            yield ambient
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def unit(self, *, durable: bool = False) -> Iterator[None]:
        """One write transaction for every ``reading`` and ``writing`` this thread does inside
        the block (see the module docstring); committed on normal exit, rolled back if the block
        raises. The :meth:`after_commit` callbacks run after the commit, in order; a unit opened
        inside a unit joins it (a ``RuntimeError`` if it asks to be ``durable`` and the unit it
        would join is not). ``durable``: committed as :meth:`writing` with ``durable=True``,
        and durable writes may join it."""
        if self._units.connection is not None:
            if durable and not self._units.durable:
                raise RuntimeError("a durable unit cannot join a unit of work that is not durable")
            yield
            return
        callbacks: list[Callable[[], None]] = []
        with self.writing(durable=durable) as conn:
            owed = self._owed_of(conn)
            self._units.enter(conn, callbacks, durable=durable, owed=owed)
            try:
                yield
                if owed is not None and owed.writes:
                    _commit_with(conn, owed)
            finally:
                self._units.leave()
        for callback in callbacks:
            callback()

    def run_units(self, units: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run each callable as a unit of work of its own, in order, on this thread, and commit
        them together: one transaction, one commit. The outcome of each is what it returned or
        the ``Exception`` it raised, in the order given.

        - A unit that raises is undone alone (its savepoint is rolled back); the others go on.
        - If the transaction cannot begin or commit (or a savepoint cannot be rolled back),
          nothing of any unit is written and every outcome is that exception.
        - The :meth:`after_commit` callbacks of each unit that succeeded run after the commit,
          unit by unit; a callback that raises makes its unit's outcome that exception (what
          the unit wrote stays committed, as with :meth:`unit`).
        - An interrupt (a ``BaseException`` that is not an ``Exception``) rolls back every unit
          and propagates.

        On PostgreSQL a group holds the row and advisory locks of every unit in it until it
        commits, so a unit that waits for a lock could close a cycle no unit alone would (a
        revocation holding a session's row and waiting for the wallet's audit lock that an
        earlier unit of the group took, while the unit waits for that row). So a group waits
        for a lock at most :data:`GROUP_LOCK_WAIT` (``lock_timeout``, well below the server's
        deadlock timeout, so the group gives way, never the other transaction): a unit that
        waited that long (or was chosen to break a deadlock) is undone and, once the group
        has committed, run again alone as a unit of its own, which waits as any unit does.

        Nothing a unit writes is visible to other connections before the commit, so an answer
        a unit computed must not be released before this returns. Raises ``RuntimeError``
        inside a unit.
        """
        if self._units.connection is not None:
            raise RuntimeError("units cannot be grouped inside a unit of work")
        outcomes: list[T | Exception] = []
        callbacks: list[list[Callable[[], None]]] = []
        again: list[int] = []
        try:
            with self.writing() as conn:
                owed = self._owed_of(conn)
                if owed is not None:
                    owed.statements.append((_GROUP_LOCK_TIMEOUT, None))
                for index, unit in enumerate(units):
                    grouped = _GroupedUnit(conn, owed, index, last=index == len(units) - 1)
                    outcome, mine = self._run_grouped(conn, owed, grouped, unit)
                    if mine is None and owed is not None and _waited_for_a_lock(outcome):
                        again.append(index)
                    outcomes.append(outcome)
                    callbacks.append(mine or [])
                if owed is not None and owed.writes:
                    _commit_with(conn, owed)
        except Exception as failed:
            return [failed] * len(units)
        for index, after in enumerate(callbacks):
            try:
                for callback in after:
                    callback()
            except Exception as failed:
                outcomes[index] = failed
        for index in again:
            try:
                with self.unit():
                    outcomes[index] = units[index]()
            except Exception as failed:
                outcomes[index] = failed
        return outcomes

    def _run_grouped(
        self,
        conn: Connection,
        owed: OwedStatements | None,
        grouped: _GroupedUnit,
        unit: Callable[[], T],
    ) -> tuple[T | Exception, list[Callable[[], None]] | None]:
        """One unit of a group (:meth:`run_units`): its outcome, and its after-commit
        callbacks (None when it was undone). If undoing it fails, that raises: the whole
        group is undone."""
        mine: list[Callable[[], None]] = []
        self._units.enter(conn, mine, durable=False, owed=owed)
        try:
            try:
                outcome = unit()
            finally:
                self._units.leave()
        except Exception as raised:
            grouped.undo()
            return raised, None
        failed_write = grouped.end()
        if failed_write is not None:
            return failed_write, None
        return outcome, mine

    def _owed_of(self, conn: Connection) -> OwedStatements | None:
        """PostgreSQL: a fresh list of what a unit will owe ``conn``, its connection (see
        :class:`OwedStatements`; :meth:`_Units.enter` hangs it on the connection); None on
        SQLite, where savepoints are sent as they are opened (they cost no round trip)."""
        if not self.is_postgresql:
            return None
        return OwedStatements()

    @property
    def owed_by_unit(self) -> OwedStatements | None:
        """What the unit of work open on this thread owes its connection (PostgreSQL), if a
        unit is open; None otherwise and on SQLite."""
        return self._units.owed

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current :meth:`unit` of this thread has committed (never,
        if it rolls back); at once outside a unit."""
        callbacks = self._units.callbacks
        if callbacks is None:
            callback()
        else:
            callbacks.append(callback)

    def pass_gate(self, conn: Connection) -> None:
        """Enter the revocation gate shared (reservations). No-op on SQLite.

        The advisory locks run straight on the driver connection, so that they can be
        pipelined with the statements after them (:func:`sessionward.store.sql.pipeline`):
        taking one costs no round trip of its own there. (Each is a statement of its own, so
        the statements after it take their snapshot once it is held.)"""
        if self.is_postgresql:
            _execute_after_owed(conn, _SHARED_LOCK, (self._gate_key,))

    def close_gate(self, conn: Connection) -> None:
        """Hold the revocation gate exclusively until the transaction ends (freezes, credential
        revocations). No-op on SQLite."""
        if self.is_postgresql:
            _execute_after_owed(conn, _EXCLUSIVE_LOCK, (self._gate_key,))

    def lock_key(self, conn: Connection, name: str) -> None:
        """Serialise transactions on ``name`` until the transaction ends (PostgreSQL advisory
        lock, pipelinable as :meth:`pass_gate`; no-op on SQLite, whose write transactions are
        already serial)."""
        if self.is_postgresql:
            key = _gate_key(f"{self.schema or 'public'}:{name}")
            _execute_after_owed(conn, _EXCLUSIVE_LOCK, (key,))

    def ensure_schema(self) -> None:
        """Create the configured PostgreSQL schema if it does not exist yet."""
        if self.is_postgresql and self.schema is not None:
            with self.engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    def dispose(self) -> None:
        """Stop the background checkpoints (after a last one) and close every pooled connection."""
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self.engine.dispose()


class _WalCheckpoints:
    """Checkpoints a SQLite database's write-ahead log every ``every_s`` seconds from a daemon
    thread, so that no request pays for it (see the module docstring).

    ``PASSIVE`` copies what no reader still needs and never waits; the WAL file is reused from
    its start once everything in it is copied, and cut back to ``_WAL_SIZE_LIMIT`` bytes when it
    had grown beyond. A failed checkpoint (the database busy or gone) is tried again next time.
    """

    def __init__(self, engine: Engine, every_s: float = 0.25) -> None:
        self._engine = engine
        self._every_s = every_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="sessionward-wal-checkpoints", daemon=True
        )
        self._thread.start()

    def checkpoint(self) -> None:
        with self._engine.connect() as conn:
            driver_of(conn).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._thread.join(timeout=10)
        with suppress(Exception):
            self.checkpoint()

    def _run(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                self.checkpoint()
            except Exception:  # busy, or closed under us: the next round tries again
                _log.debug("WAL checkpoint skipped", exc_info=True)


class _WriterQueue:
    """A reentrant lock granted in the order it was asked for.

    ``threading.RLock`` makes no promise of order: a thread that releases it and asks again at
    once (as the Execute writer does between batches) usually gets it back before a thread that
    has been waiting, which can then wait indefinitely. Here a releasing owner hands the lock
    straight to the longest waiter. A thread already holding it may take it again (depth).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append((me, turn))
        # The owner releasing the lock makes this thread the owner, then releases ``turn``.
        turn.acquire()

    def __exit__(self, *_exc: object) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            if not self._waiters:
                self._owner = None
                return
            self._owner, turn = self._waiters.popleft()
            self._depth = 1
            turn.release()


class _Units(threading.local):
    """The unit of work open on this thread, if any: its connection, after-commit callbacks and
    whether it commits durably."""

    connection: Connection | None = None
    callbacks: list[Callable[[], None]] | None = None
    durable: bool = False
    owed: OwedStatements | None = None

    def enter(
        self,
        connection: Connection,
        callbacks: list[Callable[[], None]],
        *,
        durable: bool,
        owed: OwedStatements | None = None,
    ) -> None:
        self.connection = connection
        self.callbacks = callbacks
        self.durable = durable
        self.owed = owed
        # Looked up once per unit, not on each of its ~30 statements (SQLAlchemy's pool
        # properties, and on PostgreSQL the wire's own lookup).
        setattr(connection, _DRIVER_KEY, _driver_looked_up(connection))
        if owed is not None:
            setattr(connection, OWED_KEY, owed)

    def leave(self) -> None:
        """Forget the unit. Touches nothing of the database (the connection may be dead: a
        unit whose connection was cut must still leave, or every later unit of this thread
        would find the closed connection)."""
        connection, owed = self.connection, self.owed
        self.connection = None
        self.callbacks = None
        self.durable = False
        self.owed = None
        if owed is not None:
            owed.prefetched = None  # never across units (a group shares one list)
            owed.reads_ahead = None
        if connection is not None:
            setattr(connection, _DRIVER_KEY, None)
        if connection is not None and owed is not None:
            # Whatever is still owed is a RELEASE: the commit (or the rollback) ends every
            # savepoint anyway. The list goes with the unit.
            setattr(connection, OWED_KEY, None)


OWED_KEY: Final = "_sessionward_owed_statements"
"""The attribute of a unit's SQLAlchemy ``Connection`` (an object of that checkout alone, not
the pooled DBAPI connection, so nothing of a unit can outlive it) that holds its
:class:`OwedStatements`, for the code that runs statements on the driver
(:mod:`sessionward.store.sql`)."""


class OwedStatements:
    """What a unit of work owes its PostgreSQL connection: savepoint statements, and writes
    whose answer nobody reads.

    Every ``writing`` block inside a unit is a savepoint, and on PostgreSQL a ``SAVEPOINT`` or
    ``RELEASE`` sent on its own is a round trip of its own. So they are not sent when the
    block opens or ends, but queued here and sent, in order, in the same round trip as the
    next statement (pipelined, :mod:`sessionward.store.sql`; before a SQLAlchemy statement,
    on their own). A block that sent nothing and owes no write drops its ``SAVEPOINT``; the
    ``RELEASE`` still owed when the unit ends is never sent (its commit or rollback ends every
    savepoint). A block that raises after something was sent rolls back to its savepoint at
    once, as before; one that raises before drops what it queued.

    A write queued with :meth:`sessionward.store.sql.Sql.run_owed` (or ``run_later``; an
    ``INSERT`` or ``UPDATE`` whose answer is not needed) goes the same way, or, when nothing follows it, with the unit's ``COMMIT``
    (one round trip for both). Every statement on the connection sends what is owed first,
    so whatever runs later in the unit sees the write; a write that fails makes the statement
    it was sent with fail (or the commit: the unit is then rolled back whole).
    """

    __slots__ = ("prefetched", "reads_ahead", "sends", "statements", "writes")

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        """(SQL for the driver, its parameters or None), in order."""
        self.sends = 0
        """How many times statements were sent: a block whose savepoint was queued at
        ``sends == n`` has had it sent once ``sends > n``."""
        self.writes = 0
        """How many of :attr:`statements` are writes (not savepoint statements)."""
        self.prefetched: dict[tuple[Any, ...], Any] | None = None
        """Answers of reads run ahead (:func:`sessionward.store.sql.prefetch`), until any
        other statement runs on the connection: everything here that runs a statement, or
        owes one, forgets them."""
        self.reads_ahead: Callable[[Connection], Callable[[], None]] | None = None
        """Reads the unit will make, to be sent behind its next write that carries them
        (:func:`sessionward.store.sql.read_ahead`): a function that sends them on the
        connection, inside a pipeline, and returns the one that files their answers."""

    def send(self, driver: Any) -> None:
        """Send what is owed on ``driver`` (inside a pipeline: queued with it)."""
        self.prefetched = None
        if self.statements:
            statements, self.statements = self.statements, []
            self.sends += 1
            self.writes = 0
            for statement, params in statements:
                driver.execute(statement, params)

    def write(self, statement: str, params: Any) -> None:
        """Owe a write (SQL in the driver's parameter style)."""
        self.prefetched = None
        self.statements.append((statement, params))
        self.writes += 1


def owed_statements(conn: Connection) -> OwedStatements | None:
    """The statements owed to ``conn`` by the unit of work running on it, if any."""
    owed: OwedStatements | None = getattr(conn, OWED_KEY, None)
    return owed


def _commit_with(conn: Connection, owed: OwedStatements) -> None:
    """Send the writes a unit still owes and its ``COMMIT`` in one round trip (psycopg's
    pipeline mode). The connection is then idle, so the commit SQLAlchemy asks of the driver
    afterwards sends nothing; if a write fails, the ``COMMIT`` is not run and the error
    raises (as SQLAlchemy raises it), rolling the unit back."""
    _send_owed_with(conn, owed, "COMMIT")


def _send_owed_with(conn: Connection, owed: OwedStatements, statement: str) -> None:
    """Send what is owed to ``conn`` and then ``statement`` in one round trip (psycopg's
    pipeline mode); an error raises as SQLAlchemy raises it, and ``statement`` is then not
    run."""
    driver = driver_of(conn)
    dbapi = conn.dialect.loaded_dbapi
    try:
        with driver.pipeline():
            owed.send(driver)
            driver.execute(statement)
    except dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


def _install_owed_statements(engine: Engine) -> None:
    """A SQLAlchemy statement on a unit's connection first sends what the unit owes it."""

    @event.listens_for(engine, "before_cursor_execute")
    def _owed_first(conn: Connection, *_args: Any) -> None:
        owed: OwedStatements | None = getattr(conn, OWED_KEY, None)
        if owed is not None:
            owed.prefetched = None
            if owed.statements:
                owed.send(driver_of(conn))


def _execute_after_owed(conn: Connection, statement: str, params: tuple[object, ...]) -> None:
    """Run ``statement`` on the driver connection after what is owed to it (PostgreSQL)."""
    driver = driver_of(conn)
    owed = owed_statements(conn)
    if owed is not None:
        owed.send(driver)
    driver.execute(statement, params)


@contextmanager
def _savepoint(conn: Connection) -> Iterator[None]:
    """A savepoint, straight on the driver connection (sqlite3 and psycopg both have
    ``execute``; SQLAlchemy's nested transactions cost several times more per use): released on
    normal exit, rolled back to and released if the block raises."""
    driver = driver_of(conn)
    driver.execute("SAVEPOINT sessionward_unit")
    try:
        yield
    except BaseException:
        driver.execute("ROLLBACK TO SAVEPOINT sessionward_unit")
        driver.execute("RELEASE SAVEPOINT sessionward_unit")
        raise
    driver.execute("RELEASE SAVEPOINT sessionward_unit")


_SAVEPOINT: Final = "SAVEPOINT sessionward_unit"
_RELEASE: Final = "RELEASE SAVEPOINT sessionward_unit"
_ROLLBACK_TO: Final = "ROLLBACK TO SAVEPOINT sessionward_unit"
_SAVEPOINTS: Final = frozenset({_SAVEPOINT, _RELEASE})


@contextmanager
def _owed_savepoint(conn: Connection, owed: OwedStatements) -> Iterator[None]:
    """:func:`_savepoint` on PostgreSQL, its ``SAVEPOINT`` and ``RELEASE`` owed to the
    connection (:class:`OwedStatements`) instead of sent at once."""
    owed.prefetched = None
    at = len(owed.statements)
    owed.statements.append((_SAVEPOINT, None))
    queued_at = owed.sends
    try:
        yield
    except BaseException:
        owed.prefetched = None
        if owed.sends == queued_at:  # nothing sent since it opened: drop what it queued
            owed.writes -= sum(1 for s, _ in owed.statements[at + 1 :] if s not in _SAVEPOINTS)
            del owed.statements[at:]
        else:
            # What is still owed came after its savepoint, but may RELEASE savepoints opened
            # inside it: sent first, so that ROLLBACK TO finds this block's savepoint (the
            # newest of that name), and undone with the rest.
            driver = driver_of(conn)
            owed.send(driver)
            driver.execute(_ROLLBACK_TO)
            driver.execute(_RELEASE)
        raise
    owed.prefetched = None
    if owed.sends == queued_at and len(owed.statements) == at + 1:
        owed.statements.pop()  # it sent nothing and owes nothing
    else:
        owed.statements.append((_RELEASE, None))


class _GroupedUnit:
    """The savepoint of one unit of a :meth:`Database.run_units` group, opened when the unit
    starts and named after its place in the group (``sessionward_grouped_unit_<index>``).

    On SQLite it is sent when the unit starts and released when it ends. On PostgreSQL its
    ``SAVEPOINT`` and ``RELEASE`` are owed (:class:`OwedStatements`): they go in the same
    round trip as the statements around them, so grouping costs a unit no round trip of its
    own. What a unit still owes when it ends (its answerless writes) is sent then, with its
    ``RELEASE``, in one round trip, so that a write that fails is the failure of ITS unit
    (rolled back to its savepoint) and never of the next one; the last unit's go with the
    group's ``COMMIT`` (a failure there fails the whole group, as any failed commit does).
    The names differ per unit so that a ``ROLLBACK TO`` can only ever reach its own unit's
    savepoint: if one were skipped (a pipeline stops at its first error), the rollback
    fails and undoes the whole group instead of another unit's work.
    """

    __slots__ = ("_at", "_conn", "_driver", "_last", "_name", "_owed", "_queued_at")

    def __init__(
        self, conn: Connection, owed: OwedStatements | None, index: int, *, last: bool
    ) -> None:
        self._conn = conn
        self._driver = driver_of(conn)
        self._owed = owed
        self._last = last
        self._name = f"sessionward_grouped_unit_{index}"
        self._at = 0
        self._queued_at = 0
        if owed is None:
            self._driver.execute(f"SAVEPOINT {self._name}")
        else:
            self._at = len(owed.statements)
            self._queued_at = owed.sends
            owed.statements.append((f"SAVEPOINT {self._name}", None))

    def undo(self) -> None:
        """Roll the unit back (a unit that sent nothing drops what it queued)."""
        owed = self._owed
        if owed is not None and owed.sends == self._queued_at:
            queued = owed.statements[self._at + 1 :]
            owed.writes -= sum(1 for s, _ in queued if not _is_savepoint_statement(s))
            del owed.statements[self._at :]
            return
        if owed is not None:
            owed.send(self._driver)
        self._driver.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
        self._release()

    def end(self) -> Exception | None:
        """Release the unit's savepoint; the error of a write it owed that failed (the unit is
        then rolled back), else None."""
        owed = self._owed
        if owed is None or not owed.writes or self._last:
            self._release()
            return None
        release = f"RELEASE SAVEPOINT {self._name}"
        try:
            _send_owed_with(self._conn, owed, release)
        except DBAPIError as failed:
            self._driver.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
            self._driver.execute(release)
            return failed
        return None

    def _release(self) -> None:
        release = f"RELEASE SAVEPOINT {self._name}"
        if self._owed is None:
            self._driver.execute(release)
        elif self._owed.sends == self._queued_at and len(self._owed.statements) == self._at + 1:
            self._owed.statements.pop()  # it sent nothing and owes nothing
        else:
            self._owed.statements.append((release, None))


GROUP_LOCK_WAIT: Final = 0.2
"""Seconds a group of units (:meth:`Database.run_units`, PostgreSQL) waits for a lock before
the waiting unit is undone and run again alone: below PostgreSQL's ``deadlock_timeout``
(1 s by default), so that in a cycle the group's unit gives way, not the other transaction."""

_GROUP_LOCK_TIMEOUT: Final = f"SET LOCAL lock_timeout = '{int(GROUP_LOCK_WAIT * 1000)}ms'"

_LOCK_WAITS: Final = frozenset({"55P03", "40P01"})
"""SQLSTATEs of a statement that waited too long for a lock, or was cancelled to break a
deadlock (``lock_not_available``, ``deadlock_detected``)."""


def _waited_for_a_lock(outcome: object) -> bool:
    """Whether ``outcome`` is an exception that is (or was raised from) a PostgreSQL lock wait
    given up."""
    seen = outcome if isinstance(outcome, BaseException) else None
    for _ in range(8):  # the chain of causes, as far as it plausibly goes
        if seen is None:
            return False
        original = getattr(seen, "orig", None)
        for candidate in (seen, original):
            if getattr(candidate, "sqlstate", None) in _LOCK_WAITS:
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_savepoint_statement(statement: str) -> bool:
    return statement in _SAVEPOINTS or statement.startswith(_GROUPED_PREFIXES)


_GROUPED_PREFIXES: Final = (
    "SAVEPOINT sessionward_grouped_",
    "RELEASE SAVEPOINT sessionward_grouped_",
)


_DRIVER_KEY: Final = "_sessionward_driver"
"""The attribute of a unit's SQLAlchemy ``Connection`` that holds :func:`driver_of` it while
the unit runs (set and cleared by :class:`_Units`, like :data:`OWED_KEY`)."""


def driver_of(conn: Connection) -> Any:
    """What runs the store's own statements on ``conn``, in ``conn``'s transaction: the
    sqlite3 connection, or on PostgreSQL the :class:`~.pg_wire.Wire` of the psycopg one (the
    same ``execute`` and ``pipeline``, straight through libpq)."""
    held = getattr(conn, _DRIVER_KEY, None)
    if held is not None:
        return held
    return _driver_looked_up(conn)


def _driver_looked_up(conn: Connection) -> Any:
    driver = conn.connection.driver_connection
    assert driver is not None
    if conn.dialect.name == "postgresql":
        return wire_of(driver)
    return driver


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
            # Checkpoints run in the background (_WalCheckpoints), never inside a commit.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        # Straight on the driver: SQLAlchemy tracks no state for BEGIN, and the way through its
        # execution machinery costs more than the statement itself.
        driver_of(conn).execute(f"BEGIN {mode}")
