"""Keccak-256, the hash of Ethereum (not NIST SHA3-256: the padding differs)."""

from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Keccak-256 digest of ``data``."""
    return _keccak.new(data=data, digest_bits=256).digest()
