"""Signed HTTP requests (docs/protocol.md section 3, normative).

Every authenticated request carries::

    Oms-Wallet-Signature: alg="<alg>", cred="<credentialId>", nonce=<n>, ts=<ms>, sig="0x<hex>"

over the preimage built by :func:`request_preimage`. The server side is :func:`verify_request`,
which checks, in this order: the header's syntax, the timestamp window, that the credential is
known and registered for the header's ``alg``, the signature, and only then the nonce (so a
forged request can never burn a legitimate client's nonce).

Header grammar (strict; anything else is ``INPUT_MALFORMED``):

- parameters separated by ``,`` with optional spaces/tabs around them; each of ``alg``, ``cred``,
  ``nonce``, ``ts``, ``sig`` exactly once, in any order, and no other parameter;
- ``alg``, ``cred`` and ``sig`` quoted, ``nonce`` and ``ts`` bare decimals (no sign, no leading
  zero, at most ``2**63 - 1``);
- ``cred`` is 1-128 characters of ``A-Z a-z 0-9 . _ ~ : -``;
- ``sig`` is ``0x`` and an even number of hex digits; 65 bytes for ``ecdsa-p256k-eip191``,
  64 for ``ecdsa-p256-sha256`` (a wrong length, like an unknown ``alg``, is
  ``SIGNATURE_INVALID``);
- the whole value is printable ASCII and at most :data:`MAX_HEADER_LENGTH` characters.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from sessionward.crypto.http_names import SIGNATURE_HEADER
from sessionward.crypto.p256 import public_key_bytes, sign_p256, verify_p256
from sessionward.crypto.secp256k1 import (
    SignatureError,
    address_from_secret,
    normalize_address,
    personal_message_hash,
    sign_digest,
    verify_signer,
)
from sessionward.reasons import ReasonCode, SessionWardError

__all__ = [
    "ALG_P256",
    "ALG_SECP256K1",
    "MAX_HEADER_LENGTH",
    "PREIMAGE_TAG",
    "SIGNATURE_HEADER",
    "CredentialKey",
    "InMemoryReplayStore",
    "P256RequestSigner",
    "ReplayStore",
    "RequestAuthError",
    "RequestSigner",
    "Secp256k1RequestSigner",
    "SignatureHeader",
    "format_signature_header",
    "parse_signature_header",
    "request_preimage",
    "sign_request",
    "verify_request",
]

ALG_SECP256K1: Final = "ecdsa-p256k-eip191"
ALG_P256: Final = "ecdsa-p256-sha256"
PREIMAGE_TAG: Final = "SessionWard-Request/1"
MAX_HEADER_LENGTH: Final = 1024
MAX_DECIMAL: Final = 2**63 - 1  # nonces and timestamps fit a signed 64-bit database column

_SIGNATURE_LENGTHS: Final = {ALG_SECP256K1: 65, ALG_P256: 64}
_KEYS: Final = frozenset({"alg", "cred", "nonce", "ts", "sig"})
_QUOTED_KEYS: Final = frozenset({"alg", "cred", "sig"})
_PARAMETER = re.compile(r"[ \t]*([a-z]+)=(?:\"([\x21\x23-\x5b\x5d-\x7e]*)\"|([0-9]+))[ \t]*")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_SIGNATURE_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
_METHOD = re.compile(r"[A-Za-z]{1,16}")
_PATH = re.compile(r"/[\x21-\x7e]*")


class RequestAuthError(SessionWardError):
    """A request refused by signature authentication, with an exact reason code."""


def _malformed(message: str) -> RequestAuthError:
    return RequestAuthError(ReasonCode.INPUT_MALFORMED, message)


def _check_decimal_range(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DECIMAL:
        raise _malformed(f"{what} must be an integer in [0, 2**63 - 1]")


def _check_credential_id(credential_id: str) -> None:
    if not isinstance(credential_id, str) or _CREDENTIAL_ID.fullmatch(credential_id) is None:
        raise _malformed("credential id must be 1-128 characters of A-Z a-z 0-9 . _ ~ : -")


# -------------------------------------------------------------------------------- preimage


def request_preimage(
    method: str, path_with_query: str, credential_id: str, nonce: int, ts_ms: int, body: bytes
) -> bytes:
    """The signed bytes: seven lines joined by ``\\n`` (no trailing newline)::

        SessionWard-Request/1
        <METHOD, upper case>
        <path with query, exactly as sent>
        <credentialId>
        <nonce, decimal>
        <ts, decimal milliseconds>
        <lower-case hex SHA-256 of the raw body bytes>

    ``path_with_query`` is the request target as it appears on the wire (percent-encoding
    untouched: a server must use the raw path, not a decoded one); it must start with ``/`` and
    be printable ASCII without spaces, so no field can smuggle in a line break. Raises
    :class:`RequestAuthError` (``INPUT_MALFORMED``) for any field outside its grammar.
    """
    if not isinstance(method, str) or _METHOD.fullmatch(method) is None:
        raise _malformed("method must be 1-16 ASCII letters")
    if not isinstance(path_with_query, str) or _PATH.fullmatch(path_with_query) is None:
        raise _malformed("path must start with / and be printable ASCII without spaces")
    _check_credential_id(credential_id)
    _check_decimal_range(nonce, "nonce")
    _check_decimal_range(ts_ms, "ts")
    if not isinstance(body, bytes | bytearray):
        raise _malformed("body must be bytes")
    lines = (
        PREIMAGE_TAG,
        method.upper(),
        path_with_query,
        credential_id,
        str(nonce),
        str(ts_ms),
        hashlib.sha256(body).hexdigest(),
    )
    return "\n".join(lines).encode("ascii")


# ---------------------------------------------------------------------------------- header


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """The parsed ``Oms-Wallet-Signature`` header."""

    alg: str
    cred: str
    nonce: int
    ts: int
    sig: bytes


def _parse_decimal(text: str, what: str) -> int:
    if _DECIMAL.fullmatch(text) is None:
        raise _malformed(f"{what} must be a decimal without sign or leading zeros")
    value = int(text)
    if value > MAX_DECIMAL:
        raise _malformed(f"{what} is larger than 2**63 - 1")
    return value


def parse_signature_header(value: str) -> SignatureHeader:
    """Parse a header value strictly (grammar in the module docstring).

    Raises :class:`RequestAuthError` only: ``INPUT_MALFORMED`` for syntax, ``SIGNATURE_INVALID``
    for an unsupported ``alg`` or a signature of the wrong length for its ``alg``.
    """
    if not isinstance(value, str):
        raise _malformed("signature header must be text")
    if len(value) > MAX_HEADER_LENGTH:
        raise _malformed(f"signature header longer than {MAX_HEADER_LENGTH} characters")
    # Tabs may separate parameters; every other control character is refused.
    if not value.isascii() or not value.replace("\t", " ").isprintable():
        raise _malformed("signature header must be printable ASCII")
    fields: dict[str, str] = {}
    for part in value.split(","):
        match = _PARAMETER.fullmatch(part)
        if match is None:
            raise _malformed("signature header is not a list of key=value parameters")
        key, quoted, bare = match.group(1), match.group(2), match.group(3)
        if key not in _KEYS:
            raise _malformed(f"unknown signature header parameter {key!r}")
        if key in fields:
            raise _malformed(f"duplicate signature header parameter {key!r}")
        if (quoted is not None) != (key in _QUOTED_KEYS):
            form = "quoted" if key in _QUOTED_KEYS else "a bare decimal"
            raise _malformed(f"signature header parameter {key!r} must be {form}")
        fields[key] = quoted if quoted is not None else bare
    missing = _KEYS - fields.keys()
    if missing:
        raise _malformed(f"signature header lacks {sorted(missing)}")

    _check_credential_id(fields["cred"])
    nonce = _parse_decimal(fields["nonce"], "nonce")
    ts = _parse_decimal(fields["ts"], "ts")
    if _SIGNATURE_HEX.fullmatch(fields["sig"]) is None:
        raise _malformed("sig must be 0x followed by an even number of hex digits")
    signature = bytes.fromhex(fields["sig"][2:])
    alg = fields["alg"]
    expected_length = _SIGNATURE_LENGTHS.get(alg)
    if expected_length is None:
        raise RequestAuthError(ReasonCode.SIGNATURE_INVALID, "unsupported signature alg")
    if len(signature) != expected_length:
        raise RequestAuthError(
            ReasonCode.SIGNATURE_INVALID, f"an {alg} signature is {expected_length} bytes"
        )
    return SignatureHeader(alg=alg, cred=fields["cred"], nonce=nonce, ts=ts, sig=signature)


def format_signature_header(header: SignatureHeader) -> str:
    """The canonical header value; :func:`parse_signature_header` gives ``header`` back."""
    if header.alg not in _SIGNATURE_LENGTHS:
        raise RequestAuthError(ReasonCode.SIGNATURE_INVALID, "unsupported signature alg")
    _check_credential_id(header.cred)
    _check_decimal_range(header.nonce, "nonce")
    _check_decimal_range(header.ts, "ts")
    if len(header.sig) != _SIGNATURE_LENGTHS[header.alg]:
        raise RequestAuthError(ReasonCode.SIGNATURE_INVALID, "signature length does not fit alg")
    return (
        f'alg="{header.alg}", cred="{header.cred}", nonce={header.nonce}, '
        f'ts={header.ts}, sig="0x{header.sig.hex()}"'
    )


# --------------------------------------------------------------------------------- signing


class RequestSigner(Protocol):
    """Something that signs request preimages for one ``alg`` (a key, an HSM, an enclave)."""

    @property
    def alg(self) -> str: ...

    def sign(self, preimage: bytes) -> bytes: ...


class Secp256k1RequestSigner:
    """``ecdsa-p256k-eip191``: secp256k1 over the EIP-191 personal-message hash."""

    __slots__ = ("_address", "_secret")

    def __init__(self, secret: bytes) -> None:
        self._address = address_from_secret(secret)  # also validates the secret
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return f"Secp256k1RequestSigner(address={self._address})"  # never the secret

    @property
    def alg(self) -> str:
        return ALG_SECP256K1

    @property
    def address(self) -> str:
        """The credential's address, to register with the service."""
        return self._address

    def sign(self, preimage: bytes) -> bytes:
        return sign_digest(self._secret, personal_message_hash(preimage))


