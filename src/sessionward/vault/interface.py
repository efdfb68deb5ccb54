"""The custody boundary: what every vault backend offers, and what it never does.

A vault creates secp256k1 session keys and signs 32-byte digests with them. **No method returns
key bytes**, and none of the objects here ever shows secret material in ``repr``/``str`` or in an
exception. A key can be *disabled* (on revocation: it never signs again) and *destroyed* (its
encrypted secret is wiped). Backends: :class:`sessionward.vault.local.LocalVault` (encrypted key
records in a :class:`KeyRecordStore`) and :class:`sessionward.vault.hsm.Pkcs11Vault` (keys in a
PKCS#11 token, their state in the same store); :mod:`sessionward.vault.backends` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sessionward.reasons import ReasonCode, SessionWardError


class VaultRefusal(SessionWardError):
    """The vault refused: ``KEY_UNKNOWN`` (no such key) or ``SIGNING_REFUSED`` (disabled,
    expired, destroyed, or a key record that failed authentication)."""


@dataclass(frozen=True, slots=True)
class KeyHandle:
    """A key as the rest of the system sees it: an id and its lower-case ``0x`` address."""

    key_id: str
    address: str


@runtime_checkable
class Vault(Protocol):
    """Key custody. Times are unix seconds."""

    def create_key(self, *, not_after: int | None = None) -> KeyHandle:
        """Generate a key inside the vault; it will refuse to sign at or after ``not_after``."""
        ...

    def sign(self, key_id: str, digest: bytes, *, now: int) -> bytes:
        """Sign a 32-byte digest: 65 bytes ``r ‖ s ‖ v``, low ``s``, ``v`` in {27, 28}.

        Raises :class:`VaultRefusal` (``KEY_UNKNOWN`` or ``SIGNING_REFUSED``)."""
        ...

    def disable(self, key_id: str, *, now: int) -> None:
        """Never sign with this key again (idempotent; the first disable time is kept)."""
        ...

    def destroy(self, key_id: str) -> None:
        """Wipe the key's secret (idempotent); its id and address stay known."""
        ...

    def address_of(self, key_id: str) -> str:
        """The key's address (public). Raises :class:`VaultRefusal` ``KEY_UNKNOWN``."""
        ...


@runtime_checkable
class RecordVault(Vault, Protocol):
    """A vault whose key state lives in a :class:`KeyRecordStore` (both backends): ``sign``
    also takes the key's ``record`` as the caller just read it (the execution transaction's
    read), and ``close`` releases what the vault holds open (a token session)."""

    def sign(
        self, key_id: str, digest: bytes, *, now: int, record: KeyRecord | None = None
    ) -> bytes:
        """As :meth:`Vault.sign`; every refusal applies to a given ``record`` as to one read
        by the vault. A ``record`` of another key is a ``ValueError``."""
        ...

    def close(self) -> None:
        """Stop using the vault's resources (idempotent)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key at rest, as :class:`LocalVault` stores it.

    ``ciphertext`` is the secret encrypted under a per-key data key, ``wrapped_data_key`` that
    data key encrypted under the key-encryption key, ``nonces`` the two 12-byte AES-GCM nonces
    (wrap nonce ‖ secret nonce). A destroyed record has empty ``ciphertext`` and
    ``wrapped_data_key``. Byte fields are left out of ``repr``.
    """

    key_id: str
    address: str
    wrapped_data_key: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)
    nonces: bytes = field(repr=False)
    created_at: int
    not_after: int | None = None
    disabled_at: int | None = None
    destroyed_at: int | None = None


class KeyRecordStore(Protocol):
    """Where key records live: SQL (shared by every node) or memory (unit tests)."""

    def add(self, record: KeyRecord) -> None:
        """Store a new record (its ``key_id`` is fresh)."""
        ...

    def get(self, key_id: str) -> KeyRecord | None:
        """The current record, read fresh (a disable by another node must be seen)."""
        ...

    def disable(self, key_id: str, *, now: int) -> bool:
        """Set ``disabled_at`` if unset; False if the key is unknown or already disabled."""
        ...

    def destroy(self, key_id: str, *, now: int) -> bool:
        """Wipe ``ciphertext`` and ``wrapped_data_key`` and set ``destroyed_at`` (and
        ``disabled_at`` if unset); False if unknown or already destroyed."""
        ...


def usable_record(
    records: KeyRecordStore, key_id: str, now: int, record: KeyRecord | None = None
) -> KeyRecord:
    """The record of ``key_id`` (``record`` if the caller already read it, else read fresh) if
    it may sign at ``now``; else a :class:`VaultRefusal`: ``KEY_UNKNOWN`` for no record,
    ``SIGNING_REFUSED`` for a destroyed, disabled or expired key. Every backend checks a key's
    state here before it signs, so the rules cannot differ between backends."""
    if record is None:
        record = records.get(key_id)
    if record is None:
        raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")
    if record.destroyed_at is not None or not record.ciphertext:
        raise VaultRefusal(ReasonCode.SIGNING_REFUSED, f"key {key_id} was destroyed")
    if record.disabled_at is not None:
        raise VaultRefusal(ReasonCode.SIGNING_REFUSED, f"key {key_id} is disabled")
    if record.not_after is not None and now >= record.not_after:
        raise VaultRefusal(ReasonCode.SIGNING_REFUSED, f"key {key_id} has expired")
    return record
