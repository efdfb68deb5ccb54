"""Service and chain agree on a module wallet: whatever the service allows for a third-party
ERC-7579 account executes through SessionWard's module, and whatever it refuses leaves the
chain and the budget untouched (hypothesis over amounts and submissions); and a session the
owner granted without a fee budget is sponsored by the service's VerifyingPaymaster.

Examples: ``SESSIONWARD_MODULE_WALLET_EXAMPLES`` (default 4; the deep profile in
docs/design.md runs 100).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alto_bundler import funded
from erc4337_support import ONE_ETH, Stage, deploy_verifying_paymaster
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from module_support import deploy_module
from module_wallet_support import CHAIN_ID, NETWORK, ModuleWorld

from networks.networks_support import USDX_UNIT, Backend, Networks, Wallet
from sessionward.reasons import ReasonCode
from sessionward.service.config import AnomalyRules, NetworkSettings

pytestmark = pytest.mark.anvil

EXAMPLES = int(os.environ.get("SESSIONWARD_MODULE_WALLET_EXAMPLES", "4"))
USD_CAP = 500  # the envelope's maxValueUsd (networks_support.Networks.envelope)


@pytest.fixture(scope="module")
def world(
    stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleWorld]:
    data_dir = tmp_path_factory.mktemp("module-agreement")
    paymaster = deploy_verifying_paymaster(stage, deposit=10 * ONE_ETH)
    key_file = data_dir / "paymaster.key"
    key_file.write_text(paymaster.signer.secret.hex(), encoding="utf-8")
    key_file.chmod(0o600)
    module = deploy_module(stage)
    with funded(stage.chain, anvil) as alto:
        network = NetworkSettings(
            NETWORK,
            CHAIN_ID,
            rpc_url=anvil,
            entry_point=stage.entry_point.address,
            bundler_url=alto.url,
            paymaster=paymaster.contract.address,
            paymaster_key_file=key_file,
            session_module=module.address,
        )
        # The anomaly rules would revoke a session refused five times a minute, or spending
        # half its cap in five minutes: this property drives refusals and spending on purpose.
        quiet = AnomalyRules(denial_burst_count=0, velocity_fraction=0)
        built = Networks.build(Path(data_dir / "service"), (network,), anomaly=quiet)
        world = ModuleWorld(built, stage, module)
        try:
            yield world
        finally:
            world.close()


@pytest.fixture(scope="module")
def wallet(world: ModuleWorld) -> Wallet:
    wallet = world.register(world.module_account())
    world.fund_for_operations(wallet)
    return wallet


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    usdx=st.integers(min_value=1, max_value=2 * USD_CAP),
    submission=st.sampled_from(["relayer", "userop"]),
)
def test_what_the_service_allows_executes_and_what_it_refuses_changes_nothing(
    world: ModuleWorld, backend: Backend, wallet: Wallet, usdx: int, submission: str
) -> None:
    """A fresh session per example (its USD cap is cumulative) on one wallet, minted what
    the example may spend: allowed ⇒ executed on chain, exactly; refused ⇒ nothing."""
    session = world.session(wallet, backend)
    rt = world.net(NETWORK)
    token = world.token(NETWORK, rt.deployment.token("USDX"))
    token.transact(rt.deployer, "mint", wallet.account, usdx * USDX_UNIT)
    before, counts = world.usdx(wallet), world.db_counts()
    outcome = world.run(session, usdx, submission)
    note(f"{usdx} USDX as {submission}: {outcome}")
    event(outcome)
    if outcome == "executed":
        assert world.usdx(wallet) == before - usdx * USDX_UNIT
        return
    # Refused before anything was signed: nothing on chain, no job, no signature.
    assert outcome == ReasonCode.USD_LIMIT_EXCEEDED.value, outcome
    assert usdx > USD_CAP
    assert world.usdx(wallet) == before
    assert world.db_counts()["relay_jobs"] == counts["relay_jobs"]


def test_a_grant_without_a_fee_budget_is_sponsored_by_the_services_paymaster(
    world: ModuleWorld, backend: Backend
) -> None:
    world.fee_budget = None
    try:
        wallet = world.register(world.module_account())
        sponsored = world.session(wallet, backend)
    finally:
        world.fee_budget = 10**17
    chain = world.chain(NETWORK)
    ether, usdx = chain.get_balance(wallet.account), world.usdx(wallet)
    assert world.run(sponsored, 25, "userop") == "executed"
    assert world.usdx(wallet) == usdx - 25 * USDX_UNIT
    assert chain.get_balance(wallet.account) == ether  # the paymaster paid
