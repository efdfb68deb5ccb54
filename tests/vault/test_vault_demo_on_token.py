"""``SESSIONWARD_VAULT=pkcs11 sessionward demo``: the whole story with every session key in a
PKCS#11 token; with no token of its own the demo makes a throwaway SoftHSM2 token."""

from __future__ import annotations

from pathlib import Path

from vault_support import SoftHsm

from demo_run import run_demo


def test_the_demo_plays_every_step_with_keys_in_a_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    # the demo's data directory, with its throwaway token, goes in TMPDIR
    out = run_demo(tmp_path, SESSIONWARD_VAULT="pkcs11", TMPDIR=str(tmp_path))
    assert "keys in a PKCS#11 token" in out
    assert "no key bytes ever leave it" in out
    for expected in ("SESSION_REVOKED", "Every step behaved as required."):
        assert expected in out
    assert not list(tmp_path.glob("sessionward-demo-*"))  # the throwaway token is gone