class P256RequestSigner:
    """``ecdsa-p256-sha256``: P-256 over SHA-256 of the preimage."""

    __slots__ = ("_key", "_public_key")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._public_key = public_key_bytes(private_key)  # also checks the curve
        self._key = private_key

    def __repr__(self) -> str:
        return f"P256RequestSigner(public_key=0x{self._public_key.hex()})"

    @property
    def alg(self) -> str:
        return ALG_P256

    @property
    def public_key(self) -> bytes:
        """The credential's 65-byte uncompressed public key, to register with the service."""
        return self._public_key

    def sign(self, preimage: bytes) -> bytes:
        return sign_p256(self._key, preimage)


def sign_request(
    signer: RequestSigner,
    credential_id: str,
    method: str,
    path: str,
    body: bytes,
    nonce: int,
    ts_ms: int,
) -> str:
    """The ``Oms-Wallet-Signature`` header value for one request."""
    preimage = request_preimage(method, path, credential_id, nonce, ts_ms, body)
    return format_signature_header(
        SignatureHeader(
            alg=signer.alg, cred=credential_id, nonce=nonce, ts=ts_ms, sig=signer.sign(preimage)
        )
    )


# ---------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class CredentialKey:
    """A registered credential's verification key: an address for ``ecdsa-p256k-eip191``, a
    65-byte uncompressed public key for ``ecdsa-p256-sha256``. Use the two constructors."""

    alg: str
    address: str | None = None
    public_key: bytes | None = None

    def __post_init__(self) -> None:
        if self.alg == ALG_SECP256K1:
            if self.address is None or self.public_key is not None:
                raise ValueError("a secp256k1 credential key is an address only")
            object.__setattr__(self, "address", normalize_address(self.address))
        elif self.alg == ALG_P256:
            if self.public_key is None or self.address is not None:
                raise ValueError("a P-256 credential key is a public key only")
            if len(self.public_key) != 65 or self.public_key[0] != 4:
                raise ValueError("a P-256 public key is 65 bytes uncompressed SEC1")
        else:
            raise ValueError(f"unsupported alg {self.alg!r}")

    @classmethod
    def secp256k1(cls, address: str) -> CredentialKey:
        return cls(alg=ALG_SECP256K1, address=address)

    @classmethod
    def p256(cls, public_key: bytes) -> CredentialKey:
        return cls(alg=ALG_P256, public_key=bytes(public_key))


