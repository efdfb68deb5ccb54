"""The owner's review page at ``/ui``, in headless Chromium: sessions in plain language, usage
against each limit, time left, status, and a revoke button whose request the page signs with
the owner's device key."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, Request, expect
from ui_browser_support import UiWorld, check_screenshot, open_owner_page

from sessionward.crypto.request_signature import ALG_P256, parse_signature_header

_UNITS = {"d": 86_400, "h": 3_600, "min": 60, "s": 1}


def _seconds(text: str) -> int:
    """ "59 min 58 s left" -> 3598."""
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+) (d|h|min|s)\b", text))


def _expected_percent(spent: str, maximum: str) -> str:
    tenths = int(spent) * 1000 // int(maximum)
    return f"{tenths // 10}.{tenths % 10}"


def _card(page: Page, session_id: str) -> Locator:
    return page.locator(f'article.session[data-session-id="{session_id}"]')


def _in_viewport(page: Page, locator: Locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return box["y"] < size["height"] and box["y"] + box["height"] > 0


def test_owner_view_shows_each_session_in_plain_language_with_usage_and_time_left(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    open_owner_page(page, world)

    for session_id in (world.used_session, world.idle_session):
        server = world.owner.get_session(session_id)
        card = _card(page, session_id)
        expect(card.locator(".summary")).to_have_text(server["summary"])
        expect(card.locator(".badge")).to_have_text("Active")
        expect(card.locator("h2")).to_have_text("Acme Trading Agent")
        left = _seconds(card.locator(".time-left").inner_text())
        assert abs(left - (server["expiresAt"] - time.time())) <= 5
        expect(card.locator("button.revoke")).to_be_visible()
        usage = world.owner.get_session_usage(session_id)["limits"]
        assert [row.get_attribute("data-limit") for row in card.locator(".limit").all()] == [
            item["limit"] for item in usage
        ]
        for item in usage:
            row = card.locator(f'.limit[data-limit="{item["limit"]}"]')
            expected = _expected_percent(item["spent"], item["max"])
            expect(row.locator(".limit-percent")).to_have_text(f"{expected}%")
            expect(row.locator(".meter")).to_have_attribute("aria-valuenow", f"{float(expected):g}")

    used = _card(page, world.used_session)
    # One 100 USDX swap (the demo price is 1 USD): 1 of 10 uses, 100 of 500 USD.
    uses = used.locator('.limit[data-limit="maxUses"]')
    expect(uses.locator(".limit-amount")).to_have_text("1 of 10 uses")
    expect(uses.locator(".limit-percent")).to_have_text("10.0%")
    usd = used.locator('.limit[data-limit="maxValueUsd"]')
    expect(usd.locator(".limit-amount")).to_have_text("100.00 USD of 500.00 USD")
    expect(usd.locator(".limit-percent")).to_have_text("20.0%")
    fill, meter = usd.locator(".meter-fill").bounding_box(), usd.locator(".meter").bounding_box()
    assert fill is not None and meter is not None
    assert abs(fill["width"] / meter["width"] - 0.20) < 0.01, "the bar is drawn to scale"
    idle = _card(page, world.idle_session)
    expect(idle.locator('.limit[data-limit="maxValueUsd"] .limit-percent')).to_have_text("0.0%")

    used.scroll_into_view_if_needed()
    for visible in (used.locator(".summary"), usd.locator(".meter"), used.locator(".time-left")):
        expect(visible).to_be_visible()
        assert _in_viewport(page, visible)
    shot = tmp_path / "owner-view.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)


def test_revoke_button_sends_an_owner_signed_revoke_and_the_page_updates(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    target = world.grant(expires_in=1800, max_uses=3)
    device = open_owner_page(page, world)
    card = _card(page, target)
    expect(card).to_have_attribute("data-status", "active")

    card.locator("button.revoke").click()
    with page.expect_request(lambda r: r.url.endswith("/v1/Waas/RevokeAccess")) as sent:
        card.locator("button.revoke-confirm").click()

    request: Request = sent.value
    header = parse_signature_header(request.headers["oms-wallet-signature"])
    assert (header.alg, header.cred) == (ALG_P256, device)
    assert json.loads(request.post_data or "") == {
        "walletId": world.wallet["walletId"],
        "credentialId": world.backend_credential,
        "sessionId": target,
    }
    revoked = page.locator(f'article.session[data-session-id="{target}"][data-status="revoked"]')
    expect(revoked).to_be_visible()
    server = world.owner.get_session(target)
    assert server["status"] == "revoked"
    assert server["revokedBy"] == f"owner:{device}"
    expect(revoked.locator(".badge")).to_have_text("Revoked")
    expect(revoked.locator(".revoked-by")).to_contain_text(f"owner:{device}")
    expect(revoked.locator(".time-left")).to_have_text("none (revoked)")
    expect(revoked.locator("button.revoke")).to_have_count(0)
    expect(page.locator("#status-line")).to_contain_text(f"Session {target} revoked")
    for other in (world.used_session, world.idle_session):  # nothing else was touched
        assert world.owner.get_session(other)["status"] == "active"

    revoked.scroll_into_view_if_needed()
    expect(revoked.locator(".revoked-by")).to_be_visible()
    assert _in_viewport(page, revoked.locator(".revoked-by"))
    shot = tmp_path / "owner-after-revoke.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)


def test_keeping_the_session_at_the_confirmation_sends_no_revoke(
    world: UiWorld, page: Page
) -> None:
    open_owner_page(page, world)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    card = _card(page, world.idle_session)

    card.locator("button.revoke").click()
    card.locator("button.revoke-cancel").click()

    expect(card.locator("button.revoke")).to_be_visible()
    assert not [url for url in sent if "RevokeAccess" in url]
    assert world.owner.get_session(world.idle_session)["status"] == "active"
