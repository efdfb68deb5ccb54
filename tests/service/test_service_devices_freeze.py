"""Device pairing during a global freeze (issue 14): a freeze stops new owner authority, so no
pairing code is issued, no code pairs a device and no key is registered by signature while it
is in force; each attempt is refused ``GLOBAL_FREEZE`` (409) and writes nothing. Listing and
revoking devices keep working, and pairing works again once two ops lift the freeze.

The freeze is module-wide (one shared Waas): each test lifts it before it ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service_support import Wallet, World
from test_service_devices import caller_of, counts, device_key, pair, refused

from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError


@pytest.fixture
def owner(world: World) -> Wallet:
    return world.wallet(usdx=0, approve_router=False)


def _lift(world: World) -> None:
    """Lift every global freeze (two distinct ops; the first approval alone lifts nothing)."""
    first, second = world.ops
    for ops in (first, second):
        try:
            world.waas.revocations.lift_freeze(ops.caller, scope="global", target=None)
        except ServiceError as exc:
            assert exc.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
    assert not [f for f in world.rt.store.freezes.active() if f.scope == "global"]


def _freeze(world: World) -> None:
    world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="global", target=None, reason="pairing attack test"
    )


@pytest.fixture
def frozen(world: World) -> Iterator[None]:
    """A global freeze in force while the test runs, lifted by two ops after it."""
    _freeze(world)
    try:
        yield
    finally:
        _lift(world)


def test_a_code_issued_before_a_global_freeze_pairs_nothing_while_it_lasts(
    world: World, owner: Wallet
) -> None:
    code = world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    _freeze(world)
    try:
        before = counts(world, owner)
        with pytest.raises(ServiceError) as by_code:
            world.waas.devices.pair(device_key(), code=code["pairingCode"], label="attacker")
        refused(by_code, ReasonCode.GLOBAL_FREEZE, "conflict")
        assert counts(world, owner) == before  # no credential, no device, the code unused
    finally:
        _lift(world)
    # The code was left unused: once the freeze is lifted, it pairs its device.
    device = world.waas.devices.pair(device_key(), code=code["pairingCode"], label="laptop")
    assert device["walletId"] == owner.wallet_id


def test_no_pairing_code_and_no_signed_device_during_a_global_freeze(
    world: World, owner: Wallet, frozen: None
) -> None:
    before = counts(world, owner)
    with pytest.raises(ServiceError) as issuing:
        world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    refused(issuing, ReasonCode.GLOBAL_FREEZE, "conflict")
    with pytest.raises(ServiceError) as signed:
        world.waas.devices.register_signed(owner.caller, device_key(), expires_at=None)
    refused(signed, ReasonCode.GLOBAL_FREEZE, "conflict")
    assert counts(world, owner) == before


def test_devices_are_still_listed_and_revoked_during_a_global_freeze_and_pair_after_it(
    world: World, owner: Wallet
) -> None:
    device_id = pair(world, owner)
    _freeze(world)
    try:
        listed = world.waas.devices.list(
            owner.caller, wallet_id=owner.wallet_id, cursor=None, limit=10
        )
        assert [d["credentialId"] for d in listed["items"]] == [device_id]
        revoked = world.waas.devices.revoke(
            owner.caller, wallet_id=owner.wallet_id, device_id=device_id, reason=None
        )
        assert revoked["status"] == "revoked"
    finally:
        _lift(world)
    again = pair(world, owner)
    assert caller_of(world, again).wallet_id == owner.wallet_id
