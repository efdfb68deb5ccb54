"""The key-encryption key: from the environment or a 0600 file made on first run."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from sessionward.vault.kek import (
    ENV_VAULT_KEY,
    KEK_FILE_NAME,
    KeyEncryptionKey,
    KeyEncryptionKeyError,
)
from sessionward.vault.local import LocalVault
from sessionward.vault.memory import InMemoryKeyRecordStore

T0 = 1_771_700_000
KEY = bytes(range(32))


def signs_with(kek_a: KeyEncryptionKey, kek_b: KeyEncryptionKey) -> bool:
    """True iff a key created under kek_a can be used under kek_b (same KEK bytes)."""
    records = InMemoryKeyRecordStore()
    handle = LocalVault(records, kek_a).create_key()
    try:
        LocalVault(records, kek_b).sign(handle.key_id, b"\x01" * 32, now=T0)
    except Exception:
        return False
    return True


def test_env_key_accepts_hex_and_base64(tmp_path: Path) -> None:
    from_hex = KeyEncryptionKey.load(tmp_path, {ENV_VAULT_KEY: KEY.hex()})
    from_b64 = KeyEncryptionKey.load(tmp_path, {ENV_VAULT_KEY: base64.b64encode(KEY).decode()})
    assert signs_with(from_hex, from_b64)
    assert not (tmp_path / KEK_FILE_NAME).exists()


@pytest.mark.parametrize(
    "value",
    ["zz" * 32, KEY.hex()[:-2], base64.b64encode(KEY[:31]).decode(), "hunter2-secret-value"],
)
def test_malformed_env_key_is_refused_without_echoing_it(tmp_path: Path, value: str) -> None:
    with pytest.raises(KeyEncryptionKeyError) as caught:
        KeyEncryptionKey.load(tmp_path, {ENV_VAULT_KEY: value})
    assert value not in str(caught.value)
    assert ENV_VAULT_KEY in str(caught.value)
    assert caught.value.__cause__ is None


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = KeyEncryptionKey.load(tmp_path / "data", {})
    path = tmp_path / "data" / KEK_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = KeyEncryptionKey.load(tmp_path / "data", {})
    assert signs_with(first, second)
    assert len(path.read_text().strip()) == 64


def test_key_file_created_under_a_permissive_umask_is_still_0600(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        KeyEncryptionKey.load(tmp_path, {})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / KEK_FILE_NAME).stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / KEK_FILE_NAME
    path.write_text(KEY.hex())
    path.chmod(mode)
    with pytest.raises(KeyEncryptionKeyError) as caught:
        KeyEncryptionKey.load(tmp_path, {})
    assert "0600" in str(caught.value) and KEY.hex() not in str(caught.value)


def test_malformed_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / KEK_FILE_NAME
    path.write_bytes("naïve-not-a-key".encode())
    path.chmod(0o600)
    with pytest.raises(KeyEncryptionKeyError) as caught:
        KeyEncryptionKey.load(tmp_path, {})
    assert "na" not in str(caught.value).replace(str(tmp_path), "")


def test_key_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text(KEY.hex())
    target.chmod(0o600)
    (tmp_path / KEK_FILE_NAME).symlink_to(target)
    with pytest.raises(KeyEncryptionKeyError):
        KeyEncryptionKey.load(tmp_path, {})


def test_env_key_wins_over_the_file(tmp_path: Path) -> None:
    from_file = KeyEncryptionKey.load(tmp_path, {})
    from_env = KeyEncryptionKey.load(tmp_path, {ENV_VAULT_KEY: KEY.hex()})
    assert not signs_with(from_file, from_env)


def test_no_env_and_no_data_dir_is_an_error() -> None:
    with pytest.raises(KeyEncryptionKeyError):
        KeyEncryptionKey.load(None, {})


def test_kek_repr_shows_nothing() -> None:
    kek = KeyEncryptionKey(KEY)
    assert KEY.hex() not in repr(kek) and "redacted" in repr(kek) and str(kek) == repr(kek)
