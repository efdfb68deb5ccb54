"""The processes the tests start count as started only when they themselves listen on their
port: another worker's process that took the port first, and answers there as ours would, is
never handed to a test (:mod:`loopback_processes`, :func:`anvil_node.start`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import anvil_node
from loopback_processes import free_port, listens_on, stop

CHAIN_ID = 31337


@contextmanager
def impostor_node(chain_id: int) -> Iterator[int]:
    """Another worker's JSON-RPC node, in this process: it answers ``eth_chainId`` with
    ``chain_id`` on a loopback port; that port."""

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": hex(chain_id)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process of ours that listens on nothing."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        stop(process)


def test_a_port_answered_by_another_process_is_not_ours() -> None:
    with impostor_node(CHAIN_ID) as port, sleeper() as ours:
        reply = httpx.post(f"http://127.0.0.1:{port}", json={"method": "eth_chainId"})
        assert reply.json()["result"] == hex(CHAIN_ID)  # it answers as a node would
        assert not listens_on(ours, port)


def test_a_process_listening_on_its_port_is_ours_until_it_exits() -> None:
    port = free_port()
    script = (
        "import socket, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(__import__('sys').argv[1])))\n"
        "s.listen(); print('up', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(port)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"up\n"
        assert listens_on(process, port)
        assert not listens_on(process, free_port())
    finally:
        stop(process)
    assert not listens_on(process, port)


@pytest.mark.anvil
def test_anvil_is_not_taken_for_started_when_another_node_answers_on_its_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first port picked free is taken meanwhile by another node answering with the same
    chain id: the start must not return that URL, but try again on a new port."""
    with impostor_node(CHAIN_ID) as taken:
        picks = iter([taken])
        monkeypatch.setattr(anvil_node, "free_port", lambda: next(picks, None) or free_port())
        process, url = anvil_node.start(CHAIN_ID)
        try:
            port = int(url.rsplit(":", 1)[1])
            assert port != taken
            assert listens_on(process, port)
        finally:
            anvil_node.stop(process)


@pytest.mark.anvil
def test_the_anvil_we_hold_is_the_node_itself_not_npms_wrapper() -> None:
    """Stopped by our PID, the node is gone: no wrapper's child lives on."""
    process, url = anvil_node.start(CHAIN_ID)
    port = int(url.rsplit(":", 1)[1])
    try:
        assert Path(os.readlink(f"/proc/{process.pid}/exe")).name == "anvil"
        assert listens_on(process, port)
    finally:
        anvil_node.stop(process)
    with pytest.raises(httpx.HTTPError):
        httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
