"""Request rate limits over the ASGI app (issue 14, tenant isolation): a signer over its budget
gets 429 ``RATE_LIMITED_REQUESTS`` with ``Retry-After`` and its request changes nothing (no
session written, no nonce recorded: the same signed request succeeds after the wait); another
signer is unaffected; requests whose signature does not verify spend nobody's budget.

This module's service allows a burst of 3 and then one request every 2 seconds per signer,
and 2 wallets per owner per day: a third CreateWallet by one owner is refused with 429
``WALLET_CREATION_BUDGET_EXHAUSTED`` and nothing is recorded or queued for the chain.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import (
    Actor,
    Api,
    create_owner,
    raw_json,
    refused,
    register_backend,
    transfer_envelope,
)
from sqlalchemy import func, select

from sessionward.api.errors import ApiError
from sessionward.api.rate_limit import RateLimiter, RateLimits
from sessionward.service.config import Settings
from sessionward.service.waas import Waas
from sessionward.store.schema import idempotency, relay_jobs, wallets

BURST = 3
RPS = 0.5
WALLETS_PER_DAY = 2


@pytest.fixture(scope="module")
def waas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Waas]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("waas"),
        run_relayer=False,
        rate_limit_per_credential_rps=RPS,
        rate_limit_per_owner_rps=RPS,
        rate_limit_burst=BURST,
        wallet_creation_per_owner_per_day=WALLETS_PER_DAY,
    )
    service = Waas.from_settings(settings)
    yield service
    service.stop()


def _authorize_body(waas: Waas, owner: Actor, backend: Actor) -> dict[str, Any]:
    return {
        "credentialId": backend.credential_id,
        "walletId": owner.extra["walletId"],
        "envelope": transfer_envelope(waas),
    }


def _sessions_of(waas: Waas, owner: Actor) -> int:
    return len(waas.runtime.store.sessions.of_wallet(owner.extra["walletId"]))


def _signed(api: Api, actor: Actor, method: str, body: dict[str, Any]) -> tuple[bytes, str]:
    raw = raw_json(body)
    return raw, actor.header(method, raw)


def _flood_until_refused(
    api: Api, waas: Waas, owner: Actor, backend: Actor, *, keyed: bool = False
) -> tuple[int, httpx.Response, bytes, dict[str, str]]:
    """AuthorizeRemoteAccess as ``owner`` until one is refused: (accepted, refusal, its body and
    headers). ``keyed``: each request with an ``Idempotency-Key`` of its own."""
    for accepted in range(BURST + 10):
        raw, header = _signed(
            api, owner, "AuthorizeRemoteAccess", _authorize_body(waas, owner, backend)
        )
        headers = {"Oms-Wallet-Signature": header}
        if keyed:
            headers["Idempotency-Key"] = f"flood-{uuid.uuid4().hex}"
        response = api.post_raw("AuthorizeRemoteAccess", raw, headers)
        if response.status_code != 200:
            assert response.status_code == 429, response.text
            return accepted, response, raw, headers
    raise AssertionError("never limited")


def test_a_burst_over_the_limit_is_refused_with_retry_after_and_writes_nothing(
    api: Api, waas: Waas
) -> None:
    owner, backend = create_owner(api), register_backend(api)
    accepted, response, raw, headers = _flood_until_refused(api, waas, owner, backend)
    assert accepted >= BURST
    doc = refused(response, 429, "RATE_LIMITED_REQUESTS")
    # How long exactly is the limiter's (test_retry_after_is_the_time_until_the_next_token);
    # that it is long enough is what the retry below shows.
    wait = int(response.headers["Retry-After"])
    assert doc["reason"] == "request rate" and doc["error"] == "TooManyRequests"
    assert _sessions_of(waas, owner) == accepted  # the refused request wrote no session
    # Its nonce was not recorded either: the very same signed request is taken after the wait.
    time.sleep(wait)
    again = api.post_raw("AuthorizeRemoteAccess", raw, headers)
    assert again.status_code == 200, again.text
    assert _sessions_of(waas, owner) == accepted + 1


def test_a_refused_request_claims_no_idempotency_key(api: Api, waas: Waas) -> None:
    """The key is claimed with the nonce, after admission: a 429 claims neither, so the very
    same request (signature and key) executes once after the wait, and only then is its key
    taken."""
    owner, backend = create_owner(api), register_backend(api)
    accepted, response, raw, headers = _flood_until_refused(api, waas, owner, backend, keyed=True)
    refused(response, 429, "RATE_LIMITED_REQUESTS")
    key = headers["Idempotency-Key"]
    assert _claimed(waas, owner, key) is None
    time.sleep(int(response.headers["Retry-After"]))
    again = api.post_raw("AuthorizeRemoteAccess", raw, headers)
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers, again.text
    assert _sessions_of(waas, owner) == accepted + 1
    assert _claimed(waas, owner, key) == 200


def _claimed(waas: Waas, owner: Actor, key: str) -> int | None:
    """The stored status of ``owner``'s claim of ``key`` (0 while unanswered), None if none."""
    with waas.runtime.store.db.reading() as conn:
        row = conn.execute(
            select(idempotency.c.status_code).where(
                idempotency.c.credential_id == owner.credential_id, idempotency.c.key == key
            )
        ).first()
    return None if row is None else (row[0] or 0)


