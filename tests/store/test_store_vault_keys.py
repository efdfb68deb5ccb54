"""The vault over the SQL key records: what reaches the database, and multi-node disable."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from coincurve import PublicKey
from sqlalchemy import text
from store_support import T0

from sessionward.crypto.secp256k1 import recover_signer
from sessionward.reasons import ReasonCode
from sessionward.store import Store
from sessionward.store.vault_keys import SqlKeyRecordStore
from sessionward.vault.interface import VaultRefusal
from sessionward.vault.kek import KeyEncryptionKey
from sessionward.vault.local import LocalVault

DIGEST = bytes(range(32))


@pytest.fixture
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey.generate()


def row_bytes(store: Store, key_id: str) -> bytes:
    with store.db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM vault_keys WHERE key_id = :k"), {"k": key_id}).one()
    blob = b""
    for value in row:
        blob += value if isinstance(value, bytes | memoryview) else str(value).encode()
    return bytes(blob)


def test_database_holds_neither_the_secret_nor_the_public_key(
    store: Store, kek: KeyEncryptionKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sessionward.vault.local as local

    secrets_made: list[bytes] = []
    original = local._new_secret

    def spy() -> bytes:
        secret = original()
        secrets_made.append(secret)
        return secret

    monkeypatch.setattr(local, "_new_secret", spy)
    vault = LocalVault(SqlKeyRecordStore(store.db), kek)
    handle = vault.create_key(not_after=T0 + 60)
    [secret] = secrets_made
    public = PublicKey.from_secret(secret)

    stored = row_bytes(store, handle.key_id)
    for needle in (
        secret,
        secret.hex().encode(),
        public.format(compressed=True),
        public.format(compressed=False),
        public.format(compressed=False)[1:].hex().encode(),
    ):
        assert needle not in stored
    signature = vault.sign(handle.key_id, DIGEST, now=T0)
    assert recover_signer(DIGEST, signature) == handle.address


def test_a_key_disabled_by_one_node_is_refused_by_another(
    store: Store, kek: KeyEncryptionKey, open_another: Callable[[int], Store]
) -> None:
    node_a = LocalVault(SqlKeyRecordStore(store.db), kek)
    node_b = LocalVault(SqlKeyRecordStore(open_another(2).db), kek)
    handle = node_a.create_key()
    assert len(node_b.sign(handle.key_id, DIGEST, now=T0)) == 65
    node_a.disable(handle.key_id, now=T0 + 1)
    with pytest.raises(VaultRefusal) as refused:
        node_b.sign(handle.key_id, DIGEST, now=T0 + 2)
    assert refused.value.code == ReasonCode.SIGNING_REFUSED


def test_destroy_wipes_the_ciphertext_in_the_database(store: Store, kek: KeyEncryptionKey) -> None:
    records = SqlKeyRecordStore(store.db)
    vault = LocalVault(records, kek, clock=lambda: T0 + 7)
    handle = vault.create_key()
    vault.destroy(handle.key_id)
    vault.destroy(handle.key_id)
    record = records.get(handle.key_id)
    assert record is not None
    assert (record.ciphertext, record.wrapped_data_key) == (b"", b"")
    assert (record.destroyed_at, record.disabled_at) == (T0 + 7, T0 + 7)
    assert vault.address_of(handle.key_id) == handle.address
    with pytest.raises(VaultRefusal) as refused:
        vault.sign(handle.key_id, DIGEST, now=T0)
    assert refused.value.code == ReasonCode.SIGNING_REFUSED


def test_tampered_ciphertext_in_the_database_is_refused(
    store: Store, kek: KeyEncryptionKey
) -> None:
    vault = LocalVault(SqlKeyRecordStore(store.db), kek)
    handle = vault.create_key()
    with store.db.engine.begin() as conn:
        (ciphertext,) = conn.execute(
            text("SELECT ciphertext FROM vault_keys WHERE key_id = :k"), {"k": handle.key_id}
        ).one()
        flipped = bytes([ciphertext[0] ^ 1]) + bytes(ciphertext[1:])
        conn.execute(
            text("UPDATE vault_keys SET ciphertext = :c WHERE key_id = :k"),
            {"c": flipped, "k": handle.key_id},
        )
    with pytest.raises(VaultRefusal) as refused:
        vault.sign(handle.key_id, DIGEST, now=T0)
    assert refused.value.code == ReasonCode.SIGNING_REFUSED
