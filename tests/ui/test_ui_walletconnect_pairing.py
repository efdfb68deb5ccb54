"""The approval page's WalletConnect flow end to end (issue 18), in Chromium.

The page's real ``@walletconnect/ethereum-provider`` (bundled as ``npm run
build:walletconnect`` does) pairs with a real wallet-side client (``@walletconnect/sign-client``
in node, signing with viem's local account over the owner's real secp256k1 key) through a
relay of our own on 127.0.0.1 (:mod:`walletconnect_support`: WalletConnect's public relay
cannot be reached from this machine and WalletConnect publishes no relay server). The relay
only routes the clients' end-to-end encrypted messages by topic.

Covered: the owner pairs by the link the page shows, the wallet approves the session for the
owner's account and chain and signs the grant; the page recovers the owner from the signature,
ApproveSession succeeds and the session becomes active; the relay saw only ciphertext. And the
wallet refusing the signature (WalletConnect's USER_REJECTED) gives the page's rejection message
with nothing sent and the session still pending; a wallet of another account is never asked
to sign; a wallet that does not grant eth_signTypedData_v4 is never asked either (the provider
would send the request to WalletConnect's RPC node). And the relay's own contract, from a
client's side: routing by topic, the mailbox, no echo, ttl, refusals.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    WebSocket,
    expect,
)
from playwright.sync_api import Error as PlaywrightError
from ui_browser_support import Service, UiWorld, check_screenshot, pair_in_page
from walletconnect_support import (
    PROJECT_ID,
    LocalRelay,
    WalletProcess,
    build_provider_bundle,
    walletconnect_service,
)

from sessionward.crypto.secp256k1 import address_from_secret, sign_digest

# The provider's Verify API: an iframe of verify.walletconnect.org, which the page's
# Content-Security-Policy (default-src 'none') refuses; the provider then proposes the session
# without an attestation. Chromium logs the refusal; nothing leaves the machine.
VERIFY_REFUSED = "Framing 'https://verify.walletconnect.org/' violates"
# The provider's logger reports the wallet's refusal of a request as an error.
REFUSAL_LOGGED = "msg: User rejected."
# What the provider persists (WalletConnect's key-value storage: IndexedDB, and localStorage).
CLEAR_ORIGIN_STORAGE = """async () => {
  localStorage.clear();
  sessionStorage.clear();
  for (const database of await indexedDB.databases()) {
    await new Promise((done) => {
      const request = indexedDB.deleteDatabase(database.name);
      request.onsuccess = request.onerror = request.onblocked = () => done();
    });
  }
}"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRelay]:
    relay = LocalRelay.start(tmp_path_factory.mktemp("wc-relay") / "relay.jsonl")
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    ops_key: ec.EllipticCurvePrivateKey,
    relay: LocalRelay,
) -> Iterator[Service]:
    """The UI service of conftest, with WalletConnect configured to use the local relay."""
    bundle = build_provider_bundle(tmp_path_factory.mktemp("wc-bundle") / "walletconnect.js")
    with walletconnect_service(
        tmp_path_factory.mktemp("ui-wc-pairing"), ops_key, relay_url=relay.url, bundle=bundle
    ) as service:
        yield service


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A fresh tab that fails the test on any script error except the refused Verify iframe and
    the provider's own log of a refusal."""
    tab = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and VERIFY_REFUSED not in text and REFUSAL_LOGGED not in text:
            problems.append(f"console: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    # The browser profile is the module's: without this, the next test's provider finds this
    # one's persisted relay subscriptions in the origin's storage and its restore logs
    # "Restore will override." as an error (seen once in CI).
    with suppress(PlaywrightError):  # a tab that crashed or left the origin has none to clear
        tab.evaluate(CLEAR_ORIGIN_STORAGE)
    tab.close()
    assert problems == []


@pytest.fixture
def wallets() -> Iterator[list[WalletProcess]]:
    """The wallet processes a test starts; each is stopped by its PID afterwards."""
    started: list[WalletProcess] = []
    yield started
    for wallet in started:
        wallet.stop()


def _pending(world: UiWorld) -> dict[str, Any]:
    deployment = world.waas.runtime.deployment
    envelope = {
        "capabilities": ["swap.execute"],
        "allowedDestinations": [deployment.router],
        "tokenLimits": [{"token": deployment.token("USDX"), "limit": "250000000"}],
        "chainId": 1,
        "expiresAt": int(time.time()) + 1800,
    }
    return world.owner.authorize_remote_access(
        world.backend_credential, world.wallet["walletId"], envelope
    )


def _owner_key(world: UiWorld) -> bytes:
    key = world.extra["owner_secret"]
    assert isinstance(key, bytes)
    return key


def _status(world: UiWorld, session_id: str) -> str:
    record = world.waas.runtime.store.sessions.get(session_id)
    assert record is not None
    return record.status


def _state(page: Page, state: str, timeout: float = 15_000) -> None:
    expect(page.locator(f"body[data-state={state}]")).to_have_count(1, timeout=timeout)


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"approve-walletconnect-{name}.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)


@dataclass
class Flow:
    """One pending session opened on the approval page and paired with a WalletConnect wallet;
    what the page requested (HTTP) and which WebSockets it opened."""

    pending: dict[str, Any]
    wallet: WalletProcess
    sent: list[Request]
    sockets: list[str]

    @property
    def session_id(self) -> str:
        return str(self.pending["sessionId"])

    def approvals(self) -> list[Request]:
        return [r for r in self.sent if r.url.endswith("/v1/Waas/ApproveSession")]


def _pair_through_walletconnect(
    page: Page,
    world: UiWorld,
    relay: LocalRelay,
    wallets: list[WalletProcess],
    *,
    key: bytes,
    signature: str = "sign",
    methods: list[str] | None = None,
) -> Flow:
    """Ask for a new session, open its approval link, click "Connect with WalletConnect", hand
    the link the page shows to a wallet holding ``key``, and wait until that wallet has
    approved the WalletConnect session for its account on chain 1."""
    pending = _pending(world)
    sent: list[Request] = []
    sockets: list[str] = []
    page.on("request", lambda r: sent.append(r))
    page.on("websocket", lambda ws: sockets.append(_url(ws)))
    page.goto(f"{world.url}/ui/approve?session={pending['sessionId']}")
    expect(page.locator("body:not([data-state=loading])")).to_have_count(1)
    if page.locator("body").get_attribute("data-state") == "pair":
        pair_in_page(page, world.owner.create_pairing_code()["pairingCode"], "walletconnect")
    _state(page, "ready")
    page.locator("#connect-wc").click()
    _state(page, "wc-pairing")
    uri = page.locator("#wc-uri").inner_text().strip()
    assert uri.startswith("wc:") and "symKey=" in uri, uri
    wallet = WalletProcess.start(relay, PROJECT_ID, uri, key, signature=signature, methods=methods)
    wallets.append(wallet)
    approved = wallet.wait_for("approved")
    address = address_from_secret(key).lower()
    assert [a.lower() for a in approved["accounts"]] == [f"eip155:1:{address}"]
    return Flow(pending, wallet, sent, sockets)


def _connected_as_owner(page: Page, world: UiWorld) -> None:
    owner = address_from_secret(_owner_key(world)).lower()
    _state(page, "connected", timeout=30_000)
    line = re.compile(re.escape(f"Connected: {owner} on Ethereum"), re.IGNORECASE)
    expect(page.locator("#wallet-line")).to_contain_text(line)
    expect(page.locator("#wc-pairing")).to_be_hidden()
    expect(page.locator("#sign")).to_be_enabled()


def _nothing_approved(world: UiWorld, flow: Flow) -> None:
    assert flow.approvals() == []
    assert _status(world, flow.session_id) == "pending_approval"


def test_the_owner_pairs_a_walletconnect_wallet_signs_and_the_session_is_approved(
    page: Page,
    world: UiWorld,
    relay: LocalRelay,
    wallets: list[WalletProcess],
    tmp_path: Path,
) -> None:
    key = _owner_key(world)
    flow = _pair_through_walletconnect(page, world, relay, wallets, key=key)
    _connected_as_owner(page, world)
    _shot(page, tmp_path, "connected")

    page.locator("#sign").click()
    _state(page, "approved", timeout=30_000)
    expect(page.locator("#status-line")).to_contain_text("Approved.")
    _shot(page, tmp_path, "approved")

    # The wallet really signed the grant's digest with the owner's key (viem, in node) ...
    digest = flow.pending["grantDigest"][2:]
    signed = flow.wallet.wait_for("signed")
    expected = "0x" + sign_digest(key, bytes.fromhex(digest)).hex()
    assert signed["signature"].lower() == expected
    # ... and the page sent exactly that signature to ApproveSession, once.
    (approval,) = flow.approvals()
    body = json.loads(approval.post_data or "")
    assert body == {"sessionId": flow.session_id, "signature": expected}
    deadline = time.monotonic() + 30
    while _status(world, flow.session_id) != "active":
        assert time.monotonic() < deadline, f"not installed: {_status(world, flow.session_id)}"
        time.sleep(0.1)

    # Everything went through the local relay, and the relay saw only ciphertext.
    methods = {e["method"] for e in relay.events() if e["event"] == "rpc"}
    assert {"wc_proposeSession", "wc_approveSession", "irn_publish"} <= methods
    published = relay.published()
    assert published
    owner = address_from_secret(key).lower()[2:].encode()
    for message in published:
        assert b"eth_signTypedData_v4" not in message and b"SessionWard" not in message
        assert owner not in message.lower() and digest.encode() not in message
    # Nothing else was contacted: the page's sockets went to the local relay, its requests to
    # SessionWard (the Verify iframe is refused by the page's policy before any request).
    assert flow.sockets and all(u.startswith(relay.url + "/?") for u in flow.sockets)
    assert [r.url for r in flow.sent if not r.url.startswith(world.url)] == []


def test_the_walletconnect_wallet_refusing_the_signature_leaves_the_session_pending(
    page: Page,
    world: UiWorld,
    relay: LocalRelay,
    wallets: list[WalletProcess],
    tmp_path: Path,
) -> None:
    key = _owner_key(world)
    flow = _pair_through_walletconnect(page, world, relay, wallets, key=key, signature="reject")
    _connected_as_owner(page, world)

    page.locator("#sign").click()
    _state(page, "rejected", timeout=30_000)
    flow.wallet.wait_for("rejected")
    status = page.locator("#status-line")
    expect(status).to_contain_text("You rejected the signature in your wallet.")
    expect(status).to_contain_text("Nothing was approved")
    expect(page.locator("#sign")).to_be_enabled()  # the owner may try again
    _shot(page, tmp_path, "rejected")
    _nothing_approved(world, flow)


def test_a_walletconnect_wallet_of_another_account_cannot_sign_and_nothing_is_sent(
    page: Page,
    world: UiWorld,
    relay: LocalRelay,
    wallets: list[WalletProcess],
    tmp_path: Path,
) -> None:
    stranger = secrets.token_bytes(32)
    flow = _pair_through_walletconnect(page, world, relay, wallets, key=stranger)

    _state(page, "wrong-account", timeout=30_000)
    status = page.locator("#status-line")
    expect(status).to_contain_text("is not this wallet's owner")
    expect(status).to_contain_text(_ignoring_case(address_from_secret(_owner_key(world))))
    expect(page.locator("#sign")).to_be_disabled()
    _shot(page, tmp_path, "wrong-account")
    assert "request" not in flow.wallet.events()  # the page asked the stranger for nothing
    _nothing_approved(world, flow)


def test_a_walletconnect_wallet_that_does_not_grant_typed_data_signing_is_never_asked(
    page: Page,
    world: UiWorld,
    relay: LocalRelay,
    wallets: list[WalletProcess],
    tmp_path: Path,
) -> None:
    """Without eth_signTypedData_v4 in the session the provider would route the request to
    WalletConnect's RPC node, not to the wallet: the page says so and asks nothing."""
    methods = ["personal_sign", "eth_sendTransaction"]
    flow = _pair_through_walletconnect(
        page, world, relay, wallets, key=_owner_key(world), methods=methods
    )

    _state(page, "wc-unsupported", timeout=30_000)
    status = page.locator("#status-line")
    expect(status).to_contain_text("does not allow signing typed data (eth_signTypedData_v4)")
    expect(status).to_contain_text("Nothing was signed or approved")
    expect(page.locator("#sign")).to_be_disabled()
    _shot(page, tmp_path, "unsupported")
    assert "request" not in flow.wallet.events()
    assert [r.url for r in flow.sent if not r.url.startswith(world.url)] == []
    _nothing_approved(world, flow)


def _url(ws: WebSocket) -> str:
    return ws.url


def _ignoring_case(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text), re.IGNORECASE)


