"""Adversaries around a module wallet (a third-party ERC-7579 account driven by the service
through SessionWard's module), on anvil: a registrant without proof, an account that did not
install the module, a session key that ignores the service, an outsider re-sending public
calldata, an owner who uninstalls the module behind the service's back.

Each refusal is asserted with its exact reason code and with nothing changed: no token moved,
no session state on chain, no row in the database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from erc4337_support import TRANSFER, Key, Stage
from module_support import module_artifact
from module_wallet_support import NETWORK, ModuleWorld, module_world

from networks.networks_support import USDX_UNIT, Backend
from sessionward.chain.artifacts import session_account as world_free_session_account
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_single_execution, mode_single
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.onchain import ModuleSessions
from sessionward.service.wallets import RegistrationProof

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def world(
    stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleWorld]:
    data_dir = tmp_path_factory.mktemp("module-adversaries") / "service"
    with module_world(stage, anvil, data_dir, bundler=False) as world:
        yield world


# --- registration ------------------------------------------------------------------------


def test_an_account_without_the_module_as_executor_is_refused_and_nothing_is_written(
    world: ModuleWorld,
) -> None:
    account = world.module_account(install=(1,))  # validator only
    counts = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.register(account)
    assert refused.value.code is ReasonCode.ACCOUNT_MISMATCH
    assert world.db_counts() == counts


def test_a_proof_signed_by_anyone_but_the_account_is_refused_and_nothing_is_written(
    world: ModuleWorld,
) -> None:
    account = world.module_account()
    forged = world.proof(account, signer=Key())
    counts = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.waas.wallets.register(
            world.self_signed(account),
            account=account.address,
            proof=forged,
            account_kind="erc7579",
            network=NETWORK,
        )
    assert refused.value.code is ReasonCode.REGISTRATION_PROOF_INVALID
    assert world.db_counts() == counts


def test_an_owner_other_than_the_account_itself_is_refused(world: ModuleWorld) -> None:
    account = world.module_account()
    with pytest.raises(ServiceError) as refused:
        world.waas.wallets.register(
            world.self_signed(account),
            account=account.address,
            proof=world.proof(account),
            owner=account.account.owner.address,
            account_kind="erc7579",
            network=NETWORK,
        )
    assert refused.value.code is ReasonCode.SIGNER_MISMATCH


def test_an_address_without_code_is_refused(world: ModuleWorld) -> None:
    owner = Key()
    counts = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.waas.wallets.register(
            world.self_signed_key(owner),
            account=owner.address,
            proof=RegistrationProof(1, world.rt.now() + 60, b"\x00" * 65),
            account_kind="erc7579",
            network=NETWORK,
        )
    assert refused.value.code is ReasonCode.ACCOUNT_MISMATCH
    assert world.db_counts() == counts


def test_a_session_account_is_not_an_erc7579_module_wallet(world: ModuleWorld) -> None:
    """A SessionAccount does not answer isModuleInstalled: refused, nothing written."""
    owner_secret = secrets.token_bytes(32)
    session_account = world.wallet(NETWORK, owner_secret, secrets.token_bytes(32))
    counts = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.waas.wallets.register(
            world.self_signed_key(Key(secret=owner_secret)),
            account=session_account.account,
            proof=RegistrationProof(1, world.rt.now() + 60, b"\x00" * 65),
            account_kind="erc7579",
            network=NETWORK,
        )
    assert refused.value.code is ReasonCode.ACCOUNT_MISMATCH
    assert world.db_counts() == counts


# --- the chain is the boundary --------------------------------------------------------------


def test_a_session_key_that_ignores_the_service_is_refused_by_the_module(
    world: ModuleWorld, backend: Backend
) -> None:
    """The session key's holder signs its own relayed call, a USDX transfer to itself (the
    grant allows swaps on the router only): the module refuses it, nothing moves."""
    session = world.granted(backend)
    wallet = session.wallet
    record = world.rt.store.sessions.get(session.session_id)
    assert record is not None
    usdx = world.net(NETWORK).deployment.token("USDX")
    thief = Key()
    steal = encode_call(parse_signature(TRANSFER), (thief.address, 100 * USDX_UNIT))
    mode, execution = mode_single(), encode_single_execution(Call(usdx, 0, steal))
    deadline = world.rt.now() + 300
    digest = typed_data.session_call_digest(
        world.rt.chain_id,
        wallet.account,
        session.session_key,
        typed_data.execution_hash(mode, execution),
        7,
        deadline,
    )
    # The key's own signature, as if its holder had it (the vault signs for the test).
    signature = world.rt.vault.sign(record.session_key_id, digest, now=world.rt.now())
    sessions = ModuleSessions(world.rt.calls, wallet.account, world.module.address)
    data = sessions.execute_with_session(
        session.session_key, mode, execution, 7, deadline, signature
    )
    before, counts = world.usdx(wallet), world.db_counts()
    assert world.replay(NETWORK, world.module.address, data) is ReasonCode.TARGET_NOT_ALLOWED
    assert world.usdx(wallet) == before
    assert world.db_counts() == counts  # nothing recorded by the service either
    assert not world.module_view("session_nonce_used", wallet.account, session.session_key, 7)


def test_an_outsider_resending_the_public_calldata_changes_nothing(
    world: ModuleWorld, backend: Backend
) -> None:
    """The enable transaction and a relayed call are public once mined: sent again by anyone,
    the module refuses them (the grant nonce and the call nonce are spent)."""
    session = world.granted(backend)
    wallet = session.wallet
    txn_id = world.swap(session, 10)
    assert world.waas.transactions.status(session.backend.caller, txn_id)["status"] == "executed"
    relayer = world.rt.relayer
    enable = relayer.job(f"enable:{session.session_id}")
    call = relayer.job(f"exec:{txn_id}")
    assert enable is not None and call is not None
    assert enable.to == call.to == world.module.address.lower()
    before, counts = world.usdx(wallet), world.db_counts()
    assert world.replay(NETWORK, enable.to, enable.data) is ReasonCode.NONCE_REPLAYED
    assert world.replay(NETWORK, call.to, call.data) is ReasonCode.NONCE_REPLAYED
    assert world.usdx(wallet) == before
    assert world.db_counts() == counts  # nothing recorded by the service either
    assert world.status_on_chain(wallet, session.session_key) == 1


def test_an_owner_who_uninstalls_the_module_behind_the_service_is_seen_and_agreed_with(
    world: ModuleWorld, backend: Backend
) -> None:
    """The owner uninstalls the module with its own operation: the module forgets the
    account's sessions (a new epoch); the reconciler sees the session is not live on chain,
    revokes it in the database and disables its key, and Prepare then refuses it."""
    session = world.granted(backend)
    wallet = session.wallet
    account = world.accounts[wallet.account]
    account.uninstall(2)
    account.uninstall(1)
    assert world.status_on_chain(wallet, session.session_key) == 0
    world.settle()
    world.waas.dispatchers[0].reconciler.run(everything=True)
    record = world.rt.store.sessions.get(session.session_id)
    assert record is not None and record.status == "revoked"
    with pytest.raises(ServiceError) as refused:
        world.prepare(session, 5, network=NETWORK)
    assert refused.value.code is ReasonCode.SESSION_REVOKED


# --- one home for the module's wire ---------------------------------------------------------


def test_the_module_functions_the_service_encodes_are_the_modules_own() -> None:
    """ModuleSessions spells the module's entry points by hand (the service does not compile
    the module): each selector is one of the compiled module's."""
    compiled = module_artifact()
    for text in (
        "execute_with_session(address,address,bytes32,bytes,uint256,uint48,bytes)",
        "revoke_session_as_revoker(address,address)",
        "session(address,address)",
        "epoch(address)",
        "grant_nonce_used(address,uint256)",
        "enable_session",
    ):
        name = text.split("(")[0]
        compiled_selector = compiled.signature(name).selector
        if "(" in text:
            assert keccak256(text.encode())[:4] == compiled_selector, text
    # enable_session: the module's ABI is SessionAccount's (the service encodes it so).
    account_selector = world_free_session_account().signature("enable_session").selector
    assert compiled.signature("enable_session").selector == account_selector
