"""Fair scheduling between tenants (issue 14, tenant isolation): one tenant's flood cannot
starve another.

The scheduler's contract is checked deterministically, on an event loop with no server and no
clock: waiting tenants are served round-robin, a newcomer goes before a tenant already holding
slots, a tenant's queue is bounded (429 at once past it), a cancelled waiter leaves no trace.
The app answers a 429 only after the configured hold (backpressure). Then the goal itself,
measured: over a real server on loopback, a victim backend's p99 while another backend floods
from eight connections in another process stays within twice its p99 alone, both measured in
one run, interleaved.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Api, TestClient, path_of, raw_json, refused, register_backend

from sessionward.api import create_app
from sessionward.api.errors import ApiError
from sessionward.api.fairness import FairScheduler, claimed_credential, tenant_of
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import BackendClient
from sessionward.server import BackgroundServer
from sessionward.service.config import ConfigError, Settings
from sessionward.service.waas import Waas

SIGNATURE = "Oms-Wallet-Signature"

# --- the scheduler, deterministically ------------------------------------------------------


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class _Run:
    """Requests through one scheduler: each holds its slot until released, in order served."""

    def __init__(self, scheduler: FairScheduler) -> None:
        self.scheduler = scheduler
        self.served: list[str] = []
        self._release: dict[str, asyncio.Event] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def submit(self, tenant: str, name: str) -> None:
        release = self._release[name] = asyncio.Event()

        async def request() -> None:
            async with self.scheduler.turn(tenant):
                self.served.append(name)
                await release.wait()

        self.tasks.append(asyncio.create_task(request()))

    async def finish(self, name: str) -> None:
        self._release[name].set()
        await _settle()

    async def finish_all_in_turn(self) -> None:
        """Release every request as soon as it is served, until none is left."""
        done = 0
        while done < len(self._release):
            await _settle()
            for name in self.served[done:]:
                self._release[name].set()
                done += 1
        await asyncio.gather(*self.tasks)


def test_a_tenant_alone_gets_every_slot() -> None:
    async def scenario() -> None:
        scheduler = FairScheduler(slots=3, max_queued=10)
        run = _Run(scheduler)
        for i in range(5):
            run.submit("a", f"a{i}")
        await _settle()
        assert run.served == ["a0", "a1", "a2"]
        assert (scheduler.running, scheduler.waiting("a")) == (3, 2)
        await run.finish_all_in_turn()
        assert (scheduler.running, scheduler.waiting()) == (0, 0)

    asyncio.run(scenario())


def test_waiting_tenants_are_served_round_robin() -> None:
    async def scenario() -> None:
        run = _Run(FairScheduler(slots=1, max_queued=10))
        run.submit("x", "blocker")
        for tenant in "abc":  # a queues all of its requests first
            for i in range(3):
                run.submit(tenant, f"{tenant}{i}")
        await _settle()
        await run.finish("blocker")
        await run.finish_all_in_turn()
        assert run.served == ["blocker", "a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]

    asyncio.run(scenario())


def test_a_newcomer_is_served_before_a_flooder_holding_slots() -> None:
    """The flooder holds both slots and queues ten more; the victim, arriving last, gets the
    next slot that frees: it waits for one running request, never behind the flood's queue."""

    async def scenario() -> None:
        scheduler = FairScheduler(slots=2, max_queued=64)
        run = _Run(scheduler)
        for i in range(12):
            run.submit("flooder", f"f{i}")
        await _settle()
        run.submit("victim", "v")
        await _settle()
        assert run.served == ["f0", "f1"]
        await run.finish("f0")
        assert run.served == ["f0", "f1", "v"]
        await run.finish_all_in_turn()

    asyncio.run(scenario())


