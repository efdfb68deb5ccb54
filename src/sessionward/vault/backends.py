"""Choosing the vault backend: ``local`` (the default) or ``pkcs11``.

``local`` encrypts keys at rest under the key-encryption key (:mod:`sessionward.vault.kek`, or
an AES key kept in a PKCS#11 token with ``kek="pkcs11"``).
``pkcs11`` keeps them in a token (:mod:`sessionward.vault.hsm`), logged in with the PIN from
``$SESSIONWARD_PKCS11_PIN`` or a PIN file. Both keep key state in the same record store; a
record made by one backend is refused by the other (switching backends does not move keys:
sessions made before the switch stop signing, and are revoked as usual).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from .interface import KeyRecordStore, RecordVault
from .kek import KeyEncryptionKey
from .local import LocalVault

BACKENDS: Final = ("local", "pkcs11")
KEK_SOURCES: Final = ("local", "pkcs11")


def open_vault(
    backend: str,
    records: KeyRecordStore,
    *,
    data_dir: Path,
    kek: str = "local",
    pkcs11_module: Path | None = None,
    pkcs11_token_label: str | None = None,
    pkcs11_slot: int | None = None,
    pkcs11_pin_file: Path | None = None,
    pkcs11_kek_label: str | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], int] | None = None,
    on_tamper: Callable[[str], object] | None = None,
) -> RecordVault:
    """The vault ``backend`` names over ``records``. For the local vault, ``kek`` says where
    its key-encryption key is: ``local`` (:meth:`KeyEncryptionKey.load`: the environment or a
    key file) or ``pkcs11`` (an AES key in the token, labelled ``pkcs11_kek_label``, made on
    first use). Raises ``ValueError`` for an unknown backend or KEK source, and the backends'
    own errors (``KeyEncryptionKeyError``, ``Pkcs11VaultError``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown vault backend {backend!r} (one of {', '.join(BACKENDS)})")
    if kek not in KEK_SOURCES:
        raise ValueError(f"unknown key-encryption key source {kek!r}")
    if backend == "local" and kek == "local":
        return LocalVault(
            records, KeyEncryptionKey.load(data_dir, environ), clock=clock, on_tamper=on_tamper
        )
    # Imported here: the PKCS#11 binding loads only when a token is used.
    from .hsm import (
        DEFAULT_KEK_LABEL,
        DEFAULT_MODULE,
        Pkcs11Vault,
        TokenKeyEncryptionKey,
        TokenOptions,
        load_pin,
    )

    options = TokenOptions(
        module=pkcs11_module or DEFAULT_MODULE, token_label=pkcs11_token_label, slot=pkcs11_slot
    )
    pin = load_pin(environ, pin_file=pkcs11_pin_file)
    if backend == "local":
        token_kek = TokenKeyEncryptionKey.open(
            options=options, pin=pin, label=pkcs11_kek_label or DEFAULT_KEK_LABEL
        )
        return LocalVault(records, token_kek, clock=clock, on_tamper=on_tamper)
    return Pkcs11Vault.open(records, options=options, pin=pin, clock=clock, on_tamper=on_tamper)
