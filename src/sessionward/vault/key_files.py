"""Private key files: a secret kept in a file of the data directory that only its owner can read.

The vault's key-encryption key, the relayer's and deployer's hot keys and the webhook signing
key all live in such a file when they do not come from the environment. One rule for all:

- a missing file is made (when the caller asks for it) with an exclusive create, mode 0600 even
  under a permissive umask, synced before use; if another process makes it first, theirs is read;
- an existing file is used only if it is a regular file (a symlink is not followed) that neither
  group nor others can access.

Refusals raise the caller's error type with a message naming the path, never the content.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def read_private_key_file(
    path: Path,
    *,
    error: Callable[[str], Exception],
    make: Callable[[], str] | None = None,
) -> str:
    """The text of the key file at ``path`` (ASCII), made from ``make()`` first if it is missing
    and ``make`` is given. Raises ``error(message)`` if it is missing (and not made), not a
    regular file, accessible by group or others, or not ASCII text."""
    if make is not None:
        _make_once(path, make)
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        raise error(f"{path} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise error(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):o});"
            " it must be 0600"
        )
    try:
        return path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise error(f"{path} does not hold ASCII text") from None


def _make_once(path: Path, make: Callable[[], str]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder: owner only
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # made earlier, or by another process just now: read what is there
    try:
        os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        os.write(fd, (make().strip() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
