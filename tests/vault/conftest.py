"""Vault fixtures: both backends over in-memory key records with a fixed clock.

``vault`` is parametrized over the local vault and the PKCS#11 vault, so every behavioural
test runs against both; ``local_vault`` is the local one alone (tests of encryption at rest),
itself run with its key-encryption key in process and in the token (``kek``).
The PKCS#11 vault uses Debian's SoftHSM2 (``./run test`` installs it) with a private token
directory made for the test session (:func:`sessionward.vault.softhsm.init_softhsm`):
``SOFTHSM2_CONF`` points at a configuration of its own, two tokens are initialised with
``softhsm2-util``, and all of it is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from vault_support import SOFTHSM_MODULE, T0, SoftHsm

from sessionward.vault.hsm import Pkcs11Vault, TokenKeyEncryptionKey, TokenOptions
from sessionward.vault.interface import RecordVault
from sessionward.vault.kek import DataKeyWrapper, KeyEncryptionKey
from sessionward.vault.local import LocalVault
from sessionward.vault.memory import InMemoryKeyRecordStore
from sessionward.vault.softhsm import ENV_CONF, init_softhsm


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    if shutil.which("softhsm2-util") is None or not SOFTHSM_MODULE.is_file():
        pytest.fail(
            "SoftHSM2 is missing: `./run test` installs it (apt-get install softhsm2), "
            "or install the Debian package softhsm2"
        )
    root = tmp_path_factory.mktemp("softhsm")
    hsm = SoftHsm(
        module=SOFTHSM_MODULE,
        conf=root / "softhsm2.conf",
        token="sw-vault-test",
        pin="4711-vault",
        other_token="sw-vault-other",
        other_pin="0815-other",
        so_pin="so-secret-1",
    )
    # The module reads SOFTHSM2_CONF once, when the process first loads it (tokens made later
    # stay unseen), so both tokens exist before any test loads it.
    conf = init_softhsm(
        root, {hsm.token: hsm.pin, hsm.other_token: hsm.other_pin}, so_pin=hsm.so_pin
    )
    assert conf == hsm.conf
    previous = os.environ.get(ENV_CONF)
    os.environ[ENV_CONF] = str(conf)
    try:
        yield hsm
    finally:
        if previous is None:
            os.environ.pop(ENV_CONF, None)
        else:
            os.environ[ENV_CONF] = previous
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def records() -> InMemoryKeyRecordStore:
    return InMemoryKeyRecordStore()


@pytest.fixture
def token_kek(softhsm: SoftHsm) -> Iterator[TokenKeyEncryptionKey]:
    """A key-encryption key in the SoftHSM2 token (a fresh label per test)."""
    kek = TokenKeyEncryptionKey.open(
        options=TokenOptions(module=softhsm.module, token_label=softhsm.token),
        pin=softhsm.pin,
        label=f"kek-{uuid.uuid4().hex[:12]}",
    )
    try:
        yield kek
    finally:
        kek.close()


@pytest.fixture(params=["in-process", "in-token"])
def kek(request: pytest.FixtureRequest) -> DataKeyWrapper:
    """The local vault's key-encryption key: in process, or an AES key in the token."""
    if request.param == "in-process":
        return KeyEncryptionKey.generate()
    in_token: DataKeyWrapper = request.getfixturevalue("token_kek")
    return in_token


@pytest.fixture
def local_vault(records: InMemoryKeyRecordStore, kek: DataKeyWrapper) -> LocalVault:
    return LocalVault(records, kek, clock=lambda: T0)


@pytest.fixture
def pkcs11_vault(records: InMemoryKeyRecordStore, softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    vault = Pkcs11Vault.open(
        records,
        options=TokenOptions(module=softhsm.module, token_label=softhsm.token),
        pin=softhsm.pin,
        clock=lambda: T0,
    )
    try:
        yield vault
    finally:
        vault.close()


@pytest.fixture(params=["local", "local-kek-in-token", "pkcs11"])
def vault(request: pytest.FixtureRequest, records: InMemoryKeyRecordStore) -> RecordVault:
    """Each backend in turn (the local vault with either key-encryption key)."""
    if request.param == "local":
        return LocalVault(records, KeyEncryptionKey.generate(), clock=lambda: T0)
    if request.param == "local-kek-in-token":
        return LocalVault(records, request.getfixturevalue("token_kek"), clock=lambda: T0)
    chosen: RecordVault = request.getfixturevalue("pkcs11_vault")
    return chosen
