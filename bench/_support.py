"""What the benchmarks share: the HTTP/1.1 load client's pieces, request signing, the
SessionWard server and the floor server in spawned children, and the set-up of sessions over
HTTP (``bench/execute.py``, ``bench/session_call.py``).

The server start-up lives here once: :func:`serve_sessionward` is the child every benchmark of
the served API runs, on SQLite or on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    from sessionward.api.unit_writer import UnitWriter

EXECUTE_PATH: Final = "/v1/Waas/Execute"
PREPARE_PATH: Final = "/v1/Waas/PrepareEthereumTransaction"
USDX: Final = 10**6
SWAP_SIGNATURE: Final = (
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,"
    "address to,uint256 deadline)"
)


# --- the HTTP client (load process) -------------------------------------------------------


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 keep-alive POST as bytes on the wire."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


def host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


SIGN_AHEAD_MS: Final = 50_000
"""Requests are signed before the clock starts, with their timestamp this far ahead of the
client's clock: inside the service's ±60 s window, so a signed batch stays valid for about
110 s instead of 60 (the server's work per request is the same)."""


class RequestMaker:
    """Signs requests as one credential with unique, increasing nonces, for sending soon
    (see :data:`SIGN_AHEAD_MS`)."""

    def __init__(self, url: str, secret: bytes, credential_id: str) -> None:
        from sessionward.crypto.request_signature import Secp256k1RequestSigner
        from sessionward.sdk import NonceCounter

        self._host, self._port = host_port(url)
        self._signer = Secp256k1RequestSigner(secret)
        self._credential_id = credential_id
        self._nonces = NonceCounter()

    def make(self, path: str, document: dict[str, Any], *, idempotent: bool) -> bytes:
        from sessionward.crypto.request_signature import SIGNATURE_HEADER, sign_request

        body = orjson.dumps(document)
        headers = {
            SIGNATURE_HEADER: sign_request(
                self._signer,
                self._credential_id,
                "POST",
                path,
                body,
                self._nonces.next(),
                time.time_ns() // 1_000_000 + SIGN_AHEAD_MS,
            )
        }
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return http_request(self._host, self._port, path, body, headers)


@dataclass(frozen=True)
class Setup:
    """What the load process needs: the credential (secret: a throwaway key of this run) and
    the session to prepare calls in."""

    url: str
    secret: bytes
    credential_id: str
    wallet_id: str
    session_id: str
    router: str
    swap_data: str
    owner_secret: bytes
    owner_credential_id: str


# --- the servers (server process) ----------------------------------------------------------


def serve_sessionward(
    pipe: Connection,
    data_dir: str,
    *,
    database_url: str | None = None,
    schema: str | None = None,
    run_relayer: bool = False,
    switch_ms: float = 0.0,
    max_running_units: int | None = None,
) -> None:
    """Child: SessionWard on embedded defaults (the in-process chain, the local vault; the
    database SQLite in ``data_dir`` unless ``database_url``, with ``schema`` on PostgreSQL),
    served by :class:`sessionward.server.BackgroundServer` (uvicorn and the app of
    ``sessionward serve``) until told ``"stop"``. One credential at full speed: the per-signer
    rate limit (on by default) is off.

    Sends ``("ready", url, pid, deployment)``. While the relayer is off, the parent may send
    ``"settle"``: three dispatcher rounds (wallets deployed, sessions installed on chain, as
    sessions must be before they are active), answered ``("settled",)``; and
    ``("service work", setups, calls)``: :func:`service_work` in this process, answered
    ``("service work", seconds of CPU per call)``.

    Experiments (off by default, i.e. the production set-up): ``switch_ms`` sets the
    interpreter's GIL switch interval (default 5 ms); ``max_running_units`` the units of work
    (Execute, Prepare) that run at once in worker threads (``fair_max_running_units``; on
    PostgreSQL every one holds a thread and a connection).
    """
    import logging

    from sessionward.server import BackgroundServer, freeze_start_up_heap
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    logging.basicConfig(level=logging.WARNING)
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    if switch_ms:
        sys.setswitchinterval(switch_ms / 1000)
    settings = Settings(
        data_dir=Path(data_dir),
        database_url=database_url,
        database_schema=schema,
        run_relayer=run_relayer,
        rate_limit_enabled=False,
        **({} if max_running_units is None else {"fair_max_running_units": max_running_units}),
    )
    waas = Waas.from_settings(settings)
    deployment = asdict(waas.runtime.deployment)
    with BackgroundServer(waas) as url:
        freeze_start_up_heap()  # as `sessionward serve` does
        pipe.send(("ready", url, os.getpid(), deployment))
        while True:
            message = pipe.recv()
            if message == "settle":
                for _ in range(3):
                    waas.dispatcher.step()
                pipe.send(("settled",))
            elif isinstance(message, tuple) and message[0] == "service work":
                profile_to = os.environ.get("SESSIONWARD_BENCH_PROFILE")
                if profile_to:  # a cProfile of the service work in thread CPU time, where it goes
                    import cProfile

                    with cProfile.Profile(time.thread_time) as profile:
                        spent = service_work(waas, message[1], message[2])
                    profile.dump_stats(f"{profile_to}.{os.getpid()}")
                else:
                    spent = service_work(waas, message[1], message[2])
                pipe.send(("service work", spent))
            else:
                return


def service_work(
    waas: Any, setups: Sequence[Setup], calls: int, *, group: int = 16
) -> tuple[float, float]:
    """CPU seconds per session call of the server's own work for it, without HTTP: signed
    Prepare and Execute requests (those of the load: same sessions, bodies and headers) handed
    to the request handler of the app ``sessionward serve`` runs, as units of work committed
    in groups of ``group`` (as the unit writer runs them under load). Only the thread's CPU
    inside the units counts: not the signing (the client's), not the HTTP stack, the event
    loop or a thread hand-off. What bounds the session-call rate of one interpreter from
    below: its units run one after another on one thread.

    Answers (CPU seconds, wall seconds) per call. The wall time is the units' on that one
    thread, the machine otherwise quiet: their CPU, and on PostgreSQL their waits for the
    server's answers too (one round trip each), so 1 / it bounds one node's rate."""
    from starlette.datastructures import Headers

    from sessionward.api.methods import METHODS
    from sessionward.server import create_http_app

    app = create_http_app(waas)
    makers = [RequestMaker(s.url, s.secret, s.credential_id) for s in setups]

    def request(c: int, path: str, document: dict[str, Any], *, idempotent: bool) -> Any:
        raw = makers[c].make(path, document, idempotent=idempotent)
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = Headers(
            raw=[(k.strip().lower().encode(), v.strip().encode())
                 for k, _, v in (line.partition(":") for line in lines)]
        )  # fmt: skip
        method = METHODS[path.rsplit("/", 1)[1]]
        return partial(app._answered, method, headers, path, body, "req_service_work")

    def run(units: list[Any]) -> tuple[list[Any], float, float]:
        started, started_wall = time.thread_time(), time.perf_counter()
        outcomes = waas.run_units(units)
        return outcomes, time.thread_time() - started, time.perf_counter() - started_wall

    spent = waited = 0.0
    done = 0
    while done < calls:
        chosen = [(done + i) % len(setups) for i in range(group)]
        prepares = [
            request(
                c,
                PREPARE_PATH,
                {
                    "walletId": setups[c].wallet_id,
                    "sessionId": setups[c].session_id,
                    "to": setups[c].router,
                    "value": "0",
                    "data": setups[c].swap_data,
                },
                idempotent=False,
            )
            for c in chosen
        ]
        outcomes, cpu, wall = run(prepares)
        spent += cpu
        waited += wall
        quotes = [orjson.loads(o[1])["txnId"] for o in outcomes if o[0] == 200]
        if len(quotes) != len(chosen):
            raise RuntimeError(f"a Prepare was refused: {outcomes}")
        executes = [
            request(c, EXECUTE_PATH, {"txnId": q}, idempotent=True)
            for c, q in zip(chosen, quotes, strict=True)
        ]
        outcomes, cpu, wall = run(executes)
        spent += cpu
        waited += wall
        if any(o[0] != 200 for o in outcomes):
            raise RuntimeError(f"an Execute was refused: {outcomes}")
        done += group
    return spent / done, waited / done


def drop_schema(pg_url: str, schema: str) -> None:
    """Drop a PostgreSQL schema a run made (and everything in it)."""
    from sqlalchemy import create_engine, text

    from sessionward.store.database import normalize_url

    admin = create_engine(normalize_url(pg_url))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def _serve_in_thread(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` with BackgroundServer's uvicorn configuration on a free loopback port,
    bound here as BackgroundServer binds it (no other process can take it first); (URL, stop).
    """
    import socket
    import threading

    import uvicorn

    from sessionward.server import http_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(http_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the floor's HTTP server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


class FloorApp:
    """The floor: verify the request signature, sign a digest, answer a small JSON document.

    The same stack as :class:`sessionward.api.app.SessionWardApi`: a bare ASGI callable, the
    body read from ``receive``, the work on the one thread of a ``UnitWriter`` (as Execute's on
    SQLite, minus the database: a batch is simply run request by request), a
    starlette ``Response``.
    """

    def __init__(self, credential_id: str, address: str) -> None:
        from sessionward.api.unit_writer import UnitWriter, run_each
        from sessionward.crypto.request_signature import CredentialKey, InMemoryReplayStore

        self._credential_id = credential_id
        self._key = CredentialKey.secp256k1(address)
        self._replay = InMemoryReplayStore()
        self._signing_secret = secrets.token_bytes(32)
        self._writer: UnitWriter[tuple[int, bytes]] = UnitWriter(run_each)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.datastructures import Headers
        from starlette.responses import Response

        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = Headers(scope=scope)
        status, body = await self._writer.run(
            partial(
                self._process,
                headers.get("Oms-Wallet-Signature"),
                scope["path"],
                b"".join(chunks),
            )
        )
        await Response(body, status, media_type="application/json")(scope, receive, send)

    def _process(self, header: str | None, path: str, body: bytes) -> tuple[int, bytes]:
        from sessionward.crypto.request_signature import RequestAuthError, verify_request
        from sessionward.crypto.secp256k1 import sign_digest

        try:
            verify_request(
                header or "",
                method="POST",
                path_with_query=path,
                body=body,
                now_ms=time.time_ns() // 1_000_000,
                lookup=lambda cred: self._key if cred == self._credential_id else None,
                replay=self._replay,
            )
        except RequestAuthError as refused:
            return 401, orjson.dumps({"code": refused.code.value})
        signature = sign_digest(self._signing_secret, hashlib.sha256(body).digest())
        return 200, orjson.dumps({"status": "pending", "signature": "0x" + signature.hex()})


def serve_floor(pipe: Connection, credential_id: str, address: str) -> None:
    """Child: the floor app under uvicorn with the BackgroundServer's configuration."""
    url, stop = _serve_in_thread(FloorApp(credential_id, address))
    pipe.send(("ready", url, os.getpid()))
    pipe.recv()
    stop()


# --- set-up over HTTP (parent) -------------------------------------------------------------


def set_up_session(url: str, deployment: dict[str, Any]) -> Setup:
    """A backend credential, a wallet and an approved swap session with a USD budget far above
    what the run spends (so no limit and no velocity rule fires)."""
    return set_up_sessions(url, deployment, 1)[0]


def set_up_sessions(
    url: str, deployment: dict[str, Any], count: int, *, one_wallet: bool = False
) -> list[Setup]:
    """``count`` approved swap sessions as :func:`set_up_session` makes one, each of its own
    backend credential: each on a wallet of its own, or all on ONE wallet (``one_wallet``:
    one owner, whose audit stream every call then appends to)."""
    from sessionward.crypto.request_signature import Secp256k1RequestSigner
    from sessionward.domain.abi import encode_call, parse_signature
    from sessionward.sdk import BackendClient, OwnerClient

    setups: list[Setup] = []
    owner_secret = secrets.token_bytes(32)
    wallet: dict[str, Any] | None = None
    owner_credential_id: str | None = None
    for _ in range(count):
        secret = secrets.token_bytes(32)
        with BackendClient(url, Secp256k1RequestSigner(secret)) as backend:
            credential = backend.register(
                "Bench Agent", "https://bench.example", int(time.time()) + 86_400
            )
        if not one_wallet:
            owner_secret, wallet, owner_credential_id = secrets.token_bytes(32), None, None
        known = {} if wallet is None else {"wallet_id": str(wallet["walletId"])}
        with OwnerClient(url, owner_secret, owner_credential_id, **known) as owner:
            if wallet is None:
                wallet = owner.create_wallet()
            envelope = {
                "capabilities": ["swap.execute"],
                "maxValueUsd": 1_000_000_000,
                "allowedDestinations": [deployment["router"]],
                "chainId": 1,
                "expiresAt": int(time.time()) + 3000,
            }
            pending = owner.authorize_remote_access(
                credential["credentialId"], wallet["walletId"], envelope
            )
            owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
            owner_credential_id = str(owner.credential_id)
        tokens = deployment["tokens"]
        data = encode_call(
            parse_signature(SWAP_SIGNATURE),
            (USDX, 0, (tokens["USDX"], tokens["WETHX"]), wallet["account"],
             int(time.time()) + 3600),
        )  # fmt: skip
        setups.append(
            Setup(
                url=url,
                secret=secret,
                credential_id=str(credential["credentialId"]),
                wallet_id=str(wallet["walletId"]),
                session_id=str(pending["sessionId"]),
                router=str(deployment["router"]),
                swap_data="0x" + data.hex(),
                owner_secret=owner_secret,
                owner_credential_id=owner_credential_id,
            )
        )
    return setups


# --- orchestration (parent) ----------------------------------------------------------------


class Child:
    """A spawned child process and our end of its pipe."""

    def __init__(self, ctx: Any, target: Callable[..., None], *args: object) -> None:
        self.pipe, theirs = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(theirs, *args), daemon=True)
        self.process.start()

    def receive(self, timeout_s: float) -> tuple[Any, ...]:
        if not self.pipe.poll(timeout_s):
            raise TimeoutError(f"no word from {self.process.name} in {timeout_s} s")
        message = self.pipe.recv()
        if message[0] == "error":
            raise RuntimeError(message[1])
        return tuple(message)

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self.pipe.send("stop")
            self.process.join(timeout=15)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU seconds the PostgreSQL processes serving connections named ``application_name``
    spend between :meth:`start` and :meth:`stop`, sampled every ``every_s`` in between (one
    admin connection, kept open): a process that exits during the run (a pooled connection
    closed, the pool having no room for it) counts up to its last sample instead of not at
    all. Processes that appear during the run count from zero."""

    def __init__(self, pg_url: str, application_name: str, every_s: float = 0.25) -> None:
        from sqlalchemy import create_engine

        from sessionward.store.database import normalize_url

        self._engine = create_engine(normalize_url(pg_url), pool_size=1)
        self._name = application_name
        self._every_s = every_s
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, conn: Any) -> None:
        from sqlalchemy import text

        rows = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": self._name},
        ).fetchall()
        for pid, cpu in cpu_of([int(r[0]) for r in rows]).items():
            self._first.setdefault(pid, cpu if self._thread.ident is None else 0.0)
            self._last[pid] = cpu

    def start(self) -> None:
        with self._engine.connect() as conn:
            self._sample(conn)
        self._thread.start()

    def _run(self) -> None:
        with self._engine.connect() as conn:
            while not self._stopped.wait(self._every_s):
                self._sample(conn)
                conn.rollback()  # a fresh snapshot of pg_stat_activity next time

    def stop(self) -> float:
        """Stop sampling; the CPU seconds used in between."""
        self._stopped.set()
        self._thread.join(timeout=10)
        with self._engine.connect() as conn:
            self._sample(conn)
        self._engine.dispose()
        return sum(self._last[pid] - self._first[pid] for pid in self._last)


def cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each process of ``pids`` still there."""
    seen = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            seen[pid] = process_cpu_s(pid)
    return seen
