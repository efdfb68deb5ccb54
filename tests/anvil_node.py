"""The anvil node for tests: started on 127.0.0.1 (Prague rules), stopped by its PID.

One launcher for every room that needs a JSON-RPC node (tests/chain, tests/onchain,
tests/multinode). The binary comes from npm (``@foundry-rs/anvil`` in package.json, installed
by ``./run test``); if it is missing, the tests that need it fail with how to get it.

It also holds the bodies of the ``anvil`` and ``chain`` fixtures that tests/chain and
tests/onchain both declare (test folders are not packages, so one conftest cannot import the
other's): each conftest keeps its own fixture, with its own scope, and delegates here.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx
import pytest

from loopback_processes import free_port, listens_on, stop
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.interface import DevChain
from sessionward.chain.rpc import RpcChain

REPO_ROOT = Path(__file__).resolve().parents[1]


def _anvil_binary() -> Path:
    """anvil itself, from npm's platform package (``@foundry-rs/anvil-<os>-<arch>``), not
    ``node_modules/.bin/anvil``: that is a Node.js wrapper which spawns the binary, so the PID
    we would hold, check and stop would be the wrapper's, not the node's."""
    found = sorted((REPO_ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))
    return found[0] if found else REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-<platform>"


ANVIL_BIN: Final = _anvil_binary()


# The ``params`` of a ``chain`` fixture: every behavioural test runs on the in-process chain and,
# marked ``anvil`` (so ``-m "not anvil"`` can leave the node out), on anvil.
BACKENDS: Final = ("embedded", pytest.param("anvil", marks=pytest.mark.anvil))


class AnvilUnavailable(RuntimeError):
    """anvil is not installed or did not start."""


def _answers(url: str, chain_id: int) -> bool:
    try:
        response = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
        )
        return response.status_code == 200 and response.json().get("result") == hex(chain_id)
    except (httpx.HTTPError, ValueError):
        return False


def start(
    chain_id: int, *, block_time: int | None = None, options: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil with ``chain_id`` on a free loopback port; ``(process, url)``. With
    ``block_time`` (seconds) it mines a block every so often instead of one per transaction;
    ``options``: more of anvil's command-line options.

    It counts as started once it listens on the port itself and answers there
    (:func:`loopback_processes.listens_on`: another worker's anvil may answer on a port picked
    free). Three attempts (a port picked free can be taken before anvil binds it); raises
    :class:`AnvilUnavailable` with anvil's last words otherwise.
    """
    if not ANVIL_BIN.exists():
        raise AnvilUnavailable(
            f"the anvil node is missing ({ANVIL_BIN}): run `npm install` in {REPO_ROOT}"
        )
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--hardfork", "prague",
                 "--chain-id", str(chain_id), "--silent",
                 *(["--block-time", str(block_time)] if block_time else []), *options],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )  # fmt: skip
            deadline = time.monotonic() + 20
            while process.poll() is None and time.monotonic() < deadline:
                if listens_on(process, port) and _answers(url, chain_id):
                    return process, url
                time.sleep(0.05)
            stderr.seek(0)
            last_error = stderr.read().decode(errors="replace")[-2000:]
            stop(process)
    raise AnvilUnavailable(f"anvil did not start: {last_error}")


@contextmanager
def running(chain_id: int, *, block_time: int | None = None) -> Iterator[str]:
    """``with running(31337) as url:`` an anvil node for the block, stopped after."""
    process, url = start(chain_id, block_time=block_time)
    try:
        yield url
    finally:
        stop(process)


def session_node(chain_id: int) -> Iterator[str]:
    """The body of a session-scoped ``anvil`` fixture: yield the URL of a node started with
    ``chain_id``, stop it at teardown.

    If anvil is missing or does not start, the test FAILS (it does not skip) with anvil's
    message: a room that needs the node must not pass silently without it.
    """
    try:
        process, url = start(chain_id)
    except AnvilUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        stop(process)


def dev_chain(request: pytest.FixtureRequest, chain_id: int) -> Iterator[DevChain]:
    """The body of a ``chain`` fixture parametrized over :data:`BACKENDS`: a fresh
    :class:`EmbeddedChain`, or an :class:`RpcChain` on the requesting room's session ``anvil``
    fixture (closed at teardown)."""
    if request.param == "embedded":
        yield EmbeddedChain(chain_id=chain_id)
        return
    with RpcChain(request.getfixturevalue("anvil")) as rpc:
        yield rpc
