"""Ethereum transactions built and signed in Python: EIP-1559 (type 2) and EIP-7702 (type 4).

Encodings (EIP-2718 typed envelopes):

- type 2: ``0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value,
  data, accessList, yParity, r, s])``;
- type 4: ``0x04 ‖ rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value,
  data, accessList, authorizationList, yParity, r, s])`` with each authorization
  ``[chainId, address, nonce, yParity, r, s]``.

The signing digest is ``keccak256(type ‖ rlp(fields without the signature))``; an EIP-7702
authorization signs ``keccak256(0x05 ‖ rlp([chainId, address, nonce]))``. The transaction hash
is ``keccak256`` of the whole signed envelope.

RLP is the ``rlp`` package's (pyrlp: canonical encoding, strict decoding that refuses
non-minimal lengths, wrapped single bytes and trailing bytes). Signatures come from
:func:`sessionward.crypto.secp256k1.sign_digest` (libsecp256k1: low ``s``, ``v`` 27/28), so
``yParity = v - 27``. Decoding (:func:`decode_signed_transaction`) is strict: canonical RLP,
minimal integers, field ranges, ``yParity`` in {0, 1}, low ``s``, and a recoverable non-zero
sender. The bytes equal eth-account's (``tests/chain/test_ethereum_transactions.py``); signing and
decoding stay here rather than in eth-account because eth-account's path is 3.5-7x slower to
sign and 4.5-8x slower to decode in the same run (``bench/tx_signing.py``, docs/benchmarks.md), is
not a declared runtime dependency, and its decoder accepts the high-``s`` twin of a signature.

Addresses are kept as lower-case ``0x`` strings; hashes as lower-case ``0x`` hex strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, TypeAlias

import rlp  # type: ignore[import-untyped]
from rlp.sedes import big_endian_int  # type: ignore[import-untyped]

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import (
    SECP256K1_N,
    SignatureError,
    normalize_address,
    recover_signer,
    sign_digest,
)

__all__ = [
    "AccessListEntry",
    "Authorization",
    "Eip1559Transaction",
    "SetCodeTransaction",
    "SignedTransaction",
    "TransactionDecodingError",
    "UnsignedTransaction",
    "authorization_digest",
    "decode_authorization_list",
    "decode_signed_transaction",
    "encode_authorization_list",
    "sign_authorization",
    "sign_transaction",
    "transaction_hash",
]

EIP1559_TYPE: Final = 2
SET_CODE_TYPE: Final = 4
AUTHORIZATION_MAGIC: Final = b"\x05"
_UINT64_MAX: Final = 2**64 - 1
_UINT256_MAX: Final = 2**256 - 1
_HALF_N: Final = SECP256K1_N // 2

RlpItem: TypeAlias = bytes | Sequence["RlpItem"]
"""What RLP encodes: a byte string or a sequence of items."""


def _encode(item: RlpItem) -> bytes:
    """RLP of bytes and (nested) lists, without pyrlp's type inference (it is 6x slower)."""
    encoded: bytes = rlp.encode(item, infer_serializer=False)
    return encoded


