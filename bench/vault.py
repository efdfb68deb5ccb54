"""The PKCS#11 vault (SoftHSM2) against the local vault, in one run.

1. **Signatures**: each backend signs 32-byte digests with 16 of its keys, round robin, for
   ``--seconds`` on one thread and then on two threads at once; each call is timed
   (``Vault.sign`` with the key's record handed in, as the execution transaction does, so no
   record read is timed). Key records live in memory: this is the vault's own cost. Key
   generation is timed too (``create_key``: in the token, or a secret encrypted at rest).
2. **Execute/s on embedded defaults** with each backend (SQLite, the in-process chain, the
   relayer off): one approved swap session, ``--executes`` quotes prepared first (not timed),
   then each Execute timed in process (the service use case, no HTTP), one after another, the
   backends taking turns in chunks; the vault's ``sign`` inside those Executes is timed on its
   own ("of which vault.sign").

The PKCS#11 backend runs on a throwaway SoftHSM2 token (``vault.softhsm.init_softhsm``) in a
temporary directory, removed at the end. Run: ``.venv/bin/python bench/vault.py [--seconds 3]
[--executes 200] [--json FILE]`` (under a minute on two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "service"))  # the service tests' World harness

from sessionward.vault.interface import RecordVault  # noqa: E402
from sessionward.vault.kek import KeyEncryptionKey  # noqa: E402
from sessionward.vault.local import LocalVault  # noqa: E402
from sessionward.vault.memory import InMemoryKeyRecordStore  # noqa: E402
from sessionward.vault.softhsm import ENV_CONF, init_softhsm  # noqa: E402

TOKEN = "sessionward-bench"
KEYS = 16


@dataclass
class Timing:
    case: str
    backend: str
    count: int
    per_second: float
    p50_us: float
    p99_us: float

    def row(self) -> str:
        return (
            f"| {self.case} | {self.backend} | {self.count:,} "
            f"| {f'{self.per_second:,.0f}' if self.per_second else '–'} "
            f"| {self.p50_us:,.1f} | {self.p99_us:,.1f} |"
        )


def _summary(case: str, backend: str, samples_ns: list[int], elapsed_s: float) -> Timing:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Timing(
        case,
        backend,
        len(ordered),
        len(ordered) / elapsed_s,
        statistics.median(ordered) / 1000,
        p99 / 1000,
    )


def _open(backend: str, records: InMemoryKeyRecordStore, pin: str) -> RecordVault:
    if backend == "local":
        return LocalVault(records, KeyEncryptionKey.generate())
    from sessionward.vault.hsm import Pkcs11Vault, TokenOptions

    return Pkcs11Vault.open(records, options=TokenOptions(token_label=TOKEN), pin=pin)


ROUNDS = 6
"""Each measurement alternates between the backends in this many rounds, so both see the same
load on a shared machine."""


@dataclass
class Signer:
    """One backend's vault with its keys (records read once, handed in as Execute does)."""

    backend: str
    vault: RecordVault
    keyed: list[tuple[str, Any]]
    digests: list[bytes]

    def sign_for(self, duration: float, into: list[int]) -> None:
        deadline = time.perf_counter() + duration
        now, i = int(time.time()), 0
        while time.perf_counter() < deadline:
            key_id, record = self.keyed[i % len(self.keyed)]
            t0 = time.perf_counter_ns()
            self.vault.sign(key_id, self.digests[i % 256], now=now, record=record)
            into.append(time.perf_counter_ns() - t0)
            i += 1


def bench_signing(pin: str, seconds: float) -> list[Timing]:
    timings: list[Timing] = []
    signers: list[Signer] = []
    try:
        for backend in ("local", "pkcs11"):
            records = InMemoryKeyRecordStore()
            vault = _open(backend, records, pin)
            created: list[int] = []
            handles = []
            started = time.perf_counter()
            for _ in range(KEYS):
                t0 = time.perf_counter_ns()
                handles.append(vault.create_key())
                created.append(time.perf_counter_ns() - t0)
            timings.append(_summary("create_key", backend, created, time.perf_counter() - started))
            keyed = [(h.key_id, records.get(h.key_id)) for h in handles]
            signer = Signer(backend, vault, keyed, [secrets.token_bytes(32) for _ in range(256)])
            signer.sign_for(0.3, [])  # warm-up (key handles cached, code paths hot)
            signers.append(signer)
        for threads in (1, 2):
            samples: dict[str, list[int]] = {s.backend: [] for s in signers}
            elapsed: dict[str, float] = {s.backend: 0.0 for s in signers}
            for _ in range(ROUNDS):
                for signer in signers:
                    chunks: list[list[int]] = [[] for _ in range(threads)]
                    workers = [
                        threading.Thread(target=signer.sign_for, args=(seconds / ROUNDS, c))
                        for c in chunks
                    ]
                    started = time.perf_counter()
                    for w in workers:
                        w.start()
                    for w in workers:
                        w.join()
                    elapsed[signer.backend] += time.perf_counter() - started
                    samples[signer.backend] += [x for c in chunks for x in c]
            for signer in signers:
                timings.append(
                    _summary(
                        f"sign, {threads} thread(s)",
                        signer.backend,
                        samples[signer.backend],
                        elapsed[signer.backend],
                    )
                )
        return timings
    finally:
        for signer in signers:
            signer.vault.close()


