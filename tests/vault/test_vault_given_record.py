"""On both backends: signing with a key record the caller read (the execution transaction's
path) applies every refusal exactly as a record the vault reads itself."""

from __future__ import annotations

import dataclasses

import pytest

from sessionward.crypto.secp256k1 import recover_signer
from sessionward.reasons import ReasonCode
from sessionward.vault.interface import RecordVault, VaultRefusal
from sessionward.vault.memory import InMemoryKeyRecordStore

T0 = 1_771_700_000
DIGEST = bytes(range(32))


def test_a_given_record_signs_like_a_read_one(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    key = vault.create_key(not_after=T0 + 60)
    record = records.get(key.key_id)
    assert record is not None
    signature = vault.sign(key.key_id, DIGEST, now=T0, record=record)
    assert recover_signer(DIGEST, signature) == key.address


def test_a_given_record_of_another_key_is_refused(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    mine = vault.create_key()
    other = vault.create_key()
    record = records.get(other.key_id)
    assert record is not None
    with pytest.raises(ValueError):
        vault.sign(mine.key_id, DIGEST, now=T0, record=record)


def test_a_given_disabled_record_is_refused(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    key = vault.create_key()
    record = records.get(key.key_id)
    assert record is not None
    disabled = dataclasses.replace(record, disabled_at=T0)
    with pytest.raises(VaultRefusal) as refused:
        vault.sign(key.key_id, DIGEST, now=T0, record=disabled)
    assert refused.value.code is ReasonCode.SIGNING_REFUSED


def test_a_given_expired_record_is_refused(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    key = vault.create_key(not_after=T0)
    record = records.get(key.key_id)
    assert record is not None
    with pytest.raises(VaultRefusal) as refused:
        vault.sign(key.key_id, DIGEST, now=T0, record=record)
    assert refused.value.code is ReasonCode.SIGNING_REFUSED
