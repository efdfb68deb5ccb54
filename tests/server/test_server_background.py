"""The background server (the demo's, the tests', the benches'): its port is its own from the
moment it is made, so no other process can take it before uvicorn listens."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from sessionward.server import BackgroundServer
from sessionward.service.config import Settings
from sessionward.service.waas import Waas


def test_the_port_is_held_from_the_moment_the_server_is_made(tmp_path: Path) -> None:
    server = BackgroundServer(Waas.from_settings(Settings(data_dir=tmp_path)))
    port = int(server.url.rsplit(":", 1)[1])
    with socket.socket() as intruder, pytest.raises(OSError):
        intruder.bind(("127.0.0.1", port))  # another process, a moment later
    with server as url:
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
