"""The relayer's doorbell: work for the chain has committed, relay it now (issue 16).

The relaying loop used to find new work only by polling every ``relayer_poll_s`` (200 ms by
default), so a call waited on average half a poll before it was even submitted. Now whoever
commits work for the chain (Execute) rings :class:`RelaySignal`:

- **in process**, a :class:`threading.Event` the loop waits on, so the node that relays starts
  a round at once;
- **across nodes** (PostgreSQL), a ``NOTIFY`` on a channel named after the schema, which the
  relaying node ``LISTEN``\\ s to on a connection of its own. Notifications are sent by a daemon
  thread, never by the request: rings that come while one is being sent are coalesced into the
  next one, so a busy node sends about one per round trip, not one per call.

A ring is a hint, never the only way work is found: the loop still polls (slowly), so a lost
notification (a dropped connection, a node that restarted) delays relaying by one poll at most.
SQLite has no other node to tell (one database file, one process relaying).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, Final

from .database import Database

__all__ = ["RelaySignal"]

_log = logging.getLogger(__name__)
_RECONNECT_S: Final = 1.0
_LISTEN_TICK_S: Final = 0.5
"""How often the listening thread looks up from its connection to see if it should stop."""


def _channel(db: Database) -> str:
    digest = hashlib.sha256((db.schema or "public").encode()).hexdigest()[:20]
    return f"sessionward_relay_{digest}"


class RelaySignal:
    """Ring when work for the chain has committed; the relaying loop :meth:`wait`\\ s on it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._event = threading.Event()
        self._channel: Final = _channel(db)
        self.leading = False
        """Set by the relaying loop of this node while it holds the lease: rings then stay in
        process (no other node needs to hear them)."""
        self._outgoing = threading.Event()
        self._closed = threading.Event()
        self._notifier: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._lock = threading.Lock()

    def ring(self) -> None:
        """Wake the relaying loop (in process, and on PostgreSQL the relaying node). Cheap and
        never blocking: call it after the commit that made work for the chain."""
        self._event.set()
        if self._db.is_postgresql and not self.leading and not self._closed.is_set():
            self._ensure_notifier()
            self._outgoing.set()

    def wait(self, timeout: float) -> bool:
        """Wait until rung (True) or ``timeout`` seconds passed (False); consumes the ring."""
        rung = self._event.wait(timeout)
        self._event.clear()
        return rung

    def listen(self) -> None:
        """On PostgreSQL, start hearing other nodes' rings (the relaying loop calls it)."""
        if not self._db.is_postgresql:
            return
        with self._lock:
            if self._closed.is_set():  # listening again after close(): start afresh
                self._closed.clear()
                self._outgoing.clear()
                self._listener = self._notifier = None
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="sessionward-relay-listen", daemon=True
                )
                self._listener.start()

    def close(self) -> None:
        """Stop the background threads; wakes any waiter."""
        self._closed.set()
        self._outgoing.set()
        self._event.set()
        for thread in (self._notifier, self._listener):
            if thread is not None:
                thread.join(timeout=5)

    # --- PostgreSQL -----------------------------------------------------------------------

    def _ensure_notifier(self) -> None:
        if self._notifier is not None:
            return
        with self._lock:
            if self._notifier is None:
                self._notifier = threading.Thread(
                    target=self._notify, name="sessionward-relay-notify", daemon=True
                )
                self._notifier.start()

    def _notify(self) -> None:
        conn: Any = None
        try:
            while True:
                self._outgoing.wait()
                if self._closed.is_set():
                    return
                self._outgoing.clear()  # rings from now on make another notification
                try:
                    if conn is None:
                        conn = self._own_connection()
                    conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
                except Exception:  # the loop's own poll finds the work: a hint was lost
                    _log.warning("relay notification not sent", exc_info=True)
                    _closed(conn)
                    conn = None
        finally:
            _closed(conn)

    def _own_connection(self) -> Any:
        """A psycopg connection of this signal's own (never handed back to the pool), in
        autocommit: one round trip per statement."""
        raw = self._db.engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()
        conn.autocommit = True
        return conn

    def _listen(self) -> None:
        while not self._closed.is_set():
            conn: Any = None
            try:
                conn = self._own_connection()
                conn.execute(f'LISTEN "{self._channel}"')
                while not self._closed.is_set():
                    for _ in conn.notifies(timeout=_LISTEN_TICK_S, stop_after=1):
                        self._event.set()
            except Exception:
                if not self._closed.is_set():
                    _log.warning("relay notifications not heard; retrying", exc_info=True)
                    self._closed.wait(_RECONNECT_S)
            finally:
                _closed(conn)


def _closed(conn: Any) -> None:
    """Close a connection of a signal's own, if any."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken
            _log.debug("relay signal connection not closed cleanly", exc_info=True)