# --- the relay itself, as a client sees it (Chromium's WebSocket, no page policy) ------------

_RELAY_PROBE = """
async ({ url }) => {
  const jwt = (iss) => "e30." + btoa(JSON.stringify({ iss })).replace(/=+$/, "") + ".c2ln";
  const open = (query) =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${url}/${query}`);
      const client = { ws, inbox: [], waiting: new Map(), next: 1 };
      ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        const answer = client.waiting.get(message.id);
        if (answer && !message.method) answer(message);
        else client.inbox.push(message);
      };
      ws.onopen = () => resolve(client);
      ws.onerror = () => resolve(null);
    });
  const call = (client, method, params) =>
    new Promise((resolve) => {
      const id = client.next++;
      client.waiting.set(id, resolve);
      client.ws.send(JSON.stringify({ id, jsonrpc: "2.0", method, params }));
    });
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const delivered = (client) =>
    client.inbox.filter((m) => m.method === "irn_subscription").map((m) => m.params.data);
  const topic = "ab".repeat(32);
  const a = await open(`?auth=${jwt("did:key:a")}`);
  const b = await open(`?auth=${jwt("did:key:b")}`);
  const unknown = await call(a, "irn_anything", {});
  const badTopic = await call(a, "irn_subscribe", { topic: "not-a-topic" });
  const subscribed = await call(a, "irn_subscribe", { topic });
  await call(a, "irn_publish", { topic, message: "opaque-1", ttl: 300, tag: 7 });
  await pause(200);
  const echoed = delivered(a);
  await call(b, "irn_subscribe", { topic });
  await pause(200);
  const mailbox = delivered(b);
  await call(b, "irn_publish", { topic, message: "opaque-2", ttl: 300, tag: 8 });
  await pause(200);
  const live = delivered(a);
  b.ws.close();
  const again = await open(`?auth=${jwt("did:key:b")}`);
  await call(again, "irn_subscribe", { topic });
  await call(a, "irn_publish", { topic: "cd".repeat(32), message: "short", ttl: 1, tag: 9 });
  await pause(1300);
  const late = await open(`?auth=${jwt("did:key:c")}`);
  await call(late, "irn_subscribe", { topic: "cd".repeat(32) });
  await pause(200);
  const anonymous = await open("");
  return {
    unknown: unknown.error.code,
    badTopic: badTopic.error.code,
    subscribed: subscribed.result,
    echoed,
    mailbox,
    live,
    reconnected: delivered(again),
    expired: delivered(late),
    anonymous: anonymous === null,
  };
}
"""


def test_the_local_relay_routes_by_topic_keeps_a_mailbox_and_refuses_what_it_cannot_route(
    browser: BrowserContext, relay: LocalRelay
) -> None:
    tab = browser.new_page()
    try:
        seen = tab.evaluate(_RELAY_PROBE, {"url": relay.url})
    finally:
        tab.close()
    assert (seen["unknown"], seen["badTopic"]) == (-32601, -32602)
    assert re.fullmatch(r"[0-9a-f]{64}", seen["subscribed"])
    assert seen["echoed"] == []  # a publisher never gets its own message back
    topic = "ab" * 32
    # A later subscriber finds the message in the topic's mailbox, as published (opaque).
    assert [(m["topic"], m["message"], m["tag"]) for m in seen["mailbox"]] == [
        (topic, "opaque-1", 7)
    ]
    assert [m["message"] for m in seen["live"]] == ["opaque-2"]
    assert seen["reconnected"] == []  # the same client (its JWT's issuer) is not served twice
    assert seen["expired"] == []  # a message past its ttl is gone
    assert seen["anonymous"]  # no JWT, no connection
