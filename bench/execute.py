"""Signed Execute throughput and latency on embedded defaults, against a floor.

The service runs on EMBEDDED defaults (SQLite in WAL mode with the store's own durability
settings, the local vault, the in-process chain) in its own process: :class:`sessionward.server.BackgroundServer` (uvicorn
and the app of ``sessionward serve``) in a spawned child. The parent sets up, through the SDK
over HTTP, a backend credential, a wallet and an approved ``swap.execute`` session with a large
USD budget. The load comes from a SECOND process: a small asyncio HTTP/1.1 client holding
``--concurrency`` keep-alive connections on loopback. It first prepares the quotes
(``PrepareEthereumTransaction``, not timed as Execute), then signs every Execute request
(``Oms-Wallet-Signature`` and an ``Idempotency-Key``, as the SDK sends them; timestamps a
little ahead, see :data:`SIGN_AHEAD_MS`) and only then sends them, so that client-side signing does not compete with the server for the two cores
while it is measured.

The FLOOR is a bare endpoint served by the same stack (uvicorn, the same starlette pieces, the
same hop to one thread that runs the work in batches, :class:`~sessionward.api.unit_writer.UnitWriter`,
as Execute has on SQLite) that does only what every Execute must: verify the request signature
(:func:`~sessionward.crypto.request_signature.verify_request`, in-memory replay store) and make
one secp256k1 signature of a 32-byte digest. The same client sends it the same requests.

The relayer is OFF by default: this measures the Execute path (authenticate, re-decide, reserve,
sign, queue) and not the in-process EVM, which would execute the relayed calls in the same
process; ``--relayer`` turns it on (the wallet is then unfunded and the relayed swaps revert,
which releases their reservations: the relayer's work, not its success, is what costs).

``--revocations N`` also times owner revocations (RevokeAccess round trips) of N other
sessions on the idle server and of N more while the Execute load runs: how long a revocation
waits behind the Executes.

``--profile FILE`` samples the server process with py-spy while the Execute load runs
(``--profile-mode gil``: where the CPU goes; ``wall``: where the requests wait) and prints the
samples bucketed by stage of the Execute path and by kind of work (SQL statements, COMMIT,
BEGIN, Python). py-spy comes from PyPI (``uv pip install py-spy``).

Run: ``.venv/bin/python bench/execute.py [--quotes 2000] [--concurrency 32]`` (about two
minutes on two cores; prints a table).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import (  # bench/ is not a package: its own directory on the path
    EXECUTE_PATH,
    PREPARE_PATH,
    SIGN_AHEAD_MS,
    Child,
    RequestMaker,
    Setup,
    host_port,
    read_response,
    serve_floor,
    serve_sessionward,
    set_up_session,
)

GOAL_EXECUTES_PER_S: Final = 1_000
GOAL_P99_MS: Final = 50.0
GOAL_FLOOR_SHARE: Final = 0.40


# --- the HTTP client (load process) --------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: int
    latency_s: float
    body: bytes


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
                status, body = await read_response(reader)
                outcomes[index] = Outcome(status, time.perf_counter() - started, body)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return [o for o in outcomes if o is not None], elapsed


def blast(url: str, requests: Sequence[bytes], concurrency: int) -> tuple[list[Outcome], float]:
    host, port = host_port(url)
    return asyncio.run(_blast(host, port, requests, concurrency))


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


def revoke_each(setups: Sequence[Setup], gap_s: float) -> list[float]:
    """The owner of each set-up revokes its session, one after another ``gap_s`` apart: the
    RevokeAccess round trips, in ms."""
    from sessionward.sdk import OwnerClient

    latencies = []
    for setup in setups:
        with OwnerClient(
            setup.url, setup.owner_secret, setup.owner_credential_id, wallet_id=setup.wallet_id
        ) as owner:
            started = time.perf_counter()
            owner.revoke_access(setup.wallet_id, setup.credential_id, setup.session_id)
            latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(gap_s)
    return latencies


# --- where the time goes (py-spy samples) -------------------------------------------------

STAGE, READ, STACK = 2, 1, 0
_SERVER_STACK: Final = "server stack: uvicorn, uvloop, httptools, thread hop"
BUCKETS: Final = (
    # (priority, path fragment, function or None, bucket). A stack belongs to the innermost
    # frame of the highest priority present: a stage of the Execute path (2) wins over the
    # plain store read it makes (1), which wins over the server stack (0).
    (STAGE, "sessionward/vault/", None, "vault: decrypt key + sign"),
    (STAGE, "sessionward/store/audit.py", None, "audit append (hash chain)"),
    (STAGE, "sessionward/store/decisions.py", None, "decision event insert"),
    (STAGE, "sessionward/service/anomaly.py", None, "anomaly listener"),
    (STAGE, "sessionward/store/nonces.py", None, "auth: replay nonce insert"),
    (STAGE, "sessionward/api/auth.py", "lookup", "auth: credential lookup"),
    (STAGE, "sessionward/crypto/request_signature.py", None, "auth: signature verify"),
    (STAGE, "sessionward/api/auth.py", None, "auth: other"),
    (STAGE, "sessionward/store/idempotency.py", None, "idempotency key claim/complete"),
    (STAGE, "sessionward/crypto/typed_data.py", None, "EIP-712 digests"),
    (STAGE, "sessionward/crypto/eip712.py", None, "EIP-712 digests"),
    (STAGE, "sessionward/domain/", None, "policy: decode + evaluate"),
    (STAGE, "sessionward/store/budget.py", "reserve_in", "execute txn: budget reservation"),
    (
        STAGE,
        "sessionward/store/transaction_records.py",
        "mark_pending_in",
        "execute txn: mark pending",
    ),
    (STAGE, "sessionward/store/execution.py", None, "execute txn: gate, call nonce, commit"),
    (STAGE, "sessionward/api/body.py", None, "JSON: parse + validate request"),
    (STAGE, "sessionward/api/app.py", "dump_json", "JSON: encode answer"),
    (STAGE, "sessionward/service/transactions.py", "transaction_view", "JSON: encode answer"),
    (READ, "sessionward/store/transaction_records.py", None, "read: transaction row"),
    (READ, "sessionward/store/sessions.py", None, "read: session row"),
    (READ, "sessionward/store/wallets.py", None, "read: wallet row"),
    (READ, "sessionward/store/credentials.py", None, "read: credential row"),
    (READ, "sessionward/store/freezes.py", None, "read: active freezes"),
    (READ, "sessionward/store/budget.py", None, "read: usage counters"),
    (READ, "sessionward/store/", None, "read: other store"),
    (READ, "sessionward/service/", None, "service: other"),
    (STACK, "pydantic", None, "JSON: parse + validate request"),
    (STACK, "anyio/", None, _SERVER_STACK),
    (STACK, "starlette/", None, _SERVER_STACK),
    (STACK, "uvicorn/", None, _SERVER_STACK),
    (STACK, "uvloop/", None, _SERVER_STACK),
    (STACK, "httptools/", None, _SERVER_STACK),
    (STACK, "h11/", None, _SERVER_STACK),
    (STACK, "asyncio/", None, _SERVER_STACK),
    (STACK, "concurrent/futures", None, _SERVER_STACK),
    (STACK, "sessionward/api/unit_writer", None, _SERVER_STACK),
    (STACK, "sessionward/api/", None, "HTTP layer (app, metrics)"),
)


def _frame_parts(frame: str) -> tuple[str, str]:
    """``"name (path:line)"`` → (name, path)."""
    name, _, rest = frame.partition(" (")
    return name, rest.rstrip(")")


def _kind(frames: Sequence[str]) -> str:
    """What a sample is doing at its leaf end: SQLite work (by statement kind) or Python."""
    names = [_frame_parts(f) for f in frames]
    if any(n == "do_commit" or (n == "commit" and "sqlalchemy" in p) for n, p in names):
        return "SQL: COMMIT (WAL append, fsync when durable)"
    if any(n == "_on_begin" for n, _p in names):
        return "SQL: BEGIN IMMEDIATE (write lock)"
    leaf_name, leaf_path = names[-1]
    if "sessionward/store/database.py" in leaf_path and leaf_name in ("writing", "reading"):
        return "waiting: in-process writer queue / pool"
    if any("sqlalchemy/" in p or "sqlite3" in p for _n, p in names):
        if any(n in ("do_execute", "do_executemany") for n, _p in names):
            return "SQL: statements (sqlite3 execute)"
        return "SQL: SQLAlchemy compile/cache/result"
    return "Python"


def bucket_of(frames: Sequence[tuple[str, str]]) -> tuple[str, int]:
    """The bucket of a stack given outermost first as (function, path) pairs (see
    :data:`BUCKETS`; plumbing in ``store/database.py`` and ``store/sql.py`` names nothing, its
    caller does); (bucket, index of the frame that named it)."""
    best: tuple[int, int, str] | None = None  # (priority, index, bucket)
    for index, (name, path) in enumerate(frames):
        if "sessionward/store/database.py" in path or "sessionward/store/sql.py" in path:
            continue
        for priority, fragment, function, bucket in BUCKETS:
            if fragment in path and (function is None or function == name):
                if best is None or priority >= best[0]:
                    best = (priority, index, bucket)
                break
    return ("other", 0) if best is None else (best[2], best[1])


def attribute_samples(raw: Path) -> tuple[dict[str, int], dict[str, int], int]:
    """Bucket the collapsed stacks of a ``py-spy record --format raw`` file: (samples per
    bucket, samples per kind, total)."""
    buckets: dict[str, int] = {}
    kinds: dict[str, int] = {}
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        bucket, depth = bucket_of([_frame_parts(f) for f in frames])
        kind = _kind(frames[depth:])
        buckets[bucket] = buckets.get(bucket, 0) + count
        kinds[kind] = kinds.get(kind, 0) + count
        total += count
    return buckets, kinds, total


def print_attribution(title: str, raw: Path) -> None:
    buckets, kinds, total = attribute_samples(raw)
    if not total:
        print(f"{title}: no samples")
        return
    print(f"\n{title} ({total} samples)")
    print(f"| {'where':<50} | {'share':>6} |")
    print(f"|{'-' * 52}|{'-' * 7}:|")
    for name, count in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"| {name:<50} | {count / total * 100:>5.1f}% |")
    print(f"\n| {'doing what (across the buckets above)':<50} | {'share':>6} |")
    print(f"|{'-' * 52}|{'-' * 7}:|")
    for name, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {name:<50} | {count / total * 100:>5.1f}% |")


# --- in process, without HTTP (the breakdown) ----------------------------------------------


def _asgi_request(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": EXECUTE_PATH,
        "raw_path": EXECUTE_PATH.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode())],
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }


async def _call_asgi(app: Any, scope: dict[str, Any], body: bytes) -> int:
    delivered = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))

    await app(scope, receive, send)
    return statuses[0]


_SQL_TIMED: Final = 1_000
"""Executes of the breakdown's pass that times the SQL statements (in groups, on the calling
thread, so that no other thread holds the GIL when a statement returns)."""


def _timing_sql(work: Callable[[], object]) -> tuple[float, float]:
    """Run ``work`` with every ``store/sql.py`` statement timed: (statements, seconds spent
    in them), per answered Execute of the pass (:data:`_SQL_TIMED`)."""
    from sessionward.store.sql import Sql

    spent = [0.0, 0]
    run = Sql.run

    def timed(self: Sql, conn: Any, params: Any) -> Any:
        started = time.perf_counter()
        try:
            return run(self, conn, params)
        finally:
            spent[0] += time.perf_counter() - started
            spent[1] += 1

    Sql.run = timed  # type: ignore[method-assign]
    try:
        work()
    finally:
        Sql.run = run  # type: ignore[method-assign]
    return spent[1] / _SQL_TIMED, spent[0] / _SQL_TIMED


def breakdown(count: int, profile: Path | None) -> None:
    """Executes in this process (no HTTP): ``count`` one after another through the ASGI app
    (CPU and wall time per Execute; with py-spy, where the CPU goes); ``count`` more through
    the app's answering step in groups of
    :data:`~sessionward.api.unit_writer.DEFAULT_MAX_BATCH` committed together, as the writer
    thread runs them under load, but on this thread (CPU per Execute); the time spent inside
    the ``store/sql.py`` statements (the same statements either way); and the SQL statements
    and transactions each stage of the path issues."""
    import inspect

    from sqlalchemy import event
    from starlette.datastructures import Headers

    from sessionward.api.app import create_app
    from sessionward.api.methods import METHODS
    from sessionward.api.unit_writer import DEFAULT_MAX_BATCH
    from sessionward.crypto.request_signature import (
        SIGNATURE_HEADER,
        Secp256k1RequestSigner,
        sign_request,
    )
    from sessionward.sdk import BackendClient, NonceCounter
    from sessionward.server import BackgroundServer
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as data_dir:
        waas = Waas.from_settings(
            Settings(data_dir=Path(data_dir), run_relayer=False, rate_limit_enabled=False)
        )
        app = create_app(waas)
        with BackgroundServer(waas) as url:
            setup = set_up_session(url, asdict(waas.runtime.deployment))
            with BackendClient(
                url, Secp256k1RequestSigner(setup.secret), setup.credential_id
            ) as backend:
                txn_ids = [
                    str(
                        backend.prepare_transaction(
                            setup.wallet_id, setup.session_id, setup.router, 0, setup.swap_data
                        )["txnId"]
                    )
                    for _ in range(2 * count + 40 + _SQL_TIMED)
                ]
            signer = Secp256k1RequestSigner(setup.secret)
            nonces = NonceCounter()
            requests = []
            for txn_id in txn_ids:
                body = orjson.dumps({"txnId": txn_id})
                header = sign_request(
                    signer,
                    setup.credential_id,
                    "POST",
                    EXECUTE_PATH,
                    body,
                    nonces.next(),
                    time.time_ns() // 1_000_000 + SIGN_AHEAD_MS,
                )
                headers = {SIGNATURE_HEADER: header, "Idempotency-Key": uuid.uuid4().hex}
                requests.append((_asgi_request(body, headers), body))

            statements: dict[str, dict[str, int]] = {}
            transactions: dict[str, int] = {}
            counting = False

            def stage() -> str:
                stack = [(f.function, f.filename) for f in reversed(inspect.stack(context=0)[2:])]
                return bucket_of(stack)[0]

            engine = waas.runtime.store.db.engine

            # Every statement SQLite runs, whether it came through SQLAlchemy or straight from
            # the driver (store/sql.py), BEGIN/SAVEPOINT/COMMIT included.
            def _statement(sql: str) -> None:
                if counting:
                    verb = sql.split(None, 1)[0].upper()
                    per = statements.setdefault(stage(), {})
                    per[verb] = per.get(verb, 0) + 1

            @event.listens_for(engine, "checkout")
            def _trace(dbapi_connection: Any, *_args: Any) -> None:
                dbapi_connection.set_trace_callback(_statement)

            @event.listens_for(engine, "commit")
            def _commit(_conn: Any) -> None:
                if counting:
                    where = stage()
                    transactions[where] = transactions.get(where, 0) + 1

            async def run(batch: Sequence[tuple[dict[str, Any], bytes]]) -> list[int]:
                return [await _call_asgi(app, scope, body) for scope, body in batch]

            asyncio.run(run(requests[:20]))  # warm-up
            counting = True
            asyncio.run(run(requests[20:40]))  # counted (slow: every statement walks the stack)
            counting = False
            # Counting done: the timed passes run without the hooks (a trace callback makes
            # SQLite call into Python for every statement), on fresh connections.
            event.remove(engine, "checkout", _trace)
            event.remove(engine, "commit", _commit)
            engine.dispose()

            def on_this_thread(batch: Sequence[tuple[dict[str, Any], bytes]]) -> None:
                """The app's own answering step, in groups committed together, as the writer
                thread runs it, but on this thread (no event loop competes for the GIL)."""
                for i in range(0, len(batch), DEFAULT_MAX_BATCH):
                    outcomes = waas.run_units(
                        [
                            partial(
                                app._answered,
                                METHODS["Execute"],
                                Headers(scope=scope),
                                EXECUTE_PATH,
                                body,
                                "req_breakdown",
                            )
                            for scope, body in batch[i : i + DEFAULT_MAX_BATCH]
                        ]
                    )
                    if any(isinstance(o, Exception) or o[0] != 200 for o in outcomes):
                        raise RuntimeError(f"an Execute was not answered 200: {outcomes}")

            sql_statements, sql_seconds = _timing_sql(
                partial(on_this_thread, requests[40 : 40 + _SQL_TIMED])
            )
            requests = requests[40 + _SQL_TIMED :]
            grouped_cpu_started = time.process_time()
            on_this_thread(requests[count:])
            grouped_cpu = (time.process_time() - grouped_cpu_started) / len(requests[count:])
            profiler = None
            if profile is not None:
                profiler = start_profiler(os.getpid(), profile, 60, "active")
                time.sleep(0.5)
            wall_started, cpu_started = time.perf_counter(), time.process_time()
            statuses = asyncio.run(run(requests[:count]))
            wall = (time.perf_counter() - wall_started) / len(statuses)
            cpu = (time.process_time() - cpu_started) / len(statuses)
            if profiler is not None:
                profiler.send_signal(2)  # SIGINT: py-spy writes what it has and exits
                profiler.wait(timeout=30)
    counted = 20
    ok = sum(s == 200 for s in statuses)
    print(
        f"# in-process, one Execute at a time ({len(statuses)} Executes, {ok} answered 200): "
        f"{cpu * 1000:.2f} ms CPU and {wall * 1000:.2f} ms wall per Execute "
        f"(=> at most {1 / cpu:.0f} Execute/s on the one core the GIL allows)"
    )
    print(
        f"# in-process, in groups of {DEFAULT_MAX_BATCH} committed together as the writer "
        f"thread runs them, here on one thread ({count} Executes, all answered 200): "
        f"{grouped_cpu * 1000:.2f} ms CPU per Execute"
    )
    print(
        f"# inside the store/sql.py statements ({_SQL_TIMED} Executes in groups): "
        f"{sql_statements:.1f} statements, {sql_seconds * 1e6:.0f} µs per Execute "
        "(savepoints, BEGIN and COMMIT not included)"
    )
    total_statements = sum(sum(v.values()) for v in statements.values())
    print(
        f"# per Execute: {total_statements / counted:.1f} SQL statements, "
        f"{sum(transactions.values()) / counted:.1f} transactions (COMMITs)"
    )
    print(f"\n| {'stage':<50} | {'statements':>10} | {'commits':>7} | {'by verb':<40} |")
    print(f"|{'-' * 52}|{'-' * 11}:|{'-' * 8}:|{'-' * 42}|")
    for where in sorted(
        set(statements) | set(transactions), key=lambda w: -sum(statements.get(w, {}).values())
    ):
        verbs = statements.get(where, {})
        print(
            f"| {where:<50} | {sum(verbs.values()) / counted:>10.1f} | "
            f"{transactions.get(where, 0) / counted:>7.1f} | "
            f"{', '.join(f'{k} {v / counted:g}' for k, v in sorted(verbs.items())):<40} |"
        )
    if profile is not None and profile.is_file():
        print_attribution("In-process profile, one Execute at a time (CPU)", profile)


# --- orchestration (parent) ----------------------------------------------------------------


def start_profiler(pid: int, output: Path, seconds: float, mode: str) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` for ``seconds``, collapsed stacks (``raw``) into ``output``.

    ``mode``: ``gil`` samples only the thread holding the GIL, i.e. where the CPU goes (the
    server is one Python process: what holds the GIL bounds its throughput); ``wall`` samples
    every thread, waiting or not, i.e. where a request's time goes.
    """
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
            *({"gil": ["--gil"], "wall": ["--idle"]}.get(mode, [])),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def measure(args: argparse.Namespace) -> tuple[list[Run], dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as data_dir:
        started = time.monotonic()
        server = Child(
            ctx,
            partial(serve_sessionward, run_relayer=args.relayer, switch_ms=args.switch_ms),
            data_dir,
        )
        try:
            _, url, pid, deployment = server.receive(180)
            info["startup_s"] = time.monotonic() - started
            setup = set_up_session(url, deployment)
            to_revoke = [set_up_session(url, deployment) for _ in range(2 * args.revocations)]
            # Sessions are active once the chain shows them installed: relay the set-up.
            if args.relayer:
                time.sleep(3)
            else:
                for _ in range(2 + args.revocations // 4):
                    server.pipe.send("settle")
                    server.receive(120)
            if to_revoke:
                info["revoke_idle_ms"] = revoke_each(to_revoke[: args.revocations], 0.02)
            loader = Child(ctx, load_sessionward, setup, args.quotes, args.warmup, args.concurrency)
            try:
                loader.receive(600)  # "measuring"
                profiler = None
                if args.profile:
                    profiler = start_profiler(
                        pid, Path(args.profile), args.profile_seconds, args.profile_mode
                    )
                    time.sleep(0.5)  # let py-spy attach before the load starts
                loader.pipe.send("go")
                if to_revoke:
                    time.sleep(0.3)  # the Execute load is under way
                    info["revoke_loaded_ms"] = revoke_each(to_revoke[args.revocations :], 0.02)
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
    parser.add_argument("--quotes", type=int, default=2000, help="measured Executes")
    parser.add_argument("--warmup", type=int, default=300, help="Executes before measuring")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--relayer", action="store_true", help="run the relayer meanwhile")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure Execute and then the floor this many times; report the median share",
    )
    parser.add_argument(
        "--revocations",
        type=int,
        default=0,
        metavar="N",
        help="also time N owner revocations on the idle server and N during the Execute load",
    )
    parser.add_argument(
        "--switch-ms", type=float, default=0.0, help="experiment: GIL switch interval (ms)"
    )
    parser.add_argument(
        "--profile", help="sample the server with py-spy during the Execute run; raw stacks here"
    )
    parser.add_argument("--profile-mode", default="gil", choices=["gil", "wall"])
    parser.add_argument("--profile-seconds", type=float, default=6.0)
    parser.add_argument(
        "--breakdown",
        type=int,
        metavar="N",
        help="instead: 2N Executes in process (N one at a time, N in groups), with the time "
        "in SQL statements and statement counts per stage",
    )
    args = parser.parse_args(argv)
    if args.breakdown:
        breakdown(args.breakdown, Path(args.profile) if args.profile else None)
        return 0
    shares = []
    for _ in range(max(1, args.rounds)):
        runs, info = measure(args)
        shares.append(report(runs, info, args))
    if len(shares) > 1:
        print(
            f"\nShare of the floor per round: {' / '.join(f'{s * 100:.0f} %' for s in shares)}; "
            f"median {statistics.median(shares) * 100:.0f} %. (This machine's speed drifts from "
            "minute to minute; each round measures Execute and its floor back to back.)"
        )
    if args.profile and Path(args.profile).is_file():
        what = "CPU (GIL holder)" if args.profile_mode == "gil" else "wall time (every thread)"
        print_attribution(f"Server profile under load, {what}", Path(args.profile))
    return 0


def report(runs: Sequence[Run], info: dict[str, Any], args: argparse.Namespace) -> float:
    """Print one round's table; return Execute/s as a share of the floor's req/s."""
    by_name = {r.name: r for r in runs}
    execute = by_name["Execute"]
    floor = by_name["floor (verify + sign)"]
    share = execute.per_second / floor.per_second if floor.per_second else 0.0
    print(
        f"# bench/execute.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"# embedded defaults (SQLite WAL, local vault, in-process chain), relayer "
        f"{'on' if args.relayer else 'off'}; concurrency {args.concurrency} keep-alive connections "
        f"from a second process; server start-up {info.get('startup_s', 0):.1f} s"
    )
    print()
    print(
        f"| {'run':<28} | {'requests':>8} | {'ok':>6} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |"
    )
    print(f"|{'-' * 30}|{'-' * 9}:|{'-' * 7}:|{'-' * 9}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
    for run in runs:
        print(
            f"| {run.name:<28} | {run.requests:>8} | {run.ok:>6} | {run.per_second:>8.0f} | "
            f"{run.percentile(0.5):>7.1f} | {run.percentile(0.99):>7.1f} | {max(run.latencies_ms, default=0):>7.1f} |"
        )
    for run in runs:
        if run.failures:
            print(f"  {run.name} failures: {run.failures}")
    for key, label in (("revoke_idle_ms", "idle"), ("revoke_loaded_ms", "under the Execute load")):
        if info.get(key):
            times = sorted(info[key])
            print(
                f"RevokeAccess round trip, {label}: {len(times)} revokes, p50 "
                f"{statistics.median(times):.1f} ms, max {times[-1]:.1f} ms"
            )
    print()
    print(
        f"Execute/s = {share * 100:.0f} % of the floor. Goals: >= {GOAL_EXECUTES_PER_S} Execute/s "
        f"({'met' if execute.per_second >= GOAL_EXECUTES_PER_S else 'NOT met'}), p99 <= {GOAL_P99_MS:.0f} ms "
        f"({'met' if execute.percentile(0.99) <= GOAL_P99_MS else 'NOT met'}), >= "
        f"{GOAL_FLOOR_SHARE * 100:.0f} % of the floor ({'met' if share >= GOAL_FLOOR_SHARE else 'NOT met'})."
    )
    return share


if __name__ == "__main__":
    raise SystemExit(main())