def test_a_tenant_past_its_queue_bound_is_refused_at_once_and_others_still_queue() -> None:
    async def scenario() -> None:
        scheduler = FairScheduler(slots=1, max_queued=2)
        run = _Run(scheduler)
        run.submit("x", "blocker")
        run.submit("a", "a0")
        run.submit("a", "a1")
        await _settle()
        with pytest.raises(ApiError) as refusal:
            async with scheduler.turn("a"):
                pytest.fail("a third waiting request of one tenant must not run")
        assert refusal.value.status == 429
        assert refusal.value.code == "RATE_LIMITED_REQUESTS"
        assert refusal.value.headers["Retry-After"] == "1"
        run.submit("b", "b0")
        await _settle()
        assert (scheduler.waiting("a"), scheduler.waiting("b")) == (2, 1)
        await run.finish("blocker")
        await run.finish_all_in_turn()
        assert run.served == ["blocker", "a0", "b0", "a1"]

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_its_queue_and_no_slot_is_lost() -> None:
    async def scenario() -> None:
        scheduler = FairScheduler(slots=1, max_queued=10)
        run = _Run(scheduler)
        run.submit("x", "blocker")
        run.submit("a", "gone")
        run.submit("b", "b0")
        await _settle()
        run.tasks[1].cancel()
        await _settle()
        assert scheduler.waiting("a") == 0
        await run.finish("blocker")
        assert run.served == ["blocker", "b0"]
        await run.finish("b0")
        assert (scheduler.running, scheduler.waiting()) == (0, 0)

    asyncio.run(scenario())


def test_the_tenant_is_the_claimed_credential_at_the_peer_address() -> None:
    header = 'alg="secp256k1",cred="cred_abc",nonce=1,ts=2,sig="0x00"'
    assert tenant_of(header, "10.0.0.1") == "cred_abc@10.0.0.1"
    # A forger naming that credential from elsewhere queues apart from its owner.
    assert tenant_of(header, "10.0.0.2") != tenant_of(header, "10.0.0.1")
    assert tenant_of(None, "10.0.0.1") == "public@10.0.0.1"
    assert claimed_credential(header) == "cred_abc"
    assert claimed_credential(header.replace("cred_abc", "self")) is None
    assert claimed_credential("garbage") is None


def test_the_scheduling_settings_are_checked() -> None:
    for bad in (
        {"fair_max_running": 0},
        {"fair_max_running_units": 0},
        {"fair_max_queued_per_tenant": -1},
        {"rate_limit_hold_s": -1},
    ):
        with pytest.raises(ConfigError):
            Settings().with_document(bad)
    loaded = Settings.load(
        {
            "SESSIONWARD_FAIR_SCHEDULING_ENABLED": "off",
            "SESSIONWARD_FAIR_MAX_RUNNING": "3",
            "SESSIONWARD_RATE_LIMIT_HOLD_S": "0.5",
        }
    )
    assert (loaded.fair_scheduling_enabled, loaded.fair_max_running) == (False, 3)
    assert loaded.rate_limit_hold_s == 0.5
    assert Settings().fair_scheduling_enabled and Settings().rate_limit_enabled


def test_a_tenant_just_served_waits_behind_one_never_served() -> None:
    """A's first request started without waiting; when it ends, B (never served) goes before
    A's next, though A began waiting first."""

    async def scenario() -> None:
        run = _Run(FairScheduler(slots=1, max_queued=10))
        run.submit("a", "a0")
        run.submit("a", "a1")
        run.submit("b", "b0")
        await _settle()
        await run.finish_all_in_turn()
        assert run.served == ["a0", "b0", "a1"]

    asyncio.run(scenario())


# --- wired into the app ------------------------------------------------------------------------


def test_the_app_serves_a_victim_before_the_rest_of_a_flood(tmp_path: Path) -> None:
    """One slot; a flooder's six ListSessions arrive before the victim's one. The victim's is
    the second to run (after the flooder's first, which had the slot); without fair
    scheduling the worker threads take them in arrival order, the victim's last."""
    settings = Settings(
        data_dir=tmp_path, run_relayer=False, rate_limit_enabled=False, fair_max_running=1
    )
    waas = Waas.from_settings(settings)
    try:
        app = create_app(waas)
        with TestClient(app) as client:
            api = Api(client)
            flooder, victim = register_backend(api), register_backend(api)
        order: list[str] = []
        answered = app._answered

        def recorded(method: Any, headers: Any, *args: Any) -> Any:
            order.append("victim" if victim.credential_id in headers[SIGNATURE] else "flooder")
            time.sleep(0.02)
            return answered(method, headers, *args)

        app._answered = recorded  # type: ignore[method-assign,assignment]

        async def burst() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sw") as http:

                async def list_sessions(actor: Any) -> int:
                    raw = raw_json({"limit": 5})
                    headers = {SIGNATURE: actor.header("ListSessions", raw)}
                    response = await http.post(
                        path_of("ListSessions"), content=raw, headers=headers
                    )
                    return response.status_code

                calls = [list_sessions(flooder) for _ in range(6)] + [list_sessions(victim)]
                return await asyncio.gather(*calls)

        assert asyncio.run(burst()) == [200] * 7
        assert order == ["flooder", "victim"] + ["flooder"] * 5
    finally:
        waas.stop()


