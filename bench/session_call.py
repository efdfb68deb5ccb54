"""The whole session call: Prepare + Execute per call, against a two-request floor, on SQLite and
on PostgreSQL; and an agent's ask → mined latency on anvil (issue 16, item 6).

**Session calls.** The service runs on embedded defaults (the in-process chain, the local vault)
in a spawned child (:class:`sessionward.server.BackgroundServer`, as ``sessionward serve``),
with its database on SQLite (a temporary data directory) or on PostgreSQL (``--pg-url``, a
private schema dropped at the end). The relayer is off: this measures the requests, not the
in-process EVM. A second child is the load: ``--concurrency`` keep-alive connections, each
making one call at a time: a signed ``PrepareEthereumTransaction`` (signed before the clock
starts), then, once its quote is back, an ``Execute`` of that quote, signed on the spot (it
names the quote), with an ``Idempotency-Key``. A call's latency runs from the Prepare sent to
the Execute answered.

The FLOOR is the bare verify+sign endpoint of ``bench/execute.py`` (same server stack, the work
on one writer thread) called the same way: two requests per call, the second signed on the spot
after the first is answered. Each database's run is followed by a floor run, so every
comparison is with the floor measured under the same machine load.

**Ask → mined.** One service in this process on anvil (``node_modules/.bin/anvil``, started on a
free port and stopped by PID) with the relaying loop running as ``sessionward serve`` runs it
(fallback poll ``relayer_poll_s``, woken by each Execute). A trial: Prepare + Execute of a 1-USDX
swap (in process, no HTTP), then the store is read every 2 ms until the call is final
(``executed``); reported is Prepare sent → final. Trials start at random moments (up to a block
time apart), so with 1 s blocks an ask waits half a block on average before it can be mined. Once with ``--block-time 1`` and once with
automine.

The machine is shared: keep runs short (the defaults take well under a minute each).

Run: ``.venv/bin/python bench/session_call.py [--calls 1500] [--concurrency 32] [--trials 20]
[--skip-pg] [--skip-anvil]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import secrets
import statistics
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import execute as ex

DEFAULT_PG_URL: Final = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_CALLS_PER_S: Final = 1_000
GOAL_FLOOR_SHARE: Final = 0.33


@dataclass(frozen=True)
class CallRun:
    """One load run of two-request calls."""

    name: str
    calls: int
    ok: int
    seconds: float
    call_ms: list[float]
    request_ms: list[float]
    failures: dict[str, int]

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def _two_request_calls(
    host: str,
    port: int,
    firsts: Sequence[bytes],
    second: Callable[[int, bytes], bytes | None],
    concurrency: int,
) -> tuple[list[tuple[int, float, float, float, bytes]], float]:
    """Each connection: send ``firsts[i]``, then ``second(i, first answer)`` (``None``: the
    call failed at its first request). Per call: (status, first ms, second ms, call ms, body
    of the last answer)."""
    results: list[tuple[int, float, float, float, bytes] | None] = [None] * len(firsts)
    cursor = iter(range(len(firsts)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in cursor:
                started = time.perf_counter()
                writer.write(firsts[index])
                status, body = await ex._read_response(reader)
                answered = time.perf_counter()
                follow = second(index, body) if status == 200 else None
                if follow is None:
                    results[index] = (status, (answered - started) * 1000, 0.0, 0.0, body)
                    continue
                sent = time.perf_counter()
                writer.write(follow)
                status, body = await ex._read_response(reader)
                done = time.perf_counter()
                results[index] = (
                    status,
                    (answered - started) * 1000,
                    (done - sent) * 1000,
                    (done - started) * 1000,
                    body,
                )
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return [r for r in results if r is not None], time.perf_counter() - started


def _summarize(
    name: str, results: Sequence[tuple[int, float, float, float, bytes]], seconds: float
) -> CallRun:
    failures: dict[str, int] = {}
    ok = 0
    calls, requests = [], []
    for status, first, second, call, body in results:
        requests.append(first)
        if second:
            requests.append(second)
        if status == 200 and orjson.loads(body).get("status") == "pending" and second:
            ok += 1
            calls.append(call)
            continue
        try:
            code = str(orjson.loads(body).get("code", status))
        except orjson.JSONDecodeError:
            code = str(status)
        failures[code] = failures.get(code, 0) + 1
    return CallRun(name, len(results), ok, seconds, calls, requests, failures)


def load_session_calls(
    pipe: Connection, setup: ex.Setup, calls: int, warmup: int, concurrency: int, name: str
) -> None:
    """Child: ``warmup`` calls (not measured), then ``calls`` measured Prepare + Execute."""
    maker = ex.RequestMaker(setup.url, setup.secret, setup.credential_id)
    host, port = ex._host_port(setup.url)
    body = {
        "walletId": setup.wallet_id,
        "sessionId": setup.session_id,
        "to": setup.router,
        "value": "0",
        "data": setup.swap_data,
    }

    def execute(_index: int, quote: bytes) -> bytes | None:
        txn_id = orjson.loads(quote).get("txnId")
        if txn_id is None:
            return None
        return maker.make(ex.EXECUTE_PATH, {"txnId": txn_id}, idempotent=True)

    runs = []
    for count in (warmup, calls):
        prepares = [maker.make(ex.PREPARE_PATH, body, idempotent=False) for _ in range(count)]
        results, seconds = asyncio.run(
            _two_request_calls(host, port, prepares, execute, concurrency)
        )
        runs.append(_summarize(name, results, seconds))
    if runs[0].failures:
        print(f"warm-up failures: {runs[0].failures}", file=sys.stderr)
    pipe.send(("done", asdict(runs[-1])))


def load_floor_calls(
    pipe: Connection,
    url: str,
    secret: bytes,
    credential_id: str,
    calls: int,
    warmup: int,
    concurrency: int,
) -> None:
    """Child: the same two-request calls against the floor endpoint."""
    maker = ex.RequestMaker(url, secret, credential_id)
    host, port = ex._host_port(url)

    def second(index: int, _answer: bytes) -> bytes:
        return maker.make(ex.EXECUTE_PATH, {"txnId": f"txn_{index:032x}"}, idempotent=True)

    runs = []
    for count in (warmup, calls):
        firsts = [maker.make(ex.PREPARE_PATH, {"n": i}, idempotent=False) for i in range(count)]
        results, seconds = asyncio.run(_two_request_calls(host, port, firsts, second, concurrency))
        runs.append(_summarize("floor (verify + sign) x2", results, seconds))
    pipe.send(("done", asdict(runs[-1])))


def serve(pipe: Connection, data_dir: str, database_url: str | None, schema: str | None) -> None:
    """Child: SessionWard on embedded defaults (the database aside), relayer off: the parent
    asks for ``"settle"`` (three dispatcher rounds) once it has set up a session, which must be
    installed on chain before it is active."""
    import logging

    from sessionward.server import BackgroundServer, freeze_start_up_heap
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    logging.basicConfig(level=logging.WARNING)
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    settings = Settings(
        data_dir=Path(data_dir),
        database_url=database_url,
        database_schema=schema,
        run_relayer=False,
        rate_limit_enabled=False,
    )
    waas = Waas.from_settings(settings)
    deployment = asdict(waas.runtime.deployment)
    with BackgroundServer(waas) as url:
        freeze_start_up_heap()
        pipe.send(("ready", url, os.getpid(), deployment))
        while pipe.recv() == "settle":  # relay the set-up (wallet deployed, session installed)
            for _ in range(3):
                waas.dispatcher.step()
            pipe.send(("settled",))


def _drop_schema(pg_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    from sessionward.store.database import normalize_url

    admin = create_engine(normalize_url(pg_url))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def measure_backend(ctx: Any, engine: str, args: argparse.Namespace) -> tuple[CallRun, CallRun]:
    """One database's session-call run, then a floor run right after it."""
    schema = f"sw_bench_{uuid.uuid4().hex[:12]}" if engine == "postgresql" else None
    url = args.pg_url if engine == "postgresql" else None
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as data_dir:
        server = ex.Child(ctx, serve, data_dir, url, schema)
        try:
            _, base, _pid, deployment = server.receive(240)
            setup = ex.set_up_session(base, deployment)
            server.pipe.send("settle")
            server.receive(120)
            loader = ex.Child(
                ctx,
                load_session_calls,
                setup,
                args.calls,
                args.warmup,
                args.concurrency,
                f"session calls, {engine}",
            )
            try:
                _, doc = loader.receive(300)
            finally:
                loader.stop()
        finally:
            server.stop()
            if schema is not None:
                _drop_schema(args.pg_url, schema)
    calls = CallRun(**doc)

    from sessionward.crypto.secp256k1 import address_from_secret

    floor_secret = secrets.token_bytes(32)
    floor = ex.Child(ctx, ex.serve_floor, "cred_floor", address_from_secret(floor_secret))
    try:
        _, floor_url, _pid = floor.receive(60)
        loader = ex.Child(
            ctx,
            load_floor_calls,
            floor_url,
            floor_secret,
            "cred_floor",
            args.calls,
            args.warmup,
            args.concurrency,
        )
        try:
            _, doc = loader.receive(300)
        finally:
            loader.stop()
    finally:
        floor.stop()
    return calls, CallRun(**doc)


