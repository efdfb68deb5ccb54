"""secp256k1 signatures the Ethereum way, and Ethereum addresses.

Signatures are 65 bytes ``r ‖ s ‖ v`` over a 32-byte digest, exactly what the EVM's
``ecrecover`` (and OpenZeppelin / snekmate ``ECDSA.recover``) accept:

- ``v`` is 27 or 28. The raw recovery ids 0/1 are **refused**: accepting both spellings would
  give every signature two byte strings, and the on-chain verifier only knows 27/28.
- ``s ≤ n/2`` ("low s", EIP-2). The twin ``(r, n - s, v ^ 1)`` of a valid signature is refused
  with ``SIGNATURE_MALLEABLE``; :func:`sign_digest` always produces low ``s``.
- ``r`` and ``s`` are in ``[1, n - 1]``; recovery must produce a public key, and its address must
  not be the zero address (what a failed ``ecrecover`` returns on chain).

Every refusal raises :class:`SignatureError` carrying an exact :class:`ReasonCode`; wrong
*argument shapes* from the caller (a digest that is not 32 bytes, a malformed expected address)
are programming errors and raise ``ValueError``.

Addresses returned by this module are lower-case ``0x`` hex. The address rule itself (parsing,
EIP-55) lives in :mod:`sessionward.crypto.address`; its names are re-exported here for the
modules that import them from this one.
"""

from __future__ import annotations

from typing import Final

from coincurve import PrivateKey, PublicKey

# libsecp256k1's C API as coincurve binds it: signing needs only the secret, while coincurve's
# PrivateKey also derives two public keys on construction (more than half of a signature's cost).
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT
from coincurve.ecdsa import serialize_recoverable

from sessionward.crypto.address import (
    ZERO_ADDRESS,
    is_checksum_valid,
    normalize_address,
    to_checksum_address,
)
from sessionward.crypto.keccak import keccak256
from sessionward.reasons import ReasonCode, SessionWardError

__all__ = [
    "SECP256K1_N",
    "ZERO_ADDRESS",
    "SignatureError",
    "address_from_secret",
    "address_of",
    "is_checksum_valid",
    "normalize_address",
    "personal_message_hash",
    "recover_signer",
    "sign_digest",
    "to_checksum_address",
    "verify_signer",
]

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N: Final = SECP256K1_N // 2


class SignatureError(SessionWardError):
    """A signature refused for a stated reason (shared by secp256k1, P-256 and owner checks)."""


# -------------------------------------------------------------------------------- addresses


def address_of(public_key: bytes) -> str:
    """Lower-case address of a secp256k1 public key (33-byte compressed, 65-byte uncompressed
    SEC1, or the 64-byte raw ``x ‖ y``): the last 20 bytes of ``keccak256(x ‖ y)``.

    Raises ``ValueError`` if the bytes are not a point on the curve.
    """
    if len(public_key) == 64:
        public_key = b"\x04" + public_key
    try:
        point = PublicKey(bytes(public_key)).format(compressed=False)
    except Exception as exc:  # coincurve raises bare ValueError/TypeError variants
        raise ValueError("not a valid secp256k1 public key") from exc
    return "0x" + keccak256(point[1:])[12:].hex()


def address_from_secret(secret: bytes) -> str:
    """Address of a 32-byte secret key. For tests and the vault only: the secret never leaves."""
    return address_of(_private_key(secret).public_key.format(compressed=False))


def personal_message_hash(message: bytes) -> bytes:
    """EIP-191 version ``0x45`` (``personal_sign``) hash:
    ``keccak256("\\x19Ethereum Signed Message:\\n" ‖ decimal length ‖ message)``."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


# ------------------------------------------------------------------------------- signatures


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise ValueError("a secp256k1 secret is 32 bytes")
    number = int.from_bytes(secret, "big")
    if not 0 < number < SECP256K1_N:
        raise ValueError("a secp256k1 secret must be in [1, n - 1]")


def _private_key(secret: bytes) -> PrivateKey:
    _check_secret(secret)
    return PrivateKey(secret)


def _sign_recoverable(secret: bytes, digest: bytes) -> bytes:
    """``r ‖ s ‖ recovery id`` (65 bytes) from libsecp256k1, RFC 6979 nonces, low ``s``."""
    _check_secret(secret)
    signature = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    if not lib.secp256k1_ecdsa_sign_recoverable(
        GLOBAL_CONTEXT.ctx, signature, digest, secret, ffi.NULL, ffi.NULL
    ):
        raise ValueError("libsecp256k1 could not sign with this secret")
    raw: bytes = serialize_recoverable(signature)
    return raw


def _check_digest(digest: bytes) -> None:
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ValueError("a digest is 32 bytes")


def sign_digest(secret: bytes, digest: bytes) -> bytes:
    """Sign a 32-byte digest: 65 bytes ``r ‖ s ‖ v`` with low ``s`` and ``v`` in {27, 28}.

    Deterministic (RFC 6979 nonces), so equal inputs give equal signatures.
    """
    _check_digest(digest)
    raw = _sign_recoverable(secret, digest)
    r, s, recovery_id = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    if s > _HALF_N:
        # libsecp256k1 already normalises; kept so the low-s invariant never depends on it.
        s, recovery_id = SECP256K1_N - s, recovery_id ^ 1
    return r + s.to_bytes(32, "big") + bytes([27 + recovery_id])


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Lower-case address that produced ``signature`` over ``digest``.

    Raises :class:`SignatureError` with ``SIGNATURE_INVALID`` (not 65 bytes, ``v`` not 27/28,
    ``r`` or ``s`` zero or ≥ n, no public key recoverable), ``SIGNATURE_MALLEABLE``
    (``s > n/2``) or ``SIGNER_ZERO_ADDRESS``.
    """
    _check_digest(digest)
    if not isinstance(signature, bytes | bytearray) or len(signature) != 65:
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "a signature is 65 bytes r‖s‖v")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "signature v must be 27 or 28")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise SignatureError(ReasonCode.SIGNATURE_INVALID, "signature r or s out of range")
    if s > _HALF_N:
        raise SignatureError(ReasonCode.SIGNATURE_MALLEABLE, "signature s is in the upper half")
    try:
        public_key = PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes([v - 27]), digest, hasher=None
        )
    except Exception:
        raise SignatureError(
            ReasonCode.SIGNATURE_INVALID, "no public key recoverable from the signature"
        ) from None
    address = address_of(public_key.format(compressed=False))
    if address == ZERO_ADDRESS:
        raise SignatureError(ReasonCode.SIGNER_ZERO_ADDRESS, "signature recovers the zero address")
    return address


def verify_signer(digest: bytes, signature: bytes, expected: str) -> None:
    """Check that ``signature`` over ``digest`` was made by ``expected`` (any valid spelling).

    Raises what :func:`recover_signer` raises, or ``SIGNER_MISMATCH``.
    """
    wanted = normalize_address(expected)
    if recover_signer(digest, signature) != wanted:
        raise SignatureError(
            ReasonCode.SIGNER_MISMATCH, "signature is not from the expected signer"
        )