# --- the hold: backpressure on refusals ------------------------------------------------------

HOLD_S = 0.4


@pytest.fixture(scope="module")
def tight_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("waas"),
        run_relayer=False,
        rate_limit_per_credential_rps=0.2,
        rate_limit_burst=1,
        rate_limit_hold_s=HOLD_S,
    )
    waas = Waas.from_settings(settings)
    try:
        with TestClient(create_app(waas)) as client:
            yield Api(client)
    finally:
        waas.stop()


def test_a_request_over_the_rate_is_refused_only_after_the_hold(tight_api: Api) -> None:
    backend = register_backend(tight_api)
    assert tight_api.call("ListSessions", {"limit": 5}, backend).status_code == 200
    started = time.perf_counter()
    response = tight_api.call("ListSessions", {"limit": 5}, backend)
    held = time.perf_counter() - started
    refused(response, 429, "RATE_LIMITED_REQUESTS")
    assert int(response.headers["Retry-After"]) >= 1
    assert held >= HOLD_S


def test_a_signer_over_its_rate_is_refused_before_any_worker_thread(tmp_path: Path) -> None:
    """Once a credential's bucket is empty, its next request is answered 429 from the event
    loop: it never reaches authentication, the credential read or the method."""
    settings = Settings(
        data_dir=tmp_path,
        run_relayer=False,
        rate_limit_per_credential_rps=0.2,
        rate_limit_burst=1,
        rate_limit_hold_s=0,
    )
    waas = Waas.from_settings(settings)
    try:
        app = create_app(waas)
        with TestClient(app) as client:
            api = Api(client)
            backend = register_backend(api)
            reached: list[str] = []
            answered = app._answered

            def counted(method: Any, *args: Any) -> Any:
                reached.append(method.name)
                return answered(method, *args)

            app._answered = counted  # type: ignore[method-assign,assignment]
            assert api.call("ListSessions", {"limit": 5}, backend).status_code == 200
            refused(api.call("ListSessions", {"limit": 5}, backend), 429, "RATE_LIMITED_REQUESTS")
            assert reached == ["ListSessions"]
    finally:
        waas.stop()


# --- the goal, measured ------------------------------------------------------------------------

FLOODER = """
import json, sys, threading
from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk.errors import SessionWardApiError
from sessionward.sdk.transport import Transport

url, secret, credential, threads = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], int(sys.argv[4])
signer = Secp256k1RequestSigner(secret)
flooding, done, lock, counts = threading.Event(), threading.Event(), threading.Lock(), {}

def flood():
    transport = Transport(url, retries=0)
    while not done.is_set():
        if not flooding.wait(0.05):
            continue
        try:
            transport.call("ListSessions", {"limit": 50}, signer=signer, credential_id=credential)
            key = "200"
        except SessionWardApiError as exc:
            key = str(exc.status)
        with lock:
            counts[key] = counts.get(key, 0) + 1
    transport.close()

workers = [threading.Thread(target=flood) for _ in range(threads)]
for worker in workers:
    worker.start()
for line in sys.stdin:
    (flooding.set if line.strip() == "flood" else flooding.clear)()
done.set()
for worker in workers:
    worker.join()
print(json.dumps(counts), flush=True)
"""
"""A tenant flooding ListSessions from ``threads`` connections, without retries, while its
stdin says ``flood`` (``pause`` stops it); its answers' counts on stdout at the end."""

