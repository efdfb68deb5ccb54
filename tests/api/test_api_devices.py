"""Owner devices over HTTP (issue 14): exact statuses and codes, and nothing stored that should
not be (the pairing code never reaches the database in plaintext, not even through an
Idempotency-Key's stored answer)."""

from __future__ import annotations

from typing import Any

from api_support import Actor, Api, create_owner, refused, register_backend
from sqlalchemy import select, text

from sessionward.service.devices import normalize_code
from sessionward.service.waas import Waas
from sessionward.store.schema import idempotency, owner_devices


def pair_body(device: Actor, code: str, **extra: Any) -> dict[str, Any]:
    return {"alg": device.signer.alg, "publicKey": device.public_key, "pairingCode": code, **extra}


def paired(api: Api, owner: Actor) -> Actor:
    code = api.ok("CreatePairingCode", {"walletId": owner.extra["walletId"]}, owner)
    device = Actor.p256()
    answer = api.ok("PairDevice", pair_body(device, code["pairingCode"], label="phone"), device)
    device.credential_id = answer["credentialId"]
    return device


def device_rows(waas: Waas) -> int:
    with waas.runtime.store.db.reading() as conn:
        return len(conn.execute(select(owner_devices)).all())


def test_a_device_pairs_with_the_owners_code_and_acts_for_the_wallet(api: Api) -> None:
    owner = create_owner(api)
    code = api.ok("CreatePairingCode", {"walletId": owner.extra["walletId"]}, owner)
    assert set(code) == {"pairingCode", "walletId", "expiresAt", "deviceExpiresIn"}
    device = Actor.p256()
    answer = api.ok("PairDevice", pair_body(device, code["pairingCode"]), device)
    assert (answer["walletId"], answer["status"], answer["pairedVia"]) == (
        owner.extra["walletId"],
        "active",
        "code",
    )
    device.credential_id = answer["credentialId"]
    assert api.ok("ListAccess", {"walletId": owner.extra["walletId"]}, device)["items"] == []
    listed = api.ok("ListDevices", {"walletId": owner.extra["walletId"]}, owner)
    assert [d["credentialId"] for d in listed["items"]] == [device.credential_id]


def test_the_pairing_code_is_never_stored_in_plaintext(api: Api, waas: Waas) -> None:
    owner = create_owner(api)
    response = api.call(
        "CreatePairingCode",
        {"walletId": owner.extra["walletId"]},
        owner,
        headers={"Idempotency-Key": "pair-once"},
    )
    assert response.status_code == 200
    code = response.json()["pairingCode"]
    compact = normalize_code(code)
    assert compact is not None
    with waas.runtime.store.db.reading() as conn:
        kept = conn.execute(
            select(idempotency).where(idempotency.c.credential_id == owner.credential_id)
        ).all()
        dump = "\n".join(
            str(row)
            for table in ("pairing_codes", "idempotency", "audit", "credentials")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        )
    assert kept == []  # CreatePairingCode answers are never stored for replay
    assert code not in dump and compact not in dump


def test_pairing_needs_the_new_keys_own_signature(api: Api, waas: Waas) -> None:
    owner = create_owner(api)
    code = api.ok("CreatePairingCode", {"walletId": owner.extra["walletId"]}, owner)["pairingCode"]
    before = device_rows(waas)
    device, other = Actor.p256(), Actor.p256()
    refused(api.call("PairDevice", pair_body(device, code), other), 401, "SIGNATURE_INVALID")
    backend = register_backend(api)
    refused(api.call("PairDevice", pair_body(device, code), backend), 403, "ROLE_FORBIDDEN")
    assert device_rows(waas) == before
    api.ok("PairDevice", pair_body(device, code), device)  # the code is still good


def test_pairing_codes_are_single_use_and_must_be_known(api: Api, waas: Waas) -> None:
    owner = create_owner(api)
    device = paired(api, owner)
    assert device.credential_id.startswith("cred_")
    before = device_rows(waas)
    stranger = Actor.p256()
    refused(
        api.call("PairDevice", pair_body(stranger, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"), stranger),
        401,
        "PAIRING_CODE_INVALID",
    )
    refused(api.call("PairDevice", pair_body(stranger, "AAAA?"), stranger), 400, "INPUT_MALFORMED")
    assert device_rows(waas) == before


def test_a_device_cannot_pair_register_or_revoke_other_devices(api: Api, waas: Waas) -> None:
    owner = create_owner(api)
    first, second = paired(api, owner), paired(api, owner)
    wallet = owner.extra["walletId"]
    before = device_rows(waas)
    refused(api.call("CreatePairingCode", {"walletId": wallet}, first), 403, "DEVICE_CANNOT_PAIR")
    other = Actor.p256()
    refused(
        api.call(
            "RegisterCredential", {"alg": other.signer.alg, "publicKey": other.public_key}, first
        ),
        403,
        "DEVICE_CANNOT_PAIR",
    )
    refused(
        api.call("RevokeDevice", {"walletId": wallet, "credentialId": second.credential_id}, first),
        403,
        "ROLE_FORBIDDEN",
    )
    assert device_rows(waas) == before
    assert api.ok("ListAccess", {"walletId": wallet}, second)["items"] == []


def test_a_revoked_device_is_refused_from_the_answer_on(api: Api) -> None:
    owner = create_owner(api)
    device = paired(api, owner)
    wallet = owner.extra["walletId"]
    revoked = api.ok(
        "RevokeDevice", {"walletId": wallet, "credentialId": device.credential_id}, owner
    )
    assert revoked["status"] == "revoked"
    refused(api.call("ListAccess", {"walletId": wallet}, device), 401, "CREDENTIAL_REVOKED")
    refused(
        api.call(
            "RevokeDevice", {"walletId": wallet, "credentialId": device.credential_id}, device
        ),
        401,
        "CREDENTIAL_REVOKED",
    )


def test_another_wallets_device_is_unknown_here(api: Api) -> None:
    owner, stranger = create_owner(api), create_owner(api)
    device = paired(api, owner)
    refused(
        api.call(
            "RevokeDevice",
            {"walletId": stranger.extra["walletId"], "credentialId": device.credential_id},
            stranger,
        ),
        404,
        "DEVICE_UNKNOWN",
    )
    refused(
        api.call("ListDevices", {"walletId": owner.extra["walletId"]}, stranger),
        403,
        "ROLE_FORBIDDEN",
    )
