"""Single-use nonces and the SQL request replay store."""

from __future__ import annotations

import threading
from collections.abc import Callable

from store_support import T0

from sessionward.store import Store
from sessionward.store.nonces import GRANT_SCOPE, REQUEST_SCOPE, SqlReplayStore


def test_a_nonce_is_used_once_per_scope_and_key(store: Store) -> None:
    assert store.nonces.use_once(GRANT_SCOPE, "0xabc", 7, None)
    assert not store.nonces.use_once(GRANT_SCOPE, "0xabc", 7, None)
    assert store.nonces.use_once(GRANT_SCOPE, "0xdef", 7, None)
    assert store.nonces.use_once(REQUEST_SCOPE, "0xabc", 7, T0)


def test_uint256_grant_nonces_are_distinct_exactly(store: Store) -> None:
    assert store.nonces.use_once(GRANT_SCOPE, "0xabc", 2**256 - 1, None)
    assert store.nonces.use_once(GRANT_SCOPE, "0xabc", 2**256 - 2, None)
    assert not store.nonces.use_once(GRANT_SCOPE, "0xabc", 2**256 - 1, None)


def test_prune_forgets_only_expired_nonces(store: Store) -> None:
    store.nonces.use_once(REQUEST_SCOPE, "c1", 1, T0)
    store.nonces.use_once(REQUEST_SCOPE, "c1", 2, T0 + 100)
    store.nonces.use_once(GRANT_SCOPE, "0xabc", 3, None)
    assert store.nonces.prune(T0 + 1) == 1
    assert store.nonces.use_once(REQUEST_SCOPE, "c1", 1, T0 + 200)
    assert not store.nonces.use_once(REQUEST_SCOPE, "c1", 2, T0 + 200)
    assert not store.nonces.use_once(GRANT_SCOPE, "0xabc", 3, None)


def test_grant_nonces_never_expire(store: Store) -> None:
    assert store.nonces.use_once(GRANT_SCOPE, "0xabc", 1, None)
    assert not store.nonces.use_once(GRANT_SCOPE, "0xabc", 1, None, now=2**40)


def test_replay_store_remembers_until_expiry(store: Store) -> None:
    clock = [T0 * 1000]
    replay = SqlReplayStore(store.nonces, clock_ms=lambda: clock[0])
    expires = T0 * 1000 + 120_500
    assert replay.remember("cred-1", 42, expires)
    assert not replay.remember("cred-1", 42, expires)
    assert replay.remember("cred-2", 42, expires)
    clock[0] = expires - 1
    assert not replay.remember("cred-1", 42, expires + 1000)
    clock[0] = expires + 1000  # rounding keeps the nonce until the next whole second
    assert replay.remember("cred-1", 42, expires + 300_000)
    assert not replay.remember("cred-1", 42, expires + 300_000)


def test_exactly_one_of_racing_nodes_accepts_a_nonce(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    node = open_another(16)
    replay = SqlReplayStore(node.nonces, clock_ms=lambda: T0 * 1000)
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        accepted = replay.remember("cred-1", 99, (T0 + 120) * 1000)
        with lock:
            results.append(accepted)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False] * 15 + [True]
