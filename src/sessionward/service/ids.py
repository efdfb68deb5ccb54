"""Identifiers: a short prefix saying what it names, a time-ordered part, then randomness.

``<prefix>_<16 hex: a monotonic clock value>_<16 hex: 64 random bits>``. Within one process the
time part strictly increases, so ids sort in creation order, which keeps cursor pagination
stable (a session created after a page was read sorts after it); across nodes they sort by
their clocks. The random part makes them unguessable.
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = 0


def _tick() -> int:
    """Microseconds since the epoch, strictly increasing within this process."""
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns() // 1000)
        return _last


def new_id(prefix: str) -> str:
    """``cred_…``, ``wal_…``, ``ses_…``, ``txn_…``: unique, unguessable, creation-ordered."""
    return f"{prefix}_{_tick():016x}{secrets.token_hex(8)}"
