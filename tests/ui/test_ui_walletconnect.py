"""WalletConnect on the approval page, where configured (``sessionward.ui.walletconnect``):
the settings (off by default, refused when they cannot work), what the pages serve and allow
(the wallet options, the bundle, the Content-Security-Policy), and in Chromium the page
offering WalletConnect beside the browser wallet, loading the real
``@walletconnect/ethereum-provider`` (bundled by esbuild as ``npm run build:walletconnect``
does), and the clear message when the configured relay cannot be reached, with nothing signed
or approved. A whole approval through a relay and a wallet is in
test_ui_walletconnect_pairing.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, Page, WebSocket, expect
from ui_browser_support import Service, UiWorld, check_screenshot, pair_in_page
from walletconnect_support import PROJECT_ID, build_provider_bundle, walletconnect_service

from sessionward.api.auth import Authenticator
from sessionward.api.errors import ApiError
from sessionward.ui.routes import CONTENT_SECURITY_POLICY, UiRoutes
from sessionward.ui.walletconnect import (
    DEFAULT_RELAY_URL,
    ENV_BUNDLE,
    ENV_PROJECT_ID,
    ENV_RELAY_URL,
    WalletConnect,
    WalletConnectConfigError,
    walletconnect_from_environ,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real EthereumProvider for the browser, built as ``npm run build:walletconnect``."""
    return build_provider_bundle(tmp_path_factory.mktemp("walletconnect") / "walletconnect.js")


