"""Owner devices in the browser (issue 14): the review page pairs a non-extractable WebCrypto key
with the owner's one-time code, keeps it in IndexedDB across reloads, and never puts a key or a
code in a URL or the browser's history; an expired device, a device the owner revoked and a
device trying to pair another device are refused with their exact codes.

Each test runs Debian's Chromium with its own persistent profile, so that after the browser is
closed the profile's ``History`` database can be read back.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect, sync_playwright
from sqlalchemy import func, select
from ui_browser_support import CHROMIUM, UiWorld, launch_chromium, pair_in_page

from sessionward.crypto.p256 import generate_private_key
from sessionward.crypto.request_signature import P256RequestSigner, parse_signature_header
from sessionward.sdk import OwnerClient, SessionWardApiError
from sessionward.service.devices import normalize_code
from sessionward.store.schema import owner_devices, pairing_codes

_DEVICE = "() => import('/ui/static/device.js').then((m) => m.loadDevice())"


@contextmanager
def chromium(profile: Path) -> Iterator[tuple[BrowserContext, list[Request]]]:
    """Chromium on the persistent profile ``profile``; every request it sends is recorded."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `./run test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, profile)
        context.set_default_timeout(15_000)
        sent: list[Request] = []
        context.on("request", lambda request: sent.append(request))
        try:
            yield context, sent
        finally:
            context.close()


def paired_page(context: BrowserContext, world: UiWorld, code: str) -> tuple[Page, str]:
    """A tab of ``context`` on ``/ui``, paired with ``code``, sessions shown."""
    page = context.new_page()
    page.goto(world.url + "/ui")
    pair_in_page(page, code)
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    device = page.locator("body").get_attribute("data-device")
    assert device and device.startswith("cred_")
    return page, device


def signed_call(page: Page, method: str, body: dict[str, Any]) -> list[Any]:
    """``[status, code]`` of ``method`` signed in the page by its stored device key."""
    return list(
        page.evaluate(
            """async ([method, body]) => {
                const d = await import('/ui/static/device.js');
                const s = await import('/ui/static/signing.js');
                const device = await d.loadDevice();
                try {
                  await s.callMethod(d.deviceSigner(device), method, body);
                  return [200, null];
                } catch (error) {
                  return [error.status, error.code];
                }
            }""",
            [method, body],
        )
    )


def refresh_refused(page: Page, code: str) -> None:
    """Click Refresh: the page's ListAccess is refused with ``code`` and it offers pairing."""
    with page.expect_response(lambda r: r.url.endswith("/v1/Waas/ListAccess")) as answered:
        page.locator("#reload").click()
    assert answered.value.status == 401
    assert answered.value.json()["code"] == code
    expect(page.locator("#status-line")).to_contain_text(code)
    expect(page.locator("#pair")).to_be_visible()
    expect(page.locator("article.session")).to_have_count(0)


def history_urls(profile: Path) -> tuple[list[str], bytes]:
    """The URLs in the closed profile's History database, and the raw bytes of every History
    file (the database and any journal left beside it)."""
    history = profile / "Default" / "History"
    assert history.exists(), "Chromium wrote no History database"
    copy = profile.parent / "History.copy"
    shutil.copyfile(history, copy)
    with sqlite3.connect(copy) as db:
        urls = [row[0] for row in db.execute("SELECT url FROM urls")]
    raw = b"".join(p.read_bytes() for p in (profile / "Default").glob("History*") if p.is_file())
    return urls, raw


def code_spellings(code: str) -> list[str]:
    compact = normalize_code(code)
    assert compact is not None
    return [code, compact, compact.lower(), code.lower()]


