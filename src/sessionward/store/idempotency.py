"""Idempotency keys: one execution per ``(credential, Idempotency-Key)``, and its stored answer.

A mutation carrying an ``Idempotency-Key`` first *claims* the key (:meth:`IdempotencyKeys.claim`):
the primary key ``(credential_id, key)`` makes exactly one of any number of concurrent claims,
on any node sharing the database, the one that executes. The claim remembers the API method
and a hash of the request, so the same key sent with another request is told apart from a
retry. When the request has been answered, :meth:`IdempotencyKeys.complete` stores the status
and the response body, which every later retry gets back verbatim; a request that failed on
the server's side (5xx) :meth:`IdempotencyKeys.release`\\ s its claim so a retry can execute.

A claim left in flight by a process that died is taken over after ``stale_after_s`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import bindparam, delete, select, update

from .database import Database
from .schema import idempotency
from .sql import Sql

ClaimState = Literal["claimed", "replay", "mismatch", "in_flight"]

DEFAULT_STALE_AFTER_S: Final = 300

CLAIM_INTO: Final = (
    'INSERT INTO idempotency (credential_id, "key", method, request_hash, created_at)'
)
"""The claim's insert, up to its values (also made with a request's nonce:
:meth:`sessionward.store.nonces.Nonces.use_once_and_claim`)."""
CLAIM_CONFLICT: Final = 'ON CONFLICT (credential_id, "key") DO NOTHING'

# Conflicts are answers, never exceptions (both SQLite and PostgreSQL know this form).
CLAIM: Final = Sql(
    f"""
    {CLAIM_INTO}
    VALUES (:credential_id, :key, :method, :request_hash, :now)
    {CLAIM_CONFLICT}
    """
)


_ROW: Final = select(idempotency).where(
    idempotency.c.credential_id == bindparam("credential_id"), idempotency.c.key == bindparam("key")
)
_COMPLETE: Final = Sql(
    """
    UPDATE idempotency SET status_code = :status_code, response = :response
    WHERE credential_id = :credential_id AND "key" = :key AND status_code IS NULL
    """
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer given to the request that executed: its HTTP status and its body."""

    status_code: int
    body: str


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What :meth:`IdempotencyKeys.claim` claims a key with, for claiming it elsewhere (with a
    request's nonce: :meth:`sessionward.store.nonces.SqlReplayStore.remember_and_claim`):
    the key, the API method, the request's hash and the time of the claim (seconds)."""

    key: str
    method: str
    request_hash: str
    now: int


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of :meth:`IdempotencyKeys.claim`.

    - ``claimed``: this request owns the key and must execute, then complete or release it;
    - ``replay``: an identical request was answered; ``response`` is that answer;
    - ``mismatch``: the key was used for another method or another request body;
    - ``in_flight``: an identical request holds the key and has not been answered yet.
    """

    state: ClaimState
    response: StoredResponse | None = None


class IdempotencyKeys:
    """Claims, stored answers and pruning over the ``idempotency`` table (times in seconds)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self,
        *,
        credential_id: str,
        key: str,
        method: str,
        request_hash: str,
        now: int,
        stale_after_s: int = DEFAULT_STALE_AFTER_S,
    ) -> Claim:
        """Claim ``key`` for this request, or say why not (see :class:`Claim`).

        Atomic: of concurrent claims of the same ``(credential_id, key)`` exactly one is
        ``claimed``. ``request_hash`` identifies the request (the API hashes the raw body).
        """
        params = {
            "credential_id": credential_id,
            "key": key,
            "method": method,
            "request_hash": request_hash,
            "now": now,
        }
        # An insert that does nothing on a taken key, reads, a conditional update: none fails
        # but as the database fails, so no savepoint of its own.
        with self._db.writing(savepoint=False) as conn:
            if CLAIM.run(conn, params).rowcount == 1:
                return Claim("claimed")
            row = conn.execute(_ROW, params).one()._mapping
            if row["method"] != method or row["request_hash"] != request_hash:
                return Claim("mismatch")
            if row["status_code"] is not None:
                return Claim("replay", StoredResponse(int(row["status_code"]), row["response"]))
            if row["created_at"] > now - stale_after_s:
                return Claim("in_flight")
            # The holder died (or hung) without answering: take its claim over, exactly once.
            row_of = (idempotency.c.credential_id == credential_id) & (idempotency.c.key == key)
            taken = conn.execute(
                update(idempotency)
                .where(
                    row_of,
                    idempotency.c.status_code.is_(None),
                    idempotency.c.created_at == row["created_at"],
                )
                .values(created_at=now)
            ).rowcount
            return Claim("claimed" if taken == 1 else "in_flight")

    def complete(self, *, credential_id: str, key: str, status_code: int, body: str) -> None:
        """Store the answer of the claimed request; later claims replay it. Inside a unit of
        work (the request's) it commits with the unit: on PostgreSQL it is sent with the
        unit's commit, in the same round trip (:meth:`~sessionward.store.sql.Sql.run_later`)."""
        _COMPLETE.run_later(
            self._db,
            {
                "credential_id": credential_id,
                "key": key,
                "status_code": status_code,
                "response": body,
            },
        )

    def release(self, *, credential_id: str, key: str) -> None:
        """Give up an unanswered claim (the request failed on the server): a retry executes."""
        with self._db.writing() as conn:
            conn.execute(
                delete(idempotency).where(
                    idempotency.c.credential_id == credential_id,
                    idempotency.c.key == key,
                    idempotency.c.status_code.is_(None),
                )
            )

    def prune(self, before: int) -> int:
        """Forget keys claimed before ``before`` (answered or not); the number forgotten."""
        with self._db.writing() as conn:
            return conn.execute(
                delete(idempotency).where(idempotency.c.created_at < before)
            ).rowcount