# --- ask -> mined on anvil -----------------------------------------------------------------


def ask_to_mined(block_time: int | None, trials: int) -> list[float]:
    """Prepare sent → call final, in ms, for ``trials`` calls on anvil (``block_time`` None:
    automine)."""
    import logging

    from revocation_onchain import ANVIL, Bench, wait_for
    from sessionward.chain.demo import fund_demo_wallet
    from sessionward.domain.abi import encode_call, parse_signature
    from sessionward.server import free_port
    from sessionward.service.callers import Caller
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    logging.disable(logging.WARNING)
    port = free_port()
    command = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--hardfork", "prague",
               "--chain-id", "1", "--silent"]  # fmt: skip
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    import subprocess

    import httpx

    anvil = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rpc = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(data_dir=Path(data_dir), rpc_url=rpc, rate_limit_enabled=False)
            os.environ.pop("SESSIONWARD_DATABASE_URL", None)
            waas = Waas.from_settings(settings)
            waas.start()
            try:
                bench = Bench(waas)
                rt = waas.runtime
                fund_demo_wallet(
                    rt.chain,
                    rt.deployment,
                    rt.deployer,
                    owner_secret=bench.owner_secret,
                    account=bench.account,
                    usdx=10_000,
                )
                session_id, _key = bench.active_session()
                caller = Caller(bench.credential_id, "backend")
                swap = parse_signature(ex.SWAP_SIGNATURE)
                tokens = rt.deployment.tokens
                for _ in range(trials + 2):  # two warm-up calls
                    data = encode_call(
                        swap,
                        (ex.USDX, 0, (tokens["USDX"], tokens["WETHX"]), bench.account,
                         rt.now() + 3_600),
                    )  # fmt: skip
                    started = time.perf_counter()
                    quote = waas.transactions.prepare(
                        caller,
                        wallet_id=bench.wallet_id,
                        session_id=session_id,
                        to=rt.deployment.router,
                        value=0,
                        data=data,
                    )
                    waas.transactions.execute(caller, quote["txnId"])

                    def final(txn_id: str = quote["txnId"]) -> bool:
                        record = rt.store.transactions.get(txn_id)
                        return record is not None and record.status in ("executed", "failed")

                    mined = wait_for(final, timeout_s=30, every_s=0.002)
                    record = rt.store.transactions.get(quote["txnId"])
                    assert record is not None and record.status == "executed", record
                    latencies.append((mined - started) * 1000)
                    # The next ask at a random moment, not just after a block was mined.
                    time.sleep(random.uniform(0, 0.2 if block_time is None else block_time))
            finally:
                waas.stop()
    finally:
        anvil.terminate()
        try:
            anvil.wait(timeout=5)
        except subprocess.TimeoutExpired:
            anvil.kill()
    return latencies[2:]


