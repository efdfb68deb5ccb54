"""Running the README's first command, ``sessionward demo``, as a user would: a child process
with a clean ``SESSIONWARD_*`` environment (shared by the demo room and the vault room)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_demo(workdir: Path, **environment: str) -> str:
    """Run ``sessionward demo`` in ``workdir`` with ``environment`` added to a copy of this
    process's environment without any ``SESSIONWARD_*`` or ``SOFTHSM2_CONF``; assert it exits 0
    and return its output with white space folded (rich wraps lines)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SESSIONWARD_") and k != "SOFTHSM2_CONF"
    }
    env["HOME"] = os.environ.get("HOME", str(workdir))
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-m", "sessionward.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=workdir,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return " ".join(result.stdout.split())
