"""Execute with ``submission: userop``, end to end: the service (on anvil, with the canonical
EntryPoint v0.7, the real alto bundler and the sample VerifyingPaymaster whose signer is the
service) builds the session call's UserOperation, the vault signs it with the session key, the
dispatcher hands it to the bundler and records the outcome from its receipt.

Who pays is what the owner signed: a grant with a fee budget (``maxFeeWei``) has the account
pay within it; a grant without one has the paymaster sponsor the call.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alto_bundler import funded
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, Stage, deploy_verifying_paymaster
from sqlalchemy import select

from networks.networks_support import Backend, Networks, Session, Wallet
from sessionward.chain.contracts import transact
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.reasons import ReasonCode
from sessionward.service.config import NetworkSettings
from sessionward.service.errors import ServiceError
from sessionward.service.user_operations import UserOperationPath
from sessionward.store.schema import reservations, user_operations

pytestmark = pytest.mark.anvil

CHAIN_ID = 31337
FEE_BUDGET = 10**17


class World(Networks):
    """The service on one network, ``local``, whose sessions may carry a fee budget."""

    def settle(self, rounds: int = 6) -> None:
        """More rounds than the default: the bundler shares the node (and the machine)."""
        super().settle(rounds)


@pytest.fixture(scope="module")
def world(stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("userop-service")
    paymaster = deploy_verifying_paymaster(stage, deposit=10 * ONE_ETH)
    key_file = data_dir / "paymaster.key"
    key_file.write_text(paymaster.signer.secret.hex(), encoding="utf-8")
    key_file.chmod(0o600)
    with funded(stage.chain, anvil) as alto:
        network = NetworkSettings(
            "local",
            CHAIN_ID,
            rpc_url=anvil,
            entry_point=ENTRY_POINT_V07,
            bundler_url=alto.url,
            paymaster=paymaster.contract.address,
            paymaster_key_file=key_file,
        )
        built = Networks.build(Path(data_dir / "service"), (network,))
        world = World(built.waas)
        try:
            yield world
        finally:
            world.close()


@pytest.fixture(scope="module")
def backend(world: World) -> Backend:
    return world.backend()


def _session(world: World, backend: Backend, *, fee_budget: int | None) -> Session:
    world.fee_budget = fee_budget
    wallet: Wallet = world.wallet("local", secrets.token_bytes(32), secrets.token_bytes(32))
    if fee_budget is not None:  # the account pays its operations: the owner funds it
        world.chain("local").set_balance(wallet.account, ONE_ETH)
    return world.session(wallet, backend)


def _execute_userop(world: World, session: Session, usdx: int) -> dict[str, Any]:
    quote = world.prepare(session, usdx)
    view = world.waas.transactions.execute(
        session.backend.caller, quote["txnId"], submission="userop"
    )
    assert view["status"] == "pending"
    for _ in range(100):
        world.settle(rounds=1)
        status = world.waas.transactions.status(session.backend.caller, quote["txnId"])
        if status["status"] != "pending":
            return dict(status)
    raise AssertionError("the UserOperation was not mined")


@pytest.mark.parametrize("fee_budget", [FEE_BUDGET, None], ids=["account-pays", "sponsored"])
def test_a_session_call_sent_as_a_user_operation_executes(
    world: World, backend: Backend, fee_budget: int | None
) -> None:
    session = _session(world, backend, fee_budget=fee_budget)
    account = session.wallet.account
    chain = world.chain("local")
    usdx, ether = world.usdx(session.wallet), chain.get_balance(account)
    status = _execute_userop(world, session, 25)
    assert status["status"] == "executed", status
    assert world.usdx(session.wallet) == usdx - 25 * 10**6
    receipt = chain.get_receipt(status["txHash"])
    assert receipt is not None and receipt.succeeded
    budget = world.account_view("local", account, "fee_budget", session.session_key)
    if fee_budget is None:  # sponsored: the account paid nothing, its budget is untouched
        assert chain.get_balance(account) == ether and budget == 0
    else:
        assert chain.get_balance(account) < ether and budget < FEE_BUDGET


def test_the_plan_and_the_signature_are_recorded_and_the_operation_ran_once(
    world: World, backend: Backend
) -> None:
    session = _session(world, backend, fee_budget=FEE_BUDGET)
    status = _execute_userop(world, session, 10)
    with world.rt.store.db.reading() as conn:
        rows = conn.execute(
            user_operations.select().where(user_operations.c.txn_id == status["txnId"])
        ).fetchall()
    assert len(rows) == 1 and rows[0].submitted_at is not None
    world.settle()  # more rounds: an executed call is never submitted again
    assert world.usdx(session.wallet) == 1_000 * 10**6 - 10 * 10**6


def test_a_network_without_a_bundler_refuses_userop_and_signs_nothing(
    world: World, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(world, backend, fee_budget=FEE_BUDGET)
    quote = world.prepare(session, 5)
    network = world.rt.network
    assert network is not None
    monkeypatch.setattr(world.rt, "network", replace(network, user_operations=None))
    with pytest.raises(ServiceError) as refused:
        world.waas.transactions.execute(session.backend.caller, quote["txnId"], submission="userop")
    assert refused.value.code is ReasonCode.USER_OPERATION_REFUSED
    monkeypatch.undo()
    status = world.waas.transactions.status(session.backend.caller, quote["txnId"])
    assert status["status"] == "quoted" and status.get("signature") is None


def test_an_unknown_submission_is_a_typed_client_error(world: World, backend: Backend) -> None:
    session = _session(world, backend, fee_budget=FEE_BUDGET)
    quote = world.prepare(session, 5)
    with pytest.raises(ServiceError) as refused:
        world.waas.transactions.execute(
            session.backend.caller,
            quote["txnId"],
            submission="carrier-pigeon",  # type: ignore[arg-type]
        )
    assert refused.value.code is ReasonCode.INPUT_MALFORMED


def test_a_session_the_owner_revoked_on_chain_is_refused_at_planning_and_nothing_is_signed(
    world: World, backend: Backend
) -> None:
    """The owner revokes on chain behind the service's back: the service still allows the
    call, the account's own validation (run by the bundler's estimate) refuses it, and the
    refusal is recorded with the account's code; no signature, no spend."""
    session = _session(world, backend, fee_budget=FEE_BUDGET)
    wallet = session.wallet
    revoke = world._account.encode("revoke_session", session.session_key)
    transact(
        world.chain("local"),
        LocalTransactionSigner(wallet.owner_secret),
        to=wallet.account,
        data=revoke,
    )
    usdx = world.usdx(wallet)
    quote = world.prepare(session, 5)
    with pytest.raises(ServiceError) as refused:
        world.waas.transactions.execute(session.backend.caller, quote["txnId"], submission="userop")
    assert refused.value.code is ReasonCode.SESSION_REVOKED
    status = world.waas.transactions.status(session.backend.caller, quote["txnId"])
    assert status["status"] == "denied"
    world.settle()
    assert world.usdx(wallet) == usdx


