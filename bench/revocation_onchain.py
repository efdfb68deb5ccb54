"""Revocation on chain: from a revoke's answer to the chain showing the session removed, and
the reconciler's repair time, on anvil with one block per second (``--block-time 1``).

One service in this process (SQLite in a temporary directory, the anvil node over JSON-RPC)
relays from a background thread that runs one dispatcher round every ``--poll`` seconds (the
``relayer_poll_s`` default, 0.2 s). Every trial uses a fresh session, approved and installed
(``active``, read from the chain).

- **removal**: ``RevokeAccess`` answers at t0; t1 = the first time the account's
  ``session(key)`` view shows the key removed (polled every 50 ms); t2 = the database records
  ``revoked`` (the reconciler, from the same view). Reported: t1 - t0 and t2 - t0.
- **repair, revoking**: the removal job is lost right after the revoke (cancelled before it is
  signed, as a fee-cap refusal would); the reconciler notices the session still live, raises
  an alert and queues a new removal. Reported: revoke answer → chain removed.
- **repair, revoked but live**: the row says ``revoked`` (removal "confirmed") while the chain
  shows the session live, which is what the old approve/revoke race left; only the
  reconciler's slow pass (every ``--slow-every`` seconds, 30 by default) looks at final rows.
  Reported: row written → chain removed.

Run: ``.venv/bin/python bench/revocation_onchain.py [--trials 30] [--repairs 10]
[--legacy 3]`` (a few minutes; prints a table for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import update

from sessionward.chain.contracts import DeployedContract
from sessionward.chain.demo import demo_contract
from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import Settings
from sessionward.service.reconciler import cancel_queued
from sessionward.service.runtime import build_runtime
from sessionward.service.waas import Waas
from sessionward.store.schema import sessions

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
REMOVED: Final = 2


@contextmanager
def anvil(block_time: int | None, *, chain_id: int = 1) -> Iterator[str]:
    """anvil on a free loopback port, mining a block every ``block_time`` s (None: one per
    transaction); the URL. Started and stopped by its own PID as the tests start it
    (``tests/anvil_node.py``: the binary, not npm's wrapper, and a port it listens on itself)."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import anvil_node

    with anvil_node.running(chain_id, block_time=block_time) as url:
        yield url


class Relaying:
    """The dispatcher loop in a background thread; :meth:`paused` holds it between rounds."""

    def __init__(self, waas: Waas, poll_s: float) -> None:
        self._waas = waas
        self._poll_s = poll_s
        self._gate = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            with self._gate:
                try:
                    self._waas.dispatcher.step()
                except Exception as exc:  # keep relaying, as the service's loop does
                    print(f"dispatcher round failed: {exc}", file=sys.stderr)

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._gate:
            yield

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_for(done: Callable[[], bool], timeout_s: float = 120.0, every_s: float = 0.05) -> float:
    """Poll ``done`` until true; the perf_counter time it first was."""
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError("no agreement within the timeout")
        time.sleep(every_s)
    return time.perf_counter()


class Bench:
    def __init__(self, waas: Waas) -> None:
        self.waas = waas
        self.rt = waas.runtime
        secret = secrets.token_bytes(32)
        self.owner_secret = secret
        view = waas.wallets.create(SelfSigned(ALG_SECP256K1, address_from_secret(secret)))
        self.wallet_id = view["walletId"]
        self.account = view["account"]
        self.owner = Caller(view["ownerCredentialId"] or "", "owner", view["walletId"])
        wait_for(lambda: bool(self.rt.chain.get_code(self.account)))
        backend = address_from_secret(secrets.token_bytes(32))
        credential = waas.credentials.register_backend(
            SelfSigned(ALG_SECP256K1, backend),
            app_name="bench",
            app_url="https://bench.example",
            expires_at=self.rt.now() + 86_400,
        )
        self.credential_id = credential["credentialId"]
        self._view = DeployedContract(self.rt.chain, self.account, demo_contract("SessionAccount"))

    def onchain(self, key: str) -> int:
        view = self._view.call_one("session", key)
        assert isinstance(view, tuple) and isinstance(view[0], int)
        return view[0]

    def status(self, session_id: str) -> str:
        record = self.rt.store.sessions.get(session_id)
        assert record is not None
        return record.status

    def active_session(self) -> tuple[str, str]:
        envelope = {
            "capabilities": ["swap.execute"],
            "maxValueUsd": 500,
            "allowedDestinations": [self.rt.deployment.router],
            "chainId": self.rt.chain_id,
            "expiresAt": self.rt.now() + 3600,
        }
        pending = self.waas.sessions.authorize(
            self.owner, credential_id=self.credential_id, wallet_id=self.wallet_id,
            envelope=envelope,
        )  # fmt: skip
        digest = bytes.fromhex(pending["grantDigest"][2:])
        self.waas.sessions.approve(
            self.owner,
            session_id=pending["sessionId"],
            signature=sign_digest(self.owner_secret, digest),
        )
        try:
            wait_for(lambda: self.status(pending["sessionId"]) == "active")
        except TimeoutError:
            job = self.rt.relayer.job(f"enable:{pending['sessionId']}")
            print(self.rt.store.sessions.get(pending["sessionId"]), job, file=sys.stderr)
            raise
        return pending["sessionId"], pending["sessionKey"]

    def revoke(self, session_id: str) -> float:
        self.waas.revocations.revoke_access(
            self.owner,
            wallet_id=self.wallet_id,
            credential_id=self.credential_id,
            session_id=session_id,
        )
        return time.perf_counter()


def summary(name: str, values: Sequence[float]) -> str:
    ordered = sorted(values)

    def rank(p: int) -> float:
        return ordered[max(0, -(-p * len(ordered) // 100) - 1)]

    return (
        f"| {name} | {len(ordered)} | {rank(50):.2f} | {rank(99):.2f} | "
        f"{statistics.mean(ordered):.2f} | {ordered[0]:.2f} | {ordered[-1]:.2f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--repairs", type=int, default=10)
    parser.add_argument("--legacy", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--slow-every", type=float, default=30.0)
    parser.add_argument("--block-time", type=int, default=1)
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp, anvil(args.block_time) as url:
        settings = Settings(data_dir=Path(tmp), rpc_url=url, relayer_poll_s=args.poll)
        waas = Waas(build_runtime(settings))
        waas.dispatcher.reconciler._slow_every_s = args.slow_every
        relaying = Relaying(waas, args.poll)
        try:
            bench = Bench(waas)
            to_chain: list[float] = []
            to_record: list[float] = []
            for _ in range(args.trials):
                session_id, key = bench.active_session()
                t0 = bench.revoke(session_id)
                t1 = wait_for(lambda k=key: bench.onchain(k) == REMOVED)  # type: ignore[misc]
                t2 = wait_for(lambda s=session_id: bench.status(s) == "revoked")  # type: ignore[misc]
                to_chain.append(t1 - t0)
                to_record.append(t2 - t0)
            repaired: list[float] = []
            for _ in range(args.repairs):
                session_id, key = bench.active_session()
                with relaying.paused():
                    t0 = bench.revoke(session_id)
                    job = waas.runtime.relayer.job(f"revoke:{session_id}")
                    assert job is not None and cancel_queued(waas.runtime, job, "lost")
                t1 = wait_for(lambda k=key: bench.onchain(k) == REMOVED)  # type: ignore[misc]
                wait_for(lambda s=session_id: bench.status(s) == "revoked")  # type: ignore[misc]
                repaired.append(t1 - t0)
            legacy: list[float] = []
            for _ in range(args.legacy):
                session_id, key = bench.active_session()
                with relaying.paused():
                    now = waas.runtime.now()
                    with waas.runtime.store.db.writing() as conn:
                        conn.execute(
                            update(sessions)
                            .where(sessions.c.id == session_id)
                            .values(status="revoked", revoked_at=now, revoked_by="bench",
                                    revoke_reason="legacy", onchain_revoked_at=now)
                        )  # fmt: skip
                    t0 = time.perf_counter()
                t1 = wait_for(lambda k=key: bench.onchain(k) == REMOVED, timeout_s=300)  # type: ignore[misc]
                legacy.append(t1 - t0)
            stats = waas.dispatcher.reconciler.stats.snapshot()
        finally:
            relaying.stop()
            waas.stop()
    print(f"revocation on chain, {started:%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
          f"anvil --block-time {args.block_time}, dispatcher every {args.poll} s")  # fmt: skip
    print()
    print("| measure | n | p50 s | p99 s | mean s | min s | max s |")
    print("|---|---|---|---|---|---|---|")
    print(summary("revoke answer → chain shows removed", to_chain))
    print(summary("revoke answer → database `revoked` (from the chain)", to_record))
    print(summary("repair: removal lost → chain shows removed", repaired))
    if legacy:
        print(summary(f"repair: `revoked` row live on chain (slow pass {args.slow_every:g} s)",
                      legacy))  # fmt: skip
    print()
    print(f"reconciler: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