def _uint_bytes(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer (``0`` is the empty string)."""
    raw: bytes = big_endian_int.serialize(value)
    return raw


class TransactionDecodingError(ValueError):
    """Raw bytes that are not one valid signed type-2 or type-4 transaction."""


def _check_uint(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [0, {maximum}]")


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


@dataclass(frozen=True, slots=True)
class AccessListEntry:
    """An EIP-2930 access list entry: an address and the storage keys (32 bytes each)."""

    address: str
    storage_keys: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))
        if any(not isinstance(k, bytes) or len(k) != 32 for k in self.storage_keys):
            raise ValueError("storage keys are 32 bytes")

    def to_rlp(self) -> list[RlpItem]:
        return [_address_bytes(self.address), list(self.storage_keys)]


@dataclass(frozen=True, slots=True)
class Authorization:
    """A signed EIP-7702 authorization: the authority (recovered from the signature) lets its
    EOA run the code of ``address``, if its account nonce equals ``nonce``.

    ``chain_id = 0`` means any chain; ``address`` zero clears a delegation.
    """

    chain_id: int
    address: str
    nonce: int
    y_parity: int
    r: int
    s: int

    def __post_init__(self) -> None:
        _check_uint("authorization chain_id", self.chain_id, _UINT256_MAX)
        _check_uint("authorization nonce", self.nonce, _UINT64_MAX)
        if self.y_parity not in (0, 1):
            raise ValueError("authorization y_parity must be 0 or 1")
        _check_uint("authorization r", self.r, _UINT256_MAX)
        _check_uint("authorization s", self.s, _UINT256_MAX)
        object.__setattr__(self, "address", normalize_address(self.address))

    @classmethod
    def from_signature(
        cls, *, chain_id: int, address: str, nonce: int, signature: bytes
    ) -> Authorization:
        """Build from a 65-byte ``r ‖ s ‖ v`` signature over :func:`authorization_digest`
        (e.g. one a vault or a wallet produced)."""
        if len(signature) != 65 or signature[64] not in (27, 28):
            raise ValueError("an authorization signature is 65 bytes r‖s‖v with v 27/28")
        return cls(
            chain_id=chain_id,
            address=address,
            nonce=nonce,
            y_parity=signature[64] - 27,
            r=int.from_bytes(signature[:32], "big"),
            s=int.from_bytes(signature[32:64], "big"),
        )

    def digest(self) -> bytes:
        """The digest the authority signed."""
        return authorization_digest(self.chain_id, self.address, self.nonce)

    def authority(self) -> str:
        """The signing EOA. Raises :class:`SignatureError` for an invalid signature (high
        ``s``, zero ``r``/``s``, unrecoverable); the EVM then skips the authorization."""
        signature = (
            self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([27 + self.y_parity])
        )
        return recover_signer(self.digest(), signature)

    def to_rlp(self) -> list[RlpItem]:
        return [
            _uint_bytes(self.chain_id),
            _address_bytes(self.address),
            _uint_bytes(self.nonce),
            _uint_bytes(self.y_parity),
            _uint_bytes(self.r),
            _uint_bytes(self.s),
        ]


def authorization_digest(chain_id: int, address: str, nonce: int) -> bytes:
    """``keccak256(0x05 ‖ rlp([chain_id, address, nonce]))`` (EIP-7702)."""
    _check_uint("chain_id", chain_id, _UINT256_MAX)
    _check_uint("nonce", nonce, _UINT64_MAX)
    body = _encode(
        [
            _uint_bytes(chain_id),
            _address_bytes(normalize_address(address)),
            _uint_bytes(nonce),
        ]
    )
    return keccak256(AUTHORIZATION_MAGIC + body)


def sign_authorization(secret: bytes, *, chain_id: int, address: str, nonce: int) -> Authorization:
    """Sign an EIP-7702 authorization with a raw secret (tests and dev tools; production
    owners sign with their own wallet and come back through
    :meth:`Authorization.from_signature`)."""
    signature = sign_digest(secret, authorization_digest(chain_id, address, nonce))
    return Authorization.from_signature(
        chain_id=chain_id, address=address, nonce=nonce, signature=signature
    )


@dataclass(frozen=True, slots=True)
class _FeeMarketFields:
    """Fields shared by type-2 and type-4 transactions, validated on construction."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: str | None
    value: int = 0
    data: bytes = b""
    access_list: tuple[AccessListEntry, ...] = ()

    TYPE: ClassVar[int] = 0

    def __post_init__(self) -> None:
        _check_uint("chain_id", self.chain_id, _UINT256_MAX)
        if self.chain_id == 0:
            raise ValueError("chain_id 0 is not a chain")
        _check_uint("nonce", self.nonce, _UINT64_MAX - 1)
        _check_uint("max_priority_fee_per_gas", self.max_priority_fee_per_gas, _UINT256_MAX)
        _check_uint("max_fee_per_gas", self.max_fee_per_gas, _UINT256_MAX)
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise ValueError("max_priority_fee_per_gas cannot exceed max_fee_per_gas")
        _check_uint("gas", self.gas, _UINT64_MAX)
        _check_uint("value", self.value, _UINT256_MAX)
        if not isinstance(self.data, bytes):
            raise ValueError("data must be bytes")
        if self.to is not None:
            object.__setattr__(self, "to", normalize_address(self.to))
        object.__setattr__(self, "access_list", tuple(self.access_list))

    def _common_rlp(self) -> list[RlpItem]:
        return [
            _uint_bytes(self.chain_id),
            _uint_bytes(self.nonce),
            _uint_bytes(self.max_priority_fee_per_gas),
            _uint_bytes(self.max_fee_per_gas),
            _uint_bytes(self.gas),
            b"" if self.to is None else _address_bytes(self.to),
            _uint_bytes(self.value),
            self.data,
            [entry.to_rlp() for entry in self.access_list],
        ]

    def payload_fields(self) -> list[RlpItem]:
        """The RLP fields before the signature."""
        return self._common_rlp()

    def signing_digest(self) -> bytes:
        """``keccak256(type ‖ rlp(payload_fields))``: what the sender signs."""
        return keccak256(bytes([self.TYPE]) + _encode(self.payload_fields()))

    def encode_signed(self, signature: bytes) -> bytes:
        """The signed envelope for a 65-byte ``r ‖ s ‖ v`` signature (``v`` 27/28)."""
        if len(signature) != 65 or signature[64] not in (27, 28):
            raise ValueError("a transaction signature is 65 bytes r‖s‖v with v 27/28")
        fields = [
            *self.payload_fields(),
            _uint_bytes(signature[64] - 27),
            _uint_bytes(int.from_bytes(signature[:32], "big")),
            _uint_bytes(int.from_bytes(signature[32:64], "big")),
        ]
        return bytes([self.TYPE]) + _encode(fields)


@dataclass(frozen=True, slots=True)
class Eip1559Transaction(_FeeMarketFields):
    """An unsigned EIP-1559 transaction; ``to=None`` creates a contract from ``data``."""

    TYPE: ClassVar[int] = EIP1559_TYPE


@dataclass(frozen=True, slots=True)
class SetCodeTransaction(_FeeMarketFields):
    """An unsigned EIP-7702 transaction: ``authorization_list`` (non-empty) is applied before
    the call; ``to`` is mandatory (a set-code transaction cannot create a contract)."""

    authorization_list: tuple[Authorization, ...] = field(default=())

    TYPE: ClassVar[int] = SET_CODE_TYPE

    def __post_init__(self) -> None:
        _FeeMarketFields.__post_init__(self)
        if self.to is None:
            raise ValueError("a set-code transaction needs a destination")
        object.__setattr__(self, "authorization_list", tuple(self.authorization_list))
        if not self.authorization_list:
            raise ValueError("a set-code transaction needs at least one authorization")

    def payload_fields(self) -> list[RlpItem]:
        return [*self._common_rlp(), [auth.to_rlp() for auth in self.authorization_list]]


UnsignedTransaction = Eip1559Transaction | SetCodeTransaction


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A signed transaction: the envelope bytes, its hash, the recovered sender."""

    raw: bytes = field(repr=False)
    hash: str
    sender: str
    unsigned: UnsignedTransaction


def transaction_hash(raw: bytes) -> str:
    """``0x`` hex of ``keccak256(raw)``: the hash nodes index a typed transaction by."""
    return "0x" + keccak256(raw).hex()


def sign_transaction(unsigned: UnsignedTransaction, secret: bytes) -> SignedTransaction:
    """Sign ``unsigned`` with a raw 32-byte secret (used by local signers; the secret is
    never kept or logged)."""
    signature = sign_digest(secret, unsigned.signing_digest())
    raw = unsigned.encode_signed(signature)
    sender = recover_signer(unsigned.signing_digest(), signature)
    return SignedTransaction(raw=raw, hash=transaction_hash(raw), sender=sender, unsigned=unsigned)


# ------------------------------------------------------------------------------- decoding


def _as_bytes(item: RlpItem, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise TransactionDecodingError(f"{what} must be a byte string")
    return item


def _as_list(item: RlpItem, what: str) -> list[RlpItem]:
    if isinstance(item, bytes):
        raise TransactionDecodingError(f"{what} must be a list")
    return list(item)


def _uint(item: RlpItem, what: str, bits: int = 256) -> int:
    raw = _as_bytes(item, what)
    if raw[:1] == b"\x00":
        raise TransactionDecodingError(f"{what}: integer with a leading zero byte")
    value = int.from_bytes(raw, "big")
    if value.bit_length() > bits:
        raise TransactionDecodingError(f"{what}: integer wider than {bits} bits")
    return value


def _decode(raw: bytes, what: str) -> RlpItem:
    """Exactly one canonical RLP item spanning ``raw`` (pyrlp, strict)."""
    try:
        item: RlpItem = rlp.decode(raw, strict=True)
    except rlp.DecodingError as exc:
        raise TransactionDecodingError(f"malformed {what} RLP: {exc}") from None
    except RecursionError:  # pyrlp recurses once per nesting level
        raise TransactionDecodingError(f"malformed {what} RLP: nesting too deep") from None
    return item


def _address(item: RlpItem, what: str) -> str:
    raw = _as_bytes(item, what)
    if len(raw) != 20:
        raise TransactionDecodingError(f"{what} must be 20 bytes")
    return "0x" + raw.hex()


def _signature(y_parity: int, r: int, s: int) -> bytes:
    if y_parity not in (0, 1):
        raise TransactionDecodingError("yParity must be 0 or 1")
    if not 0 < r < SECP256K1_N or not 0 < s <= _HALF_N:
        raise TransactionDecodingError("signature r/s out of range (s must be low)")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + y_parity])


def _access_list(item: RlpItem) -> tuple[AccessListEntry, ...]:
    entries = []
    for raw_entry in _as_list(item, "accessList"):
        pair = _as_list(raw_entry, "access list entry")
        if len(pair) != 2:
            raise TransactionDecodingError("access list entry must be [address, keys]")
        keys = tuple(_as_bytes(k, "storage key") for k in _as_list(pair[1], "storage keys"))
        if any(len(k) != 32 for k in keys):
            raise TransactionDecodingError("storage keys are 32 bytes")
        entries.append(AccessListEntry(_address(pair[0], "access list address"), keys))
    return tuple(entries)


def _authorizations(item: RlpItem) -> tuple[Authorization, ...]:
    auths = []
    for raw_auth in _as_list(item, "authorizationList"):
        parts = _as_list(raw_auth, "authorization")
        if len(parts) != 6:
            raise TransactionDecodingError("an authorization has 6 fields")
        y_parity = _uint(parts[3], "authorization yParity", 8)
        if y_parity not in (0, 1):
            raise TransactionDecodingError("authorization yParity must be 0 or 1")
        auths.append(
            Authorization(
                chain_id=_uint(parts[0], "authorization chainId"),
                address=_address(parts[1], "authorization address"),
                nonce=_uint(parts[2], "authorization nonce", 64),
                y_parity=y_parity,
                r=_uint(parts[4], "authorization r"),
                s=_uint(parts[5], "authorization s"),
            )
        )
    return tuple(auths)


def encode_authorization_list(authorizations: tuple[Authorization, ...]) -> bytes:
    """RLP of an authorization list (what a type-4 transaction carries), for storage."""
    return _encode([auth.to_rlp() for auth in authorizations])


def decode_authorization_list(raw: bytes) -> tuple[Authorization, ...]:
    """Inverse of :func:`encode_authorization_list`; raises :class:`TransactionDecodingError`."""
    try:
        return _authorizations(_decode(bytes(raw), "authorization list"))
    except TransactionDecodingError:
        raise
    except ValueError as exc:
        raise TransactionDecodingError(f"malformed authorization list: {exc}") from None


def decode_signed_transaction(raw: bytes) -> SignedTransaction:
    """Strictly decode a signed type-2 or type-4 envelope and recover its sender.

    Raises :class:`TransactionDecodingError` for anything that is not exactly one canonical,
    well-formed, validly signed transaction (the authorizations inside a type-4 transaction
    are *not* verified here: the EVM skips invalid ones, it does not reject the transaction).
    """
    raw = bytes(raw)
    if not raw or raw[0] not in (EIP1559_TYPE, SET_CODE_TYPE):
        raise TransactionDecodingError("only type-2 and type-4 transactions are supported")
    fields = _as_list(_decode(raw[1:], "transaction"), "transaction")
    expected = 12 if raw[0] == EIP1559_TYPE else 13
    if len(fields) != expected:
        raise TransactionDecodingError(f"a type-{raw[0]} transaction has {expected} fields")
    to_raw = _as_bytes(fields[5], "to")
    common = {
        "chain_id": _uint(fields[0], "chainId"),
        "nonce": _uint(fields[1], "nonce", 64),
        "max_priority_fee_per_gas": _uint(fields[2], "maxPriorityFeePerGas"),
        "max_fee_per_gas": _uint(fields[3], "maxFeePerGas"),
        "gas": _uint(fields[4], "gas", 64),
        "to": None if to_raw == b"" else _address(to_raw, "to"),
        "value": _uint(fields[6], "value"),
        "data": _as_bytes(fields[7], "data"),
        "access_list": _access_list(fields[8]),
    }
    try:
        unsigned: UnsignedTransaction
        if raw[0] == EIP1559_TYPE:
            unsigned = Eip1559Transaction(**common)  # type: ignore[arg-type]
        else:
            unsigned = SetCodeTransaction(
                **common,  # type: ignore[arg-type]
                authorization_list=_authorizations(fields[9]),
            )
    except ValueError as exc:
        raise TransactionDecodingError(str(exc)) from None
    y_parity = _uint(fields[-3], "yParity", 8)
    signature = _signature(y_parity, _uint(fields[-2], "r"), _uint(fields[-1], "s"))
    try:
        sender = recover_signer(unsigned.signing_digest(), signature)
    except SignatureError as exc:
        raise TransactionDecodingError(f"bad signature: {exc.message}") from None
    if unsigned.encode_signed(signature) != raw:  # canonical round trip, belt and braces
        raise TransactionDecodingError("non-canonical transaction encoding")
    return SignedTransaction(raw=raw, hash=transaction_hash(raw), sender=sender, unsigned=unsigned)
