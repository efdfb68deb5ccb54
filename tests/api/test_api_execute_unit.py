"""Execute commits as one unit: its replay nonce, idempotency key, reservation, signature,
audit record and decision all commit together, or none of them does; on SQLite, concurrent
Executes are committed in groups. A revocation request is one durable unit in the same way."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from api_support import Api, World, path_of, quote, raw_json, refused
from sqlalchemy import event

from sessionward.api import SessionWardApi
from sessionward.service.waas import Waas

# These tests drive one backend at full speed (hundreds of quotes and Executes in a burst): the
# per-signer request limits, tested in test_api_rate_limits, would refuse them by timing.
REQUEST_RATE_LIMITS = False

SIG = "Oms-Wallet-Signature"


def _state(waas: Waas, world: World, txn_id: str) -> tuple[object, ...]:
    store = waas.runtime.store
    txn = store.transactions.get(txn_id)
    assert txn is not None
    return (
        txn.status,
        txn.signature,
        store.budget.usage_of(world.session_id),
        len(store.decisions.of_session(world.session_id)),
        len(store.audit.records(world.wallet_id)),
    )


def test_a_failure_after_signing_leaves_nothing_and_the_same_request_can_be_retried(
    api: Api, waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server fault between the signature and the answer: nothing of the Execute survives
    (no signature, no spend, no record); its exact request, re-sent, then executes once."""
    txn_id = quote(api, waas, world)
    before = _state(waas, world, txn_id)
    body = raw_json({"txnId": txn_id})
    headers = {
        SIG: world.backend.header("Execute", body),
        "Idempotency-Key": "key-" + secrets.token_hex(8),
    }

    def fail(**_kwargs: object) -> None:
        raise RuntimeError("injected: the answer could not be stored")

    with monkeypatch.context() as patch:
        patch.setattr(waas.runtime.store.idempotency, "complete", fail)
        broken = api.post_raw("Execute", body, headers)
    assert broken.status_code == 500
    assert _state(waas, world, txn_id) == before

    retried = api.post_raw("Execute", body, headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    # Now it has executed, its nonce is spent: a third sending is a replay.
    refused(api.post_raw("Execute", body, headers), 401, "NONCE_REPLAYED")
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "pending" and txn.signature is not None


def test_a_refused_execute_keeps_its_records_and_its_nonce(
    api: Api, waas: Waas, world: World
) -> None:
    """A refusal is an answer, not a failure: its decision is recorded and the request's nonce
    is spent, so the same signed request is a replay."""
    body = raw_json({"txnId": "txn_" + "0" * 32})
    header = world.backend.header("Execute", body)
    refused(api.post_raw("Execute", body, {SIG: header}), 404, "TRANSACTION_UNKNOWN")
    refused(api.post_raw("Execute", body, {SIG: header}), 401, "NONCE_REPLAYED")


def test_an_execute_denied_by_policy_commits_its_denial(api: Api, waas: Waas, world: World) -> None:
    txn_id = quote(api, waas, world)
    decisions = len(waas.runtime.store.decisions.of_session(world.session_id))
    api.ok(
        "RevokeAccess",
        {
            "walletId": world.wallet_id,
            "credentialId": world.backend.credential_id,
            "sessionId": world.session_id,
        },
        world.owner,
    )
    denied = api.call("Execute", {"txnId": txn_id}, world.backend)
    assert denied.status_code == 403, denied.text
    assert denied.json()["decisionId"]
    events = waas.runtime.store.decisions.of_session(world.session_id)
    assert len(events) == decisions + 1 and events[-1].verdict == "deny"
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "denied" and txn.signature is None


def test_an_execute_reads_its_credential_once(
    api: Api, waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authentication reads the credential; the session view reuses that read (same unit)."""
    txn_id = quote(api, waas, world)
    credentials = waas.runtime.store.credentials
    read = credentials.get
    reads: list[str] = []

    def counted(credential_id: str) -> object:
        reads.append(credential_id)
        return read(credential_id)

    monkeypatch.setattr(credentials, "get", counted)
    body = raw_json({"txnId": txn_id})
    answer = api.post_raw("Execute", body, {SIG: world.backend.header("Execute", body)})
    assert answer.status_code == 200, answer.text
    assert reads == [world.backend.credential_id]


# --- on SQLite, concurrent Executes run on one thread and commit in groups ----------------


@contextmanager
def _counting_commits(waas: Waas) -> Iterator[list[object]]:
    """The database commits made while the block runs (one entry each)."""
    commits: list[object] = []

    def counted(conn: object) -> None:
        commits.append(conn)

    engine = waas.runtime.store.db.engine
    event.listen(engine, "commit", counted)
    try:
        yield commits
    finally:
        event.remove(engine, "commit", counted)


def _send_together(
    app: SessionWardApi, requests: Sequence[tuple[bytes, dict[str, str]]]
) -> list[httpx.Response]:
    """Post every Execute at once, on one event loop, as concurrent clients would."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sessionward") as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(
                            path_of("Execute"),
                            content=body,
                            headers={"content-type": "application/json", **headers},
                        )
                        for body, headers in requests
                    )
                )
            )

    return asyncio.run(send())


