"""Vault fixtures: both backends over in-memory key records with a fixed clock.

``vault`` is parametrized over the local vault and the PKCS#11 vault, so every behavioural
test runs against both; ``local_vault`` is the local one alone (tests of encryption at rest).
The PKCS#11 vault uses Debian's SoftHSM2 (``./run test`` installs it) with a private token
directory made for the test session (:func:`sessionward.vault.softhsm.init_softhsm`):
``SOFTHSM2_CONF`` points at a configuration of its own, two tokens are initialised with
``softhsm2-util``, and all of it is removed at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from vault_support import SOFTHSM_MODULE, T0, SoftHsm

from sessionward.vault.hsm import Pkcs11Vault, TokenOptions
from sessionward.vault.interface import RecordVault
from sessionward.vault.kek import KeyEncryptionKey
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
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey.generate()


@pytest.fixture
def local_vault(records: InMemoryKeyRecordStore, kek: KeyEncryptionKey) -> LocalVault:
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


@pytest.fixture(params=["local", "pkcs11"])
def vault(request: pytest.FixtureRequest) -> RecordVault:
    """Each backend in turn."""
    chosen: RecordVault = request.getfixturevalue(f"{request.param}_vault")
    return chosen
