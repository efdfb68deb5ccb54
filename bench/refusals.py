"""CPU per refused Prepare over 10,000 refusals, against an allowed Prepare (issue 16, item 5).

The anomaly rules used to count past decision events on every refusal (denials of the session in
the last minute, attempts of the credential after revocation in the last ten minutes), so a
refusal cost more the more refusals came before it. They now keep windowed counters, one row
per session or credential (:mod:`sessionward.store.anomaly_counters`): this shows the cost of a
refusal flat from the first refusal to the ten-thousandth.

In process, on embedded defaults (SQLite in a temporary data directory, the local vault, the
in-process chain with the demo contracts), with the service's own code path
(:meth:`Transactions.prepare` and the anomaly monitor after it; no HTTP). Steps:

1. ``--allowed`` allowed Prepares of a 1-USDX swap on an approved session (CPU per call);
2. ``--refusals`` refused Prepares by one backend with the DEFAULT anomaly rules: a call to a
   destination the envelope does not allow (``TARGET_NOT_ALLOWED``); the fifth within a minute
   revokes the session (denial burst), every later one is an attempt after revocation
   (``SESSION_REVOKED``, then ``CREDENTIAL_REVOKED`` once three attempts revoked the
   credential), each raising its warning alert. CPU per refusal is printed per block of 1,000,
   next to the CPU of ``--allowed / 5`` allowed Prepares run right after that block (the same
   load on the machine, the same table sizes).

CPU is the process's (``time.process_time``: every thread, so background work counts too).
Clock: wall time, so the windows slide as they would in production.

Run: ``.venv/bin/python bench/refusals.py [--refusals 10000] [--allowed 1000]`` (about 40 s on
two idle cores).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sessionward.domain.abi import encode_call, parse_signature
from sessionward.service.config import Settings
from sessionward.service.errors import ServiceError
from sessionward.service.runtime import build_runtime
from sessionward.service.waas import Waas
from sessionward.simulate import Agent, SimSession, Tally, World

USDX: Final = 10**6
SWAP: Final = parse_signature("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)")
TRANSFER: Final = parse_signature("transfer(address,uint256)")
STRANGER: Final = "0x4444444444444444444444444444444444444444"
BLOCK: Final = 1_000


class WallClock:
    """Wall-clock seconds, moved forward when the chain is ahead (``World.settle``)."""

    def __init__(self) -> None:
        self._offset = 0

    def __call__(self) -> int:
        return int(time.time()) + self._offset

    def advance_to(self, at: int) -> None:
        self._offset += max(0, at - self())


def _prepare(world: World, session: SimSession, to: str, data: bytes) -> bool:
    caller = world.caller(session.credential_id)
    try:
        world.waas.transactions.prepare(
            caller,
            wallet_id=session.agent.wallet.wallet_id,
            session_id=session.session_id,
            to=to,
            value=0,
            data=data,
        )
    except ServiceError:
        return False
    return True


def _timed(count: int, call: object) -> tuple[float, float]:
    """CPU ms per call and wall ms per call of ``count`` calls of ``call()``."""
    assert callable(call)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    return (
        (time.process_time() - cpu) * 1000 / count,
        (time.perf_counter() - wall) * 1000 / count,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refusals", type=int, default=10_000)
    parser.add_argument("--allowed", type=int, default=1_000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the vault's key-file warning, one line per alert

    with tempfile.TemporaryDirectory() as data_dir:
        clock = WallClock()
        settings = Settings(data_dir=Path(data_dir), run_relayer=False)
        waas = Waas(build_runtime(settings, clock=clock))
        try:
            world = World(waas, clock, Tally(), [])  # type: ignore[arg-type]
            wallet = world.add_wallet()
            agent = Agent("Bench Agent", wallet)  # refused until its credential is revoked
            world.register(agent, 86_400)
            good = Agent("Good Agent", wallet)
            world.register(good, 86_400)
            allowed = world.grant(good, ttl_s=1_800, usd_cap=1_000_000)
            refused = world.grant(agent, ttl_s=1_800, usd_cap=1_000_000)
            swap = encode_call(
                SWAP, (USDX, 0, (world.usdx, world.wethx), wallet.account, clock() + 3_600)
            )
            off_target = encode_call(TRANSFER, (STRANGER, 1))

            def allow() -> None:
                assert _prepare(world, allowed, world.router, swap)

            def refuse() -> None:
                assert not _prepare(world, refused, world.usdx, off_target)

            _timed(50, allow)  # warm-up (caches, first statements)
            allowed_cpu, allowed_wall = _timed(args.allowed, allow)
            blocks: list[tuple[float, float, float]] = []
            for _ in range(args.refusals // BLOCK):
                cpu, wall = _timed(BLOCK, refuse)
                # Allowed calls right after each block: the same machine load, the same tables.
                beside, _ = _timed(args.allowed // 5, allow)
                blocks.append((cpu, wall, beside))
            credential = world.rt.store.credentials.get(agent.credential_id)
            revoked = credential is not None and credential.revoked_at is not None
        finally:
            waas.stop()

    print(f"# refusals bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}")
    print(f"allowed Prepare: {allowed_cpu:.2f} ms CPU, {allowed_wall:.2f} ms wall per call")
    print(f"credential revoked by the rules: {revoked}")
    print(
        f"{'refusals':>13} {'CPU ms/call':>12} {'wall ms/call':>13} "
        f"{'allowed CPU ms':>15} {'refused/allowed':>16}"
    )
    for index, (cpu, wall, beside) in enumerate(blocks):
        span = f"{index * BLOCK + 1}-{(index + 1) * BLOCK}"
        print(f"{span:>13} {cpu:>12.2f} {wall:>13.2f} {beside:>15.2f} {cpu / beside:>16.2f}")
    cpus = [cpu for cpu, _, _ in blocks]
    ratios = [cpu / beside for cpu, _, beside in blocks]
    print(
        f"refusal CPU: first block {cpus[0]:.2f} ms, last {cpus[-1]:.2f} ms, "
        f"median {statistics.median(cpus):.2f} ms; refused/allowed median "
        f"{statistics.median(ratios):.2f} (first {ratios[0]:.2f}, last {ratios[-1]:.2f})"
    )


if __name__ == "__main__":
    main()
