"""ImportPermissionRequest and ExportPermission over HTTP: an ERC-7715 request becomes a session
pending the owner's approval; an unenforceable one is refused (400, its code) and stores
nothing; a granted session is exported as ERC-7715 PermissionResponse objects."""

from __future__ import annotations

import time
from typing import Any

import pytest
from api_support import Actor, Api, World, create_owner, refused, register_backend, settle

from scenario import MERCHANT
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.service.waas import Waas


def grant_request(waas: Waas, owner: Actor, **overrides: Any) -> list[dict[str, Any]]:
    """5 USDX an hour to MERCHANT, wallet-managed, for 30 minutes."""
    entry: dict[str, Any] = {
        "chainId": hex(waas.runtime.chain_id),
        "address": owner.extra["account"],
        "expiry": int(time.time()) + 1800,
        "signer": {"type": "wallet", "data": {}},
        "permission": {
            "type": "erc20-token-periodic",
            "data": {
                "tokenAddress": waas.runtime.deployment.token("USDX"),
                "periodAmount": hex(5 * 10**6),
                "periodDuration": 3600,
            },
        },
        "policies": [{"type": "payee", "data": {"addresses": [MERCHANT]}}],
    }
    entry.update(overrides)
    return [entry]


def import_body(owner: Actor, backend: Actor, request: object) -> dict[str, Any]:
    return {
        "credentialId": backend.credential_id,
        "walletId": owner.extra["walletId"],
        "request": request,
    }


def sessions_of(api: Api, owner: Actor) -> int:
    page = api.ok("ListAccess", {"walletId": owner.extra["walletId"]}, owner)
    return len(page["items"])


def test_an_imported_request_is_approved_and_exported(api: Api, waas: Waas) -> None:
    owner, backend = create_owner(api), register_backend(api)
    request = grant_request(waas, owner)
    pending = api.ok("ImportPermissionRequest", import_body(owner, backend, request), owner)
    assert pending["status"] == "pending"
    assert pending["envelope"]["tokenLimits"][0]["period"] == 3600
    assert owner.secret is not None
    signature = sign_digest(owner.secret, bytes.fromhex(pending["grantDigest"][2:]))
    api.ok(
        "ApproveSession",
        {"sessionId": pending["sessionId"], "signature": "0x" + signature.hex()},
        owner,
    )
    settle(waas)
    exported = api.ok("ExportPermission", {"sessionId": pending["sessionId"]}, backend)
    [response] = exported["permissions"]
    assert response["context"] == "0x" + pending["sessionId"].encode().hex()
    granted = response["permission"]
    assert granted["type"] == "erc20-token-periodic"
    detail = api.ok("GetSession", {"sessionId": pending["sessionId"]}, backend)
    assert granted["data"].pop("startTime") == detail["validAfter"]
    assert granted["data"] == request[0]["permission"]["data"]
    assert response["policies"] == request[0]["policies"]


def test_a_session_granted_through_the_envelope_is_exported_too(api: Api, world: World) -> None:
    exported = api.ok("ExportPermission", {"sessionId": world.session_id}, world.owner)
    [response] = exported["permissions"]
    assert response["permission"]["type"] == "erc20-token-allowance"
    assert response["policies"][0] == {"type": "payee", "data": {"addresses": [MERCHANT]}}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param(
            {"permission": {"type": "native-token-stream", "data": {"amountPerSecond": "0x1"}}},
            "PERMISSION_UNENFORCEABLE",
            id="native-stream",
        ),
        pytest.param({"policies": []}, "PERMISSION_UNENFORCEABLE", id="any-recipient"),
        pytest.param(
            {"permission": {"type": "erc721-token-transfer", "data": {}}},
            "PERMISSION_TYPE_UNSUPPORTED",
            id="erc721",
        ),
    ],
)
def test_an_unenforceable_request_is_400_with_its_code_and_stores_nothing(
    api: Api, waas: Waas, overrides: dict[str, Any], code: str
) -> None:
    owner, backend = create_owner(api), register_backend(api)
    before = sessions_of(api, owner)
    body = import_body(owner, backend, grant_request(waas, owner, **overrides))
    refused(api.call("ImportPermissionRequest", body, owner), 400, code)
    assert sessions_of(api, owner) == before


def test_a_backend_cannot_import_a_request_for_itself(api: Api, waas: Waas) -> None:
    owner, backend = create_owner(api), register_backend(api)
    body = import_body(owner, backend, grant_request(waas, owner))
    refused(api.call("ImportPermissionRequest", body, backend), 403, "ROLE_FORBIDDEN")
    assert sessions_of(api, owner) == 0


def test_a_request_that_is_not_json_objects_is_malformed(api: Api, waas: Waas) -> None:
    owner, backend = create_owner(api), register_backend(api)
    body = import_body(owner, backend, "wallet_grantPermissions")
    response = api.call("ImportPermissionRequest", body, owner)
    assert response.status_code == 400


def test_another_backend_cannot_export_a_session(api: Api, world: World) -> None:
    stranger = register_backend(api)
    response = api.call("ExportPermission", {"sessionId": world.session_id}, stranger)
    refused(response, 403, "ROLE_FORBIDDEN")
