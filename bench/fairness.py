"""Tenant isolation benchmark (issue 14): how much one backend's flood slows another backend.

A server on loopback with the default settings (rate limits on; ``--no-limits`` turns them
off). Backend B (the victim) sends ``ListSessions`` at a steady pace, alone (idle) and while
backend A floods ``ListSessions`` from ``--threads`` connections as fast as it can, without
retries (in its own process, so that the flood's client work does not share the server's
interpreter), in ``--rounds`` interleaved windows of each. Printed:
B's p50/p99 idle and under the flood, the ratio of the p99s, and A's answers (200 / 429) and
rate. Numbers depend on the machine and on anything else it runs: compare the two modes in one
run on one machine.

Both modes by default, one server each, in one run: ``fair`` (the defaults: fair scheduling
between tenants, 429s held for ``rate_limit_hold_s``) and ``unfair`` (fair scheduling off, 429s
answered at once: the node before :mod:`sessionward.api.fairness`).

Run: ``.venv/bin/python bench/fairness.py [--requests 150] [--threads 8] [--no-limits]
[--modes fair,unfair]`` (about 20 s per mode).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import BackendClient
from sessionward.sdk.errors import SessionWardApiError
from sessionward.sdk.transport import Transport
from sessionward.server import BackgroundServer
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

PACE_S = 0.05
"""The victim's gap between requests (20 requests per second)."""


def _backend(url: str, secret: bytes | None = None) -> BackendClient:
    secret = secret or secrets.token_bytes(32)
    client = BackendClient(url, Secp256k1RequestSigner(secret))
    credential = client.register("Bench Tenant", "https://tenant.example", int(time.time()) + 3600)
    client.close()
    return BackendClient(url, Secp256k1RequestSigner(secret), str(credential["credentialId"]))


def _victim(client: BackendClient, count: int) -> list[float]:
    latencies: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        client.list_sessions()
        latencies.append(time.perf_counter() - started)
        time.sleep(PACE_S)
    return latencies


def _flood_threads(
    url: str,
    signer: Secp256k1RequestSigner,
    credential_id: str,
    flooding: threading.Event,
    stop: threading.Event,
    outcomes: Counter[str],
) -> None:
    """One connection sending ListSessions back to back while ``flooding`` is set. Its own
    transport with no retries: the SDK waits out a 429's Retry-After, a flood does not."""
    transport = Transport(url, retries=0)
    try:
        while not stop.is_set():
            if not flooding.wait(0.05):
                continue
            try:
                transport.call(
                    "ListSessions", {"limit": 50}, signer=signer, credential_id=credential_id
                )
                outcomes["200"] += 1
            except SessionWardApiError as exc:
                outcomes[str(exc.status)] += 1
    finally:
        transport.close()


def _flood_process(
    url: str, secret: bytes, credential_id: str, threads: int, control: Connection
) -> None:
    """In its own process (the server's process keeps its interpreter to itself): flood as one
    credential from ``threads`` threads while told "flood" (until "pause"); on "stop", send
    back the answers' counts and the seconds spent flooding."""
    signer = Secp256k1RequestSigner(secret)
    flooding, stop = threading.Event(), threading.Event()
    outcomes: Counter[str] = Counter()
    workers = [
        threading.Thread(
            target=_flood_threads, args=(url, signer, credential_id, flooding, stop, outcomes)
        )
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    seconds, since = 0.0, 0.0
    while (command := control.recv()) != "stop":
        if command == "flood":
            since = time.perf_counter()
            flooding.set()
        elif flooding.is_set():
            flooding.clear()
            seconds += time.perf_counter() - since
    stop.set()
    for worker in workers:
        worker.join()
    control.send((dict(outcomes), seconds))


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _measure(settings: Settings, requests: int, threads: int, rounds: int) -> str:
    """One server with ``settings``: the victim idle and flooded in ``rounds`` interleaved
    windows (the machine's other load falls on both alike); the report's lines."""
    waas = Waas.from_settings(settings)
    idle: list[float] = []
    loaded: list[float] = []
    try:
        with BackgroundServer(waas) as url:
            victim = _backend(url)
            secret = secrets.token_bytes(32)
            tenant = _backend(url, secret)
            tenant.close()
            control, child = multiprocessing.Pipe()
            flood = multiprocessing.get_context("spawn").Process(
                target=_flood_process,
                args=(url, secret, tenant.credential_id, threads, child),
            )
            flood.start()
            _victim(victim, 20)  # warm-up
            for _ in range(rounds):
                control.send("pause")
                time.sleep(0.6)  # the flood's requests in flight (and held 429s) are answered
                idle += _victim(victim, requests // rounds)
                control.send("flood")
                time.sleep(0.6)  # under way, past its burst
                loaded += _victim(victim, requests // rounds)
            control.send("pause")
            control.send("stop")
            outcomes, seconds = control.recv()
            flood.join()
            victim.close()
    finally:
        waas.stop()
    total = sum(outcomes.values())
    return "\n".join(
        [
            f"  victim idle:    p50 {statistics.median(idle) * 1000:7.1f} ms   "
            f"p99 {_p(idle, 0.99):7.1f} ms",
            f"  victim flooded: p50 {statistics.median(loaded) * 1000:7.1f} ms   "
            f"p99 {_p(loaded, 0.99):7.1f} ms",
            f"  p99 ratio flooded/idle: {_p(loaded, 0.99) / _p(idle, 0.99):.2f}",
            f"  flooder: {total} requests in {seconds:.1f} s of flood ({total / seconds:.0f}/s), "
            f"answers {dict(outcomes)}",
        ]
    )


MODES: dict[str, dict[str, Any]] = {
    "fair": {"fair_scheduling_enabled": True},
    "unfair": {"fair_scheduling_enabled": False, "rate_limit_hold_s": 0.0},
}
"""``fair``: the defaults (fair scheduling, 429s held); ``unfair``: every request straight to a
worker thread and 429s answered at once (the node before fair scheduling)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-limits", action="store_true")
    parser.add_argument("--modes", default="fair,unfair", help="comma separated: fair, unfair")
    parser.add_argument("--running", type=int, help="fair_max_running (default: the setting's)")
    parser.add_argument("--switch-ms", type=float, help="sys.setswitchinterval, in ms")
    args = parser.parse_args()
    if args.switch_ms:
        sys.setswitchinterval(args.switch_ms / 1000)
    os.environ.pop("SESSIONWARD_DATABASE_URL", None)
    limits = "off" if args.no_limits else "on (defaults)"
    print(f"rate limits {limits}; victim {args.requests} requests at {1 / PACE_S:.0f}/s")
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="sessionward-fair-") as data_dir:
            settings = replace(
                Settings(
                    data_dir=Path(data_dir),
                    run_relayer=False,
                    rate_limit_enabled=not args.no_limits,
                ),
                **MODES[mode],
            )
            if args.running:
                settings = replace(settings, fair_max_running=args.running)
            print(
                f"{mode}:\n{_measure(settings, args.requests, args.threads, args.rounds)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
