"""The vault's key records in the ``vault_keys`` table, shared by every node.

Holds only what :class:`sessionward.vault.local.LocalVault` gives it: encrypted secrets, wrapped
data keys, nonces and public addresses. Every :meth:`get` reads the row afresh, so a key disabled
by one node is refused by all.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from sessionward.vault.interface import KeyRecord

from .database import Database
from .errors import AlreadyExists
from .schema import vault_keys
from .sql import RowValues


def _record(m: RowValues) -> KeyRecord:
    return KeyRecord(
        key_id=m["key_id"],
        address=m["address"],
        wrapped_data_key=bytes(m["wrapped_data_key"]),
        ciphertext=bytes(m["ciphertext"]),
        nonces=bytes(m["nonces"]),
        created_at=m["created_at"],
        not_after=m["not_after"],
        disabled_at=m["disabled_at"],
        destroyed_at=m["destroyed_at"],
    )


class SqlKeyRecordStore:
    """A :class:`sessionward.vault.interface.KeyRecordStore` over SQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, record: KeyRecord) -> None:
        try:
            with self._db.writing() as conn:
                conn.execute(
                    insert(vault_keys).values(
                        key_id=record.key_id,
                        address=record.address,
                        wrapped_data_key=record.wrapped_data_key,
                        ciphertext=record.ciphertext,
                        nonces=record.nonces,
                        created_at=record.created_at,
                        not_after=record.not_after,
                        disabled_at=record.disabled_at,
                        destroyed_at=record.destroyed_at,
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"key {record.key_id} exists") from None

    def get(self, key_id: str) -> KeyRecord | None:
        with self._db.reading() as conn:
            row = conn.execute(select(vault_keys).where(vault_keys.c.key_id == key_id)).first()
        return None if row is None else _record(row._mapping)

    def disable(self, key_id: str, *, now: int) -> bool:
        with self._db.writing() as conn:
            result = conn.execute(
                update(vault_keys)
                .where(vault_keys.c.key_id == key_id, vault_keys.c.disabled_at.is_(None))
                .values(disabled_at=now)
            )
        return result.rowcount == 1

    def destroy(self, key_id: str, *, now: int) -> bool:
        with self._db.writing() as conn:
            current = conn.execute(
                select(vault_keys.c.disabled_at).where(
                    vault_keys.c.key_id == key_id, vault_keys.c.destroyed_at.is_(None)
                )
            ).first()
            if current is None:
                return False
            conn.execute(
                update(vault_keys)
                .where(vault_keys.c.key_id == key_id)
                .values(
                    ciphertext=b"",
                    wrapped_data_key=b"",
                    destroyed_at=now,
                    disabled_at=now if current[0] is None else current[0],
                )
            )
        return True
