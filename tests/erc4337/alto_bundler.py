"""The alto ERC-4337 bundler (npm ``@pimlico/alto``, pinned in package.json) for the tests:
started as the real ``node`` process (not the npm ``.bin`` wrapper, so the PID we hold is the
bundler's own), on a free 127.0.0.1 port, against an anvil node, stopped by that PID.

alto 0.0.20 listens on ``0.0.0.0`` with no option to change it; ``loopback_only.cjs`` is
preloaded (``node --require``) to move that listen to 127.0.0.1.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx

import anvil_node
from loopback_processes import free_port, listens_on, stop
from sessionward.chain.interface import DevChain
from sessionward.chain.user_operations import ENTRY_POINT_V07
from sessionward.crypto.secp256k1 import address_from_secret

HERE: Final = Path(__file__).resolve().parent
ALTO_CLI: Final = (
    anvil_node.REPO_ROOT / "node_modules" / "@pimlico" / "alto" / "esm" / "cli" / "alto.js"
)
LOOPBACK_PRELOAD: Final = HERE / "loopback_only.cjs"
R = TypeVar("R")


class AltoUnavailable(RuntimeError):
    """alto is not installed or did not start."""


class BundlerError(RuntimeError):
    """A JSON-RPC error answer of the bundler."""

    def __init__(self, code: int, message: str, data: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.data = code, message, data


@dataclass
class Alto:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def request(self, method: str, params: list[Any], *, timeout: float = 30) -> Any:
        response = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=timeout,
        )
        body = response.json()
        if "error" in body:
            error = body["error"]
            raise BundlerError(error.get("code", 0), str(error.get("message")), error.get("data"))
        return body["result"]

    def output(self) -> str:
        """alto's log so far (for failure messages)."""
        return self.log.read_text(errors="replace")[-4000:]


def _answers(url: str) -> bool:
    try:
        response = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
        )
        return response.status_code == 200 and "result" in response.json()
    except (httpx.HTTPError, ValueError):
        return False


@contextmanager
def running(
    *,
    rpc_url: str,
    entry_point: str,
    executor_secret: bytes,
    utility_secret: bytes,
    safe_mode: bool,
    extra: tuple[str, ...] = (),
) -> Iterator[Alto]:
    """``with running(...) as alto:`` a bundler for the block, stopped by its PID after.

    Three attempts, each on a new free port (one picked free can be taken before alto binds
    it, and alto then exits); raises :class:`AltoUnavailable` with alto's last words if none
    comes up (listening on its port and answering) within 90 s."""
    node = shutil.which("node")
    if node is None or not ALTO_CLI.exists():
        raise AltoUnavailable(f"node or alto is missing ({ALTO_CLI}): run `npm install`")
    last_words = ""
    for _attempt in range(3):  # a port picked free can be taken before alto binds it
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory(prefix="alto-") as workdir:
            log = Path(workdir) / "alto.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [node, "--require", str(LOOPBACK_PRELOAD), str(ALTO_CLI),
                     "--entrypoints", entry_point,
                     "--executor-private-keys", "0x" + executor_secret.hex(),
                     "--utility-private-key", "0x" + utility_secret.hex(),
                     "--rpc-url", rpc_url,
                     "--port", str(port),
                     "--safe-mode", "true" if safe_mode else "false",
                     "--min-bundle-interval", "50",
                     "--max-bundle-interval", "200",
                     "--block-time", "250",
                     "--utility-wallet-monitor", "false",
                     "--refilling-wallets", "false",
                     "--log-level", "warn",
                     *extra],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                )  # fmt: skip
            alto = Alto(process, url, log)
            try:
                if _started(alto, port):
                    yield alto
                    return
                last_words = alto.output()
            finally:
                stop(process, grace_s=10)
    raise AltoUnavailable(f"alto did not start: {last_words}")


def _started(alto: Alto, port: int, *, timeout_s: float = 90) -> bool:
    """Whether alto came up: it listens on ``port`` itself (not another worker's process on
    a port it took meanwhile, see :mod:`loopback_processes`) and answers there. False once it
    has exited or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while alto.process.poll() is None and time.monotonic() < deadline:
        if listens_on(alto.process, port) and _answers(alto.url):
            return True
        time.sleep(0.2)
    return False


@contextmanager
def funded(chain: DevChain, rpc_url: str, *, safe_mode: bool = False) -> Iterator[Alto]:
    """``with funded(chain, url) as alto:`` alto for the canonical EntryPoint v0.7 on the node
    at ``rpc_url``, its executor and utility keys fresh and given 100 ether each on ``chain``."""
    executor, utility = secrets.token_bytes(32), secrets.token_bytes(32)
    for secret in (executor, utility):
        chain.set_balance(address_from_secret(secret), 100 * 10**18)
    with running(
        rpc_url=rpc_url,
        entry_point=ENTRY_POINT_V07,
        executor_secret=executor,
        utility_secret=utility,
        safe_mode=safe_mode,
    ) as alto:
        yield alto


def mined(receipt_of: Callable[[str], R | None], op_hash: str, *, timeout_s: float = 30.0) -> R:
    """The receipt of ``op_hash`` as ``receipt_of`` reads it (None while not mined), waited for
    up to ``timeout_s``; an ``AssertionError`` if it never comes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        receipt = receipt_of(op_hash)
        if receipt is not None:
            return receipt
        time.sleep(0.05)
    raise AssertionError(f"{op_hash} was not mined in {timeout_s} s")
