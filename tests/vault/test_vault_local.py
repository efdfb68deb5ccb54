"""Both vault backends (local and PKCS#11: the ``vault`` fixture runs each test on each):
signatures recover to the key's address, refusals are exact, records at rest are authenticated;
and of the local vault (``local_vault``): records are encrypted, and no secret ever shows in
repr, str or an exception."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import sessionward.vault.local as local
from sessionward.crypto.secp256k1 import SECP256K1_N, address_from_secret, recover_signer
from sessionward.reasons import ReasonCode
from sessionward.vault.interface import KeyHandle, RecordVault, Vault, VaultRefusal
from sessionward.vault.kek import DataKeyWrapper, KeyEncryptionKey
from sessionward.vault.local import LocalVault
from sessionward.vault.memory import InMemoryKeyRecordStore

T0 = 1_771_700_000
DIGEST = bytes.fromhex("11" * 32)


@pytest.fixture
def spied_secrets(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Captures the secrets the vault generates (so tests can look for leaks of them)."""
    made: list[bytes] = []
    original = local._new_secret

    def spy() -> bytes:
        secret = original()
        made.append(secret)
        return secret

    monkeypatch.setattr(local, "_new_secret", spy)
    return made


def refusal(vault: RecordVault, key_id: str, *, now: int = T0) -> VaultRefusal:
    with pytest.raises(VaultRefusal) as caught:
        vault.sign(key_id, DIGEST, now=now)
    return caught.value


def test_every_backend_is_a_vault(vault: RecordVault) -> None:
    assert isinstance(vault, Vault)


def test_signature_recovers_to_the_keys_address(vault: RecordVault) -> None:
    handle = vault.create_key()
    signature = vault.sign(handle.key_id, DIGEST, now=T0)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    assert recover_signer(DIGEST, signature) == handle.address == vault.address_of(handle.key_id)


def test_every_key_is_distinct(vault: RecordVault) -> None:
    handles = [vault.create_key() for _ in range(5)]
    assert len({h.key_id for h in handles}) == len({h.address for h in handles}) == 5


def test_address_matches_the_generated_secret(
    local_vault: LocalVault, spied_secrets: list[bytes]
) -> None:
    handle = local_vault.create_key()
    assert handle.address == address_from_secret(spied_secrets[0])


def test_unknown_key_is_refused_as_unknown(vault: RecordVault) -> None:
    assert refusal(vault, "vk_missing").code == ReasonCode.KEY_UNKNOWN
    with pytest.raises(VaultRefusal) as caught:
        vault.address_of("vk_missing")
    assert caught.value.code == ReasonCode.KEY_UNKNOWN
    with pytest.raises(VaultRefusal):
        vault.disable("vk_missing", now=T0)
    with pytest.raises(VaultRefusal):
        vault.destroy("vk_missing")


