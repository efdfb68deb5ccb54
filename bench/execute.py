"""Signed Execute throughput and latency on embedded defaults, against a floor.

The service runs on EMBEDDED defaults (SQLite with ``synchronous=FULL``, the local vault, the
in-process chain) in its own process: :class:`sessionward.server.BackgroundServer` (uvicorn
and the app of ``sessionward serve``) in a spawned child. The parent sets up, through the SDK
over HTTP, a backend credential, a wallet and an approved ``swap.execute`` session with a large
USD budget. The load comes from a SECOND process: a small asyncio HTTP/1.1 client holding
``--concurrency`` keep-alive connections on loopback. It first prepares the quotes
(``PrepareEthereumTransaction``, not timed as Execute), then signs every Execute request
(``Oms-Wallet-Signature`` and an ``Idempotency-Key``, as the SDK sends them) and only then
sends them, so that client-side signing does not compete with the server for the two cores
while it is measured.

The FLOOR is a bare endpoint served by the same stack (uvicorn, the same starlette pieces, the
same worker-thread hop) that does only what every Execute must: verify the request signature
(:func:`~sessionward.crypto.request_signature.verify_request`, in-memory replay store) and make
one secp256k1 signature of a 32-byte digest. The same client sends it the same requests.

The relayer is OFF by default: this measures the Execute path (authenticate, re-decide, reserve,
sign, queue) and not the in-process EVM, which would execute the relayed calls in the same
process; ``--relayer`` turns it on (the wallet is then unfunded and the relayed swaps revert,
which releases their reservations: the relayer's work, not its success, is what costs).

``--profile FILE`` samples the server process with py-spy while the Execute load runs (py-spy
must be installed; ``--profile-format`` ``speedscope`` or ``raw`` collapsed stacks).

Run: ``.venv/bin/python bench/execute.py [--quotes 6000] [--concurrency 32]`` (about two
minutes on two cores; prints a table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import orjson

GOAL_EXECUTES_PER_S: Final = 1_000
GOAL_P99_MS: Final = 50.0
GOAL_FLOOR_SHARE: Final = 0.40
EXECUTE_PATH: Final = "/v1/Waas/Execute"
PREPARE_PATH: Final = "/v1/Waas/PrepareEthereumTransaction"
USDX: Final = 10**6
SWAP_SIGNATURE: Final = (
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,"
    "address to,uint256 deadline)"
)


# --- the HTTP client (load process) --------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: int
    latency_s: float
    body: bytes


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


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


async def _blast(
    host: str, port: int, requests: Sequence[bytes], concurrency: int
) -> tuple[list[Outcome], float]:
    """Send every request over ``concurrency`` keep-alive connections, each connection one
    request at a time; (outcomes in request order, wall seconds from first send to last
    answer)."""
    outcomes: list[Outcome | None] = [None] * len(requests)
    cursor = iter(range(len(requests)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in cursor:
                started = time.perf_counter()
                writer.write(requests[index])
                status, body = await _read_response(reader)
                outcomes[index] = Outcome(status, time.perf_counter() - started, body)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return [o for o in outcomes if o is not None], elapsed


def blast(url: str, requests: Sequence[bytes], concurrency: int) -> tuple[list[Outcome], float]:
    host, port = _host_port(url)
    return asyncio.run(_blast(host, port, requests, concurrency))


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


class RequestMaker:
    """Signs requests as one credential with unique, increasing nonces."""

    def __init__(self, url: str, secret: bytes, credential_id: str) -> None:
        from sessionward.crypto.request_signature import Secp256k1RequestSigner
        from sessionward.sdk import NonceCounter

        self._host, self._port = _host_port(url)
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
                time.time_ns() // 1_000_000,
            )
        }
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return http_request(self._host, self._port, path, body, headers)


# --- statistics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One load run: how many requests, how many answered as expected, and how fast."""

    name: str
    requests: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    failures: dict[str, int]

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "ok": self.ok,
            "seconds": self.seconds,
            "latencies_ms": self.latencies_ms,
            "failures": self.failures,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Run:
        return cls(**doc)


def summarize(
    name: str,
    outcomes: Sequence[Outcome],
    seconds: float,
    accept: Callable[[Outcome], bool],
) -> Run:
    failures: dict[str, int] = {}
    ok = 0
    for outcome in outcomes:
        if accept(outcome):
            ok += 1
            continue
        try:
            code = str(orjson.loads(outcome.body).get("code", outcome.status))
        except orjson.JSONDecodeError:
            code = str(outcome.status)
        failures[code] = failures.get(code, 0) + 1
    return Run(name, len(outcomes), ok, seconds, [o.latency_s * 1000 for o in outcomes], failures)


def _answered(status: str) -> Callable[[Outcome], bool]:
    def accept(outcome: Outcome) -> bool:
        return outcome.status == 200 and orjson.loads(outcome.body).get("status") == status

    return accept


# --- the load process ----------------------------------------------------------------------


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


