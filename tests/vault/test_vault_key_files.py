"""Private key files: one rule for the vault key, the relayer/deployer keys and the webhook key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sessionward.vault.key_files import read_private_key_file


class KeyFileError(Exception):
    pass


def test_a_missing_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "secret.key"
    made = read_private_key_file(path, error=KeyFileError, make=lambda: "first")
    again = read_private_key_file(path, error=KeyFileError, make=lambda: "second")
    assert made == again == "first\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_file_is_refused_when_nobody_asked_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        read_private_key_file(tmp_path / "absent.key", error=KeyFileError)
    assert not (tmp_path / "absent.key").exists()


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.key"
    target.write_text("secret-content\n")
    os.chmod(target, 0o600)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    with pytest.raises(KeyFileError, match="not a regular file") as refused:
        read_private_key_file(link, error=KeyFileError)
    assert "secret-content" not in str(refused.value)


def test_a_file_others_can_read_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "open.key"
    path.write_text("secret-content\n")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="must be 0600") as refused:
        read_private_key_file(path, error=KeyFileError, make=lambda: "never used")
    assert "secret-content" not in str(refused.value)
    assert path.read_text() == "secret-content\n"
