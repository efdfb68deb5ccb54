"""The audit log's storage: append-only hash-chained streams (see
:mod:`sessionward.domain.audit` for the chain and its verifier).

:meth:`AuditLog.append` reads the stream's head and inserts the next seq in one transaction. On
SQLite the write lock makes that atomic; on PostgreSQL appenders to one stream queue on an
advisory lock named after the stream. Even without it the ``(stream, seq)`` primary key lets only
one of two appenders that read the same head insert; the other retries with the new head.
Nothing here updates or deletes a record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from sessionward.domain.audit import (
    GENESIS_HASH,
    AuditHead,
    AuditRecord,
    AuditVerdict,
    canonical_chain_hash,
    canonical_json,
    verify_chain,
)

from .database import Database
from .errors import StateChurn
from .schema import audit
from .sql import RowValues, Sql, insert_of

# Built once: every signed call appends (statement building is per-call CPU).
# What the next record chains onto: the head's seq and hash (its payload is not needed).
_HEAD_LINK: Final = Sql(
    'SELECT seq, "hash" FROM audit WHERE stream = :stream ORDER BY seq DESC LIMIT 1'
)
_APPEND: Final = insert_of(audit)


def _record(m: RowValues) -> AuditRecord:
    """Decode a row without ever raising: damaged fields decode to values that cannot hash
    correctly, so the verifier reports the record instead of crashing on it."""
    try:
        payload = json.loads(m["payload"])
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"<undecodable payload>": str(m["payload"])}
    return AuditRecord(
        stream=m["stream"],
        seq=m["seq"],
        at=m["at"],
        kind=m["kind"],
        payload=payload,
        prev_hash=_unhex(m["prev_hash"]),
        hash=_unhex(m["hash"]),
    )


def _unhex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        return b""


class AuditTail:
    """A stream's head as read under its lock (:meth:`AuditLog.read_head_in`), to chain the
    next record onto."""

    __slots__ = ("_cursor", "stream")

    def __init__(self, stream: str, cursor: Any) -> None:
        self.stream: Final = stream
        self._cursor = cursor

    def append(self, conn: Connection, kind: str, text_payload: str, *, at: int) -> AuditRecord:
        """Insert the next record (``text_payload``: canonical JSON) and return it; the insert
        is sent like any :class:`~sessionward.store.sql.Sql` statement (pipelinable). Call it
        once per tail."""
        record = self._next(kind, text_payload, at=at)
        _APPEND.run(conn, _row_of(record, text_payload))
        return record

    def append_owed(
        self, conn: Connection, kind: str, text_payload: str, *, at: int
    ) -> AuditRecord:
        """:meth:`append` as an answerless write: owed to the unit of work on PostgreSQL and
        sent with its next statement or its end (:meth:`~sessionward.store.sql.Sql.run_owed`).
        The tail was read under the stream's lock, held to the commit, so no other appender
        can take its place. Call it once per tail."""
        record = self._next(kind, text_payload, at=at)
        _APPEND.run_owed(conn, _row_of(record, text_payload))
        return record

    def _next(self, kind: str, text_payload: str, *, at: int) -> AuditRecord:
        head = self._cursor.fetchone()
        stream = self.stream
        seq, prev_hash = (1, GENESIS_HASH) if head is None else (int(head[0]) + 1, _unhex(head[1]))
        # A damaged head hash (not 32 bytes) raises ValueError here: nothing chains onto it.
        digest = canonical_chain_hash(prev_hash, stream, seq, at, kind, text_payload)
        return AuditRecord(stream, seq, at, kind, json.loads(text_payload), prev_hash, digest)


def _row_of(record: AuditRecord, text_payload: str) -> dict[str, Any]:
    return {
        "stream": record.stream,
        "seq": record.seq,
        "at": record.at,
        "kind": record.kind,
        "payload": text_payload,
        "prev_hash": record.prev_hash.hex(),
        "hash": record.hash.hex(),
    }


class AuditLog:
    """Append to and read the audit streams."""

    _ATTEMPTS: Final = 20

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, stream: str, kind: str, payload: Mapping[str, Any], *, at: int) -> AuditRecord:
        """Append a record to ``stream`` (a wallet id or ``"global"``) and return it.

        ``payload`` must be canonical JSON material (no floats; see
        :func:`sessionward.domain.audit.canonical_json`), else ``ValueError``.
        """
        for _ in range(self._ATTEMPTS):
            try:
                with self._db.writing() as conn:
                    return self.append_in(conn, stream, kind, payload, at=at)
            except IntegrityError:
                continue  # another node appended this seq first: chain onto its record
        raise StateChurn(f"audit stream {stream} is too contended")

    def append_in(
        self, conn: Connection, stream: str, kind: str, payload: Mapping[str, Any], *, at: int
    ) -> AuditRecord:
        """:meth:`append` inside a transaction the caller holds; the stream's advisory lock
        (PostgreSQL) serialises appenders, so the record commits with the caller's work."""
        text_payload = canonical_json(payload)
        return self.read_head_in(conn, stream).append(conn, kind, text_payload, at=at)

    def read_head_in(self, conn: Connection, stream: str) -> AuditTail:
        """Take the stream's lock (PostgreSQL) and send the read of its head, without reading
        the answer: inside a :func:`sessionward.store.sql.pipeline` both go with the
        statements around them, no round trip of their own (the head is read once the lock
        is held: they are two statements). :meth:`AuditTail.append` then appends, in the
        same transaction."""
        self._db.lock_key(conn, f"audit:{stream}")
        return AuditTail(stream, _HEAD_LINK.run(conn, {"stream": stream}))

    def records(self, stream: str) -> list[AuditRecord]:
        """The records of ``stream`` in seq order."""
        statement = select(audit).where(audit.c.stream == stream).order_by(audit.c.seq)
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(statement)]

    def head(self, stream: str) -> AuditHead | None:
        """The stream's last record (to be kept elsewhere as an anchor for :meth:`verify`)."""
        statement = (
            select(audit.c.seq, audit.c.hash)
            .where(audit.c.stream == stream)
            .order_by(audit.c.seq.desc())
            .limit(1)
        )
        with self._db.reading() as conn:
            row = conn.execute(statement).first()
        return None if row is None else AuditHead(stream, row[0], bytes.fromhex(row[1]))

    def streams(self) -> list[str]:
        with self._db.reading() as conn:
            return [
                r[0] for r in conn.execute(select(audit.c.stream).distinct().order_by("stream"))
            ]

    def verify(
        self, stream: str | None = None, *, heads: Mapping[str, AuditHead] | None = None
    ) -> AuditVerdict:
        """Verify one stream, or every stream when ``stream`` is None (``heads``: trusted
        anchors, see :func:`sessionward.domain.audit.verify_chain`)."""
        statement = select(audit).order_by(audit.c.stream, audit.c.seq)
        if stream is not None:
            statement = statement.where(audit.c.stream == stream)
            heads = {k: v for k, v in (heads or {}).items() if k == stream}
        with self._db.reading() as conn:
            records = [_record(row._mapping) for row in conn.execute(statement)]
        return verify_chain(records, heads=heads)