ROUNDS = 6
SAMPLES = 50
PACE_S = 0.02
ATTEMPTS = 3


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _victim(client: BackendClient, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        client.list_sessions(limit=50)
        latencies.append(time.perf_counter() - started)
        time.sleep(PACE_S)
    return latencies


def _registered(url: str, secret: bytes) -> BackendClient:
    signer = Secp256k1RequestSigner(secret)
    with BackendClient(url, signer) as client:
        credential = client.register("Tenant", "https://tenant.example", int(time.time()) + 3600)
    return BackendClient(url, Secp256k1RequestSigner(secret), str(credential["credentialId"]))


def _measure(url: str, victim: BackendClient, flooder: subprocess.Popen[str]) -> tuple[float, ...]:
    """Idle and flooded windows, interleaved (so that the machine's other load falls on both
    alike): the victim's p99 idle and flooded (seconds) and their ratio."""
    assert flooder.stdin is not None
    idle: list[float] = []
    flooded: list[float] = []
    for _ in range(ROUNDS):
        flooder.stdin.write("pause\n")
        flooder.stdin.flush()
        time.sleep(0.6)  # its requests in flight (and held refusals) are answered
        idle += _victim(victim, SAMPLES)
        flooder.stdin.write("flood\n")
        flooder.stdin.flush()
        time.sleep(0.6)  # under way, past its burst
        flooded += _victim(victim, SAMPLES)
    return _p99(idle), _p99(flooded), _p99(flooded) / _p99(idle)


@pytest.mark.slow
def test_a_flooding_tenant_leaves_another_tenants_p99_within_twice_its_idle_p99(
    tmp_path: Path,
) -> None:
    """Rationale of the timing: both p99s come from one run, in interleaved windows (300
    requests each), on the machine the test runs on, so the ratio does not depend on the
    machine's speed. Other work on a shared machine still lands in one window or the other by
    chance, and a p99 of 300 is the third-worst request, so the claim is that one of up to
    three measurements meets it. On a machine that busy the ratio cannot tell a fair node
    from an unfair one (measured on a 2-core machine at load 6-8: fair scheduling off gave
    ratios from 0.7 to 2.8, docs/benchmarks.md); the deterministic tests above are what
    pins the scheduling down, this one checks the goal end to end. The flooder must have been
    refused (429) to count: it really asked for more than its rate."""
    settings = Settings(data_dir=tmp_path, run_relayer=False)
    assert settings.fair_scheduling_enabled and settings.rate_limit_enabled  # the defaults
    waas = Waas.from_settings(settings)
    try:
        with BackgroundServer(waas) as url:
            victim = _registered(url, secrets.token_bytes(32))
            secret = secrets.token_bytes(32)
            flood_as = _registered(url, secret)
            flood_as.close()
            flooder = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    FLOODER,
                    url,
                    secret.hex(),
                    str(flood_as.credential_id),
                    "8",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                _victim(victim, 20)  # warm-up
                measured = []
                for _ in range(ATTEMPTS):
                    measured.append(_measure(url, victim, flooder))
                    if measured[-1][2] <= 2.0:
                        break
            finally:
                out, _ = flooder.communicate(timeout=30)
            victim.close()
    finally:
        waas.stop()
    counts: dict[str, Any] = json.loads(out)
    assert counts.get("429", 0) > 0 and counts.get("200", 0) > 0, counts
    report = [f"idle {i * 1000:.1f} ms, flooded {f * 1000:.1f} ms: {r:.2f}" for i, f, r in measured]
    assert min(r for _, _, r in measured) <= 2.0, report


def test_the_environment_still_sets_locations_lists_flags_and_numbers() -> None:
    """``Settings.load`` read in named steps (behaviour unchanged)."""
    loaded = Settings.load(
        {
            "SESSIONWARD_DATA_DIR": "/tmp/sw",
            "SESSIONWARD_SERVICE_ID": "https://sw.example",
            "SESSIONWARD_WEBHOOK_URLS": " https://a.example/hook, ,https://b.example/hook",
            "SESSIONWARD_CORS_ORIGINS": "https://owner.example",
            "SESSIONWARD_OPS_KEYS": "ops-1:ecdsa-p256k-eip191:0xABC",
            "SESSIONWARD_RATE_LIMIT_ENABLED": "no",
            "SESSIONWARD_WEBHOOK_MAX_ATTEMPTS": "3",
        }
    )
    assert loaded.data_dir == Path("/tmp/sw") and loaded.service_id == "https://sw.example"
    assert loaded.webhook_urls == ("https://a.example/hook", "https://b.example/hook")
    assert loaded.cors_origins == ("https://owner.example",)
    assert [(o.id, o.public_key) for o in loaded.ops_credentials] == [("ops-1", "0xabc")]
    assert (loaded.rate_limit_enabled, loaded.webhook_max_attempts) == (False, 3)
    with pytest.raises(ConfigError, match="SESSIONWARD_RATE_LIMIT_ENABLED"):
        Settings.load({"SESSIONWARD_RATE_LIMIT_ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="SESSIONWARD_FAIR_MAX_RUNNING must be a number"):
        Settings.load({"SESSIONWARD_FAIR_MAX_RUNNING": "two"})
