"""Running the service over HTTP with uvicorn: in the foreground (``sessionward serve``) or on a
background thread with a free loopback port (the demo, tests, benchmarks).

What is served is composed here (:func:`create_http_app`): the API of :mod:`sessionward.api`
with the review pages of :mod:`sessionward.ui` mounted at ``/ui`` (the API knows nothing of
the pages; the pages use the API's authentication and error shape).

Both use :func:`http_config`: uvloop's event loop and httptools' HTTP/1.1 parser, the C
implementations uvicorn supports, which cost about half as much per request as asyncio's own
loop and the pure-Python h11 (docs/benchmarks.md); the parser runs behind the wire limits and
timeouts of :mod:`sessionward.api.http_guard` (settings ``http_*``).
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from types import TracebackType
from typing import Final, Literal

import uvicorn
from starlette.types import ASGIApp

from sessionward.api.app import SessionWardApi, create_app
from sessionward.api.http_guard import HttpLimits, guarded_protocol
from sessionward.api.mounts import Mount
from sessionward.service.config import Settings
from sessionward.service.waas import Waas
from sessionward.ui import UiRoutes, is_ui_path

REVIEW_PAGES: Final = Mount(label="ui", owns=is_ui_path, routes=UiRoutes)
"""The owner and ops review pages, at ``/ui`` and below."""


def create_http_app(waas: Waas) -> SessionWardApi:
    """The ASGI app this module serves: the API over ``waas`` with :data:`REVIEW_PAGES`."""
    return create_app(waas, mounts=[REVIEW_PAGES])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def http_limits(settings: Settings) -> HttpLimits:
    """The HTTP edge's limits from the service's settings."""
    return HttpLimits(
        max_head_bytes=settings.http_max_head_bytes,
        max_headers=settings.http_max_headers,
        max_target_bytes=settings.http_max_target_bytes,
        head_timeout_s=settings.http_head_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        keep_alive_s=settings.http_keep_alive_s,
    )


def http_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str = "warning",
    lifespan: Literal["auto", "on", "off"] = "off",
    limits: HttpLimits | None = None,
) -> uvicorn.Config:
    """uvicorn's configuration for serving ``app``: uvloop, httptools behind the wire limits
    of :mod:`sessionward.api.http_guard` (``limits``, default :class:`HttpLimits`), no access
    log (requests are counted in ``/metrics`` instead)."""
    limits = limits or HttpLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan=lifespan,
        loop="uvloop",
        http=guarded_protocol(limits),
        timeout_keep_alive=limits.keep_alive_s,
    )


def freeze_start_up_heap() -> None:
    """Collect the garbage start-up left, then move every object still alive into the garbage
    collector's permanent generation, which its collections no longer walk.

    A serving process keeps a large heap built at start-up for its whole life (the in-process
    chain with its EVM state and compiled contracts, the catalog, connection pools). A
    collection of the oldest generation walks all of it: measured, one such collection stalled
    every request in flight for 39-58 ms, which was most of the Execute p99 (docs/benchmarks.md).
    Frozen objects are never freed, which is what a server's start-up objects are for anyway.

    For a process that serves until it exits (``sessionward serve``), called once; not for one
    that builds many services (the test suite), whose every call would keep what it had built
    so far for good.
    """
    gc.collect()
    gc.freeze()


def serve_forever(waas: Waas, *, host: str, port: int, workers_log_level: str = "info") -> None:
    """Serve until interrupted; the dispatcher runs in the background meanwhile."""
    app = create_http_app(waas)
    waas.start()
    try:
        config = http_config(
            app,
            host=host,
            port=port,
            log_level=workers_log_level,
            lifespan="auto",
            limits=http_limits(waas.runtime.settings),
        )
        freeze_start_up_heap()
        uvicorn.Server(config).run()
    finally:
        app.close()
        waas.stop()


class BackgroundServer:
    """``with BackgroundServer(waas) as url:`` serves on a free 127.0.0.1 port (bound when it
    is made, so no other process can take it first) until the block ends."""

    def __init__(
        self,
        waas: Waas,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        """``limits`` overrides the wire limits of ``waas``'s settings (tests use short
        timeouts)."""
        self._waas = waas
        self._host = host
        # Bound here and handed to uvicorn, not a port picked free and bound later: another
        # process could take a picked port in between.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((host, port or 0))
        self._port: int = self._socket.getsockname()[1]
        self._app = create_http_app(waas)
        self._server = uvicorn.Server(
            http_config(
                self._app,
                host=host,
                port=self._port,
                limits=limits or http_limits(waas.runtime.settings),
            )
        )
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="sessionward-http",
            daemon=True,
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
        self._socket.close()
        self._app.close()
        self._waas.stop()
