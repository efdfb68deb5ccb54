"""The idempotency repository: atomic claims, stored answers, release and takeover."""

from __future__ import annotations

import secrets
import threading

from sessionward.service.waas import Waas
from sessionward.store.idempotency import IdempotencyKeys


def _keys(waas: Waas) -> IdempotencyKeys:
    return waas.runtime.store.idempotency


def _claim(
    keys: IdempotencyKeys,
    key: str,
    *,
    request_hash: str = "h1",
    method: str = "Execute",
    now: int = 1_000,
) -> str:
    return keys.claim(
        credential_id="cred_x", key=key, method=method, request_hash=request_hash, now=now
    ).state


def test_the_first_claim_wins_and_the_answer_is_replayed(waas: Waas) -> None:
    keys, key = _keys(waas), secrets.token_hex(8)
    assert _claim(keys, key) == "claimed"
    assert _claim(keys, key) == "in_flight"
    keys.complete(credential_id="cred_x", key=key, status_code=201, body='{"a":1}')
    claim = keys.claim(
        credential_id="cred_x", key=key, method="Execute", request_hash="h1", now=1_001
    )
    assert claim.state == "replay"
    assert claim.response is not None
    assert (claim.response.status_code, claim.response.body) == (201, '{"a":1}')


def test_another_request_under_the_same_key_is_a_mismatch(waas: Waas) -> None:
    keys, key = _keys(waas), secrets.token_hex(8)
    assert _claim(keys, key) == "claimed"
    assert _claim(keys, key, request_hash="h2") == "mismatch"
    assert _claim(keys, key, method="Prepare") == "mismatch"


def test_a_released_claim_can_be_claimed_again(waas: Waas) -> None:
    keys, key = _keys(waas), secrets.token_hex(8)
    assert _claim(keys, key) == "claimed"
    keys.release(credential_id="cred_x", key=key)
    assert _claim(keys, key) == "claimed"


def test_a_stale_claim_is_taken_over_once(waas: Waas) -> None:
    keys, key = _keys(waas), secrets.token_hex(8)
    assert _claim(keys, key, now=1_000) == "claimed"
    assert _claim(keys, key, now=1_299) == "in_flight"
    assert _claim(keys, key, now=1_301) == "claimed"
    assert _claim(keys, key, now=1_302) == "in_flight"


def test_concurrent_claims_have_exactly_one_winner(waas: Waas) -> None:
    keys, key = _keys(waas), secrets.token_hex(8)
    states: list[str] = []
    lock = threading.Lock()

    def claim() -> None:
        state = _claim(keys, key)
        with lock:
            states.append(state)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(states) == ["claimed"] + ["in_flight"] * 7


def test_prune_forgets_old_keys(waas: Waas) -> None:
    keys, key = _keys(waas), secrets.token_hex(8)
    assert _claim(keys, key, now=10) == "claimed"
    assert keys.prune(before=11) >= 1
    assert _claim(keys, key, now=12) == "claimed"
