"""Ethereum addresses: the one parser and the one EIP-55 checksum of the project.

The rule (docs/protocol.md, "Addresses"): an address is ``0x`` followed by 40 hex digits, or
20 raw bytes. A hex body written in one case only — all lower, or all upper — carries no
checksum and is accepted as it is; a body that mixes cases claims to be EIP-55 and must be
exactly the checksummed form, so a one-letter typo is caught. This is what EIP-55 and the
common Ethereum libraries do (a single-case address is "unchecksummed"; EIP-55's own test cases
include addresses whose checksum happens to be all upper or all lower case).

Addresses are carried inside the project as lower-case ``0x`` strings (cheap to compare and
hash); :func:`to_checksum_address` gives the EIP-55 display form.
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

from sessionward.crypto.keccak import keccak256

__all__ = [
    "ADDRESS_TEXT",
    "ZERO_ADDRESS",
    "AddressChecksumError",
    "is_address_text",
    "is_checksum_valid",
    "normalize_address",
    "to_checksum_address",
]

ZERO_ADDRESS: Final = "0x" + "00" * 20
#: ``0x`` and 40 hex digits in any case: the *shape* of an address, checksum not checked.
ADDRESS_TEXT: Final = re.compile(r"0x[0-9a-fA-F]{40}\Z")


class AddressChecksumError(ValueError):
    """A mixed-case address that is not its EIP-55 checksummed form (a typo caught)."""


def is_address_text(value: object) -> TypeGuard[str]:
    """True iff ``value`` is a string of ``0x`` and 40 hex digits (any case, no checksum test)."""
    return isinstance(value, str) and ADDRESS_TEXT.match(value) is not None


def _lower_body(address: str | bytes) -> str:
    """The 40 lower-case hex digits of an address given as ``0x`` hex (any case) or 20 bytes."""
    if isinstance(address, bytes | bytearray):
        if len(address) != 20:
            raise ValueError("an address is 20 bytes")
        return bytes(address).hex()
    if not is_address_text(address):
        raise ValueError("an address is 0x followed by 40 hex digits")
    return address[2:].lower()


def _checksummed(body: str) -> str:
    """EIP-55: a letter is upper case iff the matching nibble of ``keccak256(body)`` is >= 8."""
    nibbles = keccak256(body.encode("ascii")).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and nibbles[i] >= "8" else ch for i, ch in enumerate(body)
    )


def to_checksum_address(address: str | bytes) -> str:
    """EIP-55 mixed-case form of ``address`` (``0x`` hex in any case, or 20 bytes).

    Raises ``ValueError`` if ``address`` does not have the shape of an address.
    """
    return _checksummed(_lower_body(address))


def is_checksum_valid(address: object) -> bool:
    """True iff ``address`` is exactly its EIP-55 checksummed form (never raises)."""
    if not is_address_text(address):
        return False
    return _checksummed(address[2:].lower()) == address


def normalize_address(address: str | bytes) -> str:
    """The lower-case ``0x`` form of an address, by the rule of this module.

    Accepts 20 bytes, or ``0x`` + 40 hex digits that are all lower case, all upper case, or
    exactly the EIP-55 checksum. Raises :class:`AddressChecksumError` for a mixed-case string
    with a wrong checksum and ``ValueError`` for anything that is not an address.
    """
    body = _lower_body(address)
    if isinstance(address, str):
        given = address[2:]
        if given != body and given != given.upper() and _checksummed(body) != address:
            raise AddressChecksumError("address has an invalid EIP-55 checksum")
    return "0x" + body