class ReplayStore(Protocol):
    """Remembers (credential, nonce) pairs until they expire."""

    def remember(self, credential_id: str, nonce: int, expires_at_ms: int) -> bool:
        """Record the pair; True if it was not already recorded (and unexpired), else False.
        Must be atomic: of two concurrent calls with the same pair, exactly one gets True."""
        ...


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class InMemoryReplayStore:
    """A thread-safe, single-process :class:`ReplayStore`.

    Expired pairs are pruned on each call (a min-heap of expiry times keeps that cheap), so
    memory is bounded by the request rate times the TTL. A multi-node deployment needs a
    shared store instead (the database), or a nonce could be replayed against another node.
    """

    def __init__(self, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, int], int] = {}
        self._heap: list[tuple[int, str, int]] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def remember(self, credential_id: str, nonce: int, expires_at_ms: int) -> bool:
        with self._lock:
            now = self._clock_ms()
            heap = self._heap
            while heap and heap[0][0] <= now:
                expires, cred, old_nonce = heapq.heappop(heap)
                if self._expiry.get((cred, old_nonce)) == expires:
                    del self._expiry[(cred, old_nonce)]
            key = (credential_id, nonce)
            if key in self._expiry:
                return False
            self._expiry[key] = expires_at_ms
            heapq.heappush(heap, (expires_at_ms, credential_id, nonce))
            return True


