"""The relayer's doorbell: a ring wakes the waiting loop in process, and on PostgreSQL another
node's ring reaches it through LISTEN/NOTIFY (issue 16)."""

from __future__ import annotations

import threading
import time

import pytest
from store_support import PG_URL

from sessionward.store import Store, open_store
from sessionward.store.relay_signal import RelaySignal


def test_a_ring_wakes_the_waiter_in_process(store: Store) -> None:
    signal = RelaySignal(store.db)
    signal.leading = True
    threading.Timer(0.05, signal.ring).start()
    started = time.monotonic()
    assert signal.wait(10.0)
    assert time.monotonic() - started < 5.0
    assert not signal.wait(0.01)  # the ring was consumed
    signal.close()


@pytest.mark.postgres
def test_a_ring_on_another_node_reaches_the_relaying_node(pg_store: Store) -> None:
    """PostgreSQL only: one SQLite file has one relaying process, so its rings stay in
    process (the test above)."""
    relaying = RelaySignal(pg_store.db)
    relaying.leading = True
    another_node = open_store(PG_URL, schema=pg_store.db.schema, pool_size=2)
    other = RelaySignal(another_node.db)  # another node, not relaying: it notifies
    try:
        relaying.listen()
        time.sleep(0.5)  # LISTEN is in place
        relaying.wait(0.0)
        started = time.monotonic()
        other.ring()
        assert relaying.wait(10.0)
        assert time.monotonic() - started < 5.0
    finally:
        relaying.close()
        other.close()
        another_node.close()
