"""Helpers shared by the titanoboa test rooms (tests/contracts and tests/onchain): labelled keys,
addresses, call data and contract handles.

Test folders are not packages, so one room cannot import another room's support module; this
module sits in tests/ (on ``sys.path`` through tests/conftest.py, like ``scenario`` and
``anvil_node``) and each room's support module builds on it.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass, field
from typing import Any

from sessionward.contracts import load_deployer
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature


@dataclass(frozen=True)
class Key:
    """A test secp256k1 key (tests only): derived from a public label (``derive_key``), or
    ``Key()``, a throw-away key fresh per run; ``address`` is lower-case hex."""

    label: str = "throw-away"
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def address(self) -> str:
        return address_from_secret(self.secret)

    def sign(self, digest: bytes) -> bytes:
        return sign_digest(self.secret, digest)


def derive_key(namespace: bytes, label: str) -> Key:
    """The key of ``label`` in ``namespace``: its secret is ``keccak256(namespace ‖ label)``, so
    a label names the same key on every run, and rooms with different namespaces never share
    keys."""
    return Key(label, keccak256(namespace + label.encode()))


def addr(value: Any) -> str:
    """Lower-case address of a contract, a boa address or a string."""
    return str(getattr(value, "address", value)).lower()


def calldata(signature: str, *args: Any) -> bytes:
    """Selector and ABI-encoded arguments of ``signature`` (e.g. ``"transfer(address,uint256)"``)."""
    return encode_call(parse_signature(signature), args)


def at(name: str, address: Any) -> Any:
    """A handle on the packaged contract ``name`` at ``address``; boa warns when the code there
    is a proxy, which is expected for factory accounts, so the warning is silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_deployer(name).at(addr(address))
