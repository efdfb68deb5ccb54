"""Budget reservations per second, on SQLite and PostgreSQL, with concurrent workers.

Each worker is a thread with its own database connection (as separate service nodes would be).
Scenarios:

- ``own session``: every worker reserves on its own session (no row contention);
- ``shared session``: every worker reserves on the same session (they serialise on its row);
- ``1 worker``: one worker, one session (the latency floor).

Each reservation is the full production path of :meth:`Budget.reserve`: the session check with
freezes and credential, two usage charges (``uses`` and ``native``), and the reservation row, in
one transaction. SQLite commits as the store does for executions, with ``synchronous=NORMAL``
(WAL: never corrupt; the last commits before a power cut may be lost; revocations and freezes,
not measured here, commit with ``FULL``).

Run: ``.venv/bin/python bench/reservations.py [--seconds 3] [--workers 8] [--pg-url URL]``
(PostgreSQL: ``$SESSIONWARD_TEST_PG_URL`` or the local server; a scratch schema is dropped at the
end). Finishes in well under a minute with the defaults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from sessionward.domain.usage import NATIVE, USES, Charge
from sessionward.reasons import ReasonCode
from sessionward.store import Store, open_store

T0 = 1_771_700_000
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Result:
    engine: str
    scenario: str
    workers: int
    reservations: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.reservations / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def seed_sessions(store: Store, count: int, tag: str) -> list[str]:
    store.wallets.add(
        wallet_id=f"w-{tag}",
        chain_id=1,
        account="0x" + uuid.uuid4().hex[:40].rjust(40, "0"),
        owner="0x" + "1" * 40,
        owner_kind="eoa",
        now=T0,
    )
    store.credentials.add(
        credential_id=f"c-{tag}",
        role="backend",
        alg="ecdsa-p256k-eip191",
        public_key="0x" + "2" * 40,
        now=T0,
        expires_at=T0 + 86_400,
    )
    ids = []
    for i in range(count):
        session_id = f"s-{tag}-{i}"
        store.sessions.add(
            session_id=session_id,
            wallet_id=f"w-{tag}",
            credential_id=f"c-{tag}",
            session_key_id=f"k-{tag}-{i}",
            session_key_address="0x" + "3" * 40,
            envelope="{}",
            grant="{}",
            grant_nonce=i,
            epoch=0,
            action_classes=["swap.execute"],
            valid_after=T0,
            expires_at=T0 + 3_600,
            now=T0,
        )
        store.sessions.approve(session_id, now=T0)
        ids.append(session_id)
    return ids


def run(store: Store, sessions: list[str], workers: int, seconds: float) -> tuple[int, list[float]]:
    """``workers`` threads reserve on ``sessions[i % len(sessions)]`` for ``seconds``."""
    charges = [
        Charge(USES, 0, 1, 10**12, ReasonCode.USAGE_LIMIT_REACHED),
        Charge(NATIVE, 0, 10**15, 10**40, ReasonCode.VALUE_LIMIT_EXCEEDED),
    ]
    barrier = threading.Barrier(workers)
    counts = [0] * workers
    latencies: list[list[float]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        session_id = sessions[i % len(sessions)]
        try:
            barrier.wait()
            stop = time.perf_counter() + seconds
            while (started := time.perf_counter()) < stop:
                outcome = store.budget.reserve(
                    session_id, uuid.uuid4().hex, charges, now=T0 + 1, action_class="swap.execute"
                )
                latencies[i].append((time.perf_counter() - started) * 1000)
                if not outcome.accepted:
                    raise RuntimeError(f"unexpected refusal {outcome.reasons}")
                counts[i] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts), [ms for per_worker in latencies for ms in per_worker]


def bench_engine(engine: str, store: Store, workers: int, seconds: float) -> list[Result]:
    own = seed_sessions(store, workers, "own")
    shared = seed_sessions(store, 1, "shared")
    single = seed_sessions(store, 1, "single")
    results = []
    for scenario, sessions, count in (
        ("own session", own, workers),
        ("shared session", shared, workers),
        ("1 worker", single, 1),
    ):
        started = time.perf_counter()
        done, latencies = run(store, sessions, count, seconds)
        elapsed = time.perf_counter() - started
        results.append(Result(engine, scenario, count, done, elapsed, latencies))
    return results


def print_table(results: list[Result]) -> None:
    header = (
        f"{'engine':<11} {'scenario':<15} {'workers':>7} {'reservations':>12} "
        f"{'per second':>10} {'p50 ms':>7} {'p99 ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.engine:<11} {r.scenario:<15} {r.workers:>7} {r.reservations:>12} "
            f"{r.per_second:>10.0f} {statistics.median(r.latencies_ms):>7.2f} "
            f"{r.percentile(0.99):>7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per scenario")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--pg-url", default=os.environ.get("SESSIONWARD_TEST_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as data_dir:
        store = open_store(data_dir=Path(data_dir), pool_size=args.workers + 2)
        store.upgrade()
        results += bench_engine("sqlite", store, args.workers, args.seconds)
        store.close()

    if not args.skip_pg:
        schema = f"sw_bench_{uuid.uuid4().hex[:12]}"
        store = open_store(args.pg_url, schema=schema, pool_size=args.workers + 2)
        try:
            store.upgrade()
            results += bench_engine("postgresql", store, args.workers, args.seconds)
        finally:
            store.close()
            admin = create_engine(args.pg_url.replace("postgresql://", "postgresql+psycopg://"))
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    print_table(results)


if __name__ == "__main__":
    main()