# --- report --------------------------------------------------------------------------------


def _row(run: CallRun, floor: CallRun) -> str:
    return (
        f"| {run.name} | {run.ok}/{run.calls} | {run.per_second:.0f} | "
        f"{_rank(run.call_ms, 0.5):.1f} | {_rank(run.call_ms, 0.99):.1f} | "
        f"{_rank(run.request_ms, 0.99):.1f} | {floor.per_second:.0f} | "
        f"{run.per_second / floor.per_second:.2f} |"
        + (f" failures {run.failures}" if run.failures else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_500, help="measured calls per run")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--trials", type=int, default=20, help="ask -> mined trials per mode")
    parser.add_argument(
        "--pg-url", default=os.environ.get("SESSIONWARD_TEST_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-anvil", action="store_true")
    args = parser.parse_args(argv)

    print(
        f"# session_call bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    ctx = multiprocessing.get_context("spawn")
    engines = [e for e, skip in (("sqlite", args.skip_sqlite), ("postgresql", args.skip_pg))
               if not skip]  # fmt: skip
    rows = []
    rates: dict[str, float] = {}
    for engine in engines:
        calls, floor = measure_backend(ctx, engine, args)
        rates[engine] = calls.per_second
        rows.append(_row(calls, floor))
    if rows:
        print(
            f"\n{args.calls} calls (Prepare + Execute) at {args.concurrency} connections; "
            f"goal >= {GOAL_CALLS_PER_S}/s and >= {GOAL_FLOOR_SHARE:.0%} of the floor\n"
        )
        print("| run | ok | calls/s | call p50 ms | call p99 ms | request p99 ms "
              "| floor calls/s | share of floor |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for row in rows:
            print(row)
        if "sqlite" in rates and "postgresql" in rates:
            print(f"\nPostgreSQL / SQLite: {rates['postgresql'] / rates['sqlite']:.2f}")
    if not args.skip_anvil:
        print("\n| anvil | trials | ask->mined p50 ms | p90 ms | max ms |")
        print("|---|---|---|---|---|")
        for label, block_time in (("--block-time 1", 1), ("automine", None)):
            values = ask_to_mined(block_time, args.trials)
            print(
                f"| {label} | {len(values)} | {statistics.median(values):.0f} | "
                f"{_rank(values, 0.9):.0f} | {max(values):.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