def _signed_executes(world: World, txn_ids: Sequence[str]) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for txn_id in txn_ids:
        body = raw_json({"txnId": txn_id})
        requests.append(
            (
                body,
                {
                    SIG: world.backend.header("Execute", body),
                    "Idempotency-Key": "key-" + secrets.token_hex(8),
                },
            )
        )
    return requests


def test_concurrent_executes_commit_in_groups_each_with_its_own_answer(
    api: Api, app: SessionWardApi, waas: Waas, world: World
) -> None:
    assert waas.groups_units  # embedded defaults: SQLite
    txn_ids = [quote(api, waas, world, amount="1000") for _ in range(12)]
    with _counting_commits(waas) as commits:
        answers = _send_together(app, _signed_executes(world, txn_ids))
    assert [answer.status_code for answer in answers] == [200] * 12, [a.text for a in answers]
    assert sorted(answer.json()["txnId"] for answer in answers) == sorted(txn_ids)
    assert all(answer.json()["status"] == "pending" for answer in answers)
    signatures = set()
    for txn_id in txn_ids:
        txn = waas.runtime.store.transactions.get(txn_id)
        assert txn is not None and txn.status == "pending" and txn.signature is not None
        signatures.add(txn.signature)
    assert len(signatures) == 12
    assert len(commits) < 12  # grouped: fewer commits than Executes


