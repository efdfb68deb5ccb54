"""SessionWard's own ERC-7579 account, SessionAccount7579 (the module installed in its
constructor by its factory), through the service as a module wallet: registered with
``accountKind: erc7579`` (its ERC-1271 takes the owner's ``AccountMessage`` signature of the
challenge), a grant signed the same way, relayed and bundled swaps, revocation; and a bare
signature of the digest (what another account at the same address would have taken) refused.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from erc4337_support import Stage
from module_wallet_support import AccountMessageWallet, ModuleWorld, module_world

from networks.networks_support import USDX_UNIT, Backend
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.wallets import RegistrationProof

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def world(
    stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleWorld]:
    data_dir = tmp_path_factory.mktemp("module-account7579") / "service"
    with module_world(stage, anvil, data_dir) as world:
        yield world


def test_a_session_account7579_runs_the_seed_story_through_the_service(
    world: ModuleWorld, backend: Backend
) -> None:
    account = world.account7579()
    wallet = world.register(account)
    assert isinstance(wallet, AccountMessageWallet)
    world.fund_for_operations(wallet)
    session = world.session(wallet, backend)
    assert world.status_on_chain(wallet, session.session_key) == 1
    before = world.usdx(wallet)
    assert world.run(session, 40, "relayer") == "executed"
    assert world.run(session, 60, "userop") == "executed"
    assert world.usdx(wallet) == before - 100 * USDX_UNIT
    assert world.run(session, 450, "relayer") == ReasonCode.USD_LIMIT_EXCEEDED.value
    world.revoke(session)
    assert world.status_on_chain(wallet, session.session_key) == 2
    assert world.run(session, 5, "relayer") == ReasonCode.SESSION_REVOKED.value
    assert world.usdx(wallet) == before - 100 * USDX_UNIT


def test_a_bare_signature_of_the_challenge_does_not_register_it(world: ModuleWorld) -> None:
    account = world.account7579()
    challenge = world.waas.wallets.registration_challenge(
        world.self_signed(account),
        account=account.address,
        account_kind="erc7579",
        network=world.network,
    )
    bare = account.account.owner.sign(bytes.fromhex(challenge["digest"][2:]))
    counts = world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.waas.wallets.register(
            world.self_signed(account),
            account=account.address,
            proof=RegistrationProof(int(challenge["nonce"]), challenge["deadline"], bare),
            account_kind="erc7579",
            network=world.network,
        )
    assert refused.value.code is ReasonCode.REGISTRATION_PROOF_INVALID
    assert world.db_counts() == counts


def test_a_bare_signature_of_the_grant_is_refused_and_nothing_is_installed(
    world: ModuleWorld, backend: Backend
) -> None:
    wallet = world.register(world.account7579())
    pending = world.authorize(wallet, backend)
    bare = super(AccountMessageWallet, wallet).sign(pending["grantDigest"])  # type: ignore[arg-type]
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(wallet.caller, session_id=pending["sessionId"], signature=bare)
    assert refused.value.code is ReasonCode.SIGNATURE_INVALID
    world.settle()
    assert world.status_on_chain(wallet, pending["sessionKey"]) == 0
    record = world.rt.store.sessions.get(pending["sessionId"])
    assert record is not None and record.status == "pending_approval"
