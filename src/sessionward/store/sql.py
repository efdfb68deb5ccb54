"""Hot-path statements in plain SQL, run on the driver connection under a SQLAlchemy one.

Every Execute issues about twenty statements. Through SQLAlchemy Core each costs about 35 µs
(compiled-cache lookup, execution context, result metadata, type processing) on top of about
12 µs in the driver itself: measured, 0.6-0.8 ms of a 2.2 ms Execute. The statements every
request repeats are therefore written here once, in SQL both SQLite and PostgreSQL accept, and
run straight on the DB-API connection (sqlite3 or psycopg, both of which have ``execute``), in
the SQLAlchemy connection's current transaction. Everything else in the store stays on Core.

What SQLAlchemy did for these statements is explicit instead:

- parameters are named (``:name``); each dialect gets its own placeholder style once, at import;
- ``uint256`` parameters (and result columns of :class:`~sessionward.store.schema.Uint256`
  type) are converted as the column type does: decimal text on SQLite, ``Decimal`` on
  PostgreSQL, range-checked on the way in, ``int`` on the way out;
- rows come back as mappings keyed by column name (:class:`Columns`, :class:`Select`), like
  ``Row._mapping``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError

from .database import Database, driver_of, owed_statements
from .schema import Uint256, uint256_column_value

RowValues = Mapping[Any, Any]
"""A row's values by column name: a Core ``Row._mapping`` or :meth:`Columns.mapping`."""

