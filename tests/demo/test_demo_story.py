"""The README's first command: ``sessionward demo`` tells the whole story and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_plays_every_step_and_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["HOME"] = os.environ.get("HOME", str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "sessionward.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    out = " ".join(result.stdout.split())  # rich wraps lines
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for expected in (
        "TARGET_NOT_ALLOWED",
        "USD_LIMIT_EXCEEDED",
        "NON_DELEGABLE_ACTION",
        "CHAIN_MISMATCH",
        "SESSION_EXPIRED",
        "SESSION_REVOKED",
        "Every step behaved as required.",
    ):
        assert expected in out
    assert "executed on chain" in out
