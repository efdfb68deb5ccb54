"""Running the service over HTTP with uvicorn: in the foreground (``sessionward serve``) or on a
background thread with a free loopback port (the demo, tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from sessionward.api.app import create_app
from sessionward.service.waas import Waas


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_forever(waas: Waas, *, host: str, port: int, workers_log_level: str = "info") -> None:
    """Serve until interrupted; the dispatcher runs in the background meanwhile."""
    app = create_app(waas)
    waas.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level=workers_log_level, access_log=False)
    finally:
        app.close()
        waas.stop()


class BackgroundServer:
    """``with BackgroundServer(waas) as url:`` serves on a free 127.0.0.1 port until the block ends."""

    def __init__(self, waas: Waas, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self._waas = waas
        self._host = host
        self._port = port or free_port(host)
        self._app = create_app(waas)
        config = uvicorn.Config(
            self._app,
            host=host,
            port=self._port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="sessionward-http", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def __enter__(self) -> str:
        self._waas.start()
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._app.close()
        self._waas.stop()
