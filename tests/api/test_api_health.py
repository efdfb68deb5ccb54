"""Honest health (issue 13.7) and the small HTTP courtesies of issue 14.9: ``/healthz`` is
liveness, ``/readyz`` readiness with a reason per check; a read-only data directory, a stopped
chain node and a dropped database connection each answer 503 (the last with ``Retry-After``,
and the retry succeeds); ``HEAD /healthz`` works; CORS is off unless an origin is configured."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest
from api_support import Api, TestClient, create_owner, refused
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

import anvil_node
from database_support import PG_URL
from sessionward.api import create_app
from sessionward.api.health import database_outage
from sessionward.server import BackgroundServer
from sessionward.service.config import Settings
from sessionward.service.waas import Waas

OWNER_APP = "https://owner.example"


def test_head_healthz_answers_without_a_body(client: TestClient) -> None:
    response = client.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


def test_readyz_reports_every_check_when_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["status"] == "ready"
    assert {name for name, check in doc["checks"].items() if check["ok"]} == {
        "database",
        "dataDir",
        "chain",
        "relayer",
    }
    assert client.head("/readyz").status_code == 200


def test_cors_is_off_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/v1/Waas/ListAccess",
        headers={"Origin": OWNER_APP, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    answer = client.get("/healthz", headers={"Origin": OWNER_APP})
    assert "access-control-allow-origin" not in answer.headers


def test_cors_answers_exactly_the_configured_origin(waas: Waas) -> None:
    settings = waas.runtime.settings
    waas.runtime.settings = replace(settings, cors_origins=(OWNER_APP,))
    try:
        app = create_app(waas)
    finally:
        waas.runtime.settings = settings
    with TestClient(app) as client:
        preflight = client.options(
            "/v1/Waas/ListAccess",
            headers={
                "Origin": OWNER_APP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "oms-wallet-signature, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == OWNER_APP
        other = client.options(
            "/v1/Waas/ListAccess",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        answer = client.get("/healthz", headers={"Origin": OWNER_APP})
        assert answer.headers["access-control-allow-origin"] == OWNER_APP
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


# --- faults ----------------------------------------------------------------------------------


@contextmanager
def _service(settings: Settings) -> Iterator[TestClient]:
    waas = Waas.from_settings(settings)
    try:
        with TestClient(create_app(waas)) as client:
            yield client
    finally:
        waas.stop()
        waas.runtime.close()


@contextmanager
def _read_only_switch(
    directory: Path,
) -> Iterator[tuple[Callable[[], None], Callable[[], None]]]:
    """``(make_read_only, make_writable)`` for ``directory``: a tmpfs remounted read-only when
    running as root (whom permission bits do not stop), mode 0500 otherwise."""
    if os.geteuid() != 0:
        yield (lambda: directory.chmod(0o500)), (lambda: directory.chmod(0o700))
        directory.chmod(0o700)
        return

    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(directory)], check=True)

    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(directory)], check=True)
    try:
        yield (lambda: remount("ro")), (lambda: remount("rw"))
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def test_a_read_only_data_directory_makes_readyz_answer_503_with_its_reason(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with ExitStack() as stack:
        read_only, writable = stack.enter_context(_read_only_switch(data))
        # The database elsewhere: a mount with a file open for writing cannot turn read-only.
        database = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
        settings = Settings(data_dir=data, database_url=database, run_relayer=False)
        client = stack.enter_context(_service(settings))
        assert client.get("/readyz").status_code == 200
        read_only()
        try:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            doc = response.json()
            assert doc["status"] == "unavailable"
            assert doc["checks"]["dataDir"]["ok"] is False
            assert (
                "Read-only" in doc["checks"]["dataDir"]["reason"]
                or "Permission" in (doc["checks"]["dataDir"]["reason"])
            )
            assert client.get("/healthz").status_code == 200  # alive, just not ready
        finally:
            writable()
        assert client.get("/readyz").status_code == 200


def test_a_stopped_chain_node_makes_readyz_answer_503(tmp_path: Path) -> None:
    process, url = anvil_node.start(1)
    try:
        with _service(Settings(data_dir=tmp_path, rpc_url=url, run_relayer=False)) as client:
            assert client.get("/readyz").status_code == 200
            anvil_node.stop(process)
            response = client.get("/readyz")
            assert response.status_code == 503
            doc = response.json()
            assert doc["checks"]["chain"]["ok"] is False
            assert doc["checks"]["chain"]["reason"]
            assert doc["checks"]["database"]["ok"] is True
    finally:
        anvil_node.stop(process)


@pytest.mark.postgres
def test_a_dropped_database_connection_answers_503_and_the_retry_succeeds(tmp_path: Path) -> None:
    schema = f"h5_health_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=tmp_path, database_url=PG_URL, database_schema=schema, run_relayer=False
    )
    admin = create_engine(PG_URL)
    try:
        with _service(settings) as client:
            api = Api(client)
            owner = create_owner(api)
            body = {"walletId": owner.extra["walletId"]}
            assert api.call("ListAccess", body, owner).status_code == 200
            pids = _pooled_backends(client)
            with admin.begin() as conn:
                for pid in pids:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            dropped = api.call("ListAccess", body, owner)
            doc = refused(dropped, 503, "DATABASE_UNAVAILABLE")
            assert dropped.headers["retry-after"] == "1"
            assert "Traceback" not in dropped.text and doc["error"] == "Unavailable"
            retried = api.call("ListAccess", body, owner)
            assert retried.status_code == 200, retried.text
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _pooled_backends(client: TestClient) -> list[int]:
    """The PostgreSQL backend of every connection the service's pool holds (checked out all
    at once, so each is a different one)."""
    app = client.app
    engine = app.waas.runtime.store.db.engine  # type: ignore[attr-defined]
    pids: list[int] = []
    with ExitStack() as stack:
        for _ in range(engine.pool.checkedin()):
            conn = stack.enter_context(engine.connect())
            pids.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return pids


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (psycopg.OperationalError("terminating connection due to administrator command"), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (sqlite3.OperationalError("disk I/O error"), True),
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (RuntimeError("wrapped"), False),
        (ValueError("a bug"), False),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    ],
)
def test_what_counts_as_a_database_outage(exc: BaseException, outage: bool) -> None:
    assert database_outage(exc) is outage


def test_an_outage_raised_by_the_driver_itself_answers_503_and_the_retry_succeeds(
    waas: Waas, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(waas)
    with TestClient(app) as client:
        api = Api(client)
        owner = create_owner(api)
        body = {"walletId": owner.extra["walletId"]}
        lookup = waas.credentials.signer
        calls = []

        def drop_once(credential_id: str) -> object:
            if not calls:
                calls.append(credential_id)
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return lookup(credential_id)

        monkeypatch.setattr(waas.credentials, "signer", drop_once)
        dropped = api.call("ListAccess", body, owner)
        refused(dropped, 503, "DATABASE_UNAVAILABLE")
        assert dropped.headers["retry-after"] == "1"
        assert api.call("ListAccess", body, owner).status_code == 200


def test_readyz_reports_the_relayer_lease_of_a_relaying_node(tmp_path: Path) -> None:
    waas = Waas.from_settings(Settings(data_dir=tmp_path, relayer_poll_s=0.05))
    try:
        with BackgroundServer(waas) as url:
            deadline = time.monotonic() + 10
            lease = None
            while lease != "held" and time.monotonic() < deadline:
                doc = httpx.get(f"{url}/readyz", timeout=5).json()
                lease = doc["checks"]["relayer"]["lease"]
                time.sleep(0.05)
            assert lease == "held"
    finally:
        waas.runtime.close()


def test_a_full_disk_makes_readyz_answer_503_with_its_reason(tmp_path: Path) -> None:
    # This machine kind (and CI) runs as root; elsewhere the test fails rather than skips.
    assert os.geteuid() == 0, "needs a small tmpfs of its own (mount), which only root can make"
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(data)], check=True)
    try:
        database = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
        settings = Settings(data_dir=data, database_url=database, run_relayer=False)
        with _service(settings) as client:
            assert client.get("/readyz").status_code == 200
            filler = data / "filler"
            with filler.open("wb") as sink:
                try:
                    while True:
                        sink.write(b"\0" * 65536)
                        sink.flush()
                except OSError:
                    pass
            response = client.get("/readyz")
            assert response.status_code == 503
            reason = response.json()["checks"]["dataDir"]["reason"]
            assert "No space left" in reason
            filler.unlink()
            assert client.get("/readyz").status_code == 200
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
