"""The local vault: session keys encrypted at rest, signing in process.

Each key has its own random 256-bit *data key*. The secret is encrypted with AES-256-GCM under
the data key, with associated data binding the key id and address; the data key is encrypted
(wrapped) with AES-256-GCM under the key-encryption key (:mod:`sessionward.vault.kek`, or an AES
key in a PKCS#11 token: :class:`sessionward.vault.hsm.TokenKeyEncryptionKey`), with
associated data binding the key id. A record copied onto another key id, an altered address,
ciphertext, wrapped key or nonce all fail authentication, and the vault then refuses to sign.

The plaintext secret exists only inside :meth:`LocalVault.sign` (and :meth:`create_key`), in
buffers wiped before the call returns (best effort: Python and the signing library may hold
transient copies, but nothing is retained, logged or put in an exception).
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sessionward.crypto.secp256k1 import SECP256K1_N, address_from_secret, sign_digest
from sessionward.reasons import ReasonCode

from .interface import KeyHandle, KeyRecord, KeyRecordStore, VaultRefusal, usable_record
from .kek import DataKeyWrapper

_NONCE: Final = 12
_TAG: Final = 16
_SECRET: Final = 32
_WRAP_AD: Final = b"sessionward/vault/v1/data-key\x00"
_SECRET_AD: Final = b"sessionward/vault/v1/secret\x00"


def _wrap_ad(key_id: str) -> bytes:
    return _WRAP_AD + key_id.encode()


def _secret_ad(key_id: str, address: str) -> bytes:
    return _SECRET_AD + key_id.encode() + b"\x00" + address.encode()


@contextmanager
def _wiped(size: int) -> Iterator[bytearray]:
    """A scratch buffer zeroed when the block ends, however it ends."""
    buffer = bytearray(size)
    try:
        yield buffer
    finally:
        for i in range(len(buffer)):
            buffer[i] = 0


_security_log = logging.getLogger("sessionward.security")


class LocalVault:
    """A :class:`sessionward.vault.interface.Vault` over encrypted :class:`KeyRecord` s."""

    def __init__(
        self,
        records: KeyRecordStore,
        kek: DataKeyWrapper,
        *,
        clock: Callable[[], int] | None = None,
        on_tamper: Callable[[str], object] | None = None,
    ) -> None:
        """``on_tamper(key_id)`` is called when a record fails authentication (after the
        security event is logged), e.g. :func:`sessionward.service.vault_tamper.tamper_alerts`."""
        self._records = records
        self._kek = kek
        self._clock = clock or (lambda: int(time.time()))
        self._on_tamper = on_tamper

    def __repr__(self) -> str:
        return "LocalVault(<keys encrypted at rest>)"

    def close(self) -> None:
        """Release the key-encryption key if it holds something open (a token session); the
        records' store is closed by its owner."""
        close = getattr(self._kek, "close", None)
        if close is not None:
            close()

    def create_key(self, *, not_after: int | None = None) -> KeyHandle:
        """Generate a secp256k1 key, store it encrypted, and return its id and address."""
        key_id = f"vk_{uuid.uuid4().hex}"
        wrap_nonce, secret_nonce = secrets.token_bytes(_NONCE), secrets.token_bytes(_NONCE)
        data_key = bytearray(AESGCM.generate_key(bit_length=256))
        try:
            secret = _new_secret()
            address = address_from_secret(secret)
            ciphertext = AESGCM(bytes(data_key)).encrypt(
                secret_nonce, secret, _secret_ad(key_id, address)
            )
            del secret
            wrapped = self._kek.wrap(wrap_nonce, bytes(data_key), _wrap_ad(key_id))
        finally:
            for i in range(len(data_key)):
                data_key[i] = 0
        self._records.add(
            KeyRecord(
                key_id=key_id,
                address=address,
                wrapped_data_key=wrapped,
                ciphertext=ciphertext,
                nonces=wrap_nonce + secret_nonce,
                created_at=self._clock(),
                not_after=not_after,
            )
        )
        return KeyHandle(key_id, address)

    def sign(
        self, key_id: str, digest: bytes, *, now: int, record: KeyRecord | None = None
    ) -> bytes:
        """Sign ``digest`` (32 bytes) with the key, unless it is unknown (``KEY_UNKNOWN``) or
        disabled, expired (``now >= not_after``), destroyed or tampered with
        (``SIGNING_REFUSED``). A digest of the wrong length is a ``ValueError``.

        ``record``, when given, is the key's record as the caller has just read it from this
        vault's record store (the execution transaction reads it under the same database
        transaction that commits the signature); every check above is applied to it exactly as
        to a record read here. Without it, the record is read afresh.
        """
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        if record is not None and record.key_id != key_id:
            raise ValueError("the record is not the record of this key")
        record = self._usable(key_id, now, record)
        with _wiped(_SECRET) as data_key, _wiped(_SECRET) as secret:
            try:
                self._kek.unwrap_into(
                    record.nonces[:_NONCE], record.wrapped_data_key, _wrap_ad(key_id), data_key
                )
                AESGCM(bytes(data_key)).decrypt_into(
                    record.nonces[_NONCE:],
                    record.ciphertext,
                    _secret_ad(key_id, record.address),
                    secret,
                )
            except (InvalidTag, ValueError):
                self._tampered(key_id)
                raise VaultRefusal(
                    ReasonCode.SIGNING_REFUSED, f"key {key_id} failed authentication at rest"
                ) from None
            return sign_digest(bytes(secret), digest)

    def _tampered(self, key_id: str) -> None:
        """A record that fails authentication was altered, or wrapped under another KEK: a
        security event (the key id only; nothing of the record), then the alert hook."""
        _security_log.error(
            "SECURITY EVENT: vault record %s failed authentication at rest (altered, or "
            "encrypted under another key-encryption key); signing refused",
            key_id,
        )
        if self._on_tamper is not None:
            try:
                self._on_tamper(key_id)
            except Exception:  # the refusal stands whatever the alert path does
                _security_log.exception("could not raise the alert for vault record %s", key_id)

    def _usable(self, key_id: str, now: int, record: KeyRecord | None = None) -> KeyRecord:
        record = usable_record(self._records, key_id, now, record)
        if len(record.nonces) != 2 * _NONCE or len(record.ciphertext) != _SECRET + _TAG:
            raise VaultRefusal(ReasonCode.SIGNING_REFUSED, f"key {key_id} record is malformed")
        return record

    def disable(self, key_id: str, *, now: int) -> None:
        """Never sign with the key again (idempotent). Raises ``KEY_UNKNOWN``."""
        if not self._records.disable(key_id, now=now) and self._records.get(key_id) is None:
            raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")

    def destroy(self, key_id: str) -> None:
        """Wipe the key's secret (idempotent). Raises ``KEY_UNKNOWN``."""
        if not self._records.destroy(key_id, now=self._clock()) and (
            self._records.get(key_id) is None
        ):
            raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")

    def address_of(self, key_id: str) -> str:
        record = self._records.get(key_id)
        if record is None:
            raise VaultRefusal(ReasonCode.KEY_UNKNOWN, f"no key {key_id}")
        return record.address


def _new_secret() -> bytes:
    """A uniformly random secp256k1 secret in ``[1, n - 1]``."""
    while True:
        candidate = secrets.token_bytes(_SECRET)
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_N:
            return candidate
