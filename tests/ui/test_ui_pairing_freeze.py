"""The pages during a global freeze (issue 14). Pairing a browser: the owner page's pairing form
is refused ``GLOBAL_FREEZE`` (409) with a message saying why, and nothing is stored: no device
row, no key in IndexedDB, the code left unused; once two ops lift the freeze, the same code
pairs. Approving: the approval page's ``ApproveSession`` is refused with a message and the
session stays pending; after the lift the same page approves it.

The module runs its own service with two ops credentials (lifting a global freeze takes two).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, ConsoleMessage, expect
from sqlalchemy import func, select
from ui_browser_support import (
    Service,
    UiWorld,
    check_screenshot,
    ops_credential,
    pair_in_page,
)
from wallet_support import install_wallet, wallet_requests

from sessionward.crypto.p256 import generate_private_key, public_key_bytes
from sessionward.crypto.request_signature import ALG_P256, P256RequestSigner
from sessionward.sdk import OpsClient, SessionWardApiError
from sessionward.server import BackgroundServer
from sessionward.service.config import OpsCredential, Settings
from sessionward.service.devices import normalize_code
from sessionward.service.waas import Waas
from sessionward.store.devices import code_hash
from sessionward.store.schema import owner_devices, pairing_codes

SECOND_OPS = "ops-second"
_DEVICE = "() => import('/ui/static/device.js').then((m) => m.loadDevice())"


@pytest.fixture(scope="module")
def second_ops_key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    ops_key: ec.EllipticCurvePrivateKey,
    second_ops_key: ec.EllipticCurvePrivateKey,
) -> Iterator[Service]:
    """As conftest's, with a second ops credential."""
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    service_logs = logging.getLogger("sessionward")
    level = service_logs.level
    service_logs.setLevel(logging.WARNING)
    second = OpsCredential(SECOND_OPS, ALG_P256, "0x" + public_key_bytes(second_ops_key).hex())
    try:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("ui-freeze"),
            ops_credentials=(ops_credential(ops_key), second),
        )
        waas = Waas.from_settings(settings)
        with BackgroundServer(waas) as url:
            yield Service(waas, url)
    finally:
        service_logs.setLevel(level)


def _devices(world: UiWorld) -> int:
    with world.waas.runtime.store.db.reading() as conn:
        query = select(func.count()).select_from(owner_devices)
        return int(conn.execute(query).scalar_one())


def _code_used(world: UiWorld, code: str) -> bool:
    compact = normalize_code(code)
    assert compact is not None
    with world.waas.runtime.store.db.reading() as conn:
        used = conn.execute(
            select(pairing_codes.c.used_at).where(pairing_codes.c.code_hash == code_hash(compact))
        ).scalar_one()
    return used is not None


def test_a_browser_cannot_pair_during_a_global_freeze_and_pairs_after_the_lift(
    world: UiWorld,
    browser: BrowserContext,
    second_ops_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
) -> None:
    code = world.owner.create_pairing_code()["pairingCode"]  # issued before the freeze
    devices = _devices(world)
    page = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "status of 409" not in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    second = OpsClient(world.url, P256RequestSigner(second_ops_key), SECOND_OPS)
    world.ops.emergency_revoke("global", None, "UI test: pairing during a freeze")
    try:
        page.goto(world.url + "/ui")
        pair_in_page(page, code)
        line = page.locator("#status-line")
        expect(line).to_contain_text("Pairing failed: SessionWard's operators have frozen")
        expect(line).to_contain_text("Nothing was stored")
        expect(line).to_contain_text("(GLOBAL_FREEZE)")
        expect(page.locator("#pair")).to_be_visible()
        assert page.evaluate(_DEVICE) is None, "no key kept in IndexedDB"
        assert _devices(world) == devices
        assert not _code_used(world, code)
        with pytest.raises(SessionWardApiError) as issuing:
            world.owner.create_pairing_code()
        assert (issuing.value.status, issuing.value.code) == (409, "GLOBAL_FREEZE")
        shot = tmp_path / "pairing-frozen.png"
        page.screenshot(path=str(shot))
        check_screenshot(shot)
    finally:
        with pytest.raises(SessionWardApiError):
            world.ops.lift_freeze("global")  # the first approval lifts nothing
        second.lift_freeze("global")

    pair_in_page(page, code)
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    assert _devices(world) == devices + 1 and _code_used(world, code)
    page.close()
    assert not problems, problems


def test_an_approval_during_a_global_freeze_is_refused_with_a_message_and_goes_through_after(
    world: UiWorld,
    browser: BrowserContext,
    second_ops_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
) -> None:
    deployment = world.waas.runtime.deployment
    envelope = {
        "capabilities": ["swap.execute"],
        "maxValueUsd": 100,
        "maxUses": 3,
        "allowedDestinations": [deployment.router],
        "chainId": 1,
        "expiresAt": int(time.time()) + 1800,
    }
    pending = world.owner.authorize_remote_access(
        world.backend_credential, world.wallet["walletId"], envelope
    )
    session_id = pending["sessionId"]
    page = browser.new_page()
    install_wallet(page, world.extra["owner_secret"])
    page.goto(f"{world.url}/ui/approve?session={session_id}")
    expect(page.locator("body:not([data-state=loading])")).to_have_count(1)
    if page.locator("body").get_attribute("data-state") == "pair":
        pair_in_page(page, world.owner.create_pairing_code()["pairingCode"])
    expect(page.locator("body[data-state=ready]")).to_have_count(1)
    page.locator("#connect").click()
    expect(page.locator("body[data-state=connected]")).to_have_count(1)

    second = OpsClient(world.url, P256RequestSigner(second_ops_key), SECOND_OPS)
    world.ops.emergency_revoke("global", None, "UI test: approval during a freeze")
    try:
        page.locator("#sign").click()
        line = page.locator("#status-line")
        expect(line).to_contain_text("operators have frozen all sessions")
        expect(line).to_contain_text("nothing can be approved now")
        assert wallet_requests(page).count("eth_signTypedData_v4") == 1
        record = world.waas.runtime.store.sessions.get(session_id)
        assert record is not None and record.status == "pending_approval"
        shot = tmp_path / "approve-frozen.png"
        page.screenshot(path=str(shot))
        check_screenshot(shot)
    finally:
        with pytest.raises(SessionWardApiError):
            world.ops.lift_freeze("global")
        second.lift_freeze("global")

    page.locator("#sign").click()
    expect(page.locator("body[data-state=approved]")).to_have_count(1)
    page.close()