def test_disabled_key_never_signs_again(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    handle = vault.create_key()
    vault.disable(handle.key_id, now=T0 + 1)
    vault.disable(handle.key_id, now=T0 + 2)
    assert refusal(vault, handle.key_id, now=T0).code == ReasonCode.SIGNING_REFUSED
    record = records.get(handle.key_id)
    assert record is not None and record.disabled_at == T0 + 1


def test_key_refuses_at_and_after_not_after(vault: RecordVault) -> None:
    handle = vault.create_key(not_after=T0 + 60)
    assert vault.sign(handle.key_id, DIGEST, now=T0 + 59)
    assert refusal(vault, handle.key_id, now=T0 + 60).code == ReasonCode.SIGNING_REFUSED
    assert refusal(vault, handle.key_id, now=T0 + 10**6).code == ReasonCode.SIGNING_REFUSED


def test_destroyed_key_is_wiped_and_refused(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    handle = vault.create_key()
    vault.destroy(handle.key_id)
    record = records.get(handle.key_id)
    assert record is not None and record.ciphertext == b"" and record.wrapped_data_key == b""
    assert record.destroyed_at == T0
    assert refusal(vault, handle.key_id).code == ReasonCode.SIGNING_REFUSED


def test_digest_must_be_32_bytes(vault: RecordVault) -> None:
    handle = vault.create_key()
    with pytest.raises(ValueError):
        vault.sign(handle.key_id, b"\x00" * 31, now=T0)


@pytest.mark.parametrize("field", ["ciphertext", "wrapped_data_key", "nonces"])
def test_tampered_record_at_rest_is_refused(
    local_vault: LocalVault, records: InMemoryKeyRecordStore, field: str
) -> None:
    handle = local_vault.create_key()
    record = records.get(handle.key_id)
    assert record is not None
    value: bytes = getattr(record, field)
    changes: dict[str, Any] = {field: bytes([value[0] ^ 0x80]) + value[1:]}
    records.put(dataclasses.replace(record, **changes))
    assert refusal(local_vault, handle.key_id).code == ReasonCode.SIGNING_REFUSED


def test_record_moved_to_another_key_id_is_refused(
    vault: RecordVault, records: InMemoryKeyRecordStore
) -> None:
    # The record binds the key id (associated data; the token object's id): a key cannot be
    # made to sign under another id.
    victim, other = vault.create_key(), vault.create_key()
    stolen = records.get(victim.key_id)
    assert stolen is not None
    records.put(dataclasses.replace(stolen, key_id=other.key_id, address=other.address))
    assert refusal(vault, other.key_id).code == ReasonCode.SIGNING_REFUSED


def test_altered_address_is_refused(vault: RecordVault, records: InMemoryKeyRecordStore) -> None:
    handle = vault.create_key()
    record = records.get(handle.key_id)
    assert record is not None
    records.put(dataclasses.replace(record, address="0x" + "ab" * 20))
    assert refusal(vault, handle.key_id).code == ReasonCode.SIGNING_REFUSED


def test_another_kek_cannot_unwrap(records: InMemoryKeyRecordStore) -> None:
    handle = LocalVault(records, KeyEncryptionKey.generate()).create_key()
    thief = LocalVault(records, KeyEncryptionKey.generate())
    assert refusal(thief, handle.key_id).code == ReasonCode.SIGNING_REFUSED


def test_records_hold_neither_secret_nor_public_key(
    local_vault: LocalVault, records: InMemoryKeyRecordStore, spied_secrets: list[bytes]
) -> None:
    from coincurve import PublicKey

    handle = local_vault.create_key()
    [secret] = spied_secrets
    record = records.get(handle.key_id)
    assert record is not None
    at_rest = record.ciphertext + record.wrapped_data_key + record.nonces
    public = PublicKey.from_secret(secret)
    for needle in (
        secret,
        public.format(compressed=True)[1:],
        public.format(compressed=False)[1:33],
    ):
        assert needle not in at_rest


def test_nothing_secret_in_repr_str_or_errors(
    local_vault: LocalVault,
    records: InMemoryKeyRecordStore,
    kek: DataKeyWrapper,
    spied_secrets: list[bytes],
) -> None:
    handle = local_vault.create_key(not_after=T0 + 1)
    local_vault.sign(handle.key_id, DIGEST, now=T0)
    [secret] = spied_secrets
    record = records.get(handle.key_id)
    assert record is not None
    texts = [repr(local_vault), str(local_vault), repr(kek), str(kek), repr(record), repr(records)]
    texts.append(str(refusal(local_vault, handle.key_id, now=T0 + 1)))
    records.put(dataclasses.replace(record, ciphertext=b"\x00" * 48))
    tampered = refusal(local_vault, handle.key_id, now=T0)
    texts += [str(tampered), repr(tampered), repr(tampered.__cause__), repr(tampered.__context__)]
    forbidden = [secret.hex(), secret.hex().upper(), repr(secret), record.ciphertext.hex()]
    for text in texts:
        for needle in forbidden:
            assert needle not in text
    assert "ciphertext" not in repr(record)
    assert tampered.__cause__ is None and tampered.__suppress_context__


def test_keyhandle_carries_only_public_data(vault: RecordVault) -> None:
    handle = vault.create_key()
    assert {f.name for f in dataclasses.fields(KeyHandle)} == {"key_id", "address"}
    assert handle.address.startswith("0x") and handle.address == handle.address.lower()
