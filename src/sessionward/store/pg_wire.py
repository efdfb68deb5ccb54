"""The store's own statements on PostgreSQL, sent straight through libpq (psycopg's ``pq``).

The statements the store runs on the driver connection itself (:mod:`.sql`'s hot path, the
owed writes, savepoints and advisory locks of :mod:`.database`) go through a :class:`Wire`
instead of psycopg's ``Connection.execute``. psycopg's cursor machinery costs far more client
CPU than the work it wraps: measured on the 2-core machine, a pipeline of five one-row selects
by key costs 430-510 µs of client CPU through ``Connection.execute`` and 97 µs this way (one
select alone 130-220 µs against 69 µs). A PostgreSQL session call runs about 30 such
statements, all on the one unit-writer thread of a node (issue 16).

What psycopg would do is kept, so callers cannot tell the difference:

- **the transaction**: a statement sent while the connection is idle (and not in autocommit)
  is preceded by psycopg's own ``BEGIN`` (its isolation level included). psycopg reads the
  transaction state from libpq, so it then sends no ``BEGIN`` of its own, and its
  ``commit()``/``rollback()`` end the transaction as before;
- **values**: parameters are dumped by psycopg's adapters, with the types psycopg sends
  (text format), and rows are loaded by its loaders as tuples;
- **errors** are psycopg's exception classes (``error_from_result``), so SQLAlchemy maps
  them as before (``IntegrityError`` and so on);
- **pipelines** (:meth:`Wire.pipeline`): the statements sent in a block go in one round trip
  at its end; a statement that fails makes the ones after it fail; the first error raises at
  the block's end; reading an answer inside the block first syncs what was sent (a round
  trip of its own). An inner block syncs at its end, as psycopg's does.

A statement that reads or writes rows (``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``,
``WITH``) is prepared on its connection at its first run, once per set of parameter types, as
a named protocol-level statement: it lasts as long as the connection (a rollback does not
undo it). Other statements (savepoints, ``SET LOCAL``, ``COMMIT``) are sent as they are.
SQLAlchemy's own statements still run through psycopg, never inside a :meth:`Wire.pipeline`
block.
"""

from __future__ import annotations

import re
import select
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

_PLACEHOLDER: Final = re.compile(r"%\((\w+)\)s|%s|%%")
_PREPARABLE: Final = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_MAX_PREPARED: Final = 512
"""Named statements per connection at most (the store has a few dozen hot ones; past this,
statements run unprepared rather than fill the server's memory)."""

_MAX_STATEMENTS: Final = 4096
"""Statement texts whose conversion is kept per connection (a cache: past this it starts
again, so statements that embed their values cannot grow it without bound)."""

_TUPLES_OK: Final = pq.ExecStatus.TUPLES_OK
_COMMAND_OK: Final = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR: Final = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC: Final = pq.ExecStatus.PIPELINE_SYNC
_IDLE: Final = pq.TransactionStatus.IDLE
_TEXT: Final = PyFormat.TEXT


class _Statement:
    """A statement in psycopg's parameter style (``%(name)s`` or ``%s``, ``%%`` for ``%``)
    turned into libpq's (``$1``...): its SQL, and the order its parameters are bound in."""

    __slots__ = ("count", "names", "preparable", "query")

    def __init__(self, statement: str) -> None:
        names: list[str] = []
        positional = 0

        def placeholder(found: re.Match[str]) -> str:
            nonlocal positional
            token = found.group(0)
            if token == "%%":
                return "%"
            name = found.group(1)
            if name is None:
                positional += 1
                return f"${positional}"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.query: Final = _PLACEHOLDER.sub(placeholder, statement).encode("utf-8")
        if names and positional:
            raise ValueError("a statement's parameters are all named or all positional")
        self.names: Final = tuple(names)
        self.count: Final = len(names) or positional
        self.preparable: Final = statement.lstrip().upper().startswith(_PREPARABLE)

    def values(self, params: Mapping[str, Any] | Sequence[Any] | None) -> list[Any]:
        """The parameters in binding order (``KeyError``/``ValueError`` for missing ones)."""
        if not self.count:
            return []
        if self.names:
            assert isinstance(params, Mapping), "named parameters come as a mapping"
            return [params[name] for name in self.names]
        assert params is not None and not isinstance(params, Mapping)
        if len(params) != self.count:
            raise ValueError(f"the statement takes {self.count} parameters, not {len(params)}")
        return list(params)


