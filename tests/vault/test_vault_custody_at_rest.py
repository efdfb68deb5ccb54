"""Custody at rest (issue 14.8): the data directory and every file the service makes in it are
owner-only (0700/0600, the SQLite database with its WAL and SHM files included); the embedded
key-encryption key next to the database is announced loudly, and a key file named by
``SESSIONWARD_VAULT_KEY_FILE`` must live elsewhere; a tampered vault record is refused, logged
as a security event without any secret, and raises a critical alert."""

from __future__ import annotations

import logging
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import update

import anvil_node
from sessionward.reasons import ReasonCode
from sessionward.service.config import Settings
from sessionward.service.runtime import build_runtime
from sessionward.service.vault_tamper import TAMPER_RULE
from sessionward.store.schema import vault_keys
from sessionward.vault.interface import VaultRefusal
from sessionward.vault.kek import (
    ENV_VAULT_KEY_FILE,
    KEK_FILE_NAME,
    KeyEncryptionKey,
    KeyEncryptionKeyError,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_every_file_in_it_are_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="sessionward.security"):
        rt = build_runtime(Settings(data_dir=data, run_relayer=False))
    try:
        key = rt.vault.create_key()  # writes through the WAL
        rt.vault.sign(key.key_id, b"\x01" * 32, now=int(time.time()))
        names = {p.name for p in data.iterdir()}
        assert {"sessionward.db", "sessionward.db-wal", "sessionward.db-shm"} <= names
        assert KEK_FILE_NAME in names
        assert _mode(data) == 0o700
        loose = {p.name: oct(_mode(p)) for p in data.rglob("*") if _mode(p) & 0o077}
        assert loose == {}
    finally:
        rt.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "sessionward.security"]
    assert any("SECURITY" in w and "SESSIONWARD_VAULT_KEY" in w for w in warnings)


def test_a_database_file_made_loose_by_an_earlier_run_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("sessionward.db", "sessionward.db-wal"):
        (data / name).touch(mode=0o644)
    (data / "sessionward.db-wal").unlink()  # an empty db file is a fresh database
    rt = build_runtime(Settings(data_dir=data, run_relayer=False))
    try:
        assert _mode(data) == 0o700
        assert _mode(data / "sessionward.db") == 0o600
    finally:
        rt.close()


def test_a_key_file_outside_the_data_directory_is_used_without_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    outside = keys / "vault.key"
    with caplog.at_level(logging.WARNING, logger="sessionward.security"):
        KeyEncryptionKey.load(data, {ENV_VAULT_KEY_FILE: str(outside)})
    assert outside.exists() and _mode(outside) == 0o600 and _mode(keys) == 0o700
    assert not (data / KEK_FILE_NAME).exists()
    assert [r for r in caplog.records if r.name == "sessionward.security"] == []


def test_a_key_file_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyEncryptionKeyError, match="outside the data directory"):
        KeyEncryptionKey.load(tmp_path, {ENV_VAULT_KEY_FILE: str(tmp_path / "k" / "vault.key")})
    assert not (tmp_path / "k").exists()


def test_a_tampered_record_is_refused_logged_and_raises_a_critical_alert(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = build_runtime(Settings(data_dir=tmp_path / "data", run_relayer=False))
    try:
        key = rt.vault.create_key()
        record = rt.store.vault_keys.get(key.key_id)
        assert record is not None
        flipped = bytes([record.ciphertext[0] ^ 1]) + record.ciphertext[1:]
        with rt.store.db.writing() as conn:
            conn.execute(
                update(vault_keys)
                .where(vault_keys.c.key_id == key.key_id)
                .values(ciphertext=flipped)
            )
        started = int(time.time())
        caplog.clear()
        with (
            caplog.at_level(logging.ERROR, logger="sessionward.security"),
            pytest.raises(VaultRefusal) as refused,
        ):
            rt.vault.sign(key.key_id, b"\x02" * 32, now=started)
        assert refused.value.code is ReasonCode.SIGNING_REFUSED
        events = [
            r
            for r in caplog.records
            if r.name == "sessionward.security" and r.levelno >= logging.ERROR
        ]
        assert len(events) == 1 and key.key_id in events[0].getMessage()
        text = events[0].getMessage()
        assert record.ciphertext.hex() not in text and record.wrapped_data_key.hex() not in text
        deadline = time.monotonic() + 10
        alerts = []
        while not alerts and time.monotonic() < deadline:
            alerts = [
                a
                for a in rt.store.alerts.between(started - 5, started + 60)
                if a.rule == TAMPER_RULE
            ]
            time.sleep(0.05)
        assert len(alerts) == 1
        assert alerts[0].severity == "critical"
        assert alerts[0].detail["keyId"] == key.key_id
    finally:
        rt.close()


def test_on_a_node_chain_the_deployment_record_is_owner_only_too(tmp_path: Path) -> None:
    process, url = anvil_node.start(1)
    try:
        data = tmp_path / "data"
        rt = build_runtime(Settings(data_dir=data, rpc_url=url, run_relayer=False))
        rt.close()
        assert (data / "deployment.json").exists()
        assert _mode(data) == 0o700
        assert {p.name: oct(_mode(p)) for p in data.rglob("*") if _mode(p) & 0o077} == {}
    finally:
        anvil_node.stop(process)
