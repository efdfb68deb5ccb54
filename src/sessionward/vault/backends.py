"""Choosing the vault backend: ``local`` (the default) or ``pkcs11``.

``local`` encrypts keys at rest under the key-encryption key (:mod:`sessionward.vault.kek`).
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


def open_vault(
    backend: str,
    records: KeyRecordStore,
    *,
    data_dir: Path,
    pkcs11_module: Path | None = None,
    pkcs11_token_label: str | None = None,
    pkcs11_slot: int | None = None,
    pkcs11_pin_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], int] | None = None,
    on_tamper: Callable[[str], object] | None = None,
) -> RecordVault:
    """The vault ``backend`` names over ``records``. Raises ``ValueError`` for an unknown
    backend, and the backend's own errors (``KeyEncryptionKeyError``, ``Pkcs11VaultError``)."""
    if backend == "local":
        return LocalVault(
            records, KeyEncryptionKey.load(data_dir, environ), clock=clock, on_tamper=on_tamper
        )
    if backend == "pkcs11":
        # Imported here: the PKCS#11 binding loads only when the backend is chosen.
        from .hsm import DEFAULT_MODULE, Pkcs11Vault, TokenOptions, load_pin

        options = TokenOptions(
            module=pkcs11_module or DEFAULT_MODULE,
            token_label=pkcs11_token_label,
            slot=pkcs11_slot,
        )
        pin = load_pin(environ, pin_file=pkcs11_pin_file)
        return Pkcs11Vault.open(records, options=options, pin=pin, clock=clock, on_tamper=on_tamper)
    raise ValueError(f"unknown vault backend {backend!r} (one of {', '.join(BACKENDS)})")
