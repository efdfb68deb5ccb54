"""Helpers of the review-page tests: Debian's Chromium under Playwright, P-256 keys as JWKs,
a service with a wallet, a backend and sessions, and screenshot checks.

A plain module (not a conftest) so that test modules can import it by name.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import matplotlib.image
import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, Page, Playwright, expect

from sessionward.chain.demo import fund_demo_wallet
from sessionward.crypto.p256 import generate_private_key, public_key_bytes
from sessionward.crypto.request_signature import (
    ALG_P256,
    P256RequestSigner,
    Secp256k1RequestSigner,
)
from sessionward.demo import SWAP, USDX
from sessionward.domain.abi import encode_call
from sessionward.sdk import BackendClient, OpsClient, OwnerClient
from sessionward.service.config import OpsCredential
from sessionward.service.waas import Waas

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: Final = {"width": 1280, "height": 900}
OPS_ID: Final = "ops-console"
OTHER_ROUTER: Final = "0xe592427a0aece92de3edee1f18e0157c05861564"
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def launch_chromium(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    """Debian's Chromium, headless, with a fresh profile in ``user_data_dir`` (never a
    downloaded browser)."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport=VIEWPORT,  # type: ignore[arg-type]
        device_scale_factor=1,
    )


# --- keys ------------------------------------------------------------------------------------


def _b64url(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


def private_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The private JWK of a P-256 key (what the page imports)."""
    numbers = key.private_numbers()
    public = numbers.public_numbers
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(public.x),
        "y": _b64url(public.y),
        "d": _b64url(numbers.private_value),
    }


def secret_forms(jwk: dict[str, str], key: ec.EllipticCurvePrivateKey) -> list[str]:
    """Every spelling of the private scalar a leak could take (JWK ``d``, hex, decimal, the
    base64url of the whole JWK as old connect links carried it)."""
    d = key.private_numbers().private_value
    whole = base64.urlsafe_b64encode(json.dumps(jwk).encode()).rstrip(b"=").decode()
    return [jwk["d"], f"{d:064x}", str(d), whole]


# --- the pages --------------------------------------------------------------------------------


def pair_in_page(page: Page, code: str, label: str = "test browser") -> None:
    """Type ``code`` into the owner page's pairing form and submit it."""
    form = page.locator("#pair-form")
    expect(form).to_be_visible()
    form.locator('input[name="pairingCode"]').fill(code)
    form.locator('input[name="label"]').fill(label)
    form.locator('button[type="submit"]').click()


def open_owner_page(page: Page, world: UiWorld) -> str:
    """Open ``/ui``; pair this browser with a fresh code from the owner if it has no device
    yet; wait until the sessions are shown. Returns the browser's device credential id."""
    page.goto(world.url + "/ui")
    paired = page.locator("body[data-loaded=true]")
    pairing = page.locator("#pair:not([hidden])")
    expect(paired.or_(pairing)).to_have_count(1)
    if pairing.count():
        pair_in_page(page, world.owner.create_pairing_code()["pairingCode"])
    expect(paired).to_have_count(1)
    device = page.locator("body").get_attribute("data-device")
    assert device
    return device


def connect_ops(page: Page, url: str, jwk: dict[str, str], credential_id: str = OPS_ID) -> None:
    """Open ``/ui/ops`` and paste the credential id and private JWK into its connect form."""
    page.goto(url + "/ui/ops")
    form = page.locator("#connect-form")
    expect(form).to_be_visible()
    form.locator('input[name="credentialId"]').fill(credential_id)
    form.locator('textarea[name="key"]').fill(json.dumps(jwk))
    form.locator('button[type="submit"]').click()


# --- the service ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """The running service and its base URL."""

    waas: Waas
    url: str


@dataclass
class UiWorld:
    """A running service with a wallet whose owner registered a P-256 device key by signing it
    (an SDK device: ``device_key`` stays in Python; browsers pair their own keys), a backend,
    and a session that has been used (one swap)."""

    url: str
    waas: Waas
    owner: OwnerClient
    backend: BackendClient
    wallet: dict[str, Any]
    backend_credential: str
    device_key: ec.EllipticCurvePrivateKey
    device_credential: str
    ops: OpsClient
    ops_key: ec.EllipticCurvePrivateKey
    used_session: str = ""
    idle_session: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device_jwk(self) -> dict[str, str]:
        return private_jwk(self.device_key)

    @property
    def ops_jwk(self) -> dict[str, str]:
        return private_jwk(self.ops_key)

    def grant(self, *, expires_in: int = 3600, max_uses: int = 10) -> str:
        """A new active session for the backend: swaps on the demo router, 500 USD in total."""
        router = self.waas.runtime.deployment.router
        envelope = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": 500,
            "maxUses": max_uses,
            "allowedDestinations": [router],
            "chainId": 1,
            "expiresAt": int(time.time()) + expires_in,
        }
        pending = self.owner.authorize_remote_access(
            self.backend_credential, self.wallet["walletId"], envelope
        )
        self.owner.approve_session(pending["sessionId"], self.owner.sign_grant(pending))
        session_id = str(pending["sessionId"])
        # Approved sessions are active once the relayer installed them and the chain shows it.
        store = self.waas.runtime.store
        _wait(lambda: getattr(store.sessions.get(session_id), "status", "") == "active", "install")
        return session_id

    def swap(self, session_id: str, amount_usdx: int, *, to: str | None = None) -> dict[str, Any]:
        """Prepare, execute and wait for a USDX → WETHX swap through the backend."""
        deployment = self.waas.runtime.deployment
        usdx, wethx = deployment.token("USDX"), deployment.token("WETHX")
        account = self.wallet["account"]
        data = encode_call(
            SWAP, (amount_usdx * USDX, 0, (usdx, wethx), account, int(time.time()) + 600)
        )
        quote = self.backend.prepare_transaction(
            self.wallet["walletId"], session_id, to or deployment.router, 0, data
        )
        done = self.backend.execute(quote["txnId"], idempotency_key=secrets.token_hex(8))
        return self.backend.wait_for_transaction(done["txnId"], timeout=30.0)


