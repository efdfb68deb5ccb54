"""Owner devices (issue 14): paired only by the wallet's owner (one-time code or signature),
expiring, listed and revocable by the owner, unable to pair further devices.

Requests of a device are authenticated as the API does it (``Credentials.signer``), so expiry and
revocation are seen exactly where the API sees them. Every refusal is checked for its exact code
and for nothing written (credentials, devices, pairing codes, audit records).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from service_support import Wallet, World
from sqlalchemy import func, select, text

from sessionward.crypto.p256 import generate_private_key, public_key_bytes
from sessionward.crypto.request_signature import ALG_P256, ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.devices import MAX_LIVE_DEVICES, normalize_code
from sessionward.service.errors import ServiceError
from sessionward.store.devices import code_hash
from sessionward.store.schema import credentials, owner_devices, pairing_codes


@dataclass(frozen=True)
class Counts:
    credentials: int
    devices: int
    codes: int
    used_codes: int
    audit: int


def counts(world: World, wallet: Wallet) -> Counts:
    def count(table: object, *where: object) -> int:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        with world.rt.store.db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    return Counts(
        credentials=count(credentials),
        devices=count(owner_devices),
        codes=count(pairing_codes),
        used_codes=count(pairing_codes, pairing_codes.c.used_at.is_not(None)),
        audit=len(world.audit_kinds(wallet.wallet_id)),
    )


def device_key() -> SelfSigned:
    return SelfSigned(ALG_P256, "0x" + public_key_bytes(generate_private_key()).hex())


def caller_of(world: World, credential_id: str) -> Caller:
    """The Caller the API would authenticate a request of ``credential_id`` as, now."""
    signer = world.waas.credentials.signer(credential_id)
    assert signer is not None
    return signer.caller


def refused(error: pytest.ExceptionInfo[ServiceError], code: ReasonCode, kind: str) -> None:
    assert error.value.code is code, error.value
    assert error.value.kind == kind


def pair(world: World, wallet: Wallet, **options: int) -> str:
    code = world.waas.devices.create_pairing_code(
        wallet.caller, wallet_id=wallet.wallet_id, **options
    )
    device = world.waas.devices.pair(device_key(), code=code["pairingCode"], label="laptop")
    return device["credentialId"]


@pytest.fixture
def owner(world: World) -> Iterator[Wallet]:
    """A fresh wallet; the clock is pinned while the test runs (exact expiries)."""
    wallet = world.wallet(usdx=0, approve_router=False)
    world.clock.pin()
    yield wallet
    world.clock.release()


def test_a_pairing_code_pairs_one_device_once_and_only_its_hash_is_stored(
    world: World, owner: Wallet
) -> None:
    issued = world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    code = issued["pairingCode"]
    assert issued["expiresAt"] == world.now() + world.rt.settings.pairing_code_ttl_s
    assert issued["deviceExpiresIn"] == 30 * 86400
    compact = normalize_code(code)
    assert compact is not None and len(compact) == 24  # 120 random bits
    with world.rt.store.db.reading() as conn:
        stored = [tuple(r) for r in conn.execute(select(pairing_codes))]
        dumped = "\n".join(conn.execute(text("SELECT payload FROM audit")).scalars())
    flat = repr(stored)
    assert code_hash(compact) in flat
    assert compact not in flat and code not in flat and compact not in dumped

    key = device_key()
    device = world.waas.devices.pair(key, code=code.lower(), label="laptop")
    assert device["walletId"] == owner.wallet_id
    assert device["publicKey"] == key.public_key
    assert device["pairedVia"] == "code" and device["status"] == "active"
    assert device["expiresAt"] == world.now() + 30 * 86400
    paired = caller_of(world, device["credentialId"])
    assert paired.role == "owner" and paired.wallet_id == owner.wallet_id
    page = world.waas.sessions.list_for_owner(
        paired, wallet_id=owner.wallet_id, cursor=None, limit=10
    )
    assert page["items"] == []

    before = counts(world, owner)
    with pytest.raises(ServiceError) as again:
        world.waas.devices.pair(device_key(), code=code, label=None)
    refused(again, ReasonCode.PAIRING_CODE_USED, "unauthorized")
    assert counts(world, owner) == before


def test_an_expired_or_unknown_pairing_code_pairs_nothing(world: World, owner: Wallet) -> None:
    code = world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    before = counts(world, owner)
    for text_ in ("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", "not a code", ""):
        with pytest.raises(ServiceError) as unknown:
            world.waas.devices.pair(device_key(), code=text_, label=None)
        refused(unknown, ReasonCode.PAIRING_CODE_INVALID, "unauthorized")
    world.clock.advance(world.rt.settings.pairing_code_ttl_s)
    with pytest.raises(ServiceError) as expired:
        world.waas.devices.pair(device_key(), code=code["pairingCode"], label=None)
    refused(expired, ReasonCode.PAIRING_CODE_EXPIRED, "unauthorized")
    assert counts(world, owner) == before


def test_pairing_takes_a_p256_key(world: World, owner: Wallet) -> None:
    code = world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    secp = SelfSigned(ALG_SECP256K1, address_from_secret(b"\x01" * 32))
    with pytest.raises(ServiceError) as wrong:
        world.waas.devices.pair(secp, code=code["pairingCode"], label=None)
    refused(wrong, ReasonCode.INPUT_MALFORMED, "invalid")


def test_a_device_cannot_issue_codes_or_register_devices(world: World, owner: Wallet) -> None:
    device = caller_of(world, pair(world, owner))
    before = counts(world, owner)
    with pytest.raises(ServiceError) as code:
        world.waas.devices.create_pairing_code(device, wallet_id=owner.wallet_id)
    refused(code, ReasonCode.DEVICE_CANNOT_PAIR, "forbidden")
    with pytest.raises(ServiceError) as signed:
        world.waas.devices.register_signed(device, device_key(), expires_at=None)
    refused(signed, ReasonCode.DEVICE_CANNOT_PAIR, "forbidden")
    assert counts(world, owner) == before


def test_a_device_expires_and_its_requests_are_refused(world: World, owner: Wallet) -> None:
    device_id = pair(world, owner, device_ttl_s=60)
    live = caller_of(world, device_id)
    world.waas.sessions.list_for_owner(live, wallet_id=owner.wallet_id, cursor=None, limit=5)
    world.clock.advance(60)
    dead = caller_of(world, device_id)
    with pytest.raises(ServiceError) as expired:
        world.waas.sessions.list_for_owner(dead, wallet_id=owner.wallet_id, cursor=None, limit=5)
    refused(expired, ReasonCode.CREDENTIAL_EXPIRED, "unauthorized")
    listed = world.waas.devices.list(owner.caller, wallet_id=owner.wallet_id, cursor=None, limit=5)
    assert [(d["credentialId"], d["status"]) for d in listed["items"]] == [(device_id, "expired")]


def test_a_device_lifetime_is_bounded_by_the_configuration(world: World, owner: Wallet) -> None:
    ttl = world.rt.settings.device_ttl_s
    before = counts(world, owner)
    for asked in (ttl + 1, 5):
        with pytest.raises(ServiceError) as long:
            world.waas.devices.create_pairing_code(
                owner.caller, wallet_id=owner.wallet_id, device_ttl_s=asked
            )
        refused(long, ReasonCode.WINDOW_INVALID, "invalid")
    with pytest.raises(ServiceError) as forever:
        world.waas.devices.register_signed(
            owner.caller, device_key(), expires_at=world.now() + ttl + 1
        )
    refused(forever, ReasonCode.WINDOW_INVALID, "invalid")
    assert counts(world, owner) == before
    signed = world.waas.devices.register_signed(owner.caller, device_key(), expires_at=None)
    assert signed["expiresAt"] == world.now() + ttl
    assert (
        world.waas.devices.list(owner.caller, wallet_id=owner.wallet_id, cursor=None, limit=5)[
            "items"
        ][0]["pairedVia"]
        == "signature"
    )


def test_the_owner_revokes_a_device_and_it_is_refused_at_once(world: World, owner: Wallet) -> None:
    device_id = pair(world, owner)
    view = world.waas.devices.revoke(
        owner.caller, wallet_id=owner.wallet_id, device_id=device_id, reason="lost laptop"
    )
    assert view["status"] == "revoked" and view["revokedAt"] == world.now()
    with pytest.raises(ServiceError) as revoked:
        world.waas.sessions.list_for_owner(
            caller_of(world, device_id), wallet_id=owner.wallet_id, cursor=None, limit=5
        )
    refused(revoked, ReasonCode.CREDENTIAL_REVOKED, "unauthorized")
    assert "device.revoked" in world.audit_kinds(owner.wallet_id)


def test_a_device_revokes_itself_but_not_another_device(world: World, owner: Wallet) -> None:
    first, second = pair(world, owner), pair(world, owner)
    before = counts(world, owner)
    with pytest.raises(ServiceError) as other:
        world.waas.devices.revoke(
            caller_of(world, first), wallet_id=owner.wallet_id, device_id=second, reason=None
        )
    refused(other, ReasonCode.ROLE_FORBIDDEN, "forbidden")
    assert counts(world, owner) == before
    assert caller_of(world, second).revoked is False
    own = world.waas.devices.revoke(
        caller_of(world, first), wallet_id=owner.wallet_id, device_id=first, reason=None
    )
    assert own["status"] == "revoked"


def test_another_wallets_owner_reaches_no_device_of_this_wallet(
    world: World, owner: Wallet
) -> None:
    stranger = world.wallet(usdx=0, approve_router=False)
    device_id = pair(world, owner)
    before = counts(world, owner)
    attempts = (
        lambda: world.waas.devices.create_pairing_code(stranger.caller, wallet_id=owner.wallet_id),
        lambda: world.waas.devices.list(
            stranger.caller, wallet_id=owner.wallet_id, cursor=None, limit=5
        ),
        lambda: world.waas.devices.revoke(
            stranger.caller, wallet_id=owner.wallet_id, device_id=device_id, reason=None
        ),
    )
    for attempt in attempts:
        with pytest.raises(ServiceError) as error:
            attempt()
        refused(error, ReasonCode.ROLE_FORBIDDEN, "forbidden")
    with pytest.raises(ServiceError) as unknown:
        world.waas.devices.revoke(
            stranger.caller, wallet_id=stranger.wallet_id, device_id=device_id, reason=None
        )
    refused(unknown, ReasonCode.DEVICE_UNKNOWN, "not_found")
    assert counts(world, owner) == before
    assert caller_of(world, device_id).revoked is False


def test_devices_are_listed_by_cursor(world: World, owner: Wallet) -> None:
    ids = [pair(world, owner) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        page = world.waas.devices.list(
            owner.caller, wallet_id=owner.wallet_id, cursor=cursor, limit=2
        )
        seen += [d["credentialId"] for d in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ids


def test_a_wallet_has_a_bounded_number_of_live_devices(world: World, owner: Wallet) -> None:
    for _ in range(MAX_LIVE_DEVICES):
        world.waas.devices.register_signed(owner.caller, device_key(), expires_at=None)
    code = world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    before = counts(world, owner)
    with pytest.raises(ServiceError) as full:
        world.waas.devices.pair(device_key(), code=code["pairingCode"], label=None)
    refused(full, ReasonCode.DEVICE_LIMIT_REACHED, "conflict")
    assert counts(world, owner) == before  # the code is still unused


def test_two_racing_pairings_with_one_code_pair_one_device(world: World, owner: Wallet) -> None:
    code = world.waas.devices.create_pairing_code(owner.caller, wallet_id=owner.wallet_id)
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def attempt() -> None:
        start.wait()
        try:
            outcomes.append(
                world.waas.devices.pair(device_key(), code=code["pairingCode"], label=None)
            )
        except ServiceError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(str(o) for o in outcomes if isinstance(o, ReasonCode)) == ["PAIRING_CODE_USED"]
    assert len([o for o in outcomes if isinstance(o, dict)]) == 1