def load_sessionward(
    pipe: Connection, setup: Setup, quotes: int, warmup: int, concurrency: int
) -> None:
    """Child: prepare ``warmup + quotes`` quotes, execute ``warmup`` of them (not measured),
    tell the parent the measured run starts (so it can attach a profiler), then execute the
    rest. Sends back the Prepare and Execute runs."""
    maker = RequestMaker(setup.url, setup.secret, setup.credential_id)
    prepare_body = {
        "walletId": setup.wallet_id,
        "sessionId": setup.session_id,
        "to": setup.router,
        "value": "0",
        "data": setup.swap_data,
    }
    prepares = [
        maker.make(PREPARE_PATH, prepare_body, idempotent=False) for _ in range(quotes + warmup)
    ]
    outcomes, seconds = blast(setup.url, prepares, concurrency)
    prepared = summarize("PrepareEthereumTransaction", outcomes, seconds, _answered("quoted"))
    txn_ids = [str(orjson.loads(o.body)["txnId"]) for o in outcomes if _answered("quoted")(o)]
    if len(txn_ids) < quotes + warmup:
        pipe.send(("error", f"only {len(txn_ids)} quotes: {prepared.failures}"))
        return
    warm = [maker.make(EXECUTE_PATH, {"txnId": t}, idempotent=True) for t in txn_ids[:warmup]]
    blast(setup.url, warm, concurrency)
    executes = [maker.make(EXECUTE_PATH, {"txnId": t}, idempotent=True) for t in txn_ids[warmup:]]
    pipe.send(("measuring", None))
    pipe.recv()  # the parent is ready (profiler attached, if any)
    outcomes, seconds = blast(setup.url, executes, concurrency)
    executed = summarize("Execute", outcomes, seconds, _answered("pending"))
    pipe.send(("done", [prepared.to_json(), executed.to_json()]))


def load_floor(
    pipe: Connection, url: str, secret: bytes, credential_id: str, count: int, concurrency: int
) -> None:
    """Child: the same Execute-shaped requests against the floor endpoint."""
    maker = RequestMaker(url, secret, credential_id)
    warm = [
        maker.make(EXECUTE_PATH, {"txnId": f"txn_{i:032x}"}, idempotent=True) for i in range(500)
    ]
    blast(url, warm, concurrency)
    requests = [
        maker.make(EXECUTE_PATH, {"txnId": f"txn_{i:032x}"}, idempotent=True) for i in range(count)
    ]
    outcomes, seconds = blast(url, requests, concurrency)
    floor = summarize("floor (verify + sign)", outcomes, seconds, _answered("pending"))
    pipe.send(("done", [floor.to_json()]))


# --- the servers (server process) ----------------------------------------------------------


def serve_sessionward(pipe: Connection, data_dir: str, run_relayer: bool) -> None:
    """Child: SessionWard on embedded defaults, served by BackgroundServer until told to stop."""
    import logging

    from sessionward.server import BackgroundServer
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    logging.basicConfig(level=logging.WARNING)
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    waas = Waas.from_settings(Settings(data_dir=Path(data_dir), run_relayer=run_relayer))
    with BackgroundServer(waas) as url:
        pipe.send(("ready", url, os.getpid(), asdict(waas.runtime.deployment)))
        pipe.recv()


