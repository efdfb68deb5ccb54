"""Fixtures of the on-chain tests: an anvil node per test session (started on 127.0.0.1 with
the Prague hardfork, stopped by its PID) and a ``chain`` fixture that runs a behavioural test
on both the in-process chain and anvil.

The anvil binary comes from npm (``@foundry-rs/anvil`` in package.json). If it is missing the
tests that need it FAIL (they do not skip): run ``npm install`` in the repository root. The fixture
is a copy of tests/chain's (test folders are not packages, so it cannot be imported).
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.interface import DevChain
from sessionward.chain.rpc import RpcChain

CHAIN_ID = 31337
REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN = REPO_ROOT / "node_modules" / ".bin" / "anvil"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        response = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
        )
        return response.status_code == 200 and response.json().get("result") == hex(CHAIN_ID)
    except (httpx.HTTPError, ValueError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop our own anvil by its PID: terminate, then kill if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def anvil() -> Iterator[str]:
    """Start ``anvil`` (Prague, chain id 31337) on a free local port; yield its URL."""
    if not ANVIL_BIN.exists():
        pytest.fail(
            f"the anvil node is missing ({ANVIL_BIN}): run `npm install` in {REPO_ROOT}",
            pytrace=False,
        )
    last_error = ""
    for _attempt in range(3):  # a port picked free can be taken before anvil binds it
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [
                    str(ANVIL_BIN),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--hardfork",
                    "prague",
                    "--chain-id",
                    str(CHAIN_ID),
                    "--silent",
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                deadline = time.monotonic() + 20
                while process.poll() is None and time.monotonic() < deadline:
                    if _answers(url):
                        break
                    time.sleep(0.05)
                else:
                    stderr.seek(0)
                    last_error = stderr.read().decode(errors="replace")[-2000:]
                    _stop(process)
                    continue
                yield url
                return
            finally:
                _stop(process)
    pytest.fail(f"anvil did not start: {last_error}", pytrace=False)


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[DevChain]:
    """The same behavioural tests on the in-process chain and on anvil (one chain per module
    and backend: the tests deploy their own accounts and never depend on each other)."""
    if request.param == "embedded":
        yield EmbeddedChain(chain_id=CHAIN_ID)
        return
    url = request.getfixturevalue("anvil")
    rpc = RpcChain(url)
    try:
        yield rpc
    finally:
        rpc.close()
