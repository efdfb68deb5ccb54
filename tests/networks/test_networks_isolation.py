"""Two networks in one service, isolated: on two in-process chains and on two anvil nodes
(different chain ids side by side, started and stopped by PID), the same owner key and the same
backend on both, one account address on both chains.

A grant, a session call and a revocation made on one network cannot be replayed on the other:
the chain refuses each with its exact reason code, and neither chain nor the database changes.
A request naming the wrong network is refused ``CHAIN_MISMATCH`` and writes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from networks_support import Backend, Networks, Session, two_networks

import anvil_node
from sessionward.chain.demo import demo_contract
from sessionward.chain.errors import ChainError
from sessionward.chain.relay_jobs import JobState
from sessionward.crypto.typed_data import revocation_digest
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError

ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module", params=anvil_node.BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Networks]:
    """One service on ``alpha`` and ``beta``: two in-process chains, or two anvil nodes."""
    data_dir = tmp_path_factory.mktemp("networks")
    if request.param == "embedded":
        built = Networks.build(data_dir, two_networks(data_dir))
        yield built
        built.close()
        return
    from networks_support import ALPHA_CHAIN_ID, BETA_CHAIN_ID

    try:
        alpha_process, alpha_url = anvil_node.start(ALPHA_CHAIN_ID)
    except anvil_node.AnvilUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        beta_process, beta_url = anvil_node.start(BETA_CHAIN_ID)
    except anvil_node.AnvilUnavailable as exc:
        anvil_node.stop(alpha_process)
        pytest.fail(str(exc), pytrace=False)
    try:
        built = Networks.build(
            data_dir, two_networks(data_dir, alpha_rpc=alpha_url, beta_rpc=beta_url)
        )
        try:
            yield built
        finally:
            built.close()
    finally:
        anvil_node.stop(alpha_process)
        anvil_node.stop(beta_process)


@dataclass(frozen=True)
class Pair:
    """The same owner and backend on both networks: a wallet on each (one account address),
    an installed session on each, and one swap executed on alpha."""

    alpha: Session
    beta: Session
    backend: Backend
    alpha_swap: str


@pytest.fixture(scope="module")
def pair(world: Networks) -> Pair:
    owner_secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
    backend = world.backend()
    alpha_wallet = world.wallet("alpha", owner_secret, salt)
    beta_wallet = world.wallet("beta", owner_secret, salt)
    alpha = world.session(alpha_wallet, backend)
    beta = world.session(beta_wallet, backend)
    txn = world.swap(alpha, 10)
    assert world.waas.transactions.status(backend.caller, txn)["status"] == "executed"
    return Pair(alpha, beta, backend, txn)


def _job_data(world: Networks, job_id: str) -> bytes:
    job = world.rt.relayer.job(job_id)
    assert job is not None and job.state is JobState.EXECUTED
    return job.data


def _everything(world: Networks, pair: Pair) -> tuple[object, ...]:
    """Both chains' views of both accounts and both session keys, and the database's rows."""
    keys = (pair.alpha.session_key, pair.beta.session_key)
    account = pair.alpha.wallet.account
    return (
        world.chain_state("alpha", account, *keys),
        world.chain_state("beta", account, *keys),
        world.db_counts(),
        world.rt.store.sessions.get(pair.alpha.session_id),
        world.rt.store.sessions.get(pair.beta.session_id),
    )


def test_one_owner_has_one_account_address_on_both_networks_told_apart_by_chain_id(
    world: Networks, pair: Pair
) -> None:
    a, b = pair.alpha.wallet, pair.beta.wallet
    assert a.account == b.account and a.owner == b.owner
    alpha_record = world.rt.store.wallets.get(a.wallet_id)
    beta_record = world.rt.store.wallets.get(b.wallet_id)
    assert alpha_record is not None and beta_record is not None
    assert (alpha_record.chain_id, beta_record.chain_id) == (
        world.net("alpha").chain_id,
        world.net("beta").chain_id,
    )
    assert world.net("alpha").relayer.address != world.net("beta").relayer.address
    # Each network's relayer sent its own network's installs.
    for session, name in ((pair.alpha, "alpha"), (pair.beta, "beta")):
        job = world.rt.relayer.job(f"enable:{session.session_id}")
        assert job is not None and job.sender == world.net(name).relayer.address
    assert world.onchain_status("alpha", a.account, pair.alpha.session_key) == 1
    assert world.onchain_status("beta", a.account, pair.alpha.session_key) == 0
    assert world.usdx(a) == 990 * 10**6 and world.usdx(b) == 1_000 * 10**6


def test_a_grant_for_one_network_cannot_be_installed_on_the_other(
    world: Networks, pair: Pair
) -> None:
    enable = _job_data(world, f"enable:{pair.alpha.session_id}")
    before = _everything(world, pair)
    # Anyone may relay an enable call: alpha's, sent to the same account on beta.
    assert world.replay("beta", pair.beta.wallet.account, enable) is ReasonCode.CHAIN_MISMATCH
    after = _everything(world, pair)
    assert after[0] == before[0] and after[1][:3] == before[1][:3]  # only the attacker's tx
    assert after[1][3:] == before[1][3:] and after[2:] == before[2:]


def test_the_owners_grant_signature_for_one_network_does_not_approve_a_session_on_the_other(
    world: Networks, pair: Pair
) -> None:
    pending = world.authorize(pair.beta.wallet, pair.backend)
    alpha_record = world.rt.store.sessions.get(pair.alpha.session_id)
    assert alpha_record is not None and alpha_record.owner_signature is not None
    before = world.db_counts(), world.rt.store.sessions.get(pending["sessionId"])
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            pair.beta.wallet.caller,
            session_id=pending["sessionId"],
            signature=bytes.fromhex(alpha_record.owner_signature),
        )
    assert refused.value.code is ReasonCode.SIGNER_MISMATCH  # signed for another domain
    assert (world.db_counts(), world.rt.store.sessions.get(pending["sessionId"])) == before


def test_a_session_call_on_one_network_cannot_be_replayed_on_the_other(
    world: Networks, pair: Pair
) -> None:
    call = _job_data(world, f"exec:{pair.alpha_swap}")
    job = world.rt.relayer.job(f"exec:{pair.alpha_swap}")
    assert job is not None and job.raw_tx is not None
    before = _everything(world, pair)
    # The account call, relayed by anyone to the same account on beta: not a session there.
    assert world.replay("beta", pair.beta.wallet.account, call) is ReasonCode.SESSION_UNKNOWN
    # The relayer's own signed transaction, sent to beta's node: its chain id is alpha's.
    with pytest.raises(ChainError):
        world.chain("beta").send_raw_transaction(job.raw_tx)
    after = _everything(world, pair)
    assert after[0] == before[0] and after[1] == before[1] and after[2:] == before[2:]


def test_prepare_naming_the_other_network_is_a_chain_mismatch_and_writes_nothing(
    world: Networks, pair: Pair
) -> None:
    before = _everything(world, pair)
    for named in ("beta", world.net("beta").chain_id, str(world.net("beta").chain_id), "BETA"):
        with pytest.raises(ServiceError) as refused:
            world.prepare(pair.alpha, 5, network=named)
        assert (refused.value.kind, refused.value.code) == ("forbidden", ReasonCode.CHAIN_MISMATCH)
    with pytest.raises(ServiceError) as unknown:
        world.prepare(pair.alpha, 5, network="gamma")
    assert (unknown.value.kind, unknown.value.code) == ("not_found", ReasonCode.NETWORK_UNKNOWN)
    with pytest.raises(ServiceError) as usage:
        world.waas.sessions.usage(pair.backend.caller, pair.alpha.session_id, network="beta")
    assert usage.value.code is ReasonCode.CHAIN_MISMATCH
    assert _everything(world, pair) == before


def test_a_revocation_on_one_network_leaves_the_other_untouched(
    world: Networks, pair: Pair
) -> None:
    beta_before = world.chain_state("beta", pair.beta.wallet.account, pair.beta.session_key)
    world.waas.revocations.revoke_access(
        pair.alpha.wallet.caller,
        wallet_id=pair.alpha.wallet.wallet_id,
        credential_id=pair.backend.credential_id,
        session_id=pair.alpha.session_id,
    )
    world.settle()
    account = pair.alpha.wallet.account
    assert world.onchain_status("alpha", account, pair.alpha.session_key) == 2
    removal = world.rt.relayer.job(f"revoke:{pair.alpha.session_id}")
    assert removal is not None and removal.sender == world.net("alpha").relayer.address
    # The removal call, sent to beta by anyone else than a grant's revoker: refused there.
    assert world.replay("beta", account, removal.data) is ReasonCode.NOT_AUTHORIZED
    # Alpha's relayer's own signed removal, sent to beta's node: its chain id is alpha's.
    assert removal.raw_tx is not None
    with pytest.raises(ChainError):
        world.chain("beta").send_raw_transaction(removal.raw_tx)
    assert world.chain_state("beta", account, pair.beta.session_key) == beta_before
    beta = world.rt.store.sessions.get(pair.beta.session_id)
    assert beta is not None and beta.status == "active"
    # Beta's session still works, with the same backend.
    txn = world.swap(pair.beta, 10)
    assert world.waas.transactions.status(pair.backend.caller, txn)["status"] == "executed"
    assert world.usdx(pair.beta.wallet) == 990 * 10**6


def test_an_owner_signed_revocation_for_one_network_cannot_be_replayed_on_the_other(
    world: Networks, pair: Pair
) -> None:
    """The owner's EIP-712 Revocation of every session (zero key) at epoch 0, owner nonce 0,
    valid on both accounts but for its chain id: relayed on alpha it applies; on beta, at the
    same address, epoch and nonce, it is refused and beta's session lives on."""
    account, alpha = pair.alpha.wallet.account, world.net("alpha")
    assert world.account_view("beta", account, "epoch") == 0
    assert world.account_view("beta", account, "owner_nonce") == 0
    digest = revocation_digest(alpha.chain_id, account, ZERO, 0, 0)
    signature = pair.alpha.wallet.sign("0x" + digest.hex())
    data = demo_contract("SessionAccount").encode("revoke_session_signed", ZERO, 0, 0, signature)
    before = world.chain_state("beta", account, pair.beta.session_key), world.db_counts()
    assert world.replay("beta", account, data) is ReasonCode.SIGNATURE_INVALID
    assert (world.chain_state("beta", account, pair.beta.session_key), world.db_counts()) == before
    assert world.replay("alpha", account, data) is None  # valid where it was signed
    assert world.account_view("alpha", account, "epoch") == 1
    assert world.chain_state("beta", account, pair.beta.session_key) == before[0]


