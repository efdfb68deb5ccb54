"""The whole session call: Prepare + Execute per call, against a two-request floor, on SQLite and
on PostgreSQL; and an agent's ask → mined latency on anvil (issue 16, item 6).

**Session calls.** The service runs on embedded defaults (the in-process chain, the local vault)
in a spawned child (``_support.serve_sessionward``: :class:`sessionward.server.BackgroundServer`,
as ``sessionward serve``), with its database on SQLite (a temporary data directory) or on
PostgreSQL (``--pg-url``, a private schema dropped at the end). The relayer is off: this
measures the requests, not the in-process EVM. A second child is the load: ``--concurrency``
keep-alive connections, each making one call at a time: a signed ``PrepareEthereumTransaction``
(signed before the clock starts), then, once its quote is back, an ``Execute`` of that quote,
signed on the spot (it names the quote), with an ``Idempotency-Key``. A call's latency runs
from the Prepare sent to the Execute answered.

``--sessions N`` sets up N sessions, each of its own backend credential, and connection ``c``
calls in session ``c mod N``: with one session (the default) every Execute queues on that
session's row lock (PostgreSQL) and the run measures that lock; with ``--sessions 32`` at 32
connections each connection has a session of its own. ``--one-wallet`` puts them all on one
wallet (one audit stream, whose lock every Execute then takes). The CPU the server process
(and, on PostgreSQL, the database processes serving its connections, found by
``application_name``) spent during the measured calls is reported per call.

**Two nodes** (``--pg-nodes 1,2``, the default): PostgreSQL is measured once per node count.
Each further node is a server child of its own on the same schema, sharing the first node's
data directory (the same vault key, the same embedded deployment; it logs that the in-process
chain it starts has none of the wallets, which the relayer-less run never needs), started
once the sessions are set up; connection ``c`` calls on node ``c mod nodes``.

The FLOOR is the bare verify+sign endpoint of ``bench/execute.py`` (same server stack, the work
on one writer thread) called the same way: two requests per call, the second signed on the spot
after the first is answered. Each database's run is followed by a floor run, so every
comparison is with the floor measured under the same machine load.

**Service work.** After each database's run the server child runs ``--service-calls`` more
calls (the same sessions, requests signed the same way) straight through the request handler of
its app, as units of work committed in groups of 16, and reports that thread's CPU per call
(``_support.service_work``): the server's own work for a call without the HTTP stack, the event
loop or a thread hand-off. A node runs its units one after another on one thread, so one over
this figure bounds its session-call rate from above, whatever the HTTP side costs. Its wall
time per call on that thread is reported too ("service work wall"): on PostgreSQL it adds the
waits for the server's answers, one per round trip, so one over it bounds one node's rate.

**CPU and ceilings.** Around each measured run the CPU of the server processes, of
PostgreSQL's processes serving them and of the load's process is read, per call. Two ceilings
follow (the measured floor that rules a rate goal in or out): the machine's, cores x calls /
(server + PostgreSQL + load CPU), which no spreading of the work over processes can pass; and
one core per node, nodes x calls / server CPU (a node's Python work runs one thread at a time).
The floor run reports its server CPU per call the same way.

**Ask → mined.** One service in this process on anvil (npm's anvil, started on a
free port and stopped by PID) with the relaying loop running as ``sessionward serve`` runs it
(fallback poll ``relayer_poll_s``, woken by each Execute). A trial: Prepare + Execute of a 1-USDX
swap (in process, no HTTP), then the store is read every 2 ms until the call is final
(``executed``); reported is Prepare sent → final. Trials start at random moments (up to a block
time apart), so with 1 s blocks an ask waits half a block on average before it can be mined. Once with ``--block-time 1`` and once with
automine.

The machine is shared: keep runs short (the defaults take well under a minute each).

Run: ``.venv/bin/python bench/session_call.py [--calls 1500] [--concurrency 32] [--sessions 32]
[--one-wallet] [--no-floor] [--service-calls 512] [--trials 20] [--pg-nodes 1,2]
[--skip-sqlite] [--skip-pg]
[--skip-anvil]``.
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
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as ex  # bench/ is not a package: its own directory on the path

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
    addresses: Sequence[tuple[str, int]],
    firsts: Sequence[Sequence[bytes]],
    second: Callable[[int, int, bytes], bytes | None],
) -> tuple[list[tuple[int, float, float, float, bytes]], float]:
    """One keep-alive connection per list of ``firsts``, connection ``c`` to
    ``addresses[c % len(addresses)]``: each sends its ``firsts[c][i]`` in turn, then
    ``second(c, i, first answer)`` (``None``: the call failed at its first request). Per call:
    (status, first ms, second ms, call ms, body of the last answer)."""
    results: list[tuple[int, float, float, float, bytes]] = []

    async def connection(c: int) -> None:
        reader, writer = await asyncio.open_connection(*addresses[c % len(addresses)])
        try:
            for index, first in enumerate(firsts[c]):
                started = time.perf_counter()
                writer.write(first)
                status, body = await ex.read_response(reader)
                answered = time.perf_counter()
                follow = second(c, index, body) if status == 200 else None
                if follow is None:
                    results.append((status, (answered - started) * 1000, 0.0, 0.0, body))
                    continue
                sent = time.perf_counter()
                writer.write(follow)
                status, body = await ex.read_response(reader)
                done = time.perf_counter()
                results.append(
                    (
                        status,
                        (answered - started) * 1000,
                        (done - sent) * 1000,
                        (done - started) * 1000,
                        body,
                    )
                )
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(c) for c in range(len(firsts))))
    return results, time.perf_counter() - started


def _spread(count: int, connections: int) -> list[int]:
    """How many of ``count`` calls each of ``connections`` connections makes."""
    return [count // connections + (c < count % connections) for c in range(connections)]


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
    pipe: Connection,
    setups: Sequence[ex.Setup],
    calls: int,
    warmup: int,
    concurrency: int,
    name: str,
) -> None:
    """Child: ``warmup`` calls (not measured), then ``calls`` measured Prepare + Execute;
    connection ``c`` calls in session ``setups[c % len(setups)]`` (one session per connection
    when there are as many), signing as that session's credential, on the node at that
    setup's ``url``. Tells the parent when the measured calls start (``"measuring"``,
    answered with anything) so it can read CPU counters around them."""
    makers = [ex.RequestMaker(s.url, s.secret, s.credential_id) for s in setups]
    addresses = [ex.host_port(s.url) for s in setups]
    bodies = [
        {
            "walletId": s.wallet_id,
            "sessionId": s.session_id,
            "to": s.router,
            "value": "0",
            "data": s.swap_data,
        }
        for s in setups
    ]

    def execute(c: int, _index: int, quote: bytes) -> bytes | None:
        txn_id = orjson.loads(quote).get("txnId")
        if txn_id is None:
            return None
        maker = makers[c % len(setups)]
        return maker.make(ex.EXECUTE_PATH, {"txnId": txn_id}, idempotent=True)

    runs = []
    for count in (warmup, calls):
        prepares = [
            [
                makers[c % len(setups)].make(
                    ex.PREPARE_PATH, bodies[c % len(setups)], idempotent=False
                )
                for _ in range(n)
            ]
            for c, n in enumerate(_spread(count, concurrency))
        ]
        if count == calls:
            pipe.send(("measuring",))
            pipe.recv()
        results, seconds = asyncio.run(_two_request_calls(addresses, prepares, execute))
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
    """Child: the same two-request calls against the floor endpoint (telling the parent when
    the measured ones start, as :func:`load_session_calls` does)."""
    maker = ex.RequestMaker(url, secret, credential_id)
    host, port = ex.host_port(url)

    def second(c: int, index: int, _answer: bytes) -> bytes:
        txn = f"txn_{c:08x}{index:024x}"
        return maker.make(ex.EXECUTE_PATH, {"txnId": txn}, idempotent=True)

    runs = []
    for count in (warmup, calls):
        firsts = [
            [maker.make(ex.PREPARE_PATH, {"n": i}, idempotent=False) for i in range(n)]
            for n in _spread(count, concurrency)
        ]
        if count == calls:
            pipe.send(("measuring",))
            pipe.recv()
        results, seconds = asyncio.run(_two_request_calls([(host, port)], firsts, second))
        runs.append(_summarize("floor (verify + sign) x2", results, seconds))
    pipe.send(("done", asdict(runs[-1])))


@dataclass(frozen=True)
class Cpu:
    """CPU seconds spent during a measured run: the server processes, (PostgreSQL) the
    database server's processes serving them, and the load's process (signing and sending)."""

    server_s: float
    database_s: float
    load_s: float
    nodes: int = 1
    service_work_s: float = 0.0
    """Per call: the server's own work for it in process, without HTTP (``ex.service_work``)."""
    service_wall_s: float = 0.0
    """Per call: the wall time of that work on its one thread, round trips included."""

    def ceilings(self, calls: int) -> tuple[float, float]:
        """Calls/s that the CPU these ``calls`` took allows (the measured floor of the rate
        goals): (one core per node: a node's Python work runs on one interpreter, one thread
        at a time, so about one second of its CPU per second; approximate, as its GIL-free
        work, SQLite's statements, secp256k1, socket calls, can overlap it; the machine:
        exact, its cores shared by the servers, PostgreSQL and the load)."""
        if calls <= 0 or self.server_s <= 0:
            return 0.0, 0.0
        interpreters = self.nodes * calls / self.server_s
        machine = (os.cpu_count() or 1) * calls / (self.server_s + self.database_s + self.load_s)
        return interpreters, machine