@pytest.fixture(scope="module")
def relay_url() -> str:
    """A loopback relay URL where nothing listens (a port just released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    ops_key: ec.EllipticCurvePrivateKey,
    bundle: Path,
    relay_url: str,
) -> Iterator[Service]:
    """The UI service of conftest, with WalletConnect configured through the environment."""
    with walletconnect_service(
        tmp_path_factory.mktemp("ui-wc"), ops_key, relay_url=relay_url, bundle=bundle
    ) as service:
        yield service


@pytest.fixture
def page(browser: BrowserContext, relay_url: str) -> Iterator[Page]:
    """A fresh tab that fails the test on any script error except the refused connections to
    the unreachable relay (Chromium logs each one)."""
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    tab.close()
    expected = f"WebSocket connection to '{relay_url}/"
    assert [p for p in problems if not p.startswith(expected)] == []


# --- settings -----------------------------------------------------------------------------


def test_walletconnect_is_off_unless_a_project_id_is_configured(bundle: Path) -> None:
    assert walletconnect_from_environ({}) is None
    assert walletconnect_from_environ({ENV_PROJECT_ID: " ", ENV_BUNDLE: str(bundle)}) is None
    configured = walletconnect_from_environ({ENV_PROJECT_ID: PROJECT_ID, ENV_BUNDLE: str(bundle)})
    assert configured is not None
    assert configured.relay_url == DEFAULT_RELAY_URL
    assert configured.relay_origin == "wss://relay.walletconnect.org"
    assert configured.page_config() == {"projectId": PROJECT_ID, "relayUrl": DEFAULT_RELAY_URL}
    assert configured.bundle == bundle.read_bytes()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({ENV_PROJECT_ID: "not-a-project-id"}, ENV_PROJECT_ID),
        ({ENV_PROJECT_ID: PROJECT_ID.upper()}, ENV_PROJECT_ID),
        ({ENV_RELAY_URL: "ws://relay.example"}, ENV_RELAY_URL),  # clear text off loopback
        ({ENV_RELAY_URL: "https://relay.example"}, ENV_RELAY_URL),
        ({ENV_RELAY_URL: "wss://user:pw@relay.example"}, ENV_RELAY_URL),
        ({ENV_RELAY_URL: "wss://relay.example/?projectId=x"}, ENV_RELAY_URL),
        ({ENV_BUNDLE: "/nonexistent/walletconnect.js"}, ENV_BUNDLE),
    ],
)
def test_a_walletconnect_setting_that_cannot_work_is_refused_naming_it(
    settings: dict[str, str], named: str, bundle: Path
) -> None:
    environ = {ENV_PROJECT_ID: PROJECT_ID, ENV_BUNDLE: str(bundle), **settings}
    with pytest.raises(WalletConnectConfigError, match=named):
        walletconnect_from_environ(environ)


def test_without_walletconnect_the_pages_offer_only_the_browser_wallet(service: Service) -> None:
    routes = UiRoutes(service.waas, Authenticator(service.waas), walletconnect=None)
    status, body, _ = routes.answer("GET", "/ui/api/wallets", "/ui/api/wallets", {})
    assert (status, json.loads(body)) == (200, {"walletConnect": None})
    _, _, headers = routes.answer("GET", "/ui/approve", "/ui/approve", {})
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    with pytest.raises(ApiError) as missing:
        routes.answer("GET", "/ui/static/walletconnect.js", "/ui/static/walletconnect.js", {})
    assert (missing.value.status, missing.value.code) == (404, "METHOD_UNKNOWN")


def test_with_walletconnect_the_pages_name_it_serve_its_bundle_and_allow_its_relay(
    service: Service, bundle: Path, relay_url: str
) -> None:
    configured = WalletConnect(PROJECT_ID, "wss://relay.example:444/v2", bundle.read_bytes())
    routes = UiRoutes(service.waas, Authenticator(service.waas), walletconnect=configured)
    _, body, _ = routes.answer("GET", "/ui/api/wallets", "/ui/api/wallets", {})
    assert json.loads(body) == {
        "walletConnect": {"projectId": PROJECT_ID, "relayUrl": "wss://relay.example:444/v2"}
    }
    _, script, headers = routes.answer(
        "GET", "/ui/static/walletconnect.js", "/ui/static/walletconnect.js", {}
    )
    assert script == bundle.read_bytes() and headers["content-type"].startswith("text/javascript")
    policy = headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://relay.example:444;" in policy
    assert policy.replace(" wss://relay.example:444", "") == CONTENT_SECURITY_POLICY


# --- the page, in Chromium ----------------------------------------------------------------


def _pending_session(world: UiWorld) -> str:
    deployment = world.waas.runtime.deployment
    envelope = {
        "capabilities": ["swap.execute"],
        "allowedDestinations": [deployment.router],
        "tokenLimits": [{"token": deployment.token("USDX"), "limit": "250000000"}],
        "chainId": 1,
        "expiresAt": int(time.time()) + 1800,
    }
    pending = world.owner.authorize_remote_access(
        world.backend_credential, world.wallet["walletId"], envelope
    )
    return str(pending["sessionId"])


def test_the_approval_page_offers_walletconnect_and_says_clearly_when_its_relay_is_unreachable(
    page: Page, world: UiWorld, relay_url: str, tmp_path: Path
) -> None:
    session_id = _pending_session(world)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(_url(ws)))
    answer = page.goto(f"{world.url}/ui/approve?session={session_id}")
    assert answer is not None
    assert f"connect-src 'self' {relay_url};" in answer.headers["content-security-policy"]
    expect(page.locator("body:not([data-state=loading])")).to_have_count(1)
    if page.locator("body").get_attribute("data-state") == "pair":
        pair_in_page(page, world.owner.create_pairing_code()["pairingCode"], "walletconnect test")
    expect(page.locator("body[data-state=ready]")).to_have_count(1)
    offer = page.locator("#connect-wc")
    expect(offer).to_be_visible()
    expect(page.locator("#connect")).to_be_visible()  # beside the browser wallet
    shot = tmp_path / "approve-walletconnect-offered.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)

    offer.click()
    expect(page.locator("body[data-state=wc-unreachable]")).to_have_count(1, timeout=30_000)
    status = page.locator("#status-line")
    expect(status).to_contain_text("WalletConnect's relay (127.0.0.1:")
    expect(status).to_contain_text("cannot be reached from this browser")
    expect(status).to_contain_text("Nothing was signed or approved")
    expect(page.locator("#wc-pairing")).to_be_hidden()  # no pairing link without a relay
    expect(page.locator("#sign")).to_be_disabled()
    # The real provider tried the configured relay (its JWT-authenticated WebSocket URL).
    assert sockets and all(url.startswith(f"{relay_url}/?auth=") for url in sockets), sockets
    shot = tmp_path / "approve-walletconnect-unreachable.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)
    record = world.waas.runtime.store.sessions.get(session_id)
    assert record is not None and record.status == "pending_approval"


def _url(ws: WebSocket) -> str:
    return ws.url
