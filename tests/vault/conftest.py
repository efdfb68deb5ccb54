"""Vault fixtures: a local vault over in-memory key records with a fixed clock."""

from __future__ import annotations

import pytest

from sessionward.vault.kek import KeyEncryptionKey
from sessionward.vault.local import LocalVault
from sessionward.vault.memory import InMemoryKeyRecordStore

T0 = 1_771_700_000


@pytest.fixture
def records() -> InMemoryKeyRecordStore:
    return InMemoryKeyRecordStore()


@pytest.fixture
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey.generate()


@pytest.fixture
def vault(records: InMemoryKeyRecordStore, kek: KeyEncryptionKey) -> LocalVault:
    return LocalVault(records, kek, clock=lambda: T0)