class FloorApp:
    """The floor: verify the request signature, sign a digest, answer a small JSON document.

    The same stack as :class:`sessionward.api.app.SessionWardApi`: a bare ASGI callable, the
    body read from ``receive``, the work in a worker thread (``run_in_threadpool``), a
    starlette ``Response``.
    """

    def __init__(self, credential_id: str, address: str) -> None:
        from sessionward.crypto.request_signature import CredentialKey, InMemoryReplayStore

        self._credential_id = credential_id
        self._key = CredentialKey.secp256k1(address)
        self._replay = InMemoryReplayStore()
        self._signing_secret = secrets.token_bytes(32)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.concurrency import run_in_threadpool
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
        status, body = await run_in_threadpool(
            self._process, headers.get("Oms-Wallet-Signature"), scope["path"], b"".join(chunks)
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
    import threading

    import uvicorn

    from sessionward.server import free_port

    port = free_port()
    config = uvicorn.Config(
        FloorApp(credential_id, address),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    pipe.send(("ready", f"http://127.0.0.1:{port}", os.getpid()))
    pipe.recv()
    server.should_exit = True
    thread.join(timeout=10)


# --- set-up over HTTP (parent) -------------------------------------------------------------


def set_up_session(url: str, deployment: dict[str, Any]) -> Setup:
    """A backend credential, a wallet and an approved swap session with a USD budget far above
    what the run spends (so no limit and no velocity rule fires)."""
    from sessionward.crypto.request_signature import Secp256k1RequestSigner
    from sessionward.domain.abi import encode_call, parse_signature
    from sessionward.sdk import BackendClient, OwnerClient

    secret = secrets.token_bytes(32)
    with BackendClient(url, Secp256k1RequestSigner(secret)) as backend:
        credential = backend.register(
            "Bench Agent", "https://bench.example", int(time.time()) + 86_400
        )
    with OwnerClient(url, secrets.token_bytes(32)) as owner:
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
    tokens = deployment["tokens"]
    data = encode_call(
        parse_signature(SWAP_SIGNATURE),
        (USDX, 0, (tokens["USDX"], tokens["WETHX"]), wallet["account"], int(time.time()) + 3600),
    )
    return Setup(
        url=url,
        secret=secret,
        credential_id=str(credential["credentialId"]),
        wallet_id=str(wallet["walletId"]),
        session_id=str(pending["sessionId"]),
        router=str(deployment["router"]),
        swap_data="0x" + data.hex(),
    )


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


def start_profiler(pid: int, output: Path, fmt: str, seconds: float) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds) + 1),
            "--rate",
            "250",
            "--format",
            fmt,
            "--output",
            str(output),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def measure(args: argparse.Namespace) -> tuple[list[Run], dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as data_dir:
        started = time.monotonic()
        server = Child(ctx, serve_sessionward, data_dir, args.relayer)
        try:
            _, url, pid, deployment = server.receive(180)
            info["startup_s"] = time.monotonic() - started
            setup = set_up_session(url, deployment)
            loader = Child(ctx, load_sessionward, setup, args.quotes, args.warmup, args.concurrency)
            try:
                loader.receive(600)  # "measuring"
                profiler = None
                if args.profile:
                    profiler = start_profiler(
                        pid, Path(args.profile), args.profile_format, args.profile_seconds
                    )
                    time.sleep(0.5)  # let py-spy attach before the load starts
                loader.pipe.send("go")
                _, docs = loader.receive(600)
                if profiler is not None:
                    _, err = profiler.communicate(timeout=120)
                    if profiler.returncode != 0:
                        print(
                            f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr
                        )
            finally:
                loader.stop()
        finally:
            server.stop()
    runs = [Run.from_json(d) for d in docs]

    floor_secret = secrets.token_bytes(32)
    from sessionward.crypto.secp256k1 import address_from_secret

    floor_credential = "cred_floor"
    floor = Child(ctx, serve_floor, floor_credential, address_from_secret(floor_secret))
    try:
        _, floor_url, _pid = floor.receive(60)
        loader = Child(
            ctx,
            load_floor,
            floor_url,
            floor_secret,
            floor_credential,
            args.quotes,
            args.concurrency,
        )
        try:
            _, docs = loader.receive(600)
        finally:
            loader.stop()
    finally:
        floor.stop()
    runs += [Run.from_json(d) for d in docs]
    return runs, info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quotes", type=int, default=6000, help="measured Executes")
    parser.add_argument("--warmup", type=int, default=300, help="Executes before measuring")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--relayer", action="store_true", help="run the relayer meanwhile")
    parser.add_argument("--profile", help="write a py-spy profile of the server here")
    parser.add_argument(
        "--profile-format", default="speedscope", choices=["speedscope", "raw", "flamegraph"]
    )
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    runs, info = measure(args)
    report(runs, info, args)
    return 0


def report(runs: Sequence[Run], info: dict[str, Any], args: argparse.Namespace) -> None:
    by_name = {r.name: r for r in runs}
    execute = by_name["Execute"]
    floor = by_name["floor (verify + sign)"]
    share = execute.per_second / floor.per_second if floor.per_second else 0.0
    print(
        f"# bench/execute.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"# embedded defaults (SQLite synchronous=FULL, local vault, in-process chain), relayer "
        f"{'on' if args.relayer else 'off'}; concurrency {args.concurrency} keep-alive connections "
        f"from a second process; server start-up {info.get('startup_s', 0):.1f} s"
    )
    print()
    print(
        f"| {'run':<28} | {'requests':>8} | {'ok':>6} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |"
    )
    print(f"|{'-' * 30}|{'-' * 10}:|{'-' * 7}:|{'-' * 9}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
    for run in runs:
        print(
            f"| {run.name:<28} | {run.requests:>8} | {run.ok:>6} | {run.per_second:>8.0f} | "
            f"{run.percentile(0.5):>7.1f} | {run.percentile(0.99):>7.1f} | {max(run.latencies_ms, default=0):>7.1f} |"
        )
    for run in runs:
        if run.failures:
            print(f"  {run.name} failures: {run.failures}")
    print()
    print(
        f"Execute/s = {share * 100:.0f} % of the floor. Goals: >= {GOAL_EXECUTES_PER_S} Execute/s "
        f"({'met' if execute.per_second >= GOAL_EXECUTES_PER_S else 'NOT met'}), p99 <= {GOAL_P99_MS:.0f} ms "
        f"({'met' if execute.percentile(0.99) <= GOAL_P99_MS else 'NOT met'}), >= "
        f"{GOAL_FLOOR_SHARE * 100:.0f} % of the floor ({'met' if share >= GOAL_FLOOR_SHARE else 'NOT met'})."
    )


if __name__ == "__main__":
    raise SystemExit(main())
