"""The service on two in-process networks: wallets belong to the network they were made or
registered on, each network's dispatcher carries only its wallets' work, a registration proof
or a request for one network does nothing on the other, and the relayer waits for the
configured confirmation depth."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from networks_support import ALPHA_CHAIN_ID, BETA_CHAIN_ID, Networks, two_networks

from sessionward.chain.contracts import transact
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.relay_jobs import InMemoryRelayJobStore, JobState
from sessionward.chain.relayer import Relayer
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.reasons import ReasonCode
from sessionward.service.callers import SelfSigned
from sessionward.service.config import ConfigError, NetworkSettings, Settings
from sessionward.service.errors import ServiceError
from sessionward.service.runtime import EMBEDDED_CHAIN_ID, build_runtime
from sessionward.service.waas import Waas
from sessionward.service.wallets import RegistrationProof
from sessionward.store.lease import LeaseFence, Leases


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Networks]:
    data_dir = tmp_path_factory.mktemp("networks")
    built = Networks.build(data_dir, two_networks(data_dir))
    yield built
    built.close()


def test_each_network_has_its_chain_relayer_deployment_and_dispatcher(world: Networks) -> None:
    alpha, beta = world.net("alpha"), world.net("beta")
    assert (alpha.chain_id, beta.chain_id) == (ALPHA_CHAIN_ID, BETA_CHAIN_ID)
    assert alpha.relayer.address != beta.relayer.address
    assert (alpha.relayer.chain_id, beta.relayer.chain_id) == (ALPHA_CHAIN_ID, BETA_CHAIN_ID)
    assert (alpha.deployment.chain_id, beta.deployment.chain_id) == (ALPHA_CHAIN_ID, BETA_CHAIN_ID)
    assert [d.runtime.chain_id for d in world.waas.dispatchers] == [ALPHA_CHAIN_ID, BETA_CHAIN_ID]
    # The default network is the first; every network is named by name or chain id.
    assert world.rt.select(None) is alpha and world.rt.network_name == "alpha"
    for named in ("beta", "Beta", BETA_CHAIN_ID, str(BETA_CHAIN_ID)):
        assert world.rt.select(named) is beta
    for unknown in ("gamma", 1, "1", "default"):
        with pytest.raises(ServiceError) as refused:
            world.rt.select(unknown)
        assert (refused.value.kind, refused.value.code) == ("not_found", ReasonCode.NETWORK_UNKNOWN)
    # The catalog and prices know each network's demo contracts on its own chain.
    for net in (alpha, beta):
        assert "router" in world.rt.catalog.kinds_of(net.chain_id, net.deployment.router)


def test_a_wallet_is_made_on_the_network_the_request_names(world: Networks) -> None:
    secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
    owner = SelfSigned(ALG_SECP256K1, address_from_secret(secret))
    made = world.waas.wallets.create(owner, salt=salt, network=BETA_CHAIN_ID)
    assert made["chainId"] == BETA_CHAIN_ID
    world.settle()
    assert world.chain("beta").get_code(made["account"])
    assert not world.chain("alpha").get_code(made["account"])
    default = world.waas.wallets.create(owner, salt=salt)
    assert default["chainId"] == ALPHA_CHAIN_ID and default["account"] == made["account"]
    before = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.waas.wallets.create(owner, salt=secrets.token_bytes(32), network="gamma")
    assert refused.value.code is ReasonCode.NETWORK_UNKNOWN
    assert world.db_counts() == before


def test_a_registration_proof_for_one_network_does_not_register_on_the_other(
    world: Networks,
) -> None:
    secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
    owner = SelfSigned(ALG_SECP256K1, address_from_secret(secret))
    # The owner's account, made straight through each chain's factory (one address on both).
    accounts = set()
    for name in ("alpha", "beta"):
        rt = world.net(name)
        data = rt.calls.create_account(owner.public_key, salt)
        transact(world.chain(name), rt.deployer, to=rt.deployment.factory, data=data)
        accounts.add(rt.calls.decode_address(
            world.chain(name).call(rt.deployment.factory, rt.calls.get_address(owner.public_key, salt))
        ))  # fmt: skip
    (account,) = accounts
    challenge = world.waas.wallets.registration_challenge(owner, account=account, network="beta")
    assert challenge["chainId"] == BETA_CHAIN_ID
    proof = RegistrationProof(
        int(challenge["nonce"]),
        challenge["deadline"],
        sign_digest(secret, bytes.fromhex(challenge["digest"][2:])),
    )
    before = world.db_counts()
    with pytest.raises(ServiceError) as refused:  # beta's proof, presented on alpha
        world.waas.wallets.register(owner, account=account, proof=proof, network="alpha")
    assert refused.value.code is ReasonCode.REGISTRATION_PROOF_INVALID
    assert world.db_counts() == before
    registered = world.waas.wallets.register(owner, account=account, proof=proof, network="beta")
    assert (registered["chainId"], registered["account"]) == (BETA_CHAIN_ID, account)


def test_each_dispatcher_carries_only_its_own_networks_calls(world: Networks) -> None:
    secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
    backend = world.backend()
    sessions = {
        name: world.session(world.wallet(name, secret, salt), backend) for name in ("alpha", "beta")
    }
    quotes = {}
    for name, session in sessions.items():
        quote = world.prepare(session, 10, network=name)
        world.waas.transactions.execute(backend.caller, quote["txnId"])
        quotes[name] = quote["txnId"]
    alpha_dispatcher, beta_dispatcher = world.waas.dispatchers
    for _ in range(3):
        alpha_dispatcher.step()
    status = {
        n: world.waas.transactions.status(backend.caller, t)["status"] for n, t in quotes.items()
    }
    assert status == {"alpha": "executed", "beta": "pending"}
    assert world.rt.relayer.job(f"exec:{quotes['beta']}") is None  # not even queued by alpha
    for _ in range(3):
        beta_dispatcher.step()
    job = world.rt.relayer.job(f"exec:{quotes['beta']}")
    assert job is not None and job.sender == world.net("beta").relayer.address
    assert world.waas.transactions.status(backend.caller, quotes["beta"])["status"] == "executed"
    # A revocation on beta is carried by beta's relayer, alpha's reconciler leaves it alone.
    world.waas.revocations.revoke_access(
        sessions["beta"].wallet.caller,
        wallet_id=sessions["beta"].wallet.wallet_id,
        credential_id=backend.credential_id,
        session_id=sessions["beta"].session_id,
    )
    alpha_dispatcher.step()
    removal = world.rt.relayer.job(f"revoke:{sessions['beta'].session_id}")
    assert removal is not None and removal.state is JobState.QUEUED
    assert removal.sender == world.net("beta").relayer.address
    for _ in range(3):
        beta_dispatcher.step()
    record = world.rt.store.sessions.get(sessions["beta"].session_id)
    assert record is not None and record.onchain_revoked_at is not None
    alpha_record = world.rt.store.sessions.get(sessions["alpha"].session_id)
    assert alpha_record is not None and alpha_record.status == "active"


def test_authorize_naming_another_network_makes_no_key_and_no_session(world: Networks) -> None:
    wallet = world.wallet("alpha", secrets.token_bytes(32), secrets.token_bytes(32))
    backend = world.backend()
    before = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.authorize(
            wallet.caller,
            credential_id=backend.credential_id,
            wallet_id=wallet.wallet_id,
            envelope=world.envelope("alpha"),
            network="beta",
        )
    assert (refused.value.kind, refused.value.code) == ("forbidden", ReasonCode.CHAIN_MISMATCH)
    assert world.db_counts() == before  # vault keys and sessions included


def test_two_networks_cannot_share_a_relayer_key(tmp_path: Path) -> None:
    two_networks(tmp_path)  # the data directory with its deployer keys
    key = secrets.token_bytes(32).hex()
    for name in ("a.key", "b.key"):
        (tmp_path / name).write_text(key)
        (tmp_path / name).chmod(0o600)
    shared = (
        NetworkSettings("alpha", ALPHA_CHAIN_ID, relayer_key_file=tmp_path / "a.key"),
        NetworkSettings("beta", BETA_CHAIN_ID, relayer_key_file=tmp_path / "b.key"),
    )
    with pytest.raises(ConfigError, match="cannot share a relayer key"):
        build_runtime(Settings(data_dir=tmp_path, networks=shared)).close()


def test_the_relayer_records_an_outcome_only_at_the_configured_depth() -> None:
    chain = EmbeddedChain(chain_id=ALPHA_CHAIN_ID)
    signer = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(signer.address, 10**20)
    relayer = Relayer(chain, signer, InMemoryRelayJobStore(), 10**18, confirmations=3)
    relayer.enqueue("pay", to="0x" + "11" * 20, value=1, gas_limit=21_000)
    (submitted,) = relayer.submit()
    assert submitted.state is JobState.SUBMITTED
    assert relayer.poll() == [] and relayer.awaiting_receipt  # mined: one confirmation
    chain.mine()
    assert relayer.poll() == []  # two
    chain.mine()
    (done,) = relayer.poll()  # three
    assert done.state is JobState.EXECUTED and done.block_number is not None
    assert chain.block_number() - done.block_number + 1 == 3
    with pytest.raises(ValueError):
        Relayer(chain, signer, InMemoryRelayJobStore(), 10**18, confirmations=0)


def test_each_network_relays_under_its_own_lease(tmp_path: Path) -> None:
    """Another node holds alpha's lease: this node relays beta at once while alpha's call
    waits; once that lease is released, this node takes it and relays alpha too."""
    world = Networks.build(
        tmp_path, two_networks(tmp_path), relayer_poll_s=0.05, relayer_lease_ttl_s=1.5
    )
    try:
        secret, salt = secrets.token_bytes(32), secrets.token_bytes(32)
        backend = world.backend()
        sessions = {
            name: world.session(world.wallet(name, secret, salt), backend)
            for name in ("alpha", "beta")
        }
        leases = Leases(world.rt.store.db)
        other_node = LeaseFence(f"relayer:{ALPHA_CHAIN_ID}", "another-node")
        assert leases.acquire(other_node, ttl_ms=60_000) is not None
        world.waas.start()
        wait_until(lambda: world.waas.relay_leases() == {"alpha": False, "beta": True})
        quotes = {}
        for name, session in sessions.items():
            quote = world.prepare(session, 10, network=name)
            world.waas.transactions.execute(backend.caller, quote["txnId"])
            quotes[name] = quote["txnId"]

        def status(name: str) -> str:
            return str(world.waas.transactions.status(backend.caller, quotes[name])["status"])

        wait_until(lambda: status("beta") == "executed")
        time.sleep(0.5)  # several rounds of beta's loop: alpha's call is nobody's to relay
        assert status("alpha") == "pending"
        assert world.rt.relayer.job(f"exec:{quotes['alpha']}") is None
        leases.release(other_node)
        wait_until(lambda: world.waas.relay_leases() == {"alpha": True, "beta": True})
        wait_until(lambda: status("alpha") == "executed")
    finally:
        world.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_the_single_chain_settings_are_one_network_named_default(tmp_path: Path) -> None:
    waas = Waas(build_runtime(Settings(data_dir=tmp_path)))
    try:
        rt = waas.runtime
        assert [(n.name, n.chain_id) for n in rt.networks] == [("default", EMBEDDED_CHAIN_ID)]
        assert not rt.several_networks and len(waas.dispatchers) == 1
        for named in (None, "default", "DEFAULT", EMBEDDED_CHAIN_ID, str(EMBEDDED_CHAIN_ID)):
            assert rt.select(named) is rt
        with pytest.raises(ServiceError) as refused:
            rt.select("mainnet")
        assert refused.value.code is ReasonCode.NETWORK_UNKNOWN
        owner = SelfSigned(ALG_SECP256K1, address_from_secret(secrets.token_bytes(32)))
        assert waas.wallets.create(owner, network="default")["chainId"] == EMBEDDED_CHAIN_ID
        assert (tmp_path / "relayer.key").is_file()  # the single-chain files, as before
        assert not list(tmp_path.glob("relayer-*.key"))
    finally:
        waas.stop()
