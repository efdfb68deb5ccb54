"""Liveness, readiness, and the answer to a database outage (issue 13.7).

- ``GET|HEAD /healthz`` is liveness: the process answers HTTP. It checks nothing else, so an
  orchestrator never restarts a node for an outage a restart cannot fix.
- ``GET|HEAD /readyz`` is readiness: 200 only if every check passes, 503 otherwise, with each
  check's verdict and reason in the body::

      {"status": "ready"|"unavailable",
       "checks": {"database": {"ok": true}, "dataDir": {"ok": false, "reason": "…"},
                  "chain": {"ok": true, "block": 12}, "relayer": {"ok": true, "lease": "…"}}}

  ``database``: a write transaction opens and, on PostgreSQL, is not read-only; ``dataDir``: a
  probe file can be created, written, synced and removed in the data directory (a read-only or
  full disk fails it); ``chain``: the node answers its block number; ``relayer``: whether this
  node relays (informational, never fails readiness: one node relays at a time).
- A request that meets a database outage (a dropped connection, a server going away) answers
  503 ``DATABASE_UNAVAILABLE`` with ``Retry-After``, never 500: the pool drops the dead
  connection, so the client's retry gets a fresh one (:func:`database_outage`).

Reasons never carry secrets: exception class names and the OS's error text only.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Final

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sessionward.domain.reasons import ReasonCode
from sessionward.service.waas import Waas

from .errors import RETRY_AFTER_S, ApiError

_log = logging.getLogger("sessionward.api")


_DRIVER_OUTAGES: Final = (
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached (not a bug, not a conflict):
    a connection lost or refused, or no connection to be had from the pool in time."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (OperationalError, *_DRIVER_OUTAGES)):
        # Lost connections, refused connections, admin shutdowns, SQLite's "disk I/O error"
        # or "unable to open database file": the store is unavailable, not the request wrong.
        # The drivers' own classes too: the Execute path runs plain SQL on the driver.
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and database_outage(cause)


def unavailable(exc: BaseException) -> ApiError:
    """The 503 a request answers when its database is out (logged without a stack trace)."""
    _log.warning("database unavailable: %s", type(exc).__name__)
    return ApiError(
        503,
        "Unavailable",
        ReasonCode.DATABASE_UNAVAILABLE,
        "the database is unavailable; retry shortly",
        reason="database",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"[:200]
    return type(exc).__name__


class Readiness:
    """The checks behind ``/readyz`` (see the module docstring)."""

    def __init__(self, waas: Waas) -> None:
        self._waas = waas

    def report(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)``: every check runs (a failure does not hide the others)."""
        checks = {
            "database": self._database(),
            "dataDir": self._data_dir(),
            "chain": self._chain(),
            "relayer": self._relayer(),
        }
        ready = all(check["ok"] for check in checks.values())
        return ready, {"status": "ready" if ready else "unavailable", "checks": checks}

    def _database(self) -> dict[str, Any]:
        db = self._waas.runtime.store.db
        try:
            with db.writing() as conn:
                if db.is_postgresql:
                    read_only = conn.execute(text("SHOW transaction_read_only")).scalar_one()
                    if read_only == "on":
                        return {"ok": False, "reason": "the database is read-only"}
                else:
                    conn.execute(text("SELECT 1"))
        except Exception as exc:
            _log.warning("readiness: database check failed: %s", type(exc).__name__)
            return {"ok": False, "reason": _reason(exc)}
        return {"ok": True}

    def _data_dir(self) -> dict[str, Any]:
        directory = Path(self._waas.runtime.settings.data_dir)
        probe = directory / f".ready-{secrets.token_hex(6)}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"ready\n" * 512)  # a few KiB: a full disk refuses it
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as exc:
            return {"ok": False, "reason": _reason(exc)}
        return {"ok": True}

    def _chain(self) -> dict[str, Any]:
        try:
            block = self._waas.runtime.chain.block_number()
        except Exception as exc:
            return {"ok": False, "reason": _reason(exc)}
        return {"ok": True, "block": block}

    def _relayer(self) -> dict[str, Any]:
        if not self._waas.runtime.settings.run_relayer:
            return {"ok": True, "lease": "not relaying (run_relayer off)"}
        holds = self._waas.holds_relay_lease
        if holds is None:
            return {"ok": True, "lease": "not started"}
        return {"ok": True, "lease": "held" if holds else "another node relays"}
