"""Shared by the vault tests: the fixed clock and the SoftHSM2 set-up the fixtures make."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

T0 = 1_771_700_000
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
"""Debian's SoftHSM2 module (package ``libsofthsm2``, pulled in by ``softhsm2``)."""


@dataclass(frozen=True)
class SoftHsm:
    """A private SoftHSM2 token directory with two initialised tokens."""

    module: Path
    conf: Path
    token: str
    pin: str
    other_token: str
    other_pin: str
    so_pin: str