def count(world: UiWorld, table: Any) -> int:
    with world.waas.runtime.store.db.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_pairing_in_the_page_keeps_a_non_extractable_key_and_no_secret_in_urls_or_history(
    world: UiWorld, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    code = world.owner.create_pairing_code()["pairingCode"]
    navigated: list[str] = []
    with chromium(profile) as (context, sent):
        page, device = paired_page(context, world, code)
        page.on("framenavigated", lambda frame: navigated.append(frame.url))
        expect(page.locator('#pair-form input[name="pairingCode"]')).to_have_value("")

        # The key is WebCrypto's, private and non-extractable: no format exports it.
        probe = page.evaluate(
            """async () => {
                const d = await import('/ui/static/device.js');
                const device = await d.loadDevice();
                const k = device.privateKey;
                const refusals = [];
                for (const format of ['jwk', 'pkcs8']) {
                  try { await crypto.subtle.exportKey(format, k); refusals.push('exported'); }
                  catch (e) { refusals.push(e.name); }
                }
                return {type: k.type, extractable: k.extractable, usages: k.usages,
                        algorithm: k.algorithm, refusals, fields: Object.keys(device).sort(),
                        publicKey: device.publicKey};
            }"""
        )
        assert probe["refusals"] == ["InvalidAccessError", "InvalidAccessError"]
        assert (probe["type"], probe["extractable"], probe["usages"]) == (
            "private",
            False,
            ["sign"],
        )
        assert probe["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
        assert probe["fields"] == sorted(
            ["credentialId", "walletId", "privateKey", "publicKey", "label", "expiresAt"]
        )
        listed = {d["credentialId"]: d for d in world.owner.list_devices()["items"]}
        assert listed[device]["publicKey"] == probe["publicKey"]
        assert (listed[device]["pairedVia"], listed[device]["status"]) == ("code", "active")
        assert listed[device]["label"] == "test browser"
        row = page.locator(f'#device-rows tr[data-device="{device}"]')
        expect(row).to_have_attribute("data-status", "active")
        expect(row).to_contain_text("(this browser)")
        expect(row).to_contain_text("test browser")

        # After a reload the page signs with the stored key: no pairing form, same device.
        with page.expect_request(lambda r: r.url.endswith("/v1/Waas/ListAccess")) as listing:
            page.reload()
        expect(page.locator("body[data-loaded=true]")).to_have_count(1)
        expect(page.locator("#pair")).to_be_hidden()
        header = parse_signature_header(listing.value.headers["oms-wallet-signature"])
        assert header.cred == device
        assert page.evaluate(_DEVICE)["credentialId"] == device
        assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0

        # The code was used: nobody can pair with it again.
        thief = OwnerClient(world.url, P256RequestSigner(generate_private_key()))
        with pytest.raises(SessionWardApiError) as reused:
            thief.pair_device(code)
        assert (reused.value.status, reused.value.code) == (401, "PAIRING_CODE_USED")
        visited = [page.url, *navigated]
        bodies = [(r.url, r.post_data or "") for r in sent]
        request_urls = [r.url for r in sent]

    assert any(url.endswith("/v1/Waas/PairDevice") for url in request_urls)
    history, raw = history_urls(profile)
    assert world.url + "/ui" in history, "the History database must record the page itself"
    every_url = [*history, *visited, *request_urls]
    assert all("#" not in url and "?" not in url for url in every_url), every_url
    profile_files = [p for p in profile.rglob("*") if p.is_file() and not p.is_symlink()]
    for spelling in code_spellings(code):
        assert not [url for url in every_url if spelling in url]
        assert spelling.encode() not in raw
        # Nor anywhere else in the profile (autofill, session restore, caches...).
        assert not [p for p in profile_files if spelling.encode() in p.read_bytes()]
    for url in every_url:
        assert not any(marker in url for marker in ("key=", "jwk", "pairingCode", "%22d%22"))
    # The code travelled once, in PairDevice's POST body, and in no other request.
    assert [url for url, body in bodies if code in body] == [world.url + "/v1/Waas/PairDevice"]
    assert not [body for _url, body in bodies if '"d"' in body or "pkcs8" in body]


def test_a_link_carrying_a_key_or_code_in_its_fragment_is_ignored_and_removed(
    world: UiWorld, tmp_path: Path
) -> None:
    with chromium(tmp_path / "profile") as (context, sent):
        page = context.new_page()
        page.goto(world.url + "/ui#walletId=w&credentialId=c&key=eyJkIjoiQUFBQSJ9")
        expect(page.locator("#pair")).to_be_visible()
        assert "#" not in page.url
        assert [r.url for r in sent if "/v1/" in r.url] == []


def test_an_expired_device_is_refused_and_the_page_offers_pairing_again(
    world: UiWorld, tmp_path: Path
) -> None:
    code = world.owner.create_pairing_code(device_ttl_seconds=12)
    with chromium(tmp_path / "profile") as (context, _sent):
        page, device = paired_page(context, world, code["pairingCode"])
        listed = {d["credentialId"]: d for d in world.owner.list_devices()["items"]}
        expires_at = listed[device]["expiresAt"]
        assert expires_at <= int(time.time()) + 12
        time.sleep(max(0.0, expires_at - time.time()) + 1.0)

        refresh_refused(page, "CREDENTIAL_EXPIRED")
        expect(page.locator("body")).to_have_attribute("data-device-state", "expired")
        assert signed_call(page, "ListAccess", {"walletId": world.wallet["walletId"]}) == [
            401,
            "CREDENTIAL_EXPIRED",
        ]
    statuses = {d["credentialId"]: d["status"] for d in world.owner.list_devices()["items"]}
    assert statuses[device] == "expired"


def test_a_device_revoked_by_the_owner_is_refused_at_once(world: UiWorld, tmp_path: Path) -> None:
    code = world.owner.create_pairing_code()["pairingCode"]
    with chromium(tmp_path / "profile") as (context, _sent):
        page, device = paired_page(context, world, code)
        revoked = world.owner.revoke_device(device, reason="lost laptop")
        assert revoked["status"] == "revoked"

        refresh_refused(page, "CREDENTIAL_REVOKED")  # the very next request
        expect(page.locator("body")).to_have_attribute("data-device-state", "revoked")
        expect(page.locator("#devices")).to_be_hidden()
        page.reload()  # the stored key is still refused after a reload
        expect(page.locator("body")).to_have_attribute("data-device-state", "revoked")
        expect(page.locator("#pair")).to_be_visible()
        before = world.owner.get_session(world.idle_session)["status"]
        answer = signed_call(
            page,
            "RevokeAccess",
            {
                "walletId": world.wallet["walletId"],
                "credentialId": world.backend_credential,
                "sessionId": world.idle_session,
            },
        )
        assert answer == [401, "CREDENTIAL_REVOKED"]
        assert world.owner.get_session(world.idle_session)["status"] == before


def test_a_browser_device_cannot_pair_or_register_another_device(
    world: UiWorld, tmp_path: Path
) -> None:
    code = world.owner.create_pairing_code()["pairingCode"]
    with chromium(tmp_path / "profile") as (context, _sent):
        page, _device = paired_page(context, world, code)
        before = (count(world, owner_devices), count(world, pairing_codes))
        issued = signed_call(page, "CreatePairingCode", {"walletId": world.wallet["walletId"]})
        assert issued == [403, "DEVICE_CANNOT_PAIR"]
        other = P256RequestSigner(generate_private_key())
        registered = signed_call(
            page,
            "RegisterCredential",
            {"alg": other.alg, "publicKey": "0x" + other.public_key.hex()},
        )
        assert registered == [403, "DEVICE_CANNOT_PAIR"]
        assert (count(world, owner_devices), count(world, pairing_codes)) == before


def test_unpairing_the_browser_revokes_its_device_and_deletes_its_key(
    world: UiWorld, tmp_path: Path
) -> None:
    code = world.owner.create_pairing_code()["pairingCode"]
    with chromium(tmp_path / "profile") as (context, _sent):
        page, device = paired_page(context, world, code)
        with page.expect_response(lambda r: r.url.endswith("/v1/Waas/RevokeDevice")) as answer:
            page.locator("#forget").click()
        assert answer.value.status == 200
        expect(page.locator("#pair")).to_be_visible()
        assert page.evaluate(_DEVICE) is None
        page.reload()
        expect(page.locator("#pair")).to_be_visible()
        expect(page.locator("article.session")).to_have_count(0)
    statuses = {d["credentialId"]: d["status"] for d in world.owner.list_devices()["items"]}
    assert statuses[device] == "revoked"


def test_the_sdk_pairs_a_device_held_in_python_with_a_code(world: UiWorld) -> None:
    code = world.owner.create_pairing_code(device_ttl_seconds=600)
    device = OwnerClient(world.url, P256RequestSigner(generate_private_key()))
    paired = device.pair_device(code["pairingCode"], "ci runner")
    assert (device.credential_id, device.wallet_id) == (paired["credentialId"], code["walletId"])
    assert paired["expiresAt"] - paired["createdAt"] == 600
    assert "items" in device.list_access()
    with pytest.raises(SessionWardApiError) as refused:
        device.create_pairing_code()
    assert (refused.value.status, refused.value.code) == (403, "DEVICE_CANNOT_PAIR")
