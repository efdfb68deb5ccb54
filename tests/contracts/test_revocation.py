"""Revoking one session, all sessions (epoch bump), by the owner, by the grant's revoker, or by
the owner's signed `Revocation`; regranting a key starts clean and never revives old signatures."""

from __future__ import annotations

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
    events,
    make_key,
    permission,
    single,
    token_limit,
)
from test_session_rules import RECORD, TRANSFER, record, refused, transfer

STATUS_REVOKED = 2


@pytest.fixture
def enabled(world: World, wallet: Wallet, session: Key) -> Key:
    wallet.enable(
        wallet.grant(
            session,
            permissions=[permission(world.target, RECORD), permission(world.token, TRANSFER)],
            token_limits=[token_limit(world.token, 10 * UNIT, DAY)],
            max_uses=5,
            revoker=world.relayer,
        )
    )
    return session


def test_the_owner_revokes_a_session(world: World, wallet: Wallet, enabled: Key) -> None:
    wallet.contract.revoke_session(enabled.address, sender=wallet.owner.address)
    (event,) = events(wallet.contract, "SessionRevoked")
    assert (addr(event.session_key), addr(event.revoked_by)) == (
        enabled.address,
        wallet.owner.address,
    )
    assert wallet.state(enabled).status == STATUS_REVOKED
    refused(world, enabled, single(record(world)), "SESSION_REVOKED")


def test_the_grants_revoker_revokes_but_a_stranger_cannot(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    with boa.reverts("NOT_AUTHORIZED"):
        wallet.contract.revoke_session(enabled.address, sender=make_key("stranger").address)
    other = make_key("session-2")
    wallet.enable(
        wallet.grant(other, permissions=[permission(world.target, RECORD)])
    )  # revoker: owner only
    with boa.reverts("NOT_AUTHORIZED"):
        wallet.contract.revoke_session(other.address, sender=world.relayer)
    wallet.contract.revoke_session(enabled.address, sender=world.relayer)
    assert wallet.state(enabled).status == STATUS_REVOKED
    assert wallet.state(other).status == 1


def test_revoking_an_unknown_or_revoked_session_is_refused(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    with boa.reverts("SESSION_UNKNOWN"):
        wallet.contract.revoke_session(make_key("nobody").address, sender=wallet.owner.address)
    wallet.contract.revoke_session(enabled.address, sender=wallet.owner.address)
    with boa.reverts("SESSION_REVOKED"):
        wallet.contract.revoke_session(enabled.address, sender=wallet.owner.address)


def test_revoke_all_bumps_the_epoch_and_kills_every_session(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    second = make_key("session-2")
    wallet.enable(wallet.grant(second, permissions=[permission(world.target, RECORD)]))
    with boa.reverts("NOT_AUTHORIZED"):
        wallet.contract.revoke_all(sender=world.relayer)
    wallet.contract.revoke_all(sender=wallet.owner.address)
    (event,) = events(wallet.contract, "SessionsRevokedAll")
    assert event.epoch == 1 == wallet.contract.epoch()
    for key in (enabled, second):
        refused(world, key, single(record(world)), "SESSION_REVOKED")
    # A grant for the new epoch works again.
    third = make_key("session-3")
    wallet.enable(wallet.grant(third, permissions=[permission(world.target, RECORD)]))
    wallet.run(third, single(record(world)))


def test_a_signed_revocation_is_relayed_once(world: World, wallet: Wallet, enabled: Key) -> None:
    digest = wallet.contract.revocation_digest(enabled.address, 0, 0)
    signature = wallet.owner.sign(digest)
    wallet.contract.revoke_session_signed(
        enabled.address, 0, 0, signature, sender=make_key("anyone").address
    )
    assert wallet.state(enabled).status == STATUS_REVOKED
    assert wallet.contract.owner_nonce() == 1
    with boa.reverts("NONCE_REPLAYED"):
        wallet.contract.revoke_session_signed(
            enabled.address, 0, 0, signature, sender=world.relayer
        )


def test_a_signed_revocation_must_be_the_owners_and_current(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    forged = make_key("mallory").sign(wallet.contract.revocation_digest(enabled.address, 0, 0))
    with boa.reverts("SIGNATURE_INVALID"):
        wallet.contract.revoke_session_signed(enabled.address, 0, 0, forged, sender=world.relayer)
    stale = wallet.owner.sign(wallet.contract.revocation_digest(enabled.address, 0, 0))
    wallet.contract.revoke_all(sender=wallet.owner.address)
    with boa.reverts("NONCE_REPLAYED"):
        wallet.contract.revoke_session_signed(enabled.address, 0, 0, stale, sender=world.relayer)
    assert wallet.contract.owner_nonce() == 0


def test_a_signed_revocation_of_the_zero_key_revokes_all(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    signature = wallet.owner.sign(wallet.contract.revocation_digest(ZERO_ADDRESS, 0, 0))
    wallet.contract.revoke_session_signed(ZERO_ADDRESS, 0, 0, signature, sender=world.relayer)
    assert (wallet.contract.epoch(), wallet.contract.owner_nonce()) == (1, 1)
    refused(world, enabled, single(record(world)), "SESSION_REVOKED")


def test_revoke_then_regrant_starts_clean_and_never_revives_old_signatures(
    world: World, wallet: Wallet, session: Key
) -> None:
    first = wallet.grant(
        session,
        permissions=[permission(world.token, TRANSFER)],
        token_limits=[token_limit(world.token, 10 * UNIT)],
        max_uses=3,
    )
    first_signature = wallet.sign_grant(first)
    wallet.enable(first, first_signature)
    used = single(transfer(world, world.relayer, 4 * UNIT))
    deadline = boa.env.timestamp + 600
    used_signature = wallet.session_signature(session, *used, nonce=0, deadline=deadline)
    wallet.run(session, used, deadline=deadline, signature=used_signature)
    wallet.run(session, single(transfer(world, world.relayer, 4 * UNIT)))
    wallet.contract.revoke_session(session.address, sender=wallet.owner.address)

    with boa.reverts("NONCE_REPLAYED"):
        wallet.enable(first, first_signature)  # the old grant can never come back

    second = wallet.grant(
        session,
        permissions=[permission(world.token, TRANSFER)],
        token_limits=[token_limit(world.token, 10 * UNIT)],
        max_uses=3,
    )
    wallet.enable(second)
    state = wallet.state(session)
    assert (state.status, state.uses) == (1, 0)  # clean counters
    assert wallet.contract.session_nonce(session.address) == 2  # used nonces carry over
    assert wallet.contract.token_usage(session.address, addr(world.token)) == (0, 10 * UNIT)
    with boa.reverts("NONCE_REPLAYED"):  # no replay under the new grant
        wallet.run(session, used, nonce=0, deadline=deadline, signature=used_signature)
    wallet.run(session, single(transfer(world, world.relayer, 9 * UNIT)))
    assert world.token.balanceOf(world.relayer) == 17 * UNIT


def test_a_regrant_with_narrower_permissions_drops_the_old_ones(
    world: World, wallet: Wallet, enabled: Key
) -> None:
    wallet.contract.revoke_session(enabled.address, sender=wallet.owner.address)
    wallet.enable(wallet.grant(enabled, permissions=[permission(world.target, RECORD)]))
    refused(world, enabled, single(transfer(world, world.relayer, 1)), "TARGET_NOT_ALLOWED")
    wallet.run(enabled, single(record(world)))
