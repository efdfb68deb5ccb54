"""Factory accounts off-chain: the proxy code and the CREATE2 address of an owner's account.

Mirrors ``SessionAccountFactory.vy``: an account is a 65-byte EIP-1167 proxy to the
implementation with the owner appended (``runtime = head ‖ implementation ‖ tail ‖ owner``),
deployed with CREATE2 from a 10-byte loader. The address therefore depends on the factory, the
implementation, the owner and the salt, and on nothing else.
"""

from __future__ import annotations

from typing import Final

from sessionward.crypto.keccak import keccak256

__all__ = [
    "PROXY_CODE_SIZE",
    "account_address",
    "owner_from_code",
    "proxy_initcode",
    "proxy_runtime",
]

_LOADER: Final = bytes.fromhex("6041600a3d3960413df3")
_HEAD: Final = bytes.fromhex("363d3d373d3d3d363d73")
_TAIL: Final = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
PROXY_CODE_SIZE: Final = len(_HEAD) + 20 + len(_TAIL) + 20


def _address_bytes(address: str) -> bytes:
    if not (isinstance(address, str) and len(address) == 42 and address[:2] in ("0x", "0X")):
        raise ValueError(f"expected a 0x-prefixed 20-byte address, got {address!r}")
    return bytes.fromhex(address[2:])


def proxy_runtime(implementation: str, owner: str) -> bytes:
    """The 65-byte runtime code of the account of ``owner``."""
    return _HEAD + _address_bytes(implementation) + _TAIL + _address_bytes(owner)


def proxy_initcode(implementation: str, owner: str) -> bytes:
    """The CREATE2 initcode: the loader followed by :func:`proxy_runtime`."""
    return _LOADER + proxy_runtime(implementation, owner)


def account_address(factory: str, implementation: str, owner: str, salt: bytes) -> str:
    """Lower-case address of ``create_account(owner, salt)`` on ``factory`` (CREATE2)."""
    if len(salt) != 32:
        raise ValueError("a CREATE2 salt is 32 bytes")
    preimage = (
        b"\xff" + _address_bytes(factory) + salt + keccak256(proxy_initcode(implementation, owner))
    )
    return "0x" + keccak256(preimage)[12:].hex()


def owner_from_code(code: bytes, account: str) -> str:
    """The owner a SessionAccount sees for code ``code`` at ``account``: the appended address of
    a factory proxy, otherwise (EIP-7702 designator, the implementation) the account itself."""
    if len(code) == PROXY_CODE_SIZE:
        return "0x" + code[-20:].hex()
    return "0x" + _address_bytes(account).hex()
