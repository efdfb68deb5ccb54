"""The TypeScript client (clients/typescript) against a live server: this test starts
SessionWard on a free port (embedded defaults, the in-process chain with the demo token and
router), builds the package with ``tsc`` and runs its ``node --test`` suite with the server's
URL in the environment: the cross-language vectors and the seed story (register, create a
wallet, authorize, check and sign the grant, approve, swap, refusal, device pairing, revoke,
refused after revocation, ops freeze and lift).

A small test-only helper (``SESSIONWARD_FUND_URL``) gives the new account demo USDX and the
router's allowance, as the demo does (funding is the chain's business, not the API's), and
receives the alert webhooks (``SESSIONWARD_WEBHOOKS_URL`` lists them raw) so the TypeScript
verifier checks a real delivery against the configured key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sessionward.chain.demo import fund_demo_wallet
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.server import BackgroundServer
from sessionward.service.config import OpsCredential, Settings
from sessionward.service.runtime import Runtime
from sessionward.service.waas import Waas
from sessionward.service.webhooks import WebhookSigningKey

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


class _Helper(ThreadingHTTPServer):
    """The test-only side door: ``POST /`` {account, ownerSecret} mints 1,000 USDX to the
    account and lets the router pull it; ``POST /webhook`` is the alert webhook's receiver
    (deliveries kept raw); ``GET /webhooks`` lists them as JSON for the TypeScript verifier."""

    runtime: Runtime | None = None
    deliveries: list[dict[str, object]]


def _helper_server() -> _Helper:
    class Handler(BaseHTTPRequestHandler):
        server: _Helper

        def do_GET(self) -> None:
            body = json.dumps(self.server.deliveries).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/webhook":
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.server.deliveries.append(
                    {"headers": headers, "body": base64.b64encode(raw).decode()}
                )
            else:
                self._fund(json.loads(raw))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _fund(self, request: dict[str, str]) -> None:
            rt = self.server.runtime
            assert rt is not None
            account = request["account"]
            deadline = time.monotonic() + 30
            while not rt.chain.get_code(account) and time.monotonic() < deadline:
                time.sleep(0.1)
            fund_demo_wallet(
                rt.chain,
                rt.deployment,
                rt.deployer,
                owner_secret=bytes.fromhex(request["ownerSecret"][2:]),
                account=account,
                usdx=1_000,
            )

        def log_message(self, *_args: object) -> None:
            pass

    server = _Helper(("127.0.0.1", 0), Handler)
    server.deliveries = []
    return server


@pytest.fixture(scope="module")
def built_package() -> Path:
    """``npm ci`` when node_modules is missing, then ``tsc`` (and ``tsc`` once more without
    Node's types: the package's sources use only what browsers have too)."""
    if not (PACKAGE / "node_modules" / ".bin" / "tsc").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PACKAGE, check=True
        )
    for config in ("tsconfig.json", "tsconfig.browser.json"):
        subprocess.run(
            [str(PACKAGE / "node_modules" / ".bin" / "tsc"), "-p", config], cwd=PACKAGE, check=True
        )
    return PACKAGE


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    ops_secret = secrets.token_bytes(32)
    ops = OpsCredential("ops-ts-1", "ecdsa-p256k-eip191", address_from_secret(ops_secret))
    helper = _helper_server()
    threading.Thread(target=helper.serve_forever, daemon=True).start()
    helper_url = f"http://127.0.0.1:{helper.server_address[1]}"
    webhook_key = base64.b64encode(secrets.token_bytes(32)).decode()
    settings = replace(
        Settings(data_dir=tmp_path_factory.mktemp("ts-live"), ops_credentials=(ops,)),
        webhook_urls=(f"{helper_url}/webhook",),
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SESSIONWARD_WEBHOOK_KEY", webhook_key)
        waas = Waas.from_settings(settings)
    rt = waas.runtime
    helper.runtime = rt
    try:
        with BackgroundServer(waas) as url:
            yield {
                "SESSIONWARD_URL": url,
                "SESSIONWARD_FUND_URL": f"{helper_url}/",
                "SESSIONWARD_WEBHOOKS_URL": f"{helper_url}/webhooks",
                "SESSIONWARD_WEBHOOK_PUBLIC_KEY": WebhookSigningKey.from_text(
                    webhook_key
                ).public_key_b64,
                "SESSIONWARD_ROUTER": rt.deployment.router,
                "SESSIONWARD_USDX": rt.deployment.token("USDX"),
                "SESSIONWARD_WETHX": rt.deployment.token("WETHX"),
                "SESSIONWARD_CHAIN_ID": str(rt.chain_id),
                "SESSIONWARD_OPS_SECRET": "0x" + ops_secret.hex(),
                "SESSIONWARD_OPS_ID": ops.id,
            }
    finally:
        helper.shutdown()
        waas.stop()


def test_the_typescript_client_runs_the_seed_story_against_a_live_server(
    built_package: Path, live: dict[str, str]
) -> None:
    tests = (built_package / "dist" / "test").glob("*.test.js")
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", *sorted(map(str, tests))],
        cwd=built_package,
        env={**os.environ, **live},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    summary = result.stdout[-3000:]
    assert "fail 0" in summary and "skipped 0" in summary, summary
    assert "the seed story runs against a live server" in result.stdout