def test_a_failing_execute_in_a_group_leaves_nothing_and_its_neighbours_commit(
    api: Api, app: SessionWardApi, waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    txn_ids = [quote(api, waas, world, amount="1000") for _ in range(6)]
    doomed = txn_ids[3]
    before = _state(waas, world, doomed)
    requests = _signed_executes(world, txn_ids)
    doomed_key = requests[3][1]["Idempotency-Key"]
    complete = waas.runtime.store.idempotency.complete

    def fail_one(**kwargs: Any) -> None:
        if kwargs["key"] == doomed_key:
            raise RuntimeError("injected: the answer could not be stored")
        complete(**kwargs)

    monkeypatch.setattr(waas.runtime.store.idempotency, "complete", fail_one)
    answers = _send_together(app, requests)
    assert [answer.status_code for answer in answers] == [200, 200, 200, 500, 200, 200]
    doomed_state = _state(waas, world, doomed)
    assert doomed_state[:2] == before[:2]  # not signed, still quoted
    for txn_id in txn_ids[:3] + txn_ids[4:]:
        txn = waas.runtime.store.transactions.get(txn_id)
        assert txn is not None and txn.status == "pending" and txn.signature is not None


def test_executes_racing_an_owners_revoke_are_signed_only_before_it(
    api: Api, app: SessionWardApi, waas: Waas, world: World
) -> None:
    """Waves of concurrent Executes keep the writer busy while the owner revokes: the revoke
    still gets its turn; every Execute is either signed before it (its audit record precedes
    the revocation's) or refused with SESSION_REVOKED, and every Execute sent after the revoke
    returned is refused."""
    wave, waves = 4, 40
    txn_ids = [quote(api, waas, world, amount="1000") for _ in range(wave * waves)]
    executes = _signed_executes(world, txn_ids)
    revoke_body = raw_json(
        {"walletId": world.wallet_id, "credentialId": world.backend.credential_id}
    )
    revoke_headers = {SIG: world.owner.header("RevokeAccess", revoke_body)}
    after_revoke: list[httpx.Response] = []
    answers: list[httpx.Response] = []

    async def race() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sessionward") as client:

            def post(method: str, body: bytes, headers: dict[str, str]) -> Any:
                merged = {"content-type": "application/json", **headers}
                return client.post(path_of(method), content=body, headers=merged)

            revoke = asyncio.ensure_future(post("RevokeAccess", revoke_body, revoke_headers))
            for start in range(0, len(executes), wave):
                sent_after_revoke = revoke.done()
                replies = await asyncio.gather(
                    *(post("Execute", *request) for request in executes[start : start + wave])
                )
                answers.extend(replies)
                if sent_after_revoke:
                    after_revoke.extend(replies)
                    break
            return await revoke

    revoked = asyncio.run(race())
    assert revoked.status_code == 200, revoked.text
    assert after_revoke, "the revoke did not get its turn while Executes kept coming"
    for answer in after_revoke:
        refused(answer, 403, "SESSION_REVOKED")
    signed = [answer for answer in answers if answer.status_code == 200]
    for answer in answers:
        if answer.status_code != 200:
            refused(answer, 403, "SESSION_REVOKED")
    txns = [waas.runtime.store.transactions.get(txn_id) for txn_id in txn_ids]
    assert sum(txn is not None and txn.signature is not None for txn in txns) == len(signed)
    kinds = [record.kind for record in waas.runtime.store.audit.records(world.wallet_id)]
    assert kinds.count("session.call.signed") == len(signed)
    assert "session.call.signed" not in kinds[kinds.index("session.revoked") :]


# --- a revocation request is one durable unit ------------------------------------------------


def _revoke_access(world: World) -> tuple[bytes, dict[str, str]]:
    body = raw_json({"walletId": world.wallet_id, "credentialId": world.backend.credential_id})
    return body, {
        SIG: world.owner.header("RevokeAccess", body),
        "Idempotency-Key": "key-" + secrets.token_hex(8),
    }


def test_a_revocation_commits_once_with_everything_it_wrote(
    api: Api, waas: Waas, world: World
) -> None:
    """Nonce, idempotency key, revocation, disabled key and audit record: one transaction, so
    on SQLite a revocation takes the write lock once, not once per record."""
    with _counting_commits(waas) as commits:
        answer = api.post_raw("RevokeAccess", *_revoke_access(world))
    assert answer.status_code == 200, answer.text
    assert answer.json()["revokedSessions"] == [world.session_id]
    assert len(commits) == 1


def test_a_revocation_that_fails_midway_leaves_nothing_and_can_be_sent_again(
    api: Api, waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server fault after the session row was revoked (the audit record cannot be written):
    the whole revocation is undone, and the same signed request then revokes."""
    request = _revoke_access(world)
    append = waas.runtime.store.audit.append

    def fail(stream: str, kind: str, *args: Any, **kwargs: Any) -> object:
        if kind == "session.revoked":
            raise RuntimeError("injected: the audit record could not be written")
        return append(stream, kind, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(waas.runtime.store.audit, "append", fail)
        broken = api.post_raw("RevokeAccess", *request)
    assert broken.status_code == 500
    session = waas.runtime.store.sessions.get(world.session_id)
    assert session is not None and session.status == "active"
    kinds = [record.kind for record in waas.runtime.store.audit.records(world.wallet_id)]
    assert "session.revoked" not in kinds

    retried = api.post_raw("RevokeAccess", *request)
    assert retried.status_code == 200, retried.text
    assert retried.json()["revokedSessions"] == [world.session_id]
    session = waas.runtime.store.sessions.get(world.session_id)
    # Revoked off chain at once; "revoked" once the chain shows the removal.
    assert session is not None and session.status == "revoking"
