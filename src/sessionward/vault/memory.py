"""An in-memory :class:`KeyRecordStore`, for unit tests and single-process demos."""

from __future__ import annotations

import dataclasses
import threading

from .interface import KeyRecord


class InMemoryKeyRecordStore:
    """Key records in a dict, guarded by a lock."""

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InMemoryKeyRecordStore({len(self._records)} records)"

    def add(self, record: KeyRecord) -> None:
        with self._lock:
            if record.key_id in self._records:
                raise ValueError("key id already in use")
            self._records[record.key_id] = record

    def get(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            return self._records.get(key_id)

    def put(self, record: KeyRecord) -> None:
        """Replace a record as is (tests use it to simulate tampering at rest)."""
        with self._lock:
            self._records[record.key_id] = record

    def disable(self, key_id: str, *, now: int) -> bool:
        with self._lock:
            record = self._records.get(key_id)
            if record is None or record.disabled_at is not None:
                return False
            self._records[key_id] = dataclasses.replace(record, disabled_at=now)
            return True

    def destroy(self, key_id: str, *, now: int) -> bool:
        with self._lock:
            record = self._records.get(key_id)
            if record is None or record.destroyed_at is not None:
                return False
            self._records[key_id] = dataclasses.replace(
                record,
                ciphertext=b"",
                wrapped_data_key=b"",
                destroyed_at=now,
                disabled_at=record.disabled_at if record.disabled_at is not None else now,
            )
            return True