def _as_request_error(error: SignatureError) -> RequestAuthError:
    return RequestAuthError(error.code, error.message)


def _check_signature(key: CredentialKey, preimage: bytes, signature: bytes) -> None:
    try:
        if key.alg == ALG_SECP256K1 and key.address is not None:
            verify_signer(personal_message_hash(preimage), signature, key.address)
        elif key.alg == ALG_P256 and key.public_key is not None:
            verify_p256(key.public_key, preimage, signature)
        else:  # unreachable for keys built through CredentialKey; fail closed regardless
            raise RequestAuthError(ReasonCode.SIGNATURE_INVALID, "unusable credential key")
    except SignatureError as error:
        raise _as_request_error(error) from None


def verify_request(
    header: str | SignatureHeader,
    *,
    method: str,
    path_with_query: str,
    body: bytes,
    now_ms: int,
    lookup: Callable[[str], CredentialKey | None],
    replay: ReplayStore,
    window_ms: int = 60_000,
    replay_ttl_ms: int = 600_000,
) -> str:
    """Authenticate one request; return its credential id or raise :class:`RequestAuthError`.

    ``header`` is the header's value, or the header already parsed with
    :func:`parse_signature_header` (by a caller that routes on its ``cred`` first).

    Checks, in order: header syntax (``INPUT_MALFORMED`` / ``SIGNATURE_INVALID``);
    ``|now - ts| ≤ window_ms`` (``TIMESTAMP_OUT_OF_WINDOW``); ``lookup(cred)``
    knows the credential and it is registered for the header's ``alg`` (``SIGNATURE_INVALID``);
    the signature over :func:`request_preimage` (``SIGNATURE_INVALID``, ``SIGNATURE_MALLEABLE``,
    ``SIGNER_MISMATCH``); and last the nonce (``NONCE_REPLAYED``), remembered until
    ``max(now, ts) + replay_ttl_ms``, which outlives every moment the timestamp is acceptable.
    """
    if replay_ttl_ms < window_ms or window_ms < 0:
        raise ValueError("the replay store must remember nonces at least as long as the window")
    if not isinstance(header, SignatureHeader):  # its text (anything else is refused there)
        header = parse_signature_header(header)
    if abs(now_ms - header.ts) > window_ms:
        raise RequestAuthError(
            ReasonCode.TIMESTAMP_OUT_OF_WINDOW, "request timestamp is outside the accepted window"
        )
    key = lookup(header.cred)
    if key is None:
        raise RequestAuthError(ReasonCode.SIGNATURE_INVALID, "unknown credential")
    if key.alg != header.alg:
        raise RequestAuthError(
            ReasonCode.SIGNATURE_INVALID, "signature alg does not match the credential's key"
        )
    preimage = request_preimage(method, path_with_query, header.cred, header.nonce, header.ts, body)
    _check_signature(key, preimage, header.sig)
    if not replay.remember(header.cred, header.nonce, max(now_ms, header.ts) + replay_ttl_ms):
        raise RequestAuthError(ReasonCode.NONCE_REPLAYED, "nonce already used by this credential")
    return header.cred
