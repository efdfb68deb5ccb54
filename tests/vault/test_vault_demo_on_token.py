"""``SESSIONWARD_VAULT=pkcs11 sessionward demo``: the whole story with every session key in a
PKCS#11 token; with no token of its own the demo makes a throwaway SoftHSM2 token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vault_support import SoftHsm


def test_the_demo_plays_every_step_with_keys_in_a_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SESSIONWARD_") and k != "SOFTHSM2_CONF"
    }
    env["HOME"] = os.environ.get("HOME", str(tmp_path))
    env["SESSIONWARD_VAULT"] = "pkcs11"
    env["TMPDIR"] = str(tmp_path)  # the demo's data directory, with its token, goes here
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
    assert "keys in a PKCS#11 token" in out
    assert "no key bytes ever leave it" in out
    for expected in ("SESSION_REVOKED", "Every step behaved as required."):
        assert expected in out
    assert not list(tmp_path.glob("sessionward-demo-*"))  # the throwaway token is gone
