"""An outsider re-sending a request's public bytes, among a burst of legitimate requests that the
unit writer commits in one group, on SQLite and on PostgreSQL.

The request nonce's upsert and the idempotency claim run without a savepoint of their own
inside a unit of work (``Database.writing(savepoint=False)``): a nonce seen before is an
answer of the upsert, never a failed statement. So a replay is refused ``NONCE_REPLAYED``
and changes nothing, in the database or on chain, and the units grouped with it commit as if
it had not been there.

A registered credential's ``Idempotency-Key`` is claimed in the statement that records the
request's nonce (``api.auth.KeyToClaim``), and only if the nonce is fresh: a replay under a
new key, a forgery, or a request refused after its nonce (a self-only method) claims no key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import Api, TestClient, World, new_world, quote, raw_json, refused, settle
from sqlalchemy import text

from database_support import BACKENDS, PG_URL, drop_schema
from sessionward.api import SessionWardApi, create_app
from sessionward.chain.contracts import DeployedContract
from sessionward.chain.demo import demo_contract
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

AMOUNT = 1_000_000
SIG = "Oms-Wallet-Signature"
FRESH = 3

_TABLES = ("transactions", "reservations", "audit", "decision_events", "idempotency", "nonces")


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Waas, SessionWardApi]]:
    schema = f"sw_replay_{uuid.uuid4().hex[:12]}"
    database = {}
    if request.param == "postgresql":
        database = {"database_url": PG_URL, "database_schema": schema}
    waas = Waas.from_settings(
        Settings(data_dir=tmp_path, run_relayer=False, rate_limit_enabled=False, **database)
    )
    try:
        yield waas, create_app(waas)
    finally:
        waas.stop()
        if database:
            drop_schema(schema)


def _rows(waas: Waas) -> dict[str, int]:
    with waas.runtime.store.db.reading() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in _TABLES
        }


def _state(waas: Waas, world: World, txn_id: str) -> tuple[object, ...]:
    store = waas.runtime.store
    txn = store.transactions.get(txn_id)
    assert txn is not None
    return (
        txn.status,
        txn.signature,
        txn.call_nonce,
        store.budget.usage_of(world.session_id),
        _rows(waas),
    )


def test_replayed_requests_in_a_group_change_nothing_and_their_neighbours_commit(
    served: tuple[Waas, SessionWardApi],
) -> None:
    waas, app = served
    with TestClient(app) as client:
        api = Api(client)
        world = new_world(api, waas)
        settle(waas)  # the account deployed, the session installed
        rt = waas.runtime
        token = DeployedContract(rt.chain, rt.deployment.token("USDX"), demo_contract("DemoToken"))
        account = world.owner.extra["account"]
        token.transact(rt.deployer, "mint", account, 10**12)
        funded = token.call_one("balanceOf", account)

        # The victim's Execute, answered; its bytes are public from here on.
        txn_id = quote(api, waas, world, str(AMOUNT))
        body = raw_json({"txnId": txn_id})
        headers = {SIG: world.backend.header("Execute", body), "Idempotency-Key": "k-victim"}
        assert api.post_raw("Execute", body, headers).json()["status"] == "pending"
        prepare_body = raw_json(
            {
                "walletId": world.wallet_id,
                "sessionId": world.session_id,
                "contract": rt.deployment.token("USDX"),
                "method": "transfer(address,uint256)",
                "args": ["0x3333333333333333333333333333333333333333", str(AMOUNT)],
            }
        )
        prepare_headers = {SIG: world.backend.header("PrepareEthereumContractCall", prepare_body)}
        assert api.post_raw("PrepareEthereumContractCall", prepare_body, prepare_headers).is_success
        fresh = [quote(api, waas, world, str(AMOUNT)) for _ in range(FRESH)]
        before = _state(waas, world, txn_id)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sw") as http:
            replays = [
                http.post("/v1/Waas/Execute", content=body, headers=headers),
                http.post("/v1/Waas/Execute", content=body, headers={SIG: headers[SIG]}),
                http.post(
                    "/v1/Waas/PrepareEthereumContractCall",
                    content=prepare_body,
                    headers=prepare_headers,
                ),
            ]
            legit = []
            for fresh_id in fresh:
                raw = raw_json({"txnId": fresh_id})
                legit.append(
                    http.post(
                        "/v1/Waas/Execute",
                        content=raw,
                        headers={SIG: world.backend.header("Execute", raw)},
                    )
                )
            return await asyncio.gather(*replays, *legit)

    answers = asyncio.run(burst())
    for replay in answers[:3]:
        assert replay.status_code == 401 and replay.json()["code"] == "NONCE_REPLAYED", replay.text
    for answer in answers[3:]:
        assert answer.status_code == 200 and answer.json()["status"] == "pending", answer.text

    # The victim's transaction as it was; the only new rows are the fresh Executes' own.
    after = _state(waas, world, txn_id)
    assert after[:3] == before[:3]
    spent_before, spent_after = before[3].counters, after[3].counters  # type: ignore[attr-defined]
    assert spent_after["uses"].amount == spent_before["uses"].amount + FRESH
    usdx = "token:" + waas.runtime.deployment.token("USDX").lower()
    assert spent_after[usdx].amount == spent_before[usdx].amount + FRESH * AMOUNT
    grew = {t: after[4][t] - before[4][t] for t in _TABLES}  # type: ignore[index]
    assert grew == {
        "transactions": 0,
        "reservations": FRESH,
        "audit": FRESH,
        "decision_events": FRESH,
        "idempotency": 0,
        "nonces": FRESH,
    }

    # On chain: the victim's call and the fresh ones, each once; nothing for the replays.
    settle(waas, rounds=4)
    for txn in (txn_id, *fresh):
        record = waas.runtime.store.transactions.get(txn)
        assert record is not None and record.status == "executed", record
    assert token.call_one("balanceOf", account) == funded - (1 + FRESH) * AMOUNT  # type: ignore[operator]
    assert waas.runtime.store.audit.verify(world.wallet_id).ok


def _claim_of(waas: Waas, credential_id: str, key: str) -> tuple[object, ...] | None:
    """The claim of ``key`` by ``credential_id``: (method, status code), None if none."""
    with waas.runtime.store.db.reading() as conn:
        row = conn.execute(
            text(
                'SELECT method, status_code FROM idempotency WHERE credential_id = :c AND "key" = :k'
            ),
            {"c": credential_id, "k": key},
        ).first()
    return None if row is None else tuple(row)


def test_keys_are_claimed_with_fresh_nonces_only(served: tuple[Waas, SessionWardApi]) -> None:
    waas, app = served
    with TestClient(app) as client:
        api = Api(client)
        world = new_world(api, waas)
        backend = world.backend
        txn_id = quote(api, waas, world, str(AMOUNT))
        body = raw_json({"txnId": txn_id})
        signature = backend.header("Execute", body)
        first = api.post_raw("Execute", body, {SIG: signature, "Idempotency-Key": "k-first"})
        assert first.json()["status"] == "pending", first.text
        assert _claim_of(waas, backend.credential_id, "k-first") == ("Execute", 200)
        before = _state(waas, world, txn_id)

        # An outsider re-sends the public bytes under a key of its own: refused, nothing
        # claimed, nothing changed.
        replay = api.post_raw("Execute", body, {SIG: signature, "Idempotency-Key": "k-outsider"})
        refused(replay, 401, "NONCE_REPLAYED")
        assert _claim_of(waas, backend.credential_id, "k-outsider") is None
        assert _state(waas, world, txn_id) == before

        # A forgery (another key's signature) with a key: refused, the key stays free.
        forged = api.post_raw(
            "Execute",
            body,
            {SIG: world.owner.header("Execute", b"{}"), "Idempotency-Key": "k-forged"},
        )
        assert forged.status_code == 401
        assert _claim_of(waas, backend.credential_id, "k-forged") is None
        assert _claim_of(waas, world.owner.credential_id, "k-forged") is None
        assert _state(waas, world, txn_id) == before

        # A registered credential on a self-only method: 403 after its nonce, no key claimed.
        wallet = raw_json({"owner": backend.signer.address, "ownerKind": "eoa"})
        forbidden = api.post_raw(
            "CreateWallet",
            wallet,
            {SIG: backend.header("CreateWallet", wallet), "Idempotency-Key": "k-self-only"},
        )
        refused(forbidden, 403, "ROLE_FORBIDDEN")
        assert _claim_of(waas, backend.credential_id, "k-self-only") is None

        # The owner of the key retries (a fresh nonce): the first answer, nothing run again.
        retry = api.post_raw(
            "Execute", body, {SIG: backend.header("Execute", body), "Idempotency-Key": "k-first"}
        )
        assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
        assert retry.content == first.content
        after = _state(waas, world, txn_id)
        assert after[:4] == before[:4]
        # Nonces of the 403 and of the retry; none of the replay or the forgery.
        assert after[4]["nonces"] == before[4]["nonces"] + 2  # type: ignore[index]
        assert after[4]["idempotency"] == before[4]["idempotency"]  # type: ignore[index]
