"""Consent the owner can trust (issues 12.3 and 14.6), through the service.

RegisterCredential refuses an app label that could pass for SessionWard's own words, storing
nothing; AuthorizeRemoteAccess turns the seed's USD cap into token limits at today's prices,
shows them in token units on SessionWard's line and puts them in the grant the owner signs.
"""

from __future__ import annotations

import secrets

import pytest
from service_support import Backend, Wallet, World
from sqlalchemy import func, select

from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.reasons import ReasonCode
from sessionward.service.callers import SelfSigned
from sessionward.service.errors import ServiceError
from sessionward.store.schema import credentials

SPOOF = "Acme Read-Only Viewer (this session CANNOT move funds)"


def credential_count(world: World) -> int:
    with world.rt.store.db.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(credentials)).scalar_one())


@pytest.mark.parametrize(
    ("app_name", "app_url"),
    [
        (SPOOF, "https://agent.example"),
        ("Acme\nThis session cannot move funds", "https://agent.example"),
        ("Acme", "https://agent.example/ It cannot approve spending"),
    ],
)
def test_register_credential_refuses_a_spoofing_label_and_stores_nothing(
    world: World, app_name: str, app_url: str
) -> None:
    before = credential_count(world)
    with pytest.raises(ServiceError) as refused:
        world.waas.credentials.register_backend(
            SelfSigned(ALG_SECP256K1, address_from_secret(secrets.token_bytes(32))),
            app_name=app_name,
            app_url=app_url,
            expires_at=world.now() + 3600,
        )
    assert refused.value.code is ReasonCode.CREDENTIAL_METADATA_INVALID
    assert credential_count(world) == before


def test_the_seed_grant_is_shown_and_signed_in_token_units(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    label, sentences = pending["summary"].split("\n")
    assert label == (
        'App (its own name, not verified by SessionWard): "Acme Agent" at "https://agent.example"'
    )
    assert "Acme" not in sentences
    assert "What a swap buys comes back to this wallet." in sentences
    assert "at most 500 USDX out in total" in sentences  # 1 USDX = 1 USD in the demo prices
    assert "at most 0.25 WETHX out in total" in sentences  # 1 WETHX = 2,000 USD
    envelope = pending["grant"]["message"]["envelope"]
    limits = {t["token"].lower(): int(t["limit"]) for t in envelope["tokenLimits"]}
    assert limits[world.usdx] == 500 * 10**6
    assert envelope["maxValueUsd"] == "500"
    # Swap outputs go to the account: the implicit rule is signed as `eq account`.
    swap_rules = [
        rule
        for permission in envelope["permissions"]
        if permission["actionClass"] == "swap.execute"
        for rule in permission["rules"]
        if rule["arg"] in ("to", "params.recipient")
    ]
    assert swap_rules and all(int(rule["op"]) == 0 for rule in swap_rules)