def _measured(
    loader: ex.Child, server_pids: Sequence[int], backends: ex.BackendCpu | None
) -> tuple[dict[str, Any], float, float, float]:
    """Start ``loader``'s measured calls (once it says ``"measuring"``) and read the CPU the
    servers, PostgreSQL's backends and the loader spent on them: (its run, seconds each)."""
    loader.receive(600)  # "measuring"
    if backends is not None:
        backends.start()
    load_pid = loader.process.pid
    assert load_pid is not None
    server_before = sum(ex.process_cpu_s(pid) for pid in server_pids)
    load_before = ex.process_cpu_s(load_pid)
    loader.pipe.send("go")
    _, doc = loader.receive(600)
    load_s = ex.process_cpu_s(load_pid) - load_before
    server_s = sum(ex.process_cpu_s(pid) for pid in server_pids) - server_before
    database_s = 0.0 if backends is None else backends.stop()
    return doc, server_s, database_s, load_s


def measure_backend(
    ctx: Any, engine: str, args: argparse.Namespace, *, nodes: int = 1, floor: bool = True
) -> tuple[CallRun, CallRun | None, Cpu, Cpu | None]:
    """One database's session-call run (``args.sessions`` sessions, on one wallet if
    ``args.one_wallet``), then a floor run right after it (unless not ``floor``).

    ``nodes`` > 1 (PostgreSQL): that many servers on the one schema, each a child of its own
    sharing the first one's data directory (so the same vault key and the same embedded
    deployment), started once the sessions are set up; connection ``c`` calls on node
    ``c mod nodes``. The server CPU is theirs summed; the service work is the first node's."""
    schema = f"sw_bench_{uuid.uuid4().hex[:12]}" if engine == "postgresql" else None
    application = f"sw_bench_{uuid.uuid4().hex[:8]}"
    url = None
    if engine == "postgresql":
        joiner = "&" if "?" in args.pg_url else "?"
        url = f"{args.pg_url}{joiner}application_name={application}"
    more_servers: list[ex.Child] = []
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as data_dir:
        server = ex.Child(
            ctx,
            partial(
                ex.serve_sessionward,
                database_url=url,
                schema=schema,
                max_running_units=args.max_running_units,
            ),
            data_dir,
        )
        try:
            _, base, server_pid, deployment = server.receive(240)
            setups = ex.set_up_sessions(base, deployment, args.sessions, one_wallet=args.one_wallet)
            for _ in range(2 + args.sessions // 8):  # installs, a few per dispatcher round
                server.pipe.send("settle")
                server.receive(120)
            server_pids, node_urls = [server_pid], [base]
            for _ in range(nodes - 1):
                extra = ex.Child(
                    ctx, partial(ex.serve_sessionward, database_url=url, schema=schema), data_dir
                )
                more_servers.append(extra)
                _, node_url, node_pid, _ = extra.receive(240)
                server_pids.append(node_pid)
                node_urls.append(node_url)
            setups = [replace(s, url=node_urls[c % nodes]) for c, s in enumerate(setups)]
            loader = ex.Child(
                ctx,
                load_session_calls,
                setups,
                args.calls,
                args.warmup,
                args.concurrency,
                f"session calls, {engine}"
                + (f", {nodes} nodes" if nodes > 1 else "")
                + f", {args.sessions} session"
                + ("s" if args.sessions > 1 else "")
                + (" on one wallet" if args.one_wallet and args.sessions > 1 else ""),
            )
            try:
                backends = None if url is None else ex.BackendCpu(args.pg_url, application)
                doc, server_cpu, database_cpu, load_cpu = _measured(loader, server_pids, backends)
            finally:
                loader.stop()
            server.pipe.send(("service work", setups, args.service_calls))
            _, (service_work_s, service_wall_s) = server.receive(600)
        finally:
            for node in more_servers:
                node.stop()
            server.stop()
            if schema is not None:
                ex.drop_schema(args.pg_url, schema)
    calls = CallRun(**doc)
    cpu = Cpu(server_cpu, database_cpu, load_cpu, nodes, service_work_s, service_wall_s)
    if not floor:
        return calls, None, cpu, None

    from sessionward.crypto.secp256k1 import address_from_secret

    floor_secret = secrets.token_bytes(32)
    floor_server = ex.Child(ctx, ex.serve_floor, "cred_floor", address_from_secret(floor_secret))
    try:
        _, floor_url, floor_pid = floor_server.receive(60)
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
            doc, server_cpu, _, load_cpu = _measured(loader, [floor_pid], None)
        finally:
            loader.stop()
    finally:
        floor_server.stop()
    return calls, CallRun(**doc), cpu, Cpu(server_cpu, 0.0, load_cpu)


# --- ask -> mined on anvil -----------------------------------------------------------------


def ask_to_mined(block_time: int | None, trials: int) -> list[float]:
    """Prepare sent → call final, in ms, for ``trials`` calls on anvil (``block_time`` None:
    automine)."""
    import logging

    from revocation_onchain import Bench, anvil, wait_for
    from sessionward.chain.demo import fund_demo_wallet
    from sessionward.domain.abi import encode_call, parse_signature
    from sessionward.service.callers import Caller
    from sessionward.service.config import Settings
    from sessionward.service.waas import Waas

    logging.disable(logging.WARNING)
    latencies: list[float] = []
    with anvil(block_time) as rpc, tempfile.TemporaryDirectory() as data_dir:
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
    return latencies[2:]


# --- report --------------------------------------------------------------------------------


def _row(run: CallRun, floor: CallRun | None, cpu: Cpu, floor_cpu: Cpu | None) -> str:
    per_call = 1000 / run.ok if run.ok else 0.0
    interpreters, machine = cpu.ceilings(run.ok)
    floor_part = "- | - | - | - |"
    if floor is not None and floor_cpu is not None:
        floor_per_call = 1000 / floor.ok if floor.ok else 0.0
        floor_part = (
            f"{floor.per_second:.0f} | {floor_cpu.server_s * floor_per_call:.2f} | "
            f"{run.per_second / floor.per_second:.2f} | "
            f"{min(interpreters, machine) / floor.per_second:.2f} |"
        )
    return (
        f"| {run.name} | {run.ok}/{run.calls} | {run.per_second:.0f} | "
        f"{_rank(run.call_ms, 0.5):.1f} | {_rank(run.call_ms, 0.99):.1f} | "
        f"{_rank(run.request_ms, 0.99):.1f} | {cpu.server_s * per_call:.2f} | "
        f"{cpu.database_s * per_call:.2f} | {cpu.load_s * per_call:.2f} | "
        f"{cpu.service_work_s * 1000:.2f} | {cpu.service_wall_s * 1000:.2f} | "
        f"{interpreters:.0f} | {machine:.0f} | "
        + floor_part
        + (f" failures {run.failures}" if run.failures else "")
    )


ROW_HEADER: Final = (
    "| run | ok | calls/s | call p50 ms | call p99 ms | request p99 ms "
    "| server CPU ms/call | PostgreSQL CPU ms/call | load CPU ms/call | service work ms/call "
    "| service work wall ms/call "
    "| ceiling: one core per node, calls/s | ceiling: machine, calls/s "
    "| floor calls/s | floor server CPU ms/call | share of floor | share at the ceiling |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
CEILINGS: Final = """\
Ceilings (the measured floor of the rate goals): the machine's cores are shared by the servers,
PostgreSQL and the load, so cores x calls / their CPU bounds the rate, however the work were
spread over processes; a node's Python work runs on one interpreter, one thread at a time, so
nodes x calls / server CPU bounds it too (approximately: GIL-free work can overlap it). "Share
at the ceiling" is the lower ceiling over the floor's rate in the same run: the share of the
floor this build's CPU per call allows at best."""


def _node_counts(text: str) -> list[int]:
    """``--pg-nodes``: "1,2" -> [1, 2]."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit("--pg-nodes: one or more node counts, each at least 1")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_500, help="measured calls per run")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="sessions the connections call in (connection c in session c mod N): as many "
        "as --concurrency gives each connection a session of its own",
    )
    parser.add_argument(
        "--one-wallet", action="store_true", help="every session on one wallet (one owner)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor runs")
    parser.add_argument(
        "--max-running-units",
        type=int,
        help="experiment: fair_max_running_units of the server (units of work at once)",
    )
    parser.add_argument(
        "--service-calls",
        type=int,
        default=512,
        help="calls of the in-process 'service work' figure (after each database's run)",
    )
    parser.add_argument("--trials", type=int, default=20, help="ask -> mined trials per mode")
    parser.add_argument(
        "--pg-url", default=os.environ.get("SESSIONWARD_TEST_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument(
        "--pg-nodes",
        default="1,2",
        help="PostgreSQL runs, by number of nodes on the one database (comma-separated)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-anvil", action="store_true")
    args = parser.parse_args(argv)

    print(
        f"# session_call bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    ctx = multiprocessing.get_context("spawn")
    engines = [e for e, skip in (("sqlite", args.skip_sqlite), ("postgresql", args.skip_pg))
               if not skip]  # fmt: skip
    rows = []
    rates: dict[str, float] = {}
    cpu_per_call: dict[str, float] = {}
    runs = [(engine, nodes) for engine in engines
            for nodes in ([1] if engine == "sqlite" else _node_counts(args.pg_nodes))]  # fmt: skip
    for engine, nodes in runs:
        calls, floor, cpu, floor_cpu = measure_backend(
            ctx, engine, args, nodes=nodes, floor=not args.no_floor
        )
        label = engine if nodes == 1 else f"{engine}, {nodes} nodes"
        rates[label] = calls.per_second
        cpu_per_call[label] = (cpu.server_s + cpu.database_s) / max(calls.ok, 1)
        rows.append(_row(calls, floor, cpu, floor_cpu))
    if rows:
        print(
            f"\n{args.calls} calls (Prepare + Execute) at {args.concurrency} connections, "
            f"{args.sessions} session(s){' on one wallet' if args.one_wallet else ''}; "
            f"goal >= {GOAL_CALLS_PER_S}/s and >= {GOAL_FLOOR_SHARE:.0%} of the floor; "
            f"load average now {os.getloadavg()[0]:.2f}\n"
        )
        print(ROW_HEADER)
        for row in rows:
            print(row)
        print(f"\n{CEILINGS}")
        for label in rates:
            if label.startswith("postgresql") and "sqlite" in rates:
                print(
                    f"\n{label} / sqlite: calls/s {rates[label] / rates['sqlite']:.2f}, "
                    "CPU per call (servers + PostgreSQL's processes) "
                    f"{cpu_per_call[label] / cpu_per_call['sqlite']:.2f}"
                )
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
