"""The ops console at ``/ui/ops`` in headless Chromium, and its signed read
``GET /ui/api/ops/overview``: alerts, frozen scopes and the week's metrics, for ops only."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from ui_browser_support import OPS_ID, OTHER_ROUTER, UiWorld, check_screenshot, connect_ops

from sessionward.crypto.request_signature import (
    SIGNATURE_HEADER,
    P256RequestSigner,
    RequestSigner,
    sign_request,
)
from sessionward.sdk import SessionWardApiError
from sessionward.ui import OPS_OVERVIEW_PATH


def _percent(numerator: int, denominator: int) -> str:
    if denominator == 0:
        return "n/a"
    return f"{float(Fraction(numerator, denominator)) * 100:.1f} %"


def _signed_get(
    world: UiWorld, signer: RequestSigner, credential: str, path: str = OPS_OVERVIEW_PATH
) -> tuple[httpx.Response, str]:
    header = sign_request(
        signer, credential, "GET", path, b"", time.time_ns(), time.time_ns() // 1_000_000
    )
    return httpx.get(world.url + path, headers={SIGNATURE_HEADER: header}), header


def test_ops_view_lists_the_emergency_alert_the_frozen_scope_and_the_weeks_metrics(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    victim = world.grant(expires_in=1200, max_uses=2)
    with pytest.raises(SessionWardApiError) as refused:  # one denial for the numbers
        world.swap(victim, 10, to=OTHER_ROUTER)
    assert refused.value.code == "TARGET_NOT_ALLOWED"
    world.ops.emergency_revoke("session", victim, "ui test: the agent's key leaked")
    frozen = world.ops.emergency_revoke("action_class", "erc20.transfer", "ui test: drill")
    store = world.waas.runtime.store
    alert = next(
        a
        for a in store.alerts.between(0, 2**62)
        if a.rule == "emergency_revoke" and a.session_id == victim
    )

    connect_ops(page, world.url, world.ops_jwk)
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)

    row = page.locator(f'#alerts tr[data-alert-id="{alert.id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("emergency_revoke")
    expect(row).to_contain_text("critical")
    expect(row).to_contain_text(f"session {victim}")
    expect(row).to_contain_text("ui test: the agent's key leaked")
    expect(row).to_contain_text("session revoked")
    freeze = page.locator(f'#freezes tr[data-freeze-id="{frozen["freezeId"]}"]')
    expect(freeze).to_be_visible()
    expect(freeze).to_contain_text("action_class")
    expect(freeze).to_contain_text("erc20.transfer")
    expect(freeze).to_contain_text("ui test: drill")
    expect(freeze).to_contain_text(f"ops:{OPS_ID}")
    assert page.locator("#freezes tr").count() == len(store.freezes.active())

    period = page.locator("#period")
    since, until = (
        int(period.get_attribute("data-since") or ""),
        int(period.get_attribute("data-until") or ""),
    )
    assert until - since == 7 * 86_400 and abs(until - time.time()) < 60
    m = store.telemetry.weekly(since, until)
    assert m.decisions >= 3 and m.denied >= 1  # the setup swap (prepare + execute), the denial

    def tile(metric: str) -> str:
        return page.locator(f'.tile[data-metric="{metric}"] .tile-value').inner_text()

    def detail(metric: str) -> str:
        return page.locator(f'.tile[data-metric="{metric}"] .tile-detail').inner_text()

    assert tile("decisions") == str(m.decisions)
    assert detail("decisions") == f"{m.allowed} allowed, {m.denied} denied"
    assert tile("denial-rate") == _percent(m.denied, m.decisions)
    assert tile("context-mismatch-rate") == _percent(m.context_mismatches, m.decisions)
    assert tile("post-revocation-attempts") == str(m.post_revocation_attempts)
    ttr = m.time_to_revoke
    assert ttr.critical_alerts >= 2
    assert detail("time-to-revoke") == (
        f"{ttr.stopped} of {ttr.critical_alerts} critical alerts stopped"
    )
    reasons = page.locator('#reasons tr[data-reason="TARGET_NOT_ALLOWED"] td')
    expected = next(r for r in m.denials_by_reason if r.reason == "TARGET_NOT_ALLOWED")
    assert reasons.nth(1).inner_text() == str(expected.denied)
    days = page.locator("#daily .day")
    assert days.count() == len(m.daily)
    today = page.locator(f'#daily .day[data-day="{m.daily[-1].day}"]')
    assert today.get_attribute("data-denied") == str(m.daily[-1].denied)

    for visible in (row, freeze, page.locator('.tile[data-metric="decisions"]')):
        expect(visible).to_be_visible()
    page.locator("#alerts").scroll_into_view_if_needed()
    shot = tmp_path / "ops-view.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)


def test_ops_overview_answers_only_a_live_ops_credential(world: UiWorld) -> None:
    unsigned = httpx.get(world.url + OPS_OVERVIEW_PATH)
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "SIGNATURE_INVALID"
    assert "alerts" not in unsigned.json()

    owner, _ = _signed_get(world, P256RequestSigner(world.device_key), world.device_credential)
    assert owner.status_code == 403
    assert owner.json()["code"] == "ROLE_FORBIDDEN"
    assert "alerts" not in owner.json()

    ops, header = _signed_get(world, P256RequestSigner(world.ops_key), OPS_ID)
    assert ops.status_code == 200
    assert ops.headers["cache-control"] == "no-store"
    assert set(ops.json()) >= {"alerts", "freezes", "metrics", "period"}
    replayed = httpx.get(world.url + OPS_OVERVIEW_PATH, headers={SIGNATURE_HEADER: header})
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "NONCE_REPLAYED"


def test_an_ops_signature_for_another_path_or_verb_is_refused(world: UiWorld) -> None:
    signer = P256RequestSigner(world.ops_key)
    other = OPS_OVERVIEW_PATH + "?days=30"
    header = sign_request(
        signer, OPS_ID, "GET", other, b"", time.time_ns(), int(time.time() * 1000)
    )
    moved = httpx.get(world.url + OPS_OVERVIEW_PATH, headers={SIGNATURE_HEADER: header})
    assert moved.status_code == 401
    assert moved.json()["code"] == "SIGNATURE_INVALID"

    posted = httpx.post(world.url + OPS_OVERVIEW_PATH, content=b"{}")
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET"


def test_ops_page_connected_with_an_owner_key_shows_the_refusal(world: UiWorld, page: Page) -> None:
    connect_ops(page, world.url, world.device_jwk, world.device_credential)

    expect(page.locator("#status-line")).to_contain_text("ROLE_FORBIDDEN")
    expect(page.locator("#alerts tr")).to_have_count(0)
    expect(page.locator(".tile")).to_have_count(0)
