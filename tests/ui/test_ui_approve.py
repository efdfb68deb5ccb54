"""The approval page ``/ui/approve?session=<id>`` (issue 18) in headless Chromium, with a browser
wallet whose signatures viem's local account makes in the page over the owner's real key
(:mod:`wallet_support`).

The page reads the pending session with this browser's paired owner device, checks the grant
document against the stored digest, shows the summary and every typed-data field with its
meaning, connects the wallet, checks account and chain, asks ``eth_signTypedData_v4``, recovers
the signer in the page and sends ``ApproveSession``. Each state is checked for its elements and
photographed: ready, connected, approved, user rejection, wrong account, wrong chain, expired
and a grant that does not match its digest.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect
from ui_browser_support import UiWorld, check_screenshot, pair_in_page
from wallet_support import install_wallet, wallet_requests

from sessionward.crypto.request_signature import ALG_P256, parse_signature_header
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest

DAY = 86_400


def _pending(world: UiWorld, *, expires_in: int = 1800) -> dict[str, Any]:
    """A session the owner has not approved yet: swaps on the demo router, at most 250 USDX a
    day, 500 USD in total, 10 uses, 5 per minute, 0.05 ETH of fees."""
    deployment = world.waas.runtime.deployment
    envelope = {
        "capabilities": ["swap.execute"],
        "maxValueUsd": 500,
        "maxUses": 10,
        "allowedDestinations": [deployment.router],
        "chainId": 1,
        "expiresAt": int(time.time()) + expires_in,
        "tokenLimits": [{"token": deployment.token("USDX"), "limit": "250000000", "period": DAY}],
        "rateLimit": {"count": 5, "interval": 60},
        "maxFeeWei": "50000000000000000",
    }
    return world.owner.authorize_remote_access(
        world.backend_credential, world.wallet["walletId"], envelope
    )


def _owner_key(world: UiWorld) -> bytes:
    key = world.extra["owner_secret"]
    assert isinstance(key, bytes)
    return key


def _open(page: Page, world: UiWorld, session_id: str) -> None:
    """Open the approval link; pair this browser first if it has no device yet."""
    page.goto(f"{world.url}/ui/approve?session={session_id}")
    settled = page.locator("body:not([data-state=loading])")
    expect(settled).to_have_count(1)
    if page.locator("body").get_attribute("data-state") == "pair":
        pair_in_page(page, world.owner.create_pairing_code()["pairingCode"], "approval test")
        # Paired and the request read (until then a navigation could cut the pairing short).
        expect(page.locator("body:not([data-state=pair]):not([data-state=loading])")).to_have_count(
            1
        )


def _state(page: Page, state: str) -> None:
    expect(page.locator(f"body[data-state={state}]")).to_have_count(1)


def _leaf_paths(types: dict[str, Any], type_: str, value: Any, path: str) -> list[str]:
    """Every leaf field of a typed-data value, as the page names them (empty arrays included)."""
    if type_ in types:
        return [
            p
            for field in types[type_]
            for p in _leaf_paths(
                types, field["type"], value[field["name"]], f"{path}.{field['name']}"
            )
        ]
    if type_.endswith("]"):
        inner = type_[: type_.rindex("[")]
        if not value:
            return [path]
        return [
            p
            for i, item in enumerate(value)
            for p in _leaf_paths(types, inner, item, f"{path}[{i}]")
        ]
    return [path]


def _meaning(page: Page, path: str) -> str:
    return page.locator(f'tr[data-field="{path}"] td.meaning').inner_text()


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"approve-{name}.png"
    page.screenshot(path=str(shot))
    check_screenshot(shot)


def _ignoring_case(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text), re.IGNORECASE)


def _approvals(sent: list[Request]) -> list[Request]:
    return [r for r in sent if r.url.endswith("/v1/Waas/ApproveSession")]


def _lifecycle(world: UiWorld, session_id: str) -> str:
    record = world.waas.runtime.store.sessions.get(session_id)
    assert record is not None
    return record.status


def test_the_owner_reads_every_field_signs_in_the_wallet_and_the_session_is_approved(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    pending = _pending(world)
    grant = pending["grant"]
    key = _owner_key(world)
    install_wallet(page, key)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r))
    _open(page, world, pending["sessionId"])
    _state(page, "ready")

    # The server's summary, line by line, and the facts the owner checks.
    lines = [p.inner_text() for p in page.locator("#summary p").all()]
    # The same consent text AuthorizeRemoteAccess answered (app name and URL quoted).
    assert lines == pending["summary"].split("\n")
    assert world.owner.get_session(pending["sessionId"])["summary"] == pending["summary"]
    expect(page.locator("#summary p.app-label")).to_contain_text(
        '"Acme Trading Agent" at "https://agent.example"'
    )
    facts = page.locator("#facts").inner_text()
    assert world.wallet["account"] in facts and "Ethereum (chain 1)" in facts
    assert address_from_secret(key).lower() in facts.lower()
    # Every field the wallet will sign, with its meaning next to it.
    paths = _leaf_paths(grant["types"], "EIP712Domain", grant["domain"], "domain")
    paths += _leaf_paths(grant["types"], grant["primaryType"], grant["message"], "message")
    rows = page.locator("#fields tr")
    assert [r.get_attribute("data-field") for r in rows.all()] == paths
    for row in rows.all():
        assert row.locator("td.meaning").inner_text().strip(), row.get_attribute("data-field")
    expect(page.locator("#digest")).to_have_text(pending["grantDigest"])
    message = grant["message"]
    assert _meaning(page, "domain.chainId") == "Valid only on Ethereum (chain 1)."
    assert "Demo Router" in _meaning(page, "message.envelope.permissions[0].target")
    assert "Demo USDX (USDX)" in _meaning(page, "message.envelope.tokenLimits[0].token")
    assert (
        _meaning(page, "message.envelope.tokenLimits[0].limit") == "At most 250 USDX out per day."
    )
    assert _meaning(page, "message.envelope.maxFeeWei") == (
        "At most 0.05 ETH in fees over the whole session."
    )
    assert _meaning(page, "message.envelope.maxUses") == "At most 10 executions."
    assert _meaning(page, "message.envelope.rateCount") == "At most 5 executions per 1 min."
    assert _meaning(page, "message.envelope.valueLimit").startswith("No native coin may leave")
    assert "500 USD" in _meaning(page, "message.envelope.maxValueUsd")
    assert "(in " in _meaning(page, "message.envelope.expiresAt")
    recipient = "message.envelope.permissions[0].rules[0].values[0]"
    assert _meaning(page, recipient).endswith("your wallet.")
    assert message["account"] == grant["domain"]["verifyingContract"]
    expect(page.locator("#sign")).to_be_disabled()
    _shot(page, tmp_path, "ready")

    page.locator("#connect").click()
    _state(page, "connected")
    expect(page.locator("#sign")).to_be_enabled()
    expect(page.locator("#wallet-line")).to_contain_text(_ignoring_case(address_from_secret(key)))
    _shot(page, tmp_path, "connected")

    page.locator("#sign").click()
    _state(page, "approved")
    expect(page.locator("#status-line")).to_contain_text("Approved.")
    assert wallet_requests(page).count("eth_signTypedData_v4") == 1
    (approval,) = _approvals(sent)
    header = parse_signature_header(approval.headers["oms-wallet-signature"])
    assert header.alg == ALG_P256 and header.cred.startswith("cred_")  # the paired device
    body = json.loads(approval.post_data or "")
    expected = sign_digest(key, bytes.fromhex(pending["grantDigest"][2:]))
    assert body == {"sessionId": pending["sessionId"], "signature": "0x" + expected.hex()}
    assert _lifecycle(world, pending["sessionId"]) in ("installing", "active")
    # Installed on chain from the wallet's signature, the backend's first swap executes.
    deadline = time.monotonic() + 30
    while _lifecycle(world, pending["sessionId"]) != "active":
        assert time.monotonic() < deadline, "the session was not installed"
        time.sleep(0.1)
    swap = world.swap(pending["sessionId"], 10)
    assert swap["status"] == "executed", swap
    after = world.owner.get_session(pending["sessionId"])
    assert "grant" not in after  # shown only while pending
    # No key in any URL the browser loaded.
    for request in sent:
        assert key.hex() not in request.url and world.device_jwk["d"] not in request.url
    _shot(page, tmp_path, "approved")


def test_a_user_rejection_in_the_wallet_sends_nothing_and_says_so(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    pending = _pending(world)
    install_wallet(page, _owner_key(world), reject=True)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r))
    _open(page, world, pending["sessionId"])
    _state(page, "ready")
    page.locator("#connect").click()
    _state(page, "connected")
    page.locator("#sign").click()

    _state(page, "rejected")
    expect(page.locator("#status-line")).to_contain_text(
        "You rejected the signature in your wallet"
    )
    expect(page.locator("#status-line")).to_contain_text("Nothing was approved")
    expect(page.locator("#sign")).to_be_enabled()  # the owner may change their mind
    assert wallet_requests(page).count("eth_signTypedData_v4") == 1
    assert _approvals(sent) == []
    assert _lifecycle(world, pending["sessionId"]) == "pending_approval"
    _shot(page, tmp_path, "rejected")


def test_a_wallet_on_another_account_is_not_asked_to_sign(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    pending = _pending(world)
    stranger = secrets.token_bytes(32)
    install_wallet(page, stranger)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r))
    _open(page, world, pending["sessionId"])
    _state(page, "ready")
    page.locator("#connect").click()

    _state(page, "wrong-account")
    line = page.locator("#status-line")
    expect(line).to_contain_text(
        _ignoring_case(f"The connected account {address_from_secret(stranger)}")
    )
    expect(line).to_contain_text("is not this wallet's owner")
    expect(line).to_contain_text(pending_owner(world, pending["sessionId"]))
    expect(page.locator("#sign")).to_be_disabled()
    assert "eth_signTypedData_v4" not in wallet_requests(page)
    assert _approvals(sent) == []
    assert _lifecycle(world, pending["sessionId"]) == "pending_approval"
    _shot(page, tmp_path, "wrong-account")


def pending_owner(world: UiWorld, session_id: str) -> str:
    owner = world.owner.get_session(session_id)["owner"]
    assert isinstance(owner, str)
    return owner


def test_a_wallet_on_another_chain_is_asked_to_switch_then_signs(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    pending = _pending(world)
    install_wallet(page, _owner_key(world), chain_id=8453)
    _open(page, world, pending["sessionId"])
    _state(page, "ready")
    page.locator("#connect").click()

    _state(page, "wrong-chain")
    line = page.locator("#status-line")
    expect(line).to_contain_text("Your wallet is on Base (chain 8453)")
    expect(line).to_contain_text("this wallet lives on Ethereum (chain 1)")
    expect(page.locator("#sign")).to_be_disabled()
    expect(page.locator("#switch-chain")).to_be_visible()
    assert "eth_signTypedData_v4" not in wallet_requests(page)
    _shot(page, tmp_path, "wrong-chain")

    page.locator("#switch-chain").click()
    _state(page, "connected")
    page.locator("#sign").click()
    _state(page, "approved")
    assert wallet_requests(page).count("wallet_switchEthereumChain") == 1
    assert _lifecycle(world, pending["sessionId"]) in ("installing", "active")


def test_an_expired_request_cannot_be_signed(world: UiWorld, page: Page, tmp_path: Path) -> None:
    pending = _pending(world, expires_in=8)
    install_wallet(page, _owner_key(world))
    _open(page, world, pending["sessionId"])
    _state(page, "ready")
    page.locator("#connect").click()
    _state(page, "connected")

    # The window closes while the page is open: the page turns to expired by itself.
    expect(page.locator("body[data-state=expired]")).to_have_count(1, timeout=20_000)
    expect(page.locator("#status-line")).to_contain_text("This request expired at")
    expect(page.locator("#status-line")).to_contain_text("Ask the app to request access again")
    expect(page.locator("#sign")).to_be_disabled()
    assert "eth_signTypedData_v4" not in wallet_requests(page)
    _shot(page, tmp_path, "expired")

    # Opened after the window closed: expired at once, nothing to sign.
    again = page.context.new_page()
    try:
        install_wallet(again, _owner_key(world))
        _open(again, world, pending["sessionId"])
        _state(again, "expired")
        expect(again.locator("#sign")).to_be_disabled()
    finally:
        again.close()
    assert _lifecycle(world, pending["sessionId"]) == "pending_approval"


def test_a_grant_that_does_not_hash_to_the_stored_digest_is_never_shown_to_the_wallet(
    world: UiWorld, page: Page, tmp_path: Path
) -> None:
    pending = _pending(world)
    install_wallet(page, _owner_key(world))

    def widen(route: Route) -> None:
        """A man in the middle raising maxUses in the document but not the digest."""
        response = route.fetch()
        doc = response.json()
        if "grant" in doc:
            doc["grant"]["message"]["envelope"]["maxUses"] = "1000000"
        route.fulfill(response=response, json=doc)

    page.route("**/v1/Waas/GetSession", widen)
    _open(page, world, pending["sessionId"])
    _state(page, "mismatch")
    expect(page.locator("#status-line")).to_contain_text(
        "its digest is not the one SessionWard stored"
    )
    expect(page.locator("#wallet")).to_be_hidden()
    expect(page.locator("#grant")).to_be_hidden()
    assert wallet_requests(page) == []
    _shot(page, tmp_path, "mismatch")


def test_the_review_page_links_a_pending_session_to_its_approval_page(
    world: UiWorld, page: Page
) -> None:
    pending = _pending(world)
    install_wallet(page, _owner_key(world))
    _open(page, world, pending["sessionId"])  # pairs this browser if it is not yet
    page.goto(world.url + "/ui")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    more = page.locator("#load-more")
    card = page.locator(f'article.session[data-session-id="{pending["sessionId"]}"]')
    while not card.count() and more.is_visible():
        more.click()
        page.wait_for_timeout(200)
    link = card.locator("a.approve-link")
    expect(link).to_have_text("Review and approve with your wallet")
    for other in (world.used_session, world.idle_session):  # active ones have no such link
        expect(page.locator(f'article[data-session-id="{other}"] a.approve-link')).to_have_count(0)
    link.click()
    _state(page, "ready")
    assert page.url == f"{world.url}/ui/approve?session={pending['sessionId']}"


@pytest.mark.parametrize("link", ["", "?session=", "?session=%3Cscript%3E"])
def test_a_link_without_a_session_id_says_what_is_missing(
    world: UiWorld, page: Page, link: str
) -> None:
    page.goto(f"{world.url}/ui/approve{link}")
    _state(page, "error")
    expect(page.locator("#status-line")).to_contain_text("This link names no request")