_NAMED: Final = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _pyformat(sql: str) -> str:
    """``:name`` → ``%(name)s`` (psycopg), with literal ``%`` doubled; ``::`` casts untouched."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


class Sql:
    """One statement: ``run(conn, params)`` executes it in ``conn``'s transaction and returns
    the driver's cursor (``fetchone``/``fetchall``/``rowcount``). ``uint256`` names the
    parameters bound as uint256 column values (``None`` passes through)."""

    __slots__ = ("_texts", "_uint256")

    def __init__(
        self, sql: str, *, postgresql: str | None = None, uint256: Iterable[str] = ()
    ) -> None:
        """``postgresql``: the statement's text there when it differs from ``sql`` (a row
        lock, for which SQLite has no syntax: its one writer holds the whole database)."""
        self._texts: Final = {
            "sqlite": sql,
            "postgresql": _pyformat(sql if postgresql is None else postgresql),
        }
        self._uint256: Final = tuple(uint256)

    def run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Errors are raised as SQLAlchemy raises them (``IntegrityError`` and so on), so callers
        handle both kinds of statement alike."""
        dialect = conn.dialect.name
        params = self._bound(params, dialect)
        text = self._texts[dialect]
        dbapi = conn.dialect.loaded_dbapi
        driver = driver_of(conn)
        try:
            if dialect != "postgresql":
                return _fetched(driver.execute(text, params))
            owed = owed_statements(conn)
            if owed is not None and owed.prefetched is not None:
                answer = owed.prefetched.get(_key_of(text, params))  # params: bound already
                if answer is not None:
                    return answer.again()
                owed.prefetched = None  # any other statement: what was read before is stale
            if owed is None or not owed.statements:
                return driver.execute(text, params)
            if driver.in_pipeline:
                owed.send(driver)  # inside a pipeline: queued ahead of the statement
                return driver.execute(text, params)
            # One round trip for the statement and the savepoints the unit owes first.
            with driver.pipeline():
                owed.send(driver)
                cursor = driver.execute(text, params)
            return cursor
        except dbapi.Error as exc:
            raise DBAPIError.instance(text, params, exc, dbapi.Error) from exc

    def key(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """What identifies this statement with ``params`` on PostgreSQL (:func:`prefetch`)."""
        return _key_of(self._texts["postgresql"], self._bound(params, "postgresql"))

    def run_later(self, db: Database, params: Mapping[str, Any]) -> None:
        """:meth:`run_owed` for a caller outside any transaction: inside a unit of work it
        joins the unit's (on PostgreSQL owed, sent with its next statement or its commit, in
        the same round trip; an error then raises there); elsewhere it runs at once in a
        ``writing`` block of its own, as :meth:`run` would."""
        with db.writing(savepoint=False) as conn:  # one statement, its error uncaught
            self.run_owed(conn, params)

    def run_owed(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """A write whose answer nobody reads, in the caller's transaction ``conn``: on
        PostgreSQL inside a unit of work it is owed to the unit's connection and sent with its
        next statement or its end, in that round trip (an error then raises there, and fails
        the unit), and None is answered; elsewhere it runs at once on ``conn``, as :meth:`run`
        would, and its cursor is answered. Only for a write that cannot miss nor fail but as
        the database fails (its row locked, or new)."""
        owed = owed_statements(conn)
        if owed is None:
            return self.run(conn, params)
        owed.write(self._texts["postgresql"], self._bound(params, "postgresql"))
        return None

    def _bound(self, params: Mapping[str, Any], dialect: str) -> Mapping[str, Any]:
        """``params`` with the ``uint256`` ones converted as their column type does."""
        if not self._uint256:
            return params
        bound = dict(params)
        for name in self._uint256:
            if bound[name] is not None:
                bound[name] = uint256_column_value(bound[name], dialect)
        return bound


def _key_of(text: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
    return (text, *sorted(params.items()))


def prefetch(
    conn: Connection, reads: Sequence[tuple[Sql, Mapping[str, Any]]]
) -> list[list[Any]] | None:
    """On PostgreSQL inside a unit of work: run the reads (statements that only read) now, in
    ONE round trip (:func:`pipeline`), and keep their answers, so that the unit's next
    statements asking the same (same SQL, same parameters) are answered from them without
    a round trip. They are kept until any other statement runs on the unit's connection (a
    write, a lock, a savepoint rolled back, a read not prefetched) or the unit ends: an answer
    is only ever given where asking the database again could have answered the same (nothing
    of this unit ran in between). No-op on SQLite (every read is local) and outside a unit.

    For a request whose reads are known up front but made one after another by code that
    needs each answer (the session, its wallet, the freezes and the counters of a decision):
    one round trip instead of one per read.

    Answers the rows of each read, in order (None where nothing was run); :func:`answer_as`
    can then file an answer under another statement that would have answered the same."""
    if conn.dialect.name != "postgresql" or owed_statements(conn) is None:
        return None
    with pipeline(conn):
        sent = send_reads(conn, reads)
    return file_reads(conn, sent)


SentReads = list[tuple[tuple[Any, ...], Any]]
"""Reads sent by :func:`send_reads`, their answers still to come."""


def send_reads(conn: Connection, reads: Sequence[tuple[Sql, Mapping[str, Any]]]) -> SentReads:
    """The first half of :func:`prefetch`, inside a :func:`pipeline` the caller holds (which
    may carry statements of its own before them): send the reads."""
    return [(sql.key(params), sql.run(conn, params)) for sql, params in reads]


def file_reads(conn: Connection, sent: SentReads) -> list[list[Any]]:
    """The second half of :func:`prefetch`, once the pipeline is over: keep the answers of
    the reads :func:`send_reads` sent for the unit's next statements; their rows, in order.
    Nothing may have run on ``conn`` since the pipeline."""
    answers = [(key, _Prefetched(cursor)) for key, cursor in sent]
    owed = owed_statements(conn)
    if owed is not None:
        owed.prefetched = dict(answers)
    return [answer.rows for _, answer in answers]


ReadsAhead = Callable[[Connection], Callable[[], None]]
"""Reads a unit will make (:func:`read_ahead`): sends them on the connection, inside a
pipeline, and returns what files their answers once it is over."""


def read_ahead(db: Database, reads: ReadsAhead) -> None:
    """Inside a unit of work on PostgreSQL: send ``reads`` behind the unit's next write that
    carries reads ahead (:func:`behind_it_the_reads_ahead`), in the same round trip, and
    answer the unit's next statements from them (:func:`prefetch`); replaces reads registered
    before. No-op elsewhere.

    For a request whose first write is its replay nonce (authentication) and whose reads are
    known from its body before it is authenticated: the reads go only once the signature has
    verified, and cost no round trip of their own."""
    owed = db.owed_by_unit
    if owed is not None:
        owed.reads_ahead = reads


@contextmanager
def behind_it_the_reads_ahead(conn: Connection) -> Iterator[None]:
    """The statements the block runs, then the reads registered with :func:`read_ahead` (if
    any, once), in one round trip (one :func:`pipeline`): the reads run after the block's
    statements, so they see what those wrote. Without reads registered, the block runs as
    it would. The block must not read an answer of its own statements (that would cost a
    round trip): read them after it."""
    owed = owed_statements(conn)
    reads = None if owed is None else owed.reads_ahead
    if owed is None or reads is None:
        yield
        return
    owed.reads_ahead = None
    with pipeline(conn):
        yield
        file = reads(conn)
    file()


def prefetched(conn: Connection, sql: Sql, params: Mapping[str, Any]) -> bool:
    """Whether ``sql`` with ``params`` would be answered from a :func:`prefetch` now."""
    owed = owed_statements(conn)
    return owed is not None and owed.prefetched is not None and sql.key(params) in owed.prefetched


def answer_as(conn: Connection, sql: Sql, params: Mapping[str, Any], rows: list[Any]) -> None:
    """After :func:`prefetch` (and nothing else since) on ``conn``: answer ``sql`` with
    ``params`` with ``rows``, which the caller knows to be what it would answer now (e.g. the
    session read by id, found by a read that followed the transaction's ``session_id``)."""
    owed = owed_statements(conn)
    if owed is not None and owed.prefetched is not None:
        owed.prefetched[sql.key(params)] = _Prefetched.of(rows)


class _Prefetched:
    """A prefetched answer (see :func:`prefetch`): its rows, handed out afresh each time.

    Rows only: psycopg builds a cursor's ``description`` anew on every access (a column
    object per column), which cost 7 % of the interpreter's time of a PostgreSQL session call
    (py-spy, issue 16), and no caller reads it."""

    __slots__ = ("_rowcount", "rows")

    def __init__(self, cursor: Any) -> None:
        self.rows: list[Any] = cursor.fetchall()
        self._rowcount: int = cursor.rowcount
        cursor.close()

    @classmethod
    def of(cls, rows: list[Any]) -> _Prefetched:
        answer = cls.__new__(cls)
        answer.rows, answer._rowcount = rows, len(rows)
        return answer

    def again(self) -> _Fetched:
        return _Fetched.of(self.rows, self._rowcount)


class _Fetched:
    """A statement's rows, read to the end at once (see :func:`_fetched`); offers what
    callers use of a driver cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``,
    ``lastrowid``)."""

    __slots__ = ("_at", "_rows", "lastrowid", "rowcount")

    def __init__(self, cursor: Any) -> None:
        self._rows: list[Any] = cursor.fetchall()
        self._at = 0
        self.rowcount: int = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        cursor.close()

    @classmethod
    def of(cls, rows: list[Any], rowcount: int) -> _Fetched:
        """An answer of ``rows`` already read (a prefetched one, :func:`prefetch`)."""
        answer = cls.__new__(cls)
        answer._rows, answer._at = rows, 0
        answer.rowcount, answer.lastrowid = rowcount, None
        return answer

    def fetchone(self) -> Any:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def _fetched(cursor: Any) -> Any:
    """On SQLite, a statement that answers rows is read to its end and its cursor closed
    before anything else happens. Pipelinable code keeps cursors to read later (see
    :func:`pipeline`), and a SQLite cursor left unread keeps its statement active on the
    pooled connection past the transaction's COMMIT. Seen: concurrent Executes and a
    revocation then failed now and then with "database is locked" at ``BEGIN IMMEDIATE``, at
    once, whatever the busy timeout (tests/service/test_service_linearizability.py: 2 to 6 of
    24 runs under load failed before, none of 48 since)."""
    if cursor.description is None:  # no rows: the statement has run to its end
        return cursor
    return _Fetched(cursor)


def insert_of(table: Table) -> Sql:
    """``INSERT`` of one row of ``table``: one parameter per column, named after it (every
    column must be given, ``None`` for NULL)."""
    names = [c.name for c in table.columns]
    columns = ", ".join(f'"{n}"' for n in names)
    values = ", ".join(f":{n}" for n in names)
    return Sql(
        f"INSERT INTO {table.name} ({columns}) VALUES ({values})",
        uint256=[c.name for c in table.columns if isinstance(c.type, Uint256)],
    )


def _to_int(value: Any) -> int | None:
    return None if value is None else int(value)


class Columns:
    """The columns of ``table`` as a SELECT list, and rows of them as mappings (``Uint256``
    columns as ``int``, the rest as the driver returns them)."""

    __slots__ = ("_converted", "names", "sql")

    def __init__(self, table: Table) -> None:
        self.names: Final = tuple(c.name for c in table.columns)
        self.sql: Final = ", ".join(f'"{name}"' for name in self.names)
        self._converted: Final = tuple(
            i for i, c in enumerate(table.columns) if isinstance(c.type, Uint256)
        )

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        values = list(row)
        for i in self._converted:
            values[i] = _to_int(values[i])
        return dict(zip(self.names, values, strict=True))


class Select:
    r"""``SELECT`` of every column of ``table`` ``WHERE`` ``condition`` (SQL with ``:name``
    parameters; it may end with ``ORDER BY``/``LIMIT``), rows as :meth:`Columns.mapping`\ s."""

    __slots__ = ("_columns", "_sql")

    def __init__(self, table: Table, condition: str) -> None:
        self._columns: Final = Columns(table)
        self._sql: Final = Sql(f"SELECT {self._columns.sql} FROM {table.name} WHERE {condition}")

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.read(self._sql.run(conn, params))

    def send(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Run the select without reading its answer (pipelinable, see :func:`pipeline`); the
        driver's cursor, for :meth:`read`."""
        return self._sql.run(conn, params)

    def read(self, cursor: Any) -> dict[str, Any] | None:
        """The first row of a :meth:`send`'s cursor, as :meth:`first` gives it."""
        row = cursor.fetchone()
        return None if row is None else self._columns.mapping(row)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [self._columns.mapping(row) for row in self._sql.run(conn, params).fetchall()]

    @property
    def sql(self) -> Sql:
        """The statement (for :func:`prefetch`)."""
        return self._sql


@contextmanager
def pipeline(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the :class:`Sql` statements run inside the block are sent without waiting
    for their answers (psycopg's pipeline mode) and the block's end waits for all of them at
    once: ONE round trip for the lot. Their cursors are read after the block (reading one
    inside it costs a round trip of its own, correctly). Each statement still runs on its own,
    in order, with its own snapshot; a statement that fails makes the ones after it fail too,
    and the error (as SQLAlchemy raises it: ``IntegrityError`` and so on) is raised at the
    block's end. SQLAlchemy statements must not run inside. No-op on SQLite, where every
    statement runs when it is issued."""
    if conn.dialect.name != "postgresql":
        yield
        return
    dbapi = conn.dialect.loaded_dbapi
    driver = driver_of(conn)
    try:
        with driver.pipeline():
            owed = owed_statements(conn)
            if owed is not None:
                owed.prefetched = None
                owed.send(driver)
            yield
    except dbapi.Error as exc:
        raise DBAPIError.instance("<pipeline>", None, exc, dbapi.Error) from exc