def ops_credential(key: ec.EllipticCurvePrivateKey) -> OpsCredential:
    return OpsCredential(OPS_ID, ALG_P256, "0x" + public_key_bytes(key).hex())


def build_world(url: str, waas: Waas, ops_key: ec.EllipticCurvePrivateKey) -> UiWorld:
    """Backend registered, wallet created and funded (the owner let the router pull USDX),
    a device key registered by the owner, one session used by a 100 USDX swap, one idle."""
    rt = waas.runtime
    backend = BackendClient(url, Secp256k1RequestSigner(secrets.token_bytes(32)))
    credential = backend.register("Acme Trading Agent", "https://agent.example", _in(86_400))
    owner_secret = secrets.token_bytes(32)
    owner = OwnerClient(url, owner_secret)
    wallet = owner.create_wallet()
    account = wallet["account"]
    _wait(lambda: bool(rt.chain.get_code(account)), "account deployment")
    fund_demo_wallet(
        rt.chain, rt.deployment, rt.deployer, owner_secret=owner_secret, account=account, usdx=1_000
    )
    device_key = generate_private_key()
    device = owner.register_device(ALG_P256, "0x" + public_key_bytes(device_key).hex())
    world = UiWorld(
        url=url,
        waas=waas,
        owner=owner,
        backend=backend,
        wallet=wallet,
        backend_credential=credential["credentialId"],
        device_key=device_key,
        device_credential=device["credentialId"],
        ops=OpsClient(url, P256RequestSigner(ops_key), OPS_ID),
        ops_key=ops_key,
    )
    world.extra["owner_secret"] = owner_secret  # the approval page's test wallet signs with it
    world.used_session = world.grant(expires_in=3600, max_uses=10)
    final = world.swap(world.used_session, 100)
    if final["status"] != "executed":
        raise RuntimeError(f"the setup swap ended {final['status']}: {final.get('failure')}")
    world.idle_session = world.grant(expires_in=2400, max_uses=4)
    return world


def _in(seconds: int) -> int:
    return int(time.time()) + seconds


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- screenshots ------------------------------------------------------------------------------

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def png_dimensions(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk; raises ValueError for anything not a PNG."""
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def distinct_colours(path: Path) -> int:
    """How many distinct RGB colours the decoded image has (1 means a blank picture)."""
    pixels = np.asarray(matplotlib.image.imread(str(path)))
    rgb = (pixels[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    return int(np.unique(rgb, axis=0).shape[0])


def check_screenshot(path: Path) -> tuple[int, int, int]:
    """Assert ``path`` is a PNG of the viewport's size that is not one colour; return
    (width, height, distinct colours)."""
    width, height = png_dimensions(path)
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    colours = distinct_colours(path)
    assert colours > 16, f"{path} looks blank ({colours} colours)"
    return width, height, colours


def high_s_twin(signature: bytes) -> bytes:
    """The other valid signature of the same message: (r, n - s)."""
    s = int.from_bytes(signature[32:], "big")
    return signature[:32] + (P256_ORDER - s).to_bytes(32, "big")
