"""Throwaway SoftHSM2 tokens, for the demo and the benchmarks (never for production keys).

:func:`init_softhsm` writes a SoftHSM2 configuration whose token directory is private to the
caller and initialises tokens in it with ``softhsm2-util`` (Debian package ``softhsm2``). The
module reads ``SOFTHSM2_CONF`` once, when a process first loads it, so the configuration must be
made (and the variable set) before the first :class:`~sessionward.vault.hsm.Pkcs11Vault` opens.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Final

ENV_CONF: Final = "SOFTHSM2_CONF"


class SoftHsmError(Exception):
    """``softhsm2-util`` is missing or failed (the message never contains a PIN)."""


def init_softhsm(directory: Path, tokens: Mapping[str, str], *, so_pin: str | None = None) -> Path:
    """Make ``directory/softhsm2.conf`` with the token directory ``directory/tokens`` (0700),
    initialise one token per ``label -> user PIN``, and return the configuration's path."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SoftHsmError("softhsm2-util is missing: install the Debian package softhsm2")
    token_dir = directory / "tokens"
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    so = so_pin or secrets.token_hex(8)
    for label, pin in tokens.items():
        done = subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so],
            capture_output=True,
            env={**os.environ, ENV_CONF: str(conf)},
            check=False,
        )
        if done.returncode != 0:
            raise SoftHsmError(f"softhsm2-util could not initialise token {label!r}")
    return conf
