"""Primitive values of the domain: addresses, amounts, timestamps.

Addresses are carried as lower-case ``0x`` strings (cheap to compare and hash), parsed by the
project's one address rule (:func:`sessionward.crypto.address.normalize_address`: all lower, all
upper, or a valid EIP-55 checksum). Amounts are exact integers in ``[0, 2**256)``; at the JSON
boundary they are decimal strings (or JSON integers), never floats.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sessionward.reasons import ReasonCode, SessionWardError

from ..crypto.address import (
    ZERO_ADDRESS,
    AddressChecksumError,
    normalize_address,
    to_checksum_address,
)

__all__ = [
    "MAX_TIMESTAMP",
    "UINT256_MAX",
    "ZERO_ADDRESS",
    "InvalidValue",
    "format_usd",
    "parse_address",
    "parse_amount",
    "parse_count",
    "parse_timestamp",
    "parse_usd",
    "short_address",
]

UINT256_MAX = 2**256 - 1
MAX_TIMESTAMP = 2**48 - 1

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\Z")
_USD = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]{1,6})?\Z")


class InvalidValue(SessionWardError):
    """A primitive value that does not parse. ``path`` names where it was (``permissions[2].target``)."""

    def __init__(
        self, path: str, message: str, code: ReasonCode = ReasonCode.INPUT_MALFORMED
    ) -> None:
        super().__init__(code, f"{path}: {message}" if path else message)
        self.path = path


def parse_address(value: object, path: str = "") -> str:
    """A strict address: ``0x`` + 40 hex digits, all lower, all upper, or a valid EIP-55 checksum
    (the rule of :mod:`sessionward.crypto.address`), as lower-case ``0x`` hex."""
    if not isinstance(value, str):
        raise InvalidValue(path, "expected an address (0x followed by 40 hex digits)")
    try:
        return normalize_address(value)
    except AddressChecksumError:
        raise InvalidValue(path, "address has an invalid EIP-55 checksum") from None
    except ValueError:
        raise InvalidValue(path, "expected an address (0x followed by 40 hex digits)") from None


def parse_amount(value: object, path: str = "", *, maximum: int = UINT256_MAX) -> int:
    """A non-negative integer amount from a decimal string or a JSON integer (never a float or bool)."""
    if isinstance(value, bool):
        raise InvalidValue(path, "expected an amount, got a boolean")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str) and _DECIMAL.match(value) and len(value) <= 78:
        amount = int(value)
    else:
        raise InvalidValue(path, "expected an amount as a decimal string of digits")
    if amount < 0 or amount > maximum:
        raise InvalidValue(path, f"amount out of range [0, {maximum}]")
    return amount


def parse_count(value: object, path: str = "", *, maximum: int = 2**32 - 1) -> int:
    """A small non-negative JSON integer (uses, counts, intervals, chain ids)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(path, "expected an integer")
    if value < 0 or value > maximum:
        raise InvalidValue(path, f"integer out of range [0, {maximum}]")
    return value


def parse_timestamp(value: object, path: str = "") -> int:
    """Unix seconds as a JSON integer in ``[0, 2**48)`` (the on-chain ``uint48``)."""
    return parse_count(value, path, maximum=MAX_TIMESTAMP)


def parse_usd(value: object, path: str = "") -> int:
    """A USD amount (JSON integer, or decimal string with up to 6 decimals) as integer micro-USD."""
    if isinstance(value, bool):
        raise InvalidValue(path, "expected a USD amount, got a boolean")
    if isinstance(value, int):
        if value < 0 or value > 10**18:
            raise InvalidValue(path, "USD amount out of range")
        return value * 1_000_000
    if isinstance(value, str) and _USD.match(value) and len(value) <= 32:
        try:
            micro = Decimal(value) * 1_000_000
        except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
            raise InvalidValue(path, "expected a USD amount") from None
        if micro > 10**24:
            raise InvalidValue(path, "USD amount out of range")
        return int(micro)
    raise InvalidValue(
        path, "expected a USD amount as an integer or a decimal string (max 6 decimals)"
    )


def format_usd(micro_usd: int) -> str:
    """Micro-USD to the shortest exact decimal string (``500000000`` -> ``"500"``)."""
    whole, frac = divmod(micro_usd, 1_000_000)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:06d}".rstrip("0")


def short_address(address: str) -> str:
    """``0xAbCd12…`` for plain-language summaries: checksummed, first 6 hex digits."""
    return to_checksum_address(address)[:8] + "…"
