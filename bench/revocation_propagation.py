"""Revocation propagation across nodes: from a revoke's HTTP answer on node 1 to the first
refusal on node 2.

Two ``sessionward serve`` processes share one PostgreSQL schema (fresh, dropped at the end)
and one data directory (vault key, relayer key, deployer key); each runs its own in-process
chain, on which the same deployer key deploys the demo world at the same addresses: only the
off-chain state matters here, and that lives in the shared database.

Each trial: a fresh backend credential (so that the post-revocation anomaly rule, which
retires a credential after three refused attempts, never interferes), a fresh session on the
owner's wallet, a quote prepared on node 2 and one Execute signed on node 2 (the path is live
and warm), a second quote; then the owner's RevokeAccess on node 1, and at once the backend's
Execute of that quote on node 2. Propagation time = the refusal's arrival − the revoke answer's
arrival (client clock, ``time.perf_counter``); it includes one Execute round trip, the client
signing the request, and nothing else, because there is no cache to invalidate: the revocation
and the reservation meet in one database transaction.

Run: ``.venv/bin/python bench/revocation_propagation.py [--trials 50] [--pg-url URL]``
(about a minute; prints a table).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import create_engine, text

from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.sdk import BackendClient, OwnerClient, SessionWardApiError
from sessionward.server import free_port
from sessionward.store.database import normalize_url

DEFAULT_PG_URL: Final = os.environ.get(
    "SESSIONWARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SWAP: Final = parse_signature(
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,"
    "address to,uint256 deadline)"
)
USDX: Final = 10**6


@dataclass
class Node:
    """One ``sessionward serve`` process; stopped by its PID."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, env: dict[str, str], log: Path) -> Node:
        port = free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "sessionward.cli", "serve", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(port, process, log)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"node exited ({self.process.returncode}):\n{tail}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node on port {self.port} did not become ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass(frozen=True)
class Trial:
    revoke_ms: float
    """The revoke call's own round trip on node 1."""
    propagation_ms: float
    """Revoke answer on node 1 → refusal answer on node 2."""
    live_execute_ms: float
    """The Execute signed on node 2 just before (the same path, allowed)."""
    refusal: str


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def run_trials(node1: str, node2: str, deployment: dict[str, Any], trials: int) -> list[Trial]:
    owner_secret = secrets.token_bytes(32)
    owner = OwnerClient(node1, owner_secret)
    wallet = owner.create_wallet()
    router = deployment["router"]
    tokens = deployment["tokens"]
    data = encode_call(
        SWAP,
        (USDX, 0, (tokens["USDX"], tokens["WETHX"]), wallet["account"], int(time.time()) + 3600),
    )
    results: list[Trial] = []
    try:
        for _ in range(trials):
            with BackendClient(node2, Secp256k1RequestSigner(secrets.token_bytes(32))) as backend:
                credential = backend.register("Propagation Bench", None, int(time.time()) + 3600)
                envelope = {
                    "capabilities": ["swap.execute"],
                    "maxValueUsd": 1_000,
                    "allowedDestinations": [router],
                    "chainId": 1,
                    "expiresAt": int(time.time()) + 900,
                }
                pending = owner.authorize_remote_access(
                    credential["credentialId"], wallet["walletId"], envelope
                )
                session = pending["sessionId"]
                owner.approve_session(session, owner.sign_grant(pending))
                live = backend.prepare_transaction(wallet["walletId"], session, router, 0, data)
                started = time.perf_counter()
                answer = backend.execute(live["txnId"])
                live_ms = (time.perf_counter() - started) * 1000
                if answer["status"] != "pending":
                    raise RuntimeError(f"the live Execute was not signed: {answer}")
                quote = backend.prepare_transaction(wallet["walletId"], session, router, 0, data)

                sent = time.perf_counter()
                owner.revoke_access(wallet["walletId"], credential["credentialId"], session)
                revoked = time.perf_counter()
                try:
                    outcome = backend.execute(quote["txnId"])
                except SessionWardApiError as refused:
                    refusal = refused.code
                else:
                    raise RuntimeError(f"SIGNED AFTER THE REVOKE RETURNED: {outcome}")
                refused_at = time.perf_counter()
                results.append(
                    Trial(
                        revoke_ms=(revoked - sent) * 1000,
                        propagation_ms=(refused_at - revoked) * 1000,
                        live_execute_ms=live_ms,
                        refusal=refusal,
                    )
                )
    finally:
        owner.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    schema = f"sw_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(args.pg_url))
    nodes: list[Node] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sessionward-propagation-") as tmp:
            data_dir = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
            env.update(
                SESSIONWARD_DATA_DIR=str(data_dir),
                SESSIONWARD_DATABASE_URL=args.pg_url,
                SESSIONWARD_DATABASE_SCHEMA=schema,
            )
            started = time.monotonic()
            nodes.append(Node.start(env, data_dir / "node-1.log"))
            nodes[0].wait_ready()
            nodes.append(Node.start(env, data_dir / "node-2.log"))
            nodes[1].wait_ready()
            ready_s = time.monotonic() - started
            deployment = demo_deployment(data_dir)
            results = run_trials(nodes[0].url, nodes[1].url, deployment, args.trials)
    finally:
        for node in nodes:
            node.stop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    report(results, ready_s)
    return 0


def demo_deployment(data_dir: Path) -> dict[str, Any]:
    """The demo world's addresses on the nodes' in-process chains: both deploy it with the
    shared deployer key from a fresh chain, so the addresses are the deterministic CREATE
    addresses of that key's first transactions; redeploying on a scratch chain here gives
    the same ones."""
    from dataclasses import asdict

    from sessionward.chain.demo import deploy_demo
    from sessionward.chain.embedded import EmbeddedChain
    from sessionward.chain.signer import LocalTransactionSigner

    deployer = LocalTransactionSigner.from_file(data_dir / "deployer.key")
    relayer = LocalTransactionSigner.from_file(data_dir / "relayer.key")
    deployment = deploy_demo(EmbeddedChain(chain_id=1), deployer=deployer, relayer=relayer.address)
    return asdict(deployment)


def report(results: Sequence[Trial], ready_s: float) -> None:
    print(
        f"# bench/revocation_propagation.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.2f}; 2 nodes on PostgreSQL (ready in {ready_s:.1f} s), "
        f"{len(results)} trials"
    )
    print()
    print(f"| {'measure':<50} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 52}|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
    rows = [
        ("revoke answer (node 1) → first refusal (node 2)", [t.propagation_ms for t in results]),
        ("RevokeAccess round trip (node 1)", [t.revoke_ms for t in results]),
        ("Execute round trip, allowed (node 2)", [t.live_execute_ms for t in results]),
    ]
    for name, values in rows:
        print(
            f"| {name:<50} | {percentile(values, 0.5):>7.1f} | {percentile(values, 0.99):>7.1f} | "
            f"{max(values, default=0):>7.1f} |"
        )
    refusals = sorted({t.refusal for t in results})
    print(f"\nRefusals: {refusals}; signatures after a revoke returned: 0 of {len(results)}.")


if __name__ == "__main__":
    raise SystemExit(main())