class Answer:
    """A statement's answer, as much of a DB-API cursor as the store reads: ``fetchone``,
    ``fetchall``, iteration and ``rowcount`` (``-1`` for a statement that counts no rows).
    Inside a pipeline it is filled when the pipeline syncs; reading it before syncs first."""

    __slots__ = ("_at", "_error", "_rowcount", "_rows", "_wire")

    lastrowid: Final = None

    def __init__(self, wire: Wire) -> None:
        self._wire: Wire | None = wire
        self._rows: list[Any] = []
        self._at = 0
        self._error: psycopg.Error | None = None
        self._rowcount = -1

    @property
    def rowcount(self) -> int:
        self._ready()
        return self._rowcount

    def fetchone(self) -> Any:
        self._ready()
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        self._ready()
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        """Nothing to release (the rows were read when the answer arrived)."""

    def _ready(self) -> None:
        if self._wire is not None:
            self._wire.sync()
        if self._error is not None:
            raise self._error

    def _settle(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self._rowcount, self._wire = rows, rowcount, None

    def _fail(self, error: psycopg.Error) -> None:
        self._error, self._wire = error, None


class _Preparing:
    """A ``PREPARE`` sent in a pipeline: forgotten again unless the server accepted it."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[bytes, tuple[int, ...]]) -> None:
        self.key = key


class Wire:
    """Statements on one psycopg connection, straight through libpq (module docstring).
    One per connection (:func:`wire_of`), used by one thread at a time, as the connection."""

    __slots__ = (
        "_began",
        "_depth",
        "_driver",
        "_named",
        "_prepared",
        "_read",
        "_sent",
        "_statements",
        "_transformer",
        "_write",
        "pgconn",
    )

    def __init__(self, driver: psycopg.Connection[Any]) -> None:
        self._driver = driver
        self.pgconn: Final = driver.pgconn
        self._transformer = Transformer(driver)
        self._prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._named = 0
        self._statements: dict[str, _Statement] = {}
        self._sent: list[Answer | _Preparing] = []
        self._depth = 0
        self._began = False
        self._read = select.poll()
        self._write = select.poll()

    @property
    def in_pipeline(self) -> bool:
        """Whether a :meth:`pipeline` block is open (statements are queued, not waited for)."""
        return self._depth > 0

    def execute(
        self, statement: str, params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> Answer:
        """Run ``statement`` (psycopg's parameter style) with ``params``; its answer. Inside
        a :meth:`pipeline` block it is only queued (its answer fills at the block's end);
        outside, it runs now (one round trip) and its error raises here."""
        if self._depth:
            return self._send(statement, params)
        with self.pipeline():
            answer = self._send(statement, params)
        return answer

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements executed inside go in one round trip at the block's end (module
        docstring); the first error raises there. If the block raises, what was sent is
        still waited for (so the connection stays usable) and the block's exception wins."""
        outer = self._depth == 0
        if outer:
            self.pgconn.enter_pipeline_mode()
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            try:
                with suppress(psycopg.Error):  # the block's own exception is the one to report
                    self.sync()
            finally:
                if outer:
                    self._leave()
            raise
        self._depth -= 1
        try:
            self.sync()
        finally:
            if outer:
                self._leave()

    def sync(self) -> None:
        """Wait for the answers of every statement sent so far (one round trip; none if
        nothing is outstanding) and fill them; raise the first error among them."""
        sent, self._sent = self._sent, []
        self._began = False
        if not sent:
            return
        pgconn = self.pgconn
        try:
            pgconn.pipeline_sync()
            self._flush()
            first_error: psycopg.Error | None = None
            for item in sent:
                result = None
                while (got := self._next_result()) is not None:
                    result = got
                error = self._take(item, result)
                if first_error is None:
                    first_error = error
            self._read_to_the_sync()
        except BaseException:
            # The connection's state is unknown half way through a pipeline: close it, so
            # that SQLAlchemy's pool discards it rather than hand it out again.
            pgconn.finish()
            raise
        if first_error is not None:
            raise first_error

    # --- inside ---------------------------------------------------------------------------

    def _send(self, statement: str, params: Mapping[str, Any] | Sequence[Any] | None) -> Answer:
        parsed = self._statements.get(statement)
        if parsed is None:
            if len(self._statements) >= _MAX_STATEMENTS:  # statements built with their values
                self._statements.clear()
            parsed = self._statements[statement] = _Statement(statement)
        pgconn = self.pgconn
        if not self._began and pgconn.transaction_status == _IDLE and not self._driver.autocommit:
            # psycopg's own BEGIN (with its isolation level): it sends none once libpq reports
            # the transaction open.
            pgconn.send_query_params(self._driver._get_tx_start_command(), None)
            self._sent.append(Answer(self))
            self._began = True
        values = parsed.values(params)
        if not values and not parsed.preparable:  # a savepoint, a SET LOCAL, a COMMIT
            pgconn.send_query_params(parsed.query, None)
        else:
            transformer = self._transformer
            dumped = transformer.dump_sequence(values, [_TEXT] * len(values))
            types = transformer.types or ()
            key = (parsed.query, types)
            name = self._prepared.get(key)
            if name is None and parsed.preparable and len(self._prepared) < _MAX_PREPARED:
                self._named += 1  # never reused, so a name never meets an older one
                name = b"sessionward_%d" % self._named
                pgconn.send_prepare(name, parsed.query, param_types=types)
                self._sent.append(_Preparing(key))
                self._prepared[key] = name
            if name is None:
                pgconn.send_query_params(parsed.query, dumped, param_types=types)
            else:
                pgconn.send_query_prepared(name, dumped)
        answer = Answer(self)
        self._sent.append(answer)
        return answer

    def _take(
        self, item: Answer | _Preparing, result: pq.abc.PGresult | None
    ) -> psycopg.Error | None:
        """File ``result`` under what it answers; the error it carries, if any."""
        status = None if result is None else result.status
        error = None
        if status == _FATAL_ERROR:
            assert result is not None
            error = psycopg.errors.error_from_result(result, encoding=self._driver.info.encoding)
        elif status not in (_TUPLES_OK, _COMMAND_OK):  # aborted: an earlier statement failed
            error = psycopg.OperationalError(
                "the statement was not run: an earlier statement of its pipeline failed"
            )
        if isinstance(item, _Preparing):
            if error is not None:
                self._prepared.pop(item.key, None)
            return error
        if error is not None:
            item._fail(error)
            return error
        assert result is not None
        rows: list[Any] = []
        if status == _TUPLES_OK and result.ntuples:
            self._transformer.set_pgresult(result)
            rows = self._transformer.load_rows(0, result.ntuples, tuple)
        counted = result.command_tuples
        item._settle(rows, -1 if counted is None else counted)
        return None

    def _read_to_the_sync(self) -> None:
        """Read past the answers' separators to the pipeline's sync result."""
        got = self._next_result()
        while got is None or got.status != _PIPELINE_SYNC:
            got = self._next_result()

    def _next_result(self) -> pq.abc.PGresult | None:
        pgconn = self.pgconn
        while pgconn.is_busy():
            self._wait(self._read, select.POLLIN)
            pgconn.consume_input()
        return pgconn.get_result()

    def _flush(self) -> None:
        while self.pgconn.flush():
            self._wait(self._write, select.POLLOUT)

    def _wait(self, poll: select.poll, events: int) -> None:
        fd = self.pgconn.socket
        poll.register(fd, events)
        try:
            poll.poll()
        finally:
            poll.unregister(fd)

    def _leave(self) -> None:
        if self.pgconn.pipeline_status != pq.PipelineStatus.OFF:
            self.pgconn.exit_pipeline_mode()


_WIRE_ATTRIBUTE: Final = "_sessionward_wire"


def wire_of(driver: psycopg.Connection[Any]) -> Wire:
    """The :class:`Wire` of psycopg connection ``driver`` (made at first use, kept with it)."""
    wire: Wire | None = getattr(driver, _WIRE_ATTRIBUTE, None)
    if wire is None or wire.pgconn is not driver.pgconn:
        wire = Wire(driver)
        setattr(driver, _WIRE_ATTRIBUTE, wire)
    return wire
