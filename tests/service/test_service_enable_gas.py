"""Enabling never silently fails (issue 12.7): the install job's gas is the enable call's
estimate, not a fixed figure, on embedded defaults (SQLite, the in-process chain).

A large grant the service accepts (near the domain's storage-word bound) needs several times the
old fixed 3M gas; it is installed. An estimate the chain cannot give (outage), one that reverts,
or one above EIP-7825's cap refuses the approval with nothing written.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from service_support import ONCHAIN_ACTIVE, Backend, Wallet, World

from sessionward.chain.errors import ChainUnavailable, ExecutionReverted
from sessionward.chain.interface import CallRequest
from sessionward.chain.relay_jobs import JobState
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.domain import bounds
from sessionward.domain.grant import enable_storage_words
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.errors import ServiceError
from sessionward.service.onchain import ENABLE_GAS_MARGIN_PERCENT
from sessionward.service.sessions import SessionDirectory

OLD_FIXED_ENABLE_GAS = 3_000_000
CUSTOM = "0x5555555555555555555555555555555555555555"  # a contract unknown to the catalog
ARGS = ("a", "b", "c", "d")
VALUES_PER_RULE = 7  # 16 × (2 + 4 × 7) = 480 storage words, under the bound of 512


def large_grant_overrides() -> dict[str, Any]:
    """16 custom permissions of 4 ``in`` rules: about 480 words written by enable_session."""
    permissions = [
        {
            "target": CUSTOM,
            "function": f"f{i}(uint256 a,uint256 b,uint256 c,uint256 d)",
            "maxValuePerCall": 0,
            "rules": [
                {
                    "arg": arg,
                    "op": "in",
                    "values": [str(i * 1000 + r * 100 + v) for v in range(VALUES_PER_RULE)],
                }
                for r, arg in enumerate(ARGS)
            ],
        }
        for i in range(bounds.MAX_PERMISSIONS)
    ]
    return {"capabilities": [], "allowedDestinations": [CUSTOM], "permissions": permissions}


def approve(world: World, wallet: Wallet, pending: dict[str, Any]) -> Any:
    return world.waas.sessions.approve(
        wallet.caller,
        session_id=pending["sessionId"],
        signature=wallet.sign(pending["grantDigest"]),
    )


def with_margin(estimate: int) -> int:
    return estimate + estimate * ENABLE_GAS_MARGIN_PERCENT // 100


def test_a_large_accepted_grant_is_queued_with_its_estimate_and_installed(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend, **large_grant_overrides())
    session_id = pending["sessionId"]
    approve(world, wallet, pending)
    job = world.rt.relayer.job(f"enable:{session_id}")
    assert job is not None
    estimate = world.chain.estimate_gas(
        CallRequest(to=wallet.account, data=job.data, sender=world.rt.relayer.address)
    )
    assert job.gas_limit == with_margin(estimate)
    assert OLD_FIXED_ENABLE_GAS < job.gas_limit <= bounds.MAX_TRANSACTION_GAS
    print(f"\nlarge grant: estimate {estimate:,} gas, install job limit {job.gas_limit:,}")
    world.settle()
    assert world.record(session_id).status == "active"
    assert world.onchain_status(wallet, pending["sessionKey"]) == ONCHAIN_ACTIVE
    mined = world.rt.relayer.job(f"enable:{session_id}")
    assert mined is not None and mined.tx_hash is not None
    receipt = world.chain.get_receipt(mined.tx_hash)
    assert receipt is not None and receipt.succeeded
    assert receipt.gas_used <= job.gas_limit


def test_an_install_held_by_a_freeze_is_queued_again_with_the_same_gas(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    """The reconciler's re-queue (a new attempt after a global freeze) carries the approval's
    estimate, not a fixed figure, and the large grant is installed."""
    pending = world.authorize(wallet, backend, **large_grant_overrides())
    session_id = pending["sessionId"]
    approve(world, wallet, pending)
    first = world.rt.relayer.job(f"enable:{session_id}")
    assert first is not None and first.gas_limit > OLD_FIXED_ENABLE_GAS
    world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="global", target=None, reason="drill"
    )
    try:
        world.settle()
        held = world.rt.relayer.job(f"enable:{session_id}")
        assert held is not None and held.state is JobState.REFUSED
    finally:
        for ops in world.ops:
            try:
                world.waas.revocations.lift_freeze(ops.caller, scope="global", target=None)
            except ServiceError as waiting:
                assert waiting.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
    world.settle()
    again = world.rt.relayer.job(f"enable:{session_id}#2")
    assert again is not None and again.gas_limit == first.gas_limit
    assert world.record(session_id).status == "active"
    assert world.onchain_status(wallet, pending["sessionKey"]) == ONCHAIN_ACTIVE


def test_a_small_grant_is_queued_with_its_own_small_estimate(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    approve(world, wallet, pending)
    job = world.rt.relayer.job(f"enable:{pending['sessionId']}")
    assert job is not None and job.gas_limit < OLD_FIXED_ENABLE_GAS
    world.settle()
    assert world.record(pending["sessionId"]).status == "active"


@pytest.mark.parametrize("large", [False, True], ids=["seed", "large"])
def test_an_account_still_being_deployed_gets_the_computed_ceiling_and_is_installed(
    world: World, backend: Backend, large: bool
) -> None:
    """No code to estimate against yet: the grant's computed ceiling (an EOA owner)."""
    secret = secrets.token_bytes(32)
    owner = address_from_secret(secret)
    view = world.waas.wallets.create(SelfSigned(ALG_SECP256K1, owner))
    caller = Caller(view["ownerCredentialId"] or "", "owner", view["walletId"])
    wallet = Wallet(view["walletId"], view["account"], owner, secret, caller)
    assert not world.chain.get_code(wallet.account)
    pending = world.authorize(wallet, backend, **(large_grant_overrides() if large else {}))
    approve(world, wallet, pending)
    job = world.rt.relayer.job(f"enable:{pending['sessionId']}")
    scope = SessionDirectory(world.rt).scope(world.record(pending["sessionId"]))
    words = enable_storage_words(scope.token_limits.values(), scope.permissions.values())
    ceiling = bounds.enable_gas_ceiling(words=words, calldata_bytes=len(job.data))
    assert job.gas_limit == ceiling <= bounds.MAX_TRANSACTION_GAS
    assert (ceiling > OLD_FIXED_ENABLE_GAS) is large
    world.settle()
    assert world.record(pending["sessionId"]).status == "active"


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (ChainUnavailable("connection refused"), "unavailable", ReasonCode.CHAIN_UNAVAILABLE),
        (ExecutionReverted("NONCE_REPLAYED"), "conflict", ReasonCode.NONCE_REPLAYED),
        (ExecutionReverted(None), "conflict", ReasonCode.CALL_FAILED_ON_CHAIN),
        (bounds.MAX_TRANSACTION_GAS + 1, "invalid", ReasonCode.GRANT_TOO_LARGE),
    ],
    ids=["outage", "revert", "bare-revert", "over-the-cap"],
)
def test_an_estimate_that_fails_refuses_the_approval_and_writes_nothing(
    world: World,
    wallet: Wallet,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
    fault: Exception | int,
    kind: str,
    code: ReasonCode,
) -> None:
    pending = world.authorize(wallet, backend)
    session_id = pending["sessionId"]
    before = world.record(session_id)
    audit_before = world.audit_kinds(wallet.wallet_id)

    def estimate(_request: CallRequest) -> int:
        if isinstance(fault, Exception):
            raise fault
        return fault

    with monkeypatch.context() as injected:
        injected.setattr(world.chain, "estimate_gas", estimate)
        with pytest.raises(ServiceError) as refused:
            approve(world, wallet, pending)
    assert (refused.value.kind, refused.value.code) == (kind, code)
    assert world.record(session_id) == before
    assert world.rt.relayer.job(f"enable:{session_id}") is None
    assert world.audit_kinds(wallet.wallet_id) == audit_before
    assert world.onchain_status(wallet, pending["sessionKey"]) == 0
    # The estimate answers again: the same approval goes through, once.
    approve(world, wallet, pending)
    world.settle()
    assert world.record(session_id).status == "active"
