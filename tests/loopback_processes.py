"""The processes the tests start on 127.0.0.1 (anvil, the alto bundler, ``sessionward serve``
nodes): a free port for one, whether the very process we started is the one listening on it,
and stopping it by its PID.

Why the listening check: a port picked free (bound to port 0, then closed) can be taken by
another process before ours binds it, on a machine where two test workers start nodes at the
same time. Ours then dies on "address in use", but while it dies the port ANSWERS: another
worker's anvil answers ``eth_chainId``, another worker's node answers ``/healthz``. A start that
only waited for an answer then handed its test the other worker's process (seen: a module's
bundler URL that reached another worker's anvil, so every UserOperation it planned was refused
as "method not found"). A start counts only once the listening socket is our process's own
(Linux: ``/proc/net/tcp*`` and ``/proc/<pid>/fd``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Final

import httpx

from sessionward.server import free_port as free_port  # the one home; a port picked free

_LISTEN: Final = "0A"
"""The ``st`` column of ``/proc/net/tcp`` for a socket in the LISTEN state."""


def _listening_socket_inodes(port: int) -> set[str]:
    """The inodes of every listening TCP socket (IPv4 and IPv6) on ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == _LISTEN and local_port == port:
                inodes.add(fields[9])
    return inodes


def listens_on(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether ``process`` itself (its PID, not a child of it) holds a listening TCP socket on
    ``port``; False once it has exited."""
    inodes = _listening_socket_inodes(port)
    if not inodes or process.poll() is not None:
        return False
    sockets = {f"socket:[{inode}]" for inode in inodes}
    fd_dir = Path(f"/proc/{process.pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:  # it exited meanwhile
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in sockets:
                return True
        except OSError:  # that descriptor closed meanwhile
            continue
    return False


def serves_health(url: str) -> bool:
    """Whether the SessionWard node at ``url`` answers ``GET /healthz`` with 200 (pair it with
    :func:`listens_on`: another worker's node answers too)."""
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen[bytes], *, grace_s: float = 5.0) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL if it lingers past
    ``grace_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)
