"""Single-use nonces and the SQL request replay store."""

from __future__ import annotations

import threading
from collections.abc import Callable

from store_support import T0

from sessionward.store import Store
from sessionward.store.idempotency import ClaimRequest
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


def _claim(key: str, request_hash: str = "h1") -> ClaimRequest:
    return ClaimRequest(key=key, method="Execute", request_hash=request_hash, now=T0)


def test_a_fresh_nonce_claims_a_free_key_with_it(store: Store) -> None:
    replay = SqlReplayStore(store.nonces, clock_ms=lambda: T0 * 1000)
    assert replay.remember_and_claim("c1", 1, (T0 + 60) * 1000, _claim("k1")) == (True, True)
    assert not replay.remember("c1", 1, (T0 + 60) * 1000)  # the nonce is recorded
    state = store.idempotency.claim(
        credential_id="c1", key="k1", method="Execute", request_hash="h1", now=T0
    )
    assert state.state == "in_flight"  # and the key claimed for that request


def test_a_fresh_nonce_leaves_a_taken_key_as_it_was(store: Store) -> None:
    replay = SqlReplayStore(store.nonces, clock_ms=lambda: T0 * 1000)
    store.idempotency.claim(
        credential_id="c1", key="k1", method="Execute", request_hash="h0", now=T0
    )
    store.idempotency.complete(credential_id="c1", key="k1", status_code=200, body="{}")
    fresh, claimed = replay.remember_and_claim("c1", 2, (T0 + 60) * 1000, _claim("k1", "h9"))
    assert (fresh, claimed) == (True, False)
    kept = store.idempotency.claim(
        credential_id="c1", key="k1", method="Execute", request_hash="h0", now=T0
    )
    assert kept.state == "replay" and kept.response is not None and kept.response.body == "{}"


def test_a_nonce_seen_before_claims_nothing(store: Store) -> None:
    replay = SqlReplayStore(store.nonces, clock_ms=lambda: T0 * 1000)
    assert replay.remember("c1", 3, (T0 + 60) * 1000)
    assert replay.remember_and_claim("c1", 3, (T0 + 60) * 1000, _claim("k2")) == (False, False)
    free = store.idempotency.claim(
        credential_id="c1", key="k2", method="Execute", request_hash="h1", now=T0
    )
    assert free.state == "claimed"  # nobody had claimed it


def test_keys_are_claimed_under_the_nonces_credential(store: Store) -> None:
    replay = SqlReplayStore(store.nonces, clock_ms=lambda: T0 * 1000)
    assert replay.remember_and_claim("c1", 4, (T0 + 60) * 1000, _claim("k3")) == (True, True)
    assert replay.remember_and_claim("c2", 4, (T0 + 60) * 1000, _claim("k3")) == (True, True)


def test_exactly_one_of_racing_requests_claims_a_key(
    store: Store, open_another: Callable[[int], Store]
) -> None:
    """Sixteen requests of one credential, each with a nonce of its own and the same key, at
    once on a 16-connection node: every nonce is fresh, one request claims the key."""
    node = open_another(16)
    replay = SqlReplayStore(node.nonces, clock_ms=lambda: T0 * 1000)
    barrier = threading.Barrier(16)
    results: list[tuple[bool, bool]] = []
    lock = threading.Lock()

    def worker(nonce: int) -> None:
        barrier.wait()
        outcome = replay.remember_and_claim("cred-1", nonce, (T0 + 120) * 1000, _claim("k"))
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [(True, False)] * 15 + [(True, True)]