def test_a_session_presented_for_the_same_account_on_the_other_network_signs_nothing(
    world: Networks, pair: Pair
) -> None:
    """The session's own backend names alpha's session with beta's wallet (one account
    address on both chains) and beta's network: the network is the wallet's, so the policy
    decides, and the session's chain is not the request's: a recorded CHAIN_MISMATCH denial,
    nothing signed or sent, beta's chain unchanged; the context-mismatch rule revokes the
    session (docs/design.md section 8)."""
    session = world.session(pair.alpha.wallet, pair.backend)
    beta_before = world.chain_state("beta", pair.beta.wallet.account, pair.beta.session_key)
    with pytest.raises(ServiceError) as refused:
        world.waas.transactions.prepare(
            pair.backend.caller,
            wallet_id=pair.beta.wallet.wallet_id,
            session_id=session.session_id,
            to=world.net("beta").deployment.router,
            value=0,
            data=world.swap_data(pair.beta.wallet, 5),
            network="beta",
        )
    assert (refused.value.kind, refused.value.code) == ("denied", ReasonCode.CHAIN_MISMATCH)
    txns = world.rt.store.transactions.of_session(session.session_id)
    assert [(t.status, t.signature) for t in txns] == [("denied", None)]
    assert world.chain_state("beta", pair.beta.wallet.account, pair.beta.session_key) == beta_before
    record = world.rt.store.sessions.get(session.session_id)
    assert record is not None and record.status in ("revoking", "revoked")
