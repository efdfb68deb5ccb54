"""PostgreSQL round trips of the session call (issue 16, item 2), pinned.

The whole request runs as the API runs it (the in-process app over a service on PostgreSQL, a
fresh schema): a signed ``PrepareEthereumContractCall``, then a signed ``Execute`` of its quote
with an ``Idempotency-Key``. Every round trip to the server on the store's pooled connections
is counted from libpq's own protocol trace (:mod:`round_trips`). The counts are taken in the
steady state (after enough calls for psycopg to have prepared the hot statements) and the
lowest of a few calls is compared with the budget: a change that adds a round trip to the hot
path fails here instead of slowing every call unnoticed.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from round_trips import RoundTripCounter, Traced
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api_support import Actor, Api, TestClient, World, new_world, quote, raw_json, refused

from database_support import PG_URL
from sessionward.api import create_app
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

pytestmark = pytest.mark.postgres

EXECUTE_ROUND_TRIPS = 4
"""BEGIN with the credential read; the request nonce and the idempotency claim (one statement,
the claim made only if the nonce is fresh) with, behind them, the quote and the session,
wallet, freezes and counters its decision reads (one pipeline, sent once the signature has
verified; the session, wallet and counters found through the quote's row); the reservation
(its savepoint, the gate, the check + reservation + charges, the counters, the key, the audit
lock and head, the quote's claim: one pipeline); the signature on the claimed row, the audit
record and the decision (owed) with the idempotency answer and the COMMIT (one pipeline)."""

PREPARE_ROUND_TRIPS = 3
"""BEGIN with the credential read; the request nonce with, behind it, the session, wallet,
freezes and counters read for the decision (one pipeline; the wallet is read twice, both
answered from it); the quote and the decision event (both owed, no savepoint) with the
COMMIT."""

WARM_UP_CALLS = 8
"""Calls before counting, so that every pooled connection has prepared the hot statements
(the store's wire prepares one at its first run on a connection): past that, the counts are
those of every later call."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Waas, Api, World]]:
    schema = f"sw_rt_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("round_trips"),
        database_url=PG_URL,
        database_schema=schema,
        run_relayer=False,
        rate_limit_enabled=False,
    )
    waas = Waas.from_settings(settings)
    try:
        with TestClient(create_app(waas)) as client:
            api = Api(client)
            yield waas, api, new_world(api, waas)
    finally:
        waas.stop()
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _execute(api: Api, world: World, txn_id: str) -> None:
    response = api.call(
        "Execute",
        {"txnId": txn_id},
        world.backend,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"


def _steady_counts(waas: Waas, api: Api, world: World) -> tuple[int, int, list[str]]:
    """(fewest round trips of a Prepare, of an Execute, the statements of that Execute)."""
    for _ in range(WARM_UP_CALLS):
        _execute(api, world, quote(api, waas, world))
    counter = RoundTripCounter(waas.runtime.store.db.engine)
    try:
        for _ in range(2):  # the new pooled connection's first calls: its warm-up
            _execute(api, world, quote(api, waas, world))
        prepares, executes = [], []
        for _ in range(3):
            with counter.counting() as prepared:
                txn_id = quote(api, waas, world)
            with counter.counting() as executed:
                _execute(api, world, txn_id)
            prepares.append(prepared.round_trips)
            executes.append((executed.round_trips, executed.lines))
    finally:
        counter.remove()
    fewest = min(executes, key=lambda e: e[0])
    return min(prepares), fewest[0], fewest[1]


def test_a_session_call_on_postgresql_takes_no_more_round_trips_than_its_budget(
    service: tuple[Waas, Api, World],
) -> None:
    waas, api, world = service
    prepare, execute, lines = _steady_counts(waas, api, world)
    trace = "\n".join(line for line in lines if line.startswith("F"))
    assert execute <= EXECUTE_ROUND_TRIPS, f"{execute} round trips per Execute:\n{trace}"
    assert prepare <= PREPARE_ROUND_TRIPS, f"{prepare} round trips per Prepare"
    assert execute > 0 and prepare > 0  # the counter saw the requests at all


# --- what an adversary's request makes the store read -------------------------------------


def _reads_of_transactions(traced: Traced) -> list[str]:
    return [s for s in traced.statements() if "FROM transactions" in s]


def test_a_forged_execute_reads_nothing_its_body_names_and_writes_nothing(
    service: tuple[Waas, Api, World],
) -> None:
    """The reads an Execute's body names go only with its replay nonce, once its signature has
    verified: a request signed by another key than its credential's costs the credential
    read alone."""
    waas, api, world = service
    txn_id = quote(api, waas, world)
    forger = Actor.secp256k1()
    forger.credential_id = world.backend.credential_id
    counter = RoundTripCounter(waas.runtime.store.db.engine)
    try:
        with counter.counting() as forged:
            response = api.call("Execute", {"txnId": txn_id}, forger)
    finally:
        counter.remove()
    refused(response, 401, "SIGNER_MISMATCH")
    assert _reads_of_transactions(forged) == []
    assert not [s for s in forged.statements() if "INTO nonces" in s]  # no nonce recorded
    assert waas.runtime.store.transactions.get(txn_id).status == "quoted"  # type: ignore[union-attr]


def test_a_replayed_execute_is_refused_and_changes_nothing(
    service: tuple[Waas, Api, World],
) -> None:
    """A replay's nonce is refused in the round trip that carries the reads ahead: the reads
    come back unused, the call is answered NONCE_REPLAYED, and nothing is written."""
    waas, api, world = service
    txn_id = quote(api, waas, world)
    body = raw_json({"txnId": txn_id})
    header = world.backend.header("Execute", body)
    first = api.post_raw("Execute", body, {"Oms-Wallet-Signature": header})
    assert first.status_code == 200, first.text
    store = waas.runtime.store
    before = (store.transactions.get(txn_id), store.budget.usage_of(first.json()["sessionId"]))
    replayed = api.post_raw("Execute", body, {"Oms-Wallet-Signature": header})
    refused(replayed, 401, "NONCE_REPLAYED")
    after = (store.transactions.get(txn_id), store.budget.usage_of(first.json()["sessionId"]))
    assert after == before


@pytest.mark.parametrize(
    "body",
    [b"[1]", b'{"txnId": 7}', b'{"txnId": "txn_unknown"}', b"{not json"],
    ids=["not-an-object", "id-not-a-string", "unknown-transaction", "not-json"],
)
def test_an_execute_body_read_ahead_is_refused_as_before(
    service: tuple[Waas, Api, World], body: bytes
) -> None:
    """What the API reads from a body before authentication is only a hint: a body the
    service refuses is refused with the same answer, and a 4xx, never a 500."""
    _waas, api, world = service
    header = world.backend.header("Execute", body)
    response = api.post_raw("Execute", body, {"Oms-Wallet-Signature": header})
    assert 400 <= response.status_code < 500, response.text
    expected = "TRANSACTION_UNKNOWN" if b"txn_unknown" in body else None
    if expected is not None:
        assert response.json()["code"] == expected
