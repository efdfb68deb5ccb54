"""Enabling a session: the owner's EIP-712 grant, bound to one account on one chain, used once."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    DAY,
    UNIT,
    ZERO_ADDRESS,
    Key,
    Wallet,
    World,
    addr,
    calldata,
    double_deployer,
    events,
    factory_account,
    make_key,
    permission,
    rule,
    single,
    token_limit,
)

from sessionward.contracts.encoding import grant_struct
from sessionward.crypto.secp256k1 import SECP256K1_N
from sessionward.domain.calldata import Call

STATUS_ACTIVE = 1


def _transfer_permission(world: World) -> dict[str, Any]:
    return permission(
        world.token, "transfer(address,uint256)", rules=[rule(0, "in", world.relayer, arg="to")]
    )


def _snapshot(wallet: Wallet, key: Key, grant: dict[str, Any]) -> tuple[Any, ...]:
    return (
        wallet.state(key),
        wallet.contract.grant_nonce_used(grant["nonce"]),
        wallet.contract.epoch(),
        wallet.contract.session_nonce(key.address),
    )


def _refused(
    wallet: Wallet, key: Key, grant: dict[str, Any], reason: str, signature: bytes | None = None
) -> None:
    """Enabling ``grant`` reverts with ``reason`` and changes nothing."""
    before = _snapshot(wallet, key, grant)
    with boa.reverts(reason):
        wallet.enable(grant, signature)
    assert _snapshot(wallet, key, grant) == before
    assert wallet.state(key).status == 0


def test_an_owner_signed_grant_installs_the_session(
    world: World, wallet: Wallet, session: Key
) -> None:
    grant = wallet.grant(
        session,
        permissions=[_transfer_permission(world)],
        token_limits=[token_limit(world.token, 5 * UNIT, DAY)],
        value_limit=10**17,
        value_period=3600,
        max_uses=4,
        revoker=world.relayer,
    )
    wallet.enable(grant)
    (event,) = events(wallet.contract, "SessionEnabled")
    state = wallet.state(session)
    envelope = grant["envelope"]
    assert (state.status, state.validAfter, state.expiresAt) == (
        STATUS_ACTIVE,
        envelope["validAfter"],
        envelope["expiresAt"],
    )
    assert (state.valuePeriod, state.maxUses, state.uses) == (3600, 4, 0)
    assert wallet.contract.session_nonce(session.address) == 0
    assert (state.valueLimit, state.nativeRemaining) == (10**17, 10**17)
    assert addr(state.revoker) == world.relayer
    assert wallet.contract.grant_nonce_used(grant["nonce"])
    assert wallet.contract.token_usage(session.address, addr(world.token)) == (0, 5 * UNIT)
    assert addr(event.session_key) == session.address and event.grant_nonce == grant["nonce"]
    assert (event.credential, event.epoch) == (grant["credential"], 0)


def test_a_grant_for_another_chain_is_refused_with_chain_mismatch(
    world: World, wallet: Wallet, session: Key
) -> None:
    boa.env.evm.patch.chain_id = 2
    grant = wallet.grant(session, permissions=[_transfer_permission(world)], chain_id=1)
    _refused(wallet, session, grant, "CHAIN_MISMATCH")


def test_a_grant_signed_on_chain_1_does_not_verify_on_chain_2(
    world: World, wallet: Wallet, session: Key
) -> None:
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    signed_on_chain_1 = wallet.sign_grant(grant)
    boa.env.evm.patch.chain_id = 2
    grant["envelope"]["chainId"] = 2  # the attacker edits the envelope to pass the chain check
    _refused(wallet, session, grant, "SIGNATURE_INVALID", signed_on_chain_1)


def test_a_grant_for_account_a_is_refused_on_account_b_of_the_same_owner(
    world: World, wallet: Wallet, session: Key
) -> None:
    other = Wallet(
        factory_account(world, wallet.owner.address, b"\x02" * 32), wallet.owner, world.relayer
    )
    assert other.address != wallet.address
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    signature = wallet.sign_grant(grant)
    _refused(other, session, grant, "ACCOUNT_MISMATCH", signature)
    grant["account"] = other.address  # rewritten to pass the account check: the domain differs
    _refused(other, session, grant, "SIGNATURE_INVALID", signature)
    wallet.enable(wallet.grant(session, permissions=[_transfer_permission(world)]))
    assert other.state(session).status == 0


def test_a_grant_from_an_older_epoch_is_refused_as_revoked(
    world: World, wallet: Wallet, session: Key
) -> None:
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    wallet.contract.revoke_all(sender=wallet.owner.address)
    _refused(wallet, session, grant, "SESSION_REVOKED")


def test_a_grant_nonce_is_usable_once(world: World, wallet: Wallet, session: Key) -> None:
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    wallet.enable(grant)
    with boa.reverts("NONCE_REPLAYED"):
        wallet.enable(grant)
    other = make_key("session-other")
    with boa.reverts("NONCE_REPLAYED"):
        wallet.enable(
            wallet.grant(other, permissions=[_transfer_permission(world)], nonce=grant["nonce"])
        )
    assert wallet.state(other).status == 0


def test_the_high_s_twin_of_the_owner_signature_is_refused_as_malleable(
    world: World, wallet: Wallet, session: Key
) -> None:
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    good = wallet.sign_grant(grant)
    s = int.from_bytes(good[32:64], "big")
    twin = good[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - good[64]])
    _refused(wallet, session, grant, "SIGNATURE_MALLEABLE", twin)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (bytes(64) + b"\x1b", "SIGNER_ZERO_ADDRESS"),
        (b"\x01" * 64, "SIGNATURE_INVALID"),
        (b"\x01" * 64 + b"\x1d", "SIGNATURE_INVALID"),
    ],
    ids=["zero-r-and-s", "64-bytes", "v-29"],
)
def test_a_malformed_owner_signature_is_refused_with_its_reason(
    world: World, wallet: Wallet, session: Key, signature: bytes, reason: str
) -> None:
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    _refused(wallet, session, grant, reason, signature)


def test_a_grant_signed_by_someone_else_is_refused(
    world: World, wallet: Wallet, session: Key
) -> None:
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    _refused(
        wallet, session, grant, "SIGNATURE_INVALID", wallet.sign_grant(grant, make_key("mallory"))
    )
    _refused(wallet, session, grant, "SIGNATURE_INVALID", wallet.sign_grant(grant, session))


def test_an_erc1271_owner_enables_a_session_with_its_signer(world: World, session: Key) -> None:
    signer = make_key("smart-wallet-signer")
    smart_owner = double_deployer("Signer1271").deploy(signer.address)
    wallet = Wallet(factory_account(world, smart_owner), signer, world.relayer)
    assert addr(wallet.contract.owner()) == addr(smart_owner)
    world.token.mint(wallet.address, 10 * UNIT)
    grant = wallet.grant(session, permissions=[_transfer_permission(world)])
    _refused(
        wallet, session, grant, "SIGNATURE_INVALID", wallet.sign_grant(grant, make_key("mallory"))
    )
    wallet.enable(grant)
    transfer = Call(
        addr(world.token), 0, calldata("transfer(address,uint256)", world.relayer, UNIT)
    )
    wallet.run(session, single(transfer))
    assert world.token.balanceOf(world.relayer) == UNIT


def _malformed_grants(
    world: World, wallet: Wallet, session: Key
) -> dict[str, tuple[dict[str, Any], str]]:
    base = _transfer_permission(world)
    wrong_selector = dict(base, selector=b"\x12\x34\x56\x78")
    eq_two_values = permission(
        world.target, "record(uint256,address,bytes32)", rules=[rule(0, "eq", 1, 2)]
    )
    in_no_values = permission(
        world.target, "record(uint256,address,bytes32)", rules=[rule(0, "in")]
    )
    bad_op = permission(
        world.target, "record(uint256,address,bytes32)", rules=[dict(rule(0, "eq", 1), op=6)]
    )
    self_target = permission(wallet.address, "revoke_all()")
    limit = token_limit(world.token, UNIT)
    return {
        "selector-not-function": (
            wallet.grant(session, permissions=[wrong_selector]),
            "ENVELOPE_MALFORMED",
        ),
        "duplicate-permission": (
            wallet.grant(session, permissions=[base, base]),
            "ENVELOPE_MALFORMED",
        ),
        "eq-with-two-values": (
            wallet.grant(session, permissions=[eq_two_values]),
            "ENVELOPE_MALFORMED",
        ),
        "in-without-values": (
            wallet.grant(session, permissions=[in_no_values]),
            "ENVELOPE_MALFORMED",
        ),
        "unknown-operator": (wallet.grant(session, permissions=[bad_op]), "ENVELOPE_MALFORMED"),
        "duplicate-token-limit": (
            wallet.grant(session, permissions=[base], token_limits=[limit, limit]),
            "ENVELOPE_MALFORMED",
        ),
        "empty-window": (
            wallet.grant(session, valid_after=boa.env.timestamp, expires_at=boa.env.timestamp),
            "WINDOW_INVALID",
        ),
        "account-as-target": (
            wallet.grant(session, permissions=[self_target]),
            "SELF_CALL_FORBIDDEN",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "selector-not-function",
        "duplicate-permission",
        "eq-with-two-values",
        "in-without-values",
        "unknown-operator",
        "duplicate-token-limit",
        "empty-window",
        "account-as-target",
    ],
)
def test_a_malformed_grant_is_refused_even_when_the_owner_signed_it(
    world: World, wallet: Wallet, session: Key, case: str
) -> None:
    grant, reason = _malformed_grants(world, wallet, session)[case]
    _refused(wallet, session, grant, reason)


def test_a_grant_for_the_zero_session_key_is_refused(world: World, wallet: Wallet) -> None:
    grant = wallet.grant(make_key("zero"), permissions=[_transfer_permission(world)])
    grant["sessionKey"] = ZERO_ADDRESS
    with boa.reverts("ENVELOPE_MALFORMED"):
        wallet.enable(grant)


def test_a_grant_beyond_the_contract_bounds_does_not_decode(
    world: World, wallet: Wallet, session: Key
) -> None:
    too_many = [
        permission(make_key(f"t{i}").address, "record(uint256,address,bytes32)") for i in range(17)
    ]
    grant = wallet.grant(session, permissions=too_many)
    with boa.reverts():
        wallet.contract.enable_session(
            grant_struct(grant), wallet.sign_grant(grant), sender=world.relayer
        )
    assert not wallet.contract.grant_nonce_used(grant["nonce"])
