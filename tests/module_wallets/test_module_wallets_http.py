"""The "done when" of issue 17, over HTTP: a wallet team's existing ERC-7579 account
(OpenZeppelin's ``AccountERC7579``, or SessionWard's own SessionAccount7579) with
SessionWard's module installed registers through the
``sessionward`` server with the Python SDK (``account_kind="erc7579"``), and runs the seed
story (grant, swaps within caps through the relayer and through the real alto bundler, a
refusal, revocation), on anvil. The server is configured through the environment
(``SESSIONWARD_RPC_URL``, ``_ENTRY_POINT``, ``_BUNDLER_URL``, ``_SESSION_MODULE``), as a
deployment would be.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from alto_bundler import funded
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, Stage
from module_support import deploy_module
from module_wallet_support import FEE_BUDGET, ModuleWorld

from networks.networks_support import USDX_UNIT, Networks
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import BackendClient, OwnerClient
from sessionward.sdk.errors import SessionWardApiError
from sessionward.server import BackgroundServer
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

pytestmark = pytest.mark.anvil

SWAP = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"


@pytest.fixture(scope="module")
def served(
    stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ModuleWorld, str]]:
    module = deploy_module(stage)
    data_dir = tmp_path_factory.mktemp("module-http")
    with funded(stage.chain, anvil) as alto:
        settings = Settings.load(
            {
                "SESSIONWARD_DATA_DIR": str(data_dir),
                "SESSIONWARD_RPC_URL": anvil,
                "SESSIONWARD_ENTRY_POINT": ENTRY_POINT_V07,
                "SESSIONWARD_BUNDLER_URL": alto.url,
                "SESSIONWARD_SESSION_MODULE": module.address,
            }
        )
        waas = Waas.from_settings(replace(settings, relayer_poll_s=0.05))
        world = ModuleWorld(Networks(waas), stage, module)
        try:
            with BackgroundServer(waas) as base_url:
                yield world, base_url
        finally:
            waas.stop()


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["oz-account", "session-account7579"])
def test_a_wallet_teams_erc7579_account_runs_the_seed_story_over_http(
    served: tuple[ModuleWorld, str], kind: str
) -> None:
    """``oz-account``: OpenZeppelin's account, the module installed by its owner;
    ``session-account7579``: SessionWard's own, the module installed by its factory, whose
    ERC-1271 takes ``AccountMessage`` signatures (the SDK's ``account_messages``)."""
    world, url = served
    ours = kind == "session-account7579"
    account = world.account7579() if ours else world.module_account()
    world.chain(world.rt.network_name).set_balance(account.address, 10 * ONE_ETH)
    owner = OwnerClient(url, account.account.owner.secret, account_messages=ours)
    wallet = owner.register_wallet(account.address, account_kind="erc7579")
    assert (wallet["accountKind"], wallet["sessionModule"]) == (
        "erc7579",
        world.module.address.lower(),
    )
    assert wallet["owner"] == account.address  # its own owner, by ERC-1271

    backend = BackendClient(url, Secp256k1RequestSigner(secrets.token_bytes(32)))
    backend.register("Acme Agent", "https://acme.example", int(time.time()) + 86_400)
    assert backend.credential_id is not None
    envelope = {**world.envelope(world.rt.network_name), "maxFeeWei": str(FEE_BUDGET)}
    pending = owner.authorize_remote_access(backend.credential_id, None, envelope)
    owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
    session = str(pending["sessionId"])
    _wait(lambda: owner.get_session(session)["status"] == "active", "the session installed")
    key = str(pending["sessionKey"])
    assert world.status_on_chain(account.address, key) == 1

    d = world.rt.deployment
    path = [d.token("USDX"), d.token("WETHX")]

    def swap(usdx: int, submission: str) -> Any:
        quote = backend.prepare_contract_call(
            wallet["walletId"],
            session,
            d.router,
            SWAP,
            [usdx * USDX_UNIT, 0, path, account.address, 2**40],
        )
        backend.execute(quote["txnId"], submission=submission)  # type: ignore[arg-type]
        return backend.wait_for_transaction(quote["txnId"], timeout=60)

    assert swap(30, "relayer")["status"] == "executed"
    assert swap(20, "userop")["status"] == "executed"
    assert world.usdx_at(account.address) == 950 * USDX_UNIT

    with pytest.raises(SessionWardApiError) as refused:
        swap(480, "relayer")
    assert (refused.value.status, refused.value.code) == (403, "USD_LIMIT_EXCEEDED")

    owner.revoke_access(None, backend.credential_id, session)
    _wait(lambda: world.status_on_chain(account.address, key) == 2, "the removal")
    _wait(lambda: owner.get_session(session)["onchainRevokedAt"] is not None, "agreement")
    with pytest.raises(SessionWardApiError) as revoked:
        swap(5, "relayer")
    assert revoked.value.code == "SESSION_REVOKED"
    assert world.usdx_at(account.address) == 950 * USDX_UNIT
    for client in (owner, backend):
        client.close()