def test_another_signer_is_unaffected(api: Api, waas: Waas) -> None:
    flooder, backend = create_owner(api), register_backend(api)
    _flood_until_refused(api, waas, flooder, backend)
    other = create_owner(api)
    for _ in range(BURST):
        answer = api.call("AuthorizeRemoteAccess", _authorize_body(waas, other, backend), other)
        assert answer.status_code == 200, answer.text
    # The backend, named in every one of the flooder's requests, still has its own budget.
    listed = api.call("ListSessions", {}, backend)
    assert listed.status_code == 200, listed.text


def test_requests_that_do_not_verify_spend_nobodys_budget(api: Api, waas: Waas) -> None:
    victim, backend = create_owner(api), register_backend(api)
    forger = Actor.secp256k1()
    forger.credential_id = victim.credential_id  # names the victim's credential, wrong key
    for _ in range(BURST + 5):
        answer = api.call("AuthorizeRemoteAccess", _authorize_body(waas, victim, backend), forger)
        refused(answer, 401, "SIGNER_MISMATCH")
    for _ in range(BURST):
        answer = api.call("AuthorizeRemoteAccess", _authorize_body(waas, victim, backend), victim)
        assert answer.status_code == 200, answer.text
    assert _sessions_of(waas, victim) == BURST


def _rows(waas: Waas) -> tuple[int, int]:
    """(wallets, relay jobs) in the database."""
    with waas.runtime.store.db.reading() as conn:
        return (
            int(conn.execute(select(func.count()).select_from(wallets)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(relay_jobs)).scalar_one()),
        )


def test_an_owner_over_its_wallet_creation_budget_is_refused_and_nothing_is_sent(
    api: Api, waas: Waas
) -> None:
    owner = Actor.secp256k1()
    body = {"alg": owner.signer.alg, "publicKey": owner.public_key}
    for _ in range(WALLETS_PER_DAY):
        api.ok("CreateWallet", body, owner)
    before = _rows(waas)
    answer = api.call("CreateWallet", body, owner)
    refused(answer, 429, "WALLET_CREATION_BUDGET_EXHAUSTED")
    assert 86_000 <= int(answer.headers["Retry-After"]) <= 86_400
    assert _rows(waas) == before  # no wallet recorded, no deployment queued for the relayer
    other = Actor.secp256k1()
    api.ok("CreateWallet", {"alg": other.signer.alg, "publicKey": other.public_key}, other)
    assert _rows(waas)[0] == before[0] + 1


def test_a_signer_over_its_limit_is_refused_before_verification_and_forgeries_take_nothing(
    api: Api, waas: Waas
) -> None:
    """While a signer's bucket is empty its requests are refused before the credential read and
    signature check (cheap for the node); forged ones too, and they take no token: after the
    wait the signer's own request is taken."""
    owner, backend = create_owner(api), register_backend(api)
    _, response, _, _ = _flood_until_refused(api, waas, owner, backend)
    wait = int(response.headers["Retry-After"])
    forger = Actor.secp256k1()
    forger.credential_id = owner.credential_id
    for _ in range(5):
        forged = api.call("AuthorizeRemoteAccess", _authorize_body(waas, owner, backend), forger)
        refused(forged, 429, "RATE_LIMITED_REQUESTS")
    time.sleep(wait)
    answer = api.call("AuthorizeRemoteAccess", _authorize_body(waas, owner, backend), owner)
    assert answer.status_code == 200, answer.text


def test_retry_after_is_the_time_until_the_next_token_in_whole_seconds() -> None:
    """On a clock the test moves: a full bucket serves the burst at once, then each refusal's
    Retry-After is the wait for the next token rounded up (never 0), and the token is there
    when it says."""
    now = [100.0]
    limiter = RateLimiter(
        RateLimits(per_credential_rps=RPS, per_owner_rps=RPS, burst=BURST), clock=lambda: now[0]
    )
    for _ in range(BURST):
        limiter.admit(signer="0xabc", wallet_id=None)

    def retry_after() -> str:
        with pytest.raises(ApiError) as refusal:
            limiter.admit(signer="0xabc", wallet_id=None)
        assert refusal.value.status == 429
        return refusal.value.headers["Retry-After"]

    assert retry_after() == "2"  # one token at 0.5 per second: 2 s
    now[0] += 1.25  # 0.625 of a token: 0.75 s to go, said as 1
    assert retry_after() == "1"
    now[0] += 0.5  # 0.25 s to go: still a whole second, never 0
    assert retry_after() == "1"
    now[0] += 0.25  # (binary fractions: the clock's sums are exact)
    limiter.admit(signer="0xabc", wallet_id=None)  # the token is there
    assert retry_after() == "2"