def bench_execute(root: Path, executes: int) -> list[Timing]:
    from service_support import World

    from sessionward.service.config import AnomalyRules

    worlds: dict[str, Any] = {}
    try:
        queued: dict[str, tuple[Any, list[str]]] = {}
        signing: dict[str, list[int]] = {}
        for backend in ("local", "pkcs11"):
            extra: dict[str, Any] = {"run_relayer": False, "rate_limit_enabled": False}
            if backend == "pkcs11":
                extra.update(vault="pkcs11", pkcs11_token_label=TOKEN)
            world = worlds[backend] = World.build(
                root / f"data-{backend}", anomaly=AnomalyRules(velocity_fraction=1.0), **extra
            )
            session = world.session(maxValueUsd=1_000_000)
            queued[backend] = (session, [world.quote(session, 1)["txnId"] for _ in range(executes)])
            signing[backend] = _time_signatures(world.rt.vault)
        samples: dict[str, list[int]] = {b: [] for b in worlds}
        elapsed: dict[str, float] = {b: 0.0 for b in worlds}
        chunk = max(1, executes // ROUNDS)
        for start in range(0, executes, chunk):
            for backend, world in worlds.items():
                session, quotes = queued[backend]
                started = time.perf_counter()
                for txn_id in quotes[start : start + chunk]:
                    t0 = time.perf_counter_ns()
                    view = world.execute(session, txn_id)
                    samples[backend].append(time.perf_counter_ns() - t0)
                    if view["status"] not in ("pending", "submitted"):
                        raise SystemExit(f"Execute on {backend} answered {view['status']}")
                elapsed[backend] += time.perf_counter() - started
        timings = []
        for backend in worlds:
            timings.append(
                _summary("Execute (in process)", backend, samples[backend], elapsed[backend])
            )
            within = _summary("of which vault.sign", backend, signing[backend], 1.0)
            within.per_second = 0.0  # not a rate: the signatures inside those Executes
            timings.append(within)
        return timings
    finally:
        for world in worlds.values():
            world.close()


def _time_signatures(vault: Any) -> list[int]:
    """Times every ``vault.sign`` from now on (into the list returned)."""
    signing: list[int] = []
    sign = vault.sign

    def timed_sign(*args: Any, **kwargs: Any) -> bytes:
        t0 = time.perf_counter_ns()
        try:
            result: bytes = sign(*args, **kwargs)
            return result
        finally:
            signing.append(time.perf_counter_ns() - t0)

    vault.sign = timed_sign
    return signing


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load average {load}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="signing time per case")
    parser.add_argument("--executes", type=int, default=200, help="Executes per backend")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if shutil.which("softhsm2-util") is None:
        print("softhsm2-util is missing: ./run bench installs Debian's softhsm2", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="sessionward-bench-vault-"))
    try:
        pin = secrets.token_hex(8)
        # Before the module is first loaded in this process: it reads the variable once.
        os.environ[ENV_CONF] = str(init_softhsm(root / "softhsm", {TOKEN: pin}))
        os.environ["SESSIONWARD_PKCS11_PIN"] = pin  # the runtime's PIN source (throwaway)
        print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {_machine()}")
        results: list[Timing] = []
        results += bench_signing(pin, args.seconds)
        results += bench_execute(root, args.executes)
        print("| case | backend | count | per second | p50 µs | p99 µs |")
        print("|---|---|---:|---:|---:|---:|")
        for timing in results:
            print(timing.row())
        by = {(t.case, t.backend): t for t in results}
        one = "sign, 1 thread(s)"
        ratio = by[(one, "local")].per_second / by[(one, "pkcs11")].per_second
        print(f"local / pkcs11 signatures per second (one thread): {ratio:.2f}x")
        if args.json:
            args.json.write_text(json.dumps([asdict(t) for t in results], indent=2))
        print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
