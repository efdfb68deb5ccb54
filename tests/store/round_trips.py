"""Counting PostgreSQL round trips: libpq's own protocol trace on every pooled connection.

A *round trip* is a wait for the server. The client waits for an answer after each simple
``Query`` message, and after each ``Sync`` of the extended protocol: psycopg ends every
statement with one (Parse/Bind/Describe/Execute/Sync), and in pipeline mode sends the
statements of the whole pipeline with ONE ``Sync`` at its end. So the round trips are the
``Query`` and ``Sync`` messages the client (``F`` lines of libpq's trace) sent. (Counting the
switches from sending to reading would over-count a pipeline: psycopg reads the answers that
are already there while it is still sending.)

Used by the test that pins the round trips of an Execute on PostgreSQL
(``tests/store/test_store_round_trips.py``) and by ``bench/execute.py --round-trips``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from psycopg import pq
from sqlalchemy import Engine, event


@dataclass
class Traced:
    """What the connections sent while counting: round trips and the messages in order (a
    message whose SQL spans lines is one line here)."""

    round_trips: int = 0
    lines: list[str] = field(default_factory=list)
    prepared: dict[str, str] = field(default_factory=dict)
    """The SQL of each named statement the connections prepared, inside the block or before."""

    def statements(self) -> list[str]:
        """The SQL run (Query and unnamed Parse messages, and each Bind of a named statement
        as that statement's SQL), in order."""
        found = []
        for line in self.lines:
            parts = line.split("\t")
            if len(parts) < 4 or parts[0] != "F":
                continue
            if parts[2] == "Query" or (parts[2] == "Parse" and parts[3].startswith(' ""')):
                found.append(parts[3].strip())
            elif parts[2] == "Bind":
                name = _quoted(parts[3], 1)
                if name:
                    found.append(self.prepared.get(name, f"<prepared {name}>"))
        return found


def _quoted(text: str, index: int) -> str:
    """The ``index``-th double-quoted field of a trace message's text."""
    return text.split('"')[2 * index + 1] if text.count('"') > 2 * index else ""


def _messages(text: str) -> list[str]:
    """A trace's lines, a message whose text spans several lines joined into one."""
    messages: list[str] = []
    for line in text.split("\n"):
        if not line:
            continue
        if messages and not line.startswith(("F\t", "B\t")):
            messages[-1] += "\n" + line
        else:
            messages.append(line)
    return messages


def _named_statements(messages: list[str]) -> dict[str, str]:
    named = {}
    for message in messages:
        parts = message.split("\t", 3)
        if len(parts) == 4 and parts[0] == "F" and parts[2] == "Parse":
            name = _quoted(parts[3], 0)
            if name:
                named[name] = parts[3].strip()
    return named


def count_round_trips(lines: list[str]) -> int:
    """Round trips in a trace: the ``Query`` and ``Sync`` messages sent (module docstring)."""
    trips = 0
    for line in lines:
        parts = line.split("\t", 3)
        if len(parts) >= 3 and parts[0] == "F" and parts[2] in ("Query", "Sync"):
            trips += 1
    return trips


class RoundTripCounter:
    """Traces every psycopg connection ``engine`` hands out; :meth:`counting` collects what
    they sent inside its block.

    Install before the connections are needed (it disposes of the pool so that every
    connection is checked out, hence traced, afresh) and :meth:`remove` afterwards.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._files: dict[int, tuple[Any, int, str]] = {}
        self._directory = tempfile.TemporaryDirectory(prefix="sw-round-trips-")
        engine.dispose()
        event.listen(engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, *_args: Any) -> None:
        key = id(dbapi_connection)
        if key in self._files:
            return
        path = os.path.join(self._directory.name, f"{len(self._files)}.trace")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pgconn = dbapi_connection.pgconn
        pgconn.trace(fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self._files[key] = (pgconn, fd, path)

    def _offsets(self) -> dict[str, int]:
        return {path: os.path.getsize(path) for _pgconn, _fd, path in self._files.values()}

    @contextmanager
    def counting(self) -> Iterator[Traced]:
        """The round trips of every traced connection (and the connections first checked out)
        inside the block."""
        before = self._offsets()
        traced = Traced()
        yield traced
        for _pgconn, _fd, path in self._files.values():
            with open(path, "rb") as handle:
                earlier = handle.read(before.get(path, 0)).decode("utf-8", errors="replace")
                lines = _messages(handle.read().decode("utf-8", errors="replace"))
            traced.round_trips += count_round_trips(lines)
            traced.lines.extend(lines)
            traced.prepared.update(_named_statements(_messages(earlier) + lines))

    def remove(self) -> None:
        """Stop tracing; the pool is disposed of (its connections were traced)."""
        event.remove(self._engine, "checkout", self._on_checkout)
        for pgconn, fd, _path in self._files.values():
            with suppress(Exception):
                pgconn.untrace()
            with suppress(OSError):
                os.close(fd)
        self._files.clear()
        self._engine.dispose()
        self._directory.cleanup()
