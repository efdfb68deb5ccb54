"""The key-encryption key (KEK) that wraps every per-key data key of the local vault.

Where it comes from, in order:

1. ``$SESSIONWARD_VAULT_KEY``: 64 hex digits, or the base64 of exactly 32 bytes. The production
   path (README): the key then lives in the process's environment, filled from a secret manager,
   a KMS or an HSM, never in the data directory.
2. ``$SESSIONWARD_VAULT_KEY_FILE``: a key file kept *outside* the data directory (made on first
   run like the next one; refused if it is inside the data directory).
3. The file ``<data_dir>/vault.key`` (64 hex digits), the embedded default: created on first run
   with mode 0600, and refused if it is readable or writable by group or others, or is not a
   regular file. It sits next to the SQLite database, so a copy of that one folder decrypts
   every session key: every start with it logs a loud ``SECURITY`` warning.

Errors (:class:`KeyEncryptionKeyError`) say what is wrong and never echo the value. The key
bytes live only inside an AES-GCM object; ``repr`` shows nothing of them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .key_files import read_private_key_file

ENV_VAULT_KEY: Final = "SESSIONWARD_VAULT_KEY"
ENV_VAULT_KEY_FILE: Final = "SESSIONWARD_VAULT_KEY_FILE"
KEK_FILE_NAME: Final = "vault.key"
_KEY_BYTES: Final = 32
_security_log = logging.getLogger("sessionward.security")


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


class DataKeyWrapper(Protocol):
    """What the local vault needs of its key-encryption key: :class:`KeyEncryptionKey` (the key
    in this process) or :class:`sessionward.vault.hsm.TokenKeyEncryptionKey` (in a token)."""

    def wrap(self, nonce: bytes, data_key: bytes, associated_data: bytes) -> bytes:
        """AES-256-GCM ``ciphertext ‖ tag`` of a data key bound to ``associated_data``."""
        ...

    def unwrap_into(
        self, nonce: bytes, wrapped: bytes, associated_data: bytes, buffer: bytearray
    ) -> None:
        """Decrypt into ``buffer``; ``cryptography.exceptions.InvalidTag`` if altered."""
        ...


class KeyEncryptionKeyError(Exception):
    """The KEK is missing, malformed or unsafely stored (the message never contains it)."""


class KeyEncryptionKey:
    """AES-256-GCM under the KEK. Construct with :meth:`load`, :meth:`from_text` or from 32
    bytes."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes | bytearray) -> None:
        if len(key) != _KEY_BYTES:
            raise KeyEncryptionKeyError("the vault key must be 32 bytes")
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:
        return "KeyEncryptionKey(<redacted>)"

    __str__ = __repr__

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        """A fresh random KEK (tests, and nothing else: a KEK that is not saved is lost)."""
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def from_text(cls, value: str, *, source: str = ENV_VAULT_KEY) -> KeyEncryptionKey:
        """Parse 64 hex digits or the base64 of 32 bytes; ``source`` names it in errors."""
        value = value.strip()
        if len(value) == 2 * _KEY_BYTES:
            try:
                return cls(bytes.fromhex(value))
            except ValueError:
                # 64 characters that are not hex may still be base64 (of 48 bytes): read on.
                pass
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != _KEY_BYTES:
            raise KeyEncryptionKeyError(
                f"{source} must be 64 hex digits or the base64 of 32 bytes"
            ) from None
        return cls(decoded)

    @classmethod
    def load(
        cls, data_dir: Path | None, environ: Mapping[str, str] | None = None
    ) -> KeyEncryptionKey:
        """The KEK from the environment, else from ``<data_dir>/vault.key`` (made if absent)."""
        env = os.environ if environ is None else environ
        value = env.get(ENV_VAULT_KEY)
        if value:
            return cls.from_text(value)
        key_file = env.get(ENV_VAULT_KEY_FILE)
        if key_file:
            path = Path(key_file)
            if data_dir is not None and _inside(path, Path(data_dir)):
                raise KeyEncryptionKeyError(
                    f"{ENV_VAULT_KEY_FILE} must name a file outside the data directory"
                )
            return cls.from_file(path)
        if data_dir is None:
            raise KeyEncryptionKeyError(f"no vault key: set {ENV_VAULT_KEY} or give a data_dir")
        _security_log.warning(
            "SECURITY: the vault's key-encryption key is the file %s, in the data directory "
            "next to the database: a copy of that folder decrypts every session key. Set %s "
            "(from a secret manager, KMS or HSM) or %s (a file outside the data directory) in "
            "production.",
            Path(data_dir) / KEK_FILE_NAME,
            ENV_VAULT_KEY,
            ENV_VAULT_KEY_FILE,
        )
        return cls.from_file(Path(data_dir) / KEK_FILE_NAME)

    @classmethod
    def from_file(cls, path: Path) -> KeyEncryptionKey:
        """Read the KEK file, creating it (:mod:`sessionward.vault.key_files`) if it is absent."""
        text = read_private_key_file(
            path, error=KeyEncryptionKeyError, make=lambda: secrets.token_bytes(_KEY_BYTES).hex()
        )
        return cls.from_text(text, source=str(path))

    def wrap(self, nonce: bytes, data_key: bytes, associated_data: bytes) -> bytes:
        """Encrypt a data key (AES-256-GCM) bound to ``associated_data``."""
        return self._aead.encrypt(nonce, data_key, associated_data)

    def unwrap_into(
        self, nonce: bytes, wrapped: bytes, associated_data: bytes, buffer: bytearray
    ) -> None:
        """Decrypt a wrapped data key into ``buffer`` (wipeable by the caller).

        Raises ``cryptography.exceptions.InvalidTag`` if anything was altered.
        """
        self._aead.decrypt_into(nonce, wrapped, associated_data, buffer)
