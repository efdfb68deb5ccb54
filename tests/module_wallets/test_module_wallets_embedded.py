"""On embedded defaults (the in-process chain, no node, no npm): the demo world ships
SessionWard's ERC-7579 module and SessionAccount7579's factory, and the service takes the
module from its deployment record without any setting. A SessionAccount7579 made by that
factory (anyone may create it; the module is installed in its constructor) registers as an
``erc7579`` wallet and runs a session: grant, swap, refusal, revocation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from module_wallet_support import AccountMessageWallet

from networks.networks_support import APPROVE, USDX_UNIT, Networks
from sessionward.chain.artifacts import session_account7579, session_account7579_factory
from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.crypto.typed_data import account_message_digest
from sessionward.domain.abi import encode_call
from sessionward.domain.calldata import Call, encode_execute, encode_single_execution, mode_single
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import NetworkSettings
from sessionward.service.errors import ServiceError
from sessionward.service.wallets import RegistrationProof

NETWORK = "embedded"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Networks]:
    data_dir = Path(tmp_path_factory.mktemp("module-embedded"))
    built = Networks.build(data_dir, (NetworkSettings(NETWORK, 31_337_777),))
    try:
        yield built
    finally:
        built.close()


def _account7579(world: Networks, owner_secret: bytes) -> str:
    """A SessionAccount7579 of the owner from the demo world's factory (created by the demo's
    deployer), 1,000 USDX, the router approved by the owner's own call."""
    rt, chain = world.net(NETWORK), world.chain(NETWORK)
    owner = address_from_secret(owner_secret)
    factory_address = rt.deployment.account7579_factory
    assert factory_address is not None
    factory = DeployedContract(chain, factory_address, session_account7579_factory())
    salt = secrets.token_bytes(32)
    factory.transact(rt.deployer, "create_account", owner, salt)
    account = str(factory.call_one("get_address", owner, salt)).lower()
    usdx = rt.deployment.token("USDX")
    world.token(NETWORK, usdx).transact(rt.deployer, "mint", account, 1_000 * USDX_UNIT)
    chain.set_balance(owner, 10**18)
    approve = encode_call(APPROVE, (rt.deployment.router, 2**255))
    data = encode_execute(mode_single(), encode_single_execution(Call(usdx, 0, approve)))
    transact(chain, LocalTransactionSigner(owner_secret), to=account, data=data)
    return account


def test_the_demo_world_ships_the_module_and_session_account7579(world: Networks) -> None:
    rt = world.net(NETWORK)
    assert rt.session_module is not None
    assert rt.session_module == rt.deployment.session_module
    assert world.chain(NETWORK).get_code(rt.session_module)
    account = _account7579(world, secrets.token_bytes(32))
    bound = DeployedContract(world.chain(NETWORK), account, session_account7579())
    for module_type in (1, 2):
        assert bound.call_one("isModuleInstalled", module_type, rt.session_module, b"") is True


def test_a_session_account7579_runs_a_session_on_embedded_defaults(world: Networks) -> None:
    rt = world.net(NETWORK)
    owner_secret = secrets.token_bytes(32)
    account = _account7579(world, owner_secret)
    owner = address_from_secret(owner_secret)
    signer = SelfSigned(ALG_SECP256K1, owner)
    challenge = world.waas.wallets.registration_challenge(
        signer, account=account, account_kind="erc7579", network=NETWORK
    )
    wrapped = account_message_digest(rt.chain_id, account, bytes.fromhex(challenge["digest"][2:]))
    view = world.waas.wallets.register(
        signer,
        account=account,
        proof=RegistrationProof(
            int(challenge["nonce"]), challenge["deadline"], sign_digest(owner_secret, wrapped)
        ),
        account_kind="erc7579",
        network=NETWORK,
    )
    assert (view["accountKind"], view["sessionModule"]) == ("erc7579", rt.session_module)
    wallet = AccountMessageWallet(
        view["walletId"],
        NETWORK,
        account,
        owner,
        owner_secret,
        Caller(view["ownerCredentialId"] or "", "owner", view["walletId"]),
        chain_id=rt.chain_id,
    )
    backend = world.backend()
    session = world.session(wallet, backend)
    before = world.usdx(wallet)
    txn_id = world.swap(session, 25)
    assert world.waas.transactions.status(backend.caller, txn_id)["status"] == "executed"
    assert world.usdx(wallet) == before - 25 * USDX_UNIT
    with pytest.raises(ServiceError) as refused:
        world.prepare(session, 600, network=NETWORK)
    assert refused.value.code is ReasonCode.USD_LIMIT_EXCEEDED
    world.revoke(session)
    record = rt.store.sessions.get(session.session_id)
    assert record is not None and record.onchain_revoked_at is not None
    with pytest.raises(ServiceError) as revoked:
        world.prepare(session, 5, network=NETWORK)
    assert revoked.value.code is ReasonCode.SESSION_REVOKED
    assert world.usdx(wallet) == before - 25 * USDX_UNIT