def _counters(world: World, session_id: str) -> dict[str, int]:
    usage = world.rt.store.budget.usage_of(session_id)
    return {bucket: counter.amount for bucket, counter in usage.counters.items()}


def _reservation_statuses(world: World, session_id: str) -> list[str]:
    statement = select(reservations.c.status).where(reservations.c.session_id == session_id)
    with world.rt.store.db.reading() as conn:
        return [str(status) for (status,) in conn.execute(statement)]


def test_a_user_operation_the_owner_revokes_before_it_is_bundled_fails_and_gives_its_budget_back(
    world: World, backend: Backend
) -> None:
    """The race a revocation wins on this path: the service signed the session call's
    UserOperation (pending, not handed to the bundler yet), then the owner's own revocation
    is mined first. The bundler's validation of the account refuses it: the call is recorded
    failed with the account's code, its reservation released and its counters back; nothing
    moved on chain, and it is not submitted again."""
    session = _session(world, backend, fee_budget=FEE_BUDGET)
    wallet = session.wallet
    counters_before = _counters(world, session.session_id)
    quote = world.prepare(session, 5)
    view = world.waas.transactions.execute(
        session.backend.caller, quote["txnId"], submission="userop"
    )
    assert view["status"] == "pending"
    chain = world.chain("local")
    usdx, key = world.usdx(wallet), session.session_key
    nonce = world.account_view("local", wallet.account, "session_nonce", key)
    transact(
        chain,
        LocalTransactionSigner(wallet.owner_secret),
        to=wallet.account,
        data=world._account.encode("revoke_session", key),
    )
    for _ in range(100):
        world.settle(rounds=1)
        status = world.waas.transactions.status(session.backend.caller, quote["txnId"])
        if status["status"] != "pending":
            break
    assert status["status"] == "failed", status
    assert status.get("failure") == ReasonCode.SESSION_REVOKED.value, status
    assert _reservation_statuses(world, session.session_id) == ["released"]
    counters = _counters(world, session.session_id)
    assert counters and all(counters[b] == counters_before.get(b, 0) for b in counters), counters
    world.settle()  # more rounds: a failed call is never submitted again
    assert world.usdx(wallet) == usdx
    assert world.account_view("local", wallet.account, "session_nonce", key) == nonce
    assert world.onchain_status("local", wallet.account, key) == 2  # revoked
    assert world.rt.store.sessions.get(session.session_id).status == "revoked"


def test_a_session_without_a_fee_budget_on_a_network_without_a_paymaster_is_refused(
    world: World, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(world, backend, fee_budget=None)
    quote = world.prepare(session, 5)
    network, path = world.rt.network, world.rt.user_operations
    assert network is not None and path is not None
    unsponsored = UserOperationPath(
        chain=world.rt.chain, bundler=path._bundler, calls=world.rt.calls
    )
    monkeypatch.setattr(world.rt, "network", replace(network, user_operations=unsponsored))
    with pytest.raises(ServiceError) as refused:
        world.waas.transactions.execute(session.backend.caller, quote["txnId"], submission="userop")
    assert refused.value.code is ReasonCode.FEE_LIMIT_EXCEEDED
    monkeypatch.undo()
    assert (
        world.waas.transactions.status(session.backend.caller, quote["txnId"])["status"] == "quoted"
    )
