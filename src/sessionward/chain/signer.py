"""Who signs the relayer's transactions: the :class:`TransactionSigner` protocol and a local
implementation over the service's own hot key.

The relayer key pays gas and submits transactions; it is **not** a session key and holds no
authority over any wallet (the account contracts check session and owner signatures, not the
relayer). It is still money, so :class:`LocalTransactionSigner`:

- loads the secret from a file that must be private to its owner (mode ``0600`` or stricter;
  anything group/other-accessible is refused) or from the environment variable
  ``SESSIONWARD_RELAYER_KEY`` (64 hex digits, optional ``0x``);
- keeps it in a private attribute, shows only the address in ``repr``/``str``, and never puts
  it in an exception message or a log line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from sessionward.chain.ethereum_transactions import UnsignedTransaction, sign_transaction
from sessionward.crypto.secp256k1 import (
    SECP256K1_N,
    address_from_secret,
    personal_message_hash,
    sign_digest,
)
from sessionward.vault.key_files import read_private_key_file

__all__ = [
    "RELAYER_KEY_ENV",
    "LocalTransactionSigner",
    "RelayerKeyError",
    "TransactionSigner",
]

RELAYER_KEY_ENV: Final = "SESSIONWARD_RELAYER_KEY"


class RelayerKeyError(Exception):
    """The relayer key could not be loaded (missing, malformed, or too widely readable).
    The message never contains key material."""


@runtime_checkable
class TransactionSigner(Protocol):
    """Signs transactions for one fixed address."""

    @property
    def address(self) -> str:
        """Lower-case ``0x`` address of the signing key."""
        ...

    def sign_transaction(self, unsigned: UnsignedTransaction) -> bytes:
        """The signed envelope (raw bytes ready for ``eth_sendRawTransaction``)."""
        ...


def _parse_secret(text: str, origin: str) -> bytes:
    body = text.strip()
    body = body[2:] if body[:2] in ("0x", "0X") else body
    try:
        secret = bytes.fromhex(body)
    except ValueError:
        raise RelayerKeyError(f"{origin}: the relayer key is not hex") from None
    if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
        raise RelayerKeyError(f"{origin}: the relayer key is not a valid 32-byte secret")
    return secret


class LocalTransactionSigner:
    """A :class:`TransactionSigner` holding its secret in process memory."""

    __slots__ = ("__secret", "_address")

    def __init__(self, secret: bytes) -> None:
        self.__secret = _parse_secret(bytes(secret).hex(), "secret")
        self._address = address_from_secret(self.__secret)

    @classmethod
    def from_file(cls, path: str | Path, *, create: bool = False) -> LocalTransactionSigner:
        """Load the key from ``path`` (hex). With ``create=True`` a missing file is created
        with a fresh random key, mode ``0600``, never overwriting an existing file.

        Raises :class:`RelayerKeyError` if the file is missing (and not created), is not a
        regular file, is readable or writable by group/others, or does not hold a key.
        """
        target = Path(path)
        text = read_private_key_file(
            target,
            error=lambda why: RelayerKeyError(f"relayer key file {why}"),
            make=(lambda: secrets.token_bytes(32).hex()) if create else None,
        )
        return cls(_parse_secret(text, str(target)))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalTransactionSigner:
        """Load the key from ``SESSIONWARD_RELAYER_KEY``."""
        env = os.environ if environ is None else environ
        value = env.get(RELAYER_KEY_ENV)
        if not value:
            raise RelayerKeyError(f"{RELAYER_KEY_ENV} is not set")
        return cls(_parse_secret(value, RELAYER_KEY_ENV))

    @property
    def address(self) -> str:
        return self._address

    def sign_transaction(self, unsigned: UnsignedTransaction) -> bytes:
        return sign_transaction(unsigned, self.__secret).raw

    def sign_personal_message(self, message: bytes) -> bytes:
        """EIP-191 ``personal_sign`` of ``message``: 65 bytes ``r ‖ s ‖ v``, low ``s``,
        ``v`` in {27, 28} (what ``ECDSA.recover(toEthSignedMessageHash(message))`` takes)."""
        return sign_digest(self.__secret, personal_message_hash(message))

    def __repr__(self) -> str:
        return f"LocalTransactionSigner(address={self._address})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a signer holding a secret is not picklable")
