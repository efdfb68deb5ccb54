"""P-256 (secp256r1) ECDSA over SHA-256, as used by passkeys and cloud HSMs.

Wire formats: public keys are 65-byte uncompressed SEC1 points (``0x04 ‖ x ‖ y``); signatures
are 64 bytes ``r ‖ s`` (big-endian, 32 bytes each) with ``s ≤ n/2``. :func:`sign_p256` always
normalises to low ``s``; :func:`verify_p256` refuses the high-``s`` twin with
``SIGNATURE_MALLEABLE`` so that every (key, message) pair has one accepted signature per nonce,
matching what on-chain P-256 verifiers (RIP-7212 wrappers, Daimo/Solady) require.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sessionward.crypto.secp256k1 import SignatureError
from sessionward.reasons import ReasonCode

__all__ = [
    "P256_N",
    "generate_private_key",
    "public_key_bytes",
    "sign_p256",
    "verify_p256",
]

P256_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_N: Final = P256_N // 2
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 private key (for tests and the SDK; services never hold backend keys)."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed SEC1 encoding of a P-256 key's public point."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(public.curve, ec.SECP256R1):
        raise ValueError("not a P-256 key")
    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def sign_p256(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """Sign SHA-256(``message``): 64 bytes ``r ‖ s`` with ``s ≤ n/2``."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 key")
    r, s = decode_dss_signature(key.sign(message, _ECDSA_SHA256))
    if s > _HALF_N:
        s = P256_N - s  # (r, n - s) is the other valid signature; keep the canonical one
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_p256(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Check a 64-byte ``r ‖ s`` signature of SHA-256(``message``) by ``public_key``.

    Raises :class:`SignatureError`: ``SIGNATURE_INVALID`` (bad length, ``r``/``s`` out of
    ``[1, n - 1]``, a public key that is not a 65-byte point on P-256, or a wrong signature),
    ``SIGNATURE_MALLEABLE`` (``s > n/2``).
    """
    if not isinstance(signature, bytes | bytearray) or len(signature) != 64:
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "a P-256 signature is 64 bytes r‖s")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not 0 < r < P256_N or not 0 < s < P256_N:
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "signature r or s out of range")
    if s > _HALF_N:
        raise SignatureError(ReasonCode.SIGNATURE_MALLEABLE, "signature s is in the upper half")
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != 65 or public_key[0] != 4:
        raise SignatureError(
            ReasonCode.SIGNATURE_INVALID, "a P-256 public key is 65 bytes uncompressed SEC1"
        )
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(public_key))
    except ValueError:
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "public key is not on P-256") from None
    try:
        key.verify(encode_dss_signature(r, s), bytes(message), _ECDSA_SHA256)
    except InvalidSignature:
        raise SignatureError(
            ReasonCode.SIGNATURE_INVALID, "P-256 signature does not verify"
        ) from None
