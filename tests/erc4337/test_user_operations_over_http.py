"""Execute with ``submission: "userop"`` over HTTP: its planning (the bundler's estimate, the
fees, a sponsorship) runs before the unit of work that signs, never inside it, so a slow
bundler holds up that one request, not the database. Measured before the fix by another
session: a revocation waited 1.79 s behind a userop Execute whose estimate took 2 s (12 ms
alone), because the whole request ran as one unit holding SQLite's write lock.

Real parts: anvil, the canonical EntryPoint v0.7, alto (behind a proxy that delays its
``eth_estimateUserOperationGas``: the fault this test injects), the server on loopback.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from alto_bundler import funded
from erc4337_support import ENTRY_POINT_V07, ONE_ETH, Stage

from networks.networks_support import Backend, Networks
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import BackendClient
from sessionward.server import BackgroundServer
from sessionward.service.callers import Caller
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

pytestmark = pytest.mark.anvil

ESTIMATE_DELAY_S = 2.0
SWAP = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"


class SlowEstimates:
    """A JSON-RPC proxy in front of the bundler that answers ``eth_estimateUserOperationGas``
    only after ``ESTIMATE_DELAY_S`` (every other request at once)."""

    def __init__(self, target: str) -> None:
        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if b"eth_estimateUserOperationGas" in body:
                    time.sleep(ESTIMATE_DELAY_S)
                answer = httpx.post(
                    target, content=body, headers={"content-type": "application/json"}, timeout=60
                )
                self.send_response(answer.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FeeBudgetWorld(Networks):
    fee_budget = 10**17  # the account pays its operations


@pytest.fixture(scope="module")
def served(
    stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FeeBudgetWorld, str]]:
    data_dir = tmp_path_factory.mktemp("userop-http")
    with funded(stage.chain, anvil) as alto:
        proxy = SlowEstimates(alto.url)
        try:
            settings = Settings.load(
                {
                    "SESSIONWARD_DATA_DIR": str(data_dir),
                    "SESSIONWARD_RPC_URL": anvil,
                    "SESSIONWARD_ENTRY_POINT": ENTRY_POINT_V07,
                    "SESSIONWARD_BUNDLER_URL": proxy.url,
                }
            )
            waas = Waas.from_settings(replace(settings, relayer_poll_s=0.05))
            world = FeeBudgetWorld(waas)
            try:
                with BackgroundServer(waas) as url:
                    yield world, url
            finally:
                waas.stop()
        finally:
            proxy.close()


def test_a_slow_bundler_does_not_hold_the_database_during_a_userop_execute(
    served: tuple[FeeBudgetWorld, str],
) -> None:
    world, url = served
    network = world.rt.network_name
    backend = BackendClient(url, Secp256k1RequestSigner(secrets.token_bytes(32)))
    backend.register("Acme Agent", "https://acme.example", int(time.time()) + 86_400)
    assert backend.credential_id is not None
    wallet = world.wallet(network, secrets.token_bytes(32), secrets.token_bytes(32))
    world.chain(network).set_balance(wallet.account, ONE_ETH)
    agent = Backend(backend.credential_id, Caller(backend.credential_id, "backend"))
    sessions = [world.session(wallet, agent) for _ in range(2)]
    quote = world.prepare(sessions[0], 1)

    answered: dict[str, float] = {}

    def execute() -> None:
        backend.execute(quote["txnId"], submission="userop")
        answered["execute"] = time.monotonic()

    running = threading.Thread(target=execute)
    running.start()
    time.sleep(0.3)  # the Execute is now waiting for the bundler's estimate
    world.waas.revocations.revoke_access(
        wallet.caller,
        wallet_id=wallet.wallet_id,
        credential_id=backend.credential_id,
        session_id=sessions[1].session_id,
    )
    revoked = time.monotonic()
    running.join(timeout=60)
    assert "execute" in answered, "the userop Execute did not answer"
    # The revocation (a write) committed while the Execute still waited for the bundler.
    assert revoked < answered["execute"]
    record = world.rt.store.sessions.get(sessions[1].session_id)
    assert record is not None and record.status in ("revoking", "revoked")
    status = backend.wait_for_transaction(quote["txnId"], timeout=60)
    assert status["status"] == "executed", status
    backend.close()
