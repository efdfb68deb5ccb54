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

What speaks SQL or knows the database drivers (the probe, which exceptions are an outage) is
:mod:`sessionward.store.health`; this module turns it into HTTP.

Reasons never carry secrets: exception class names and the OS's error text only.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from sessionward.chain.interface import Chain
from sessionward.reasons import ReasonCode
from sessionward.service.waas import Waas
from sessionward.store.health import database_outage, write_problem

from .errors import RETRY_AFTER_S, ApiError

__all__ = ["Readiness", "database_outage", "unavailable"]

_log = logging.getLogger("sessionward.api")


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


def _block(chain: Chain) -> dict[str, Any]:
    try:
        block = chain.block_number()
    except Exception as exc:
        return {"ok": False, "reason": _reason(exc)}
    return {"ok": True, "block": block}


def _lease(held: bool) -> str:
    return "held" if held else "another node relays"


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
        try:
            problem = write_problem(self._waas.runtime.store.db)
        except Exception as exc:
            _log.warning("readiness: database check failed: %s", type(exc).__name__)
            return {"ok": False, "reason": _reason(exc)}
        return {"ok": True} if problem is None else {"ok": False, "reason": problem}

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
        """The node answers its block number; with several networks, every network's node
        (``networks``: each one's verdict; not ready while any is out)."""
        rt = self._waas.runtime
        if not rt.several_networks:
            return _block(rt.chain)
        networks = {n.name: _block(n.chain) for n in rt.networks}
        return {"ok": all(c["ok"] for c in networks.values()), "networks": networks}

    def _relayer(self) -> dict[str, Any]:
        if not self._waas.runtime.settings.run_relayer:
            return {"ok": True, "lease": "not relaying (run_relayer off)"}
        holds = self._waas.holds_relay_lease
        if holds is None:
            return {"ok": True, "lease": "not started"}
        answer: dict[str, Any] = {"ok": True, "lease": _lease(holds)}
        if self._waas.runtime.several_networks:  # one lease per network
            leases = self._waas.relay_leases()
            answer["networks"] = {name: _lease(held) for name, held in leases.items()}
        return answer
