"""Owner devices and their one-time pairing codes.

A device is an owner credential (``credentials`` row, role ``owner``, bound to a wallet) plus a
row in ``owner_devices``. The credential row carries what request authentication needs (key,
expiry, revocation); the device row is what makes the credential a *device* rather than the
wallet's own owner credential, and records how it was paired.

A pairing code is stored only as its SHA-256 (:func:`code_hash`); claiming one is a single
conditional update (unused and unexpired), so a code pairs at most one device even when two
requests race with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal, cast

from sqlalchemy import and_, func, insert, select, update

from .credentials import CredentialRecord, CredentialRecords
from .database import Database
from .schema import credentials, owner_devices, pairing_codes
from .sql import RowValues

PairedVia = Literal["code", "signature", "legacy"]
ClaimRefusal = Literal["invalid", "expired", "used"]

_CODE_TAG: Final = b"SessionWard-Pairing/1\n"


def code_hash(code: str) -> str:
    """The stored form of a (normalised) pairing code: hex SHA-256 of a tagged preimage. Codes
    carry 120 random bits, so a fast hash is enough: nothing to brute-force from the hash."""
    return hashlib.sha256(_CODE_TAG + code.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device joined with its credential (expiry and revocation are the credential's)."""

    credential_id: str
    wallet_id: str
    alg: str
    public_key: str
    label: str | None
    paired_via: PairedVia
    paired_by: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None

    def is_live(self, now: int) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class PairingCodeRecord:
    id: str
    wallet_id: str
    created_by: str
    created_at: int
    expires_at: int
    device_ttl_s: int


_DEVICE_COLUMNS: Final = (
    owner_devices.c.credential_id,
    owner_devices.c.wallet_id,
    credentials.c.alg,
    credentials.c.public_key,
    owner_devices.c.label,
    owner_devices.c.paired_via,
    owner_devices.c.paired_by,
    owner_devices.c.created_at,
    credentials.c.expires_at,
    credentials.c.revoked_at,
)
_JOINED: Final = owner_devices.join(credentials, credentials.c.id == owner_devices.c.credential_id)


def _device(m: RowValues) -> DeviceRecord:
    return DeviceRecord(
        credential_id=m["credential_id"],
        wallet_id=m["wallet_id"],
        alg=m["alg"],
        public_key=m["public_key"],
        label=m["label"],
        paired_via=cast(PairedVia, m["paired_via"]),
        paired_by=m["paired_by"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
    )


class OwnerDevices:
    """Devices of wallets, and the pairing codes that add them."""

    def __init__(self, db: Database, credential_store: CredentialRecords) -> None:
        self._db = db
        self._credentials = credential_store

    # --- devices ------------------------------------------------------------------------

    def add(
        self,
        *,
        credential_id: str,
        wallet_id: str,
        alg: str,
        public_key: str,
        label: str | None,
        paired_via: PairedVia,
        paired_by: str,
        now: int,
        expires_at: int,
    ) -> CredentialRecord:
        """The device's credential and its device row, in one transaction (joins the caller's
        unit of work, e.g. the one that claimed the pairing code)."""
        with self._db.unit():
            record = self._credentials.add(
                credential_id=credential_id,
                role="owner",
                alg=alg,
                public_key=public_key,
                now=now,
                expires_at=expires_at,
                wallet_id=wallet_id,
            )
            with self._db.writing() as conn:
                conn.execute(
                    insert(owner_devices).values(
                        credential_id=credential_id,
                        wallet_id=wallet_id,
                        label=label,
                        paired_via=paired_via,
                        paired_by=paired_by,
                        created_at=now,
                    )
                )
        return record

    def lock_wallet(self, wallet_id: str) -> None:
        """Serialise device changes of one wallet until the current unit ends (PostgreSQL;
        SQLite write transactions are serial already). Call inside a unit of work."""
        with self._db.writing() as conn:
            self._db.lock_key(conn, f"devices:{wallet_id}")

    def get(self, credential_id: str) -> DeviceRecord | None:
        """The device ``credential_id``, or None if that credential is not a device."""
        query = (
            select(*_DEVICE_COLUMNS)
            .select_from(_JOINED)
            .where(owner_devices.c.credential_id == credential_id)
        )
        with self._db.reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else _device(row._mapping)

    def is_device(self, credential_id: str) -> bool:
        query = select(owner_devices.c.credential_id).where(
            owner_devices.c.credential_id == credential_id
        )
        with self._db.reading() as conn:
            return conn.execute(query).first() is not None

    def live_count(self, wallet_id: str, now: int) -> int:
        """Devices of the wallet neither revoked nor expired at ``now``."""
        query = (
            select(func.count())
            .select_from(_JOINED)
            .where(
                owner_devices.c.wallet_id == wallet_id,
                credentials.c.revoked_at.is_(None),
                credentials.c.expires_at > now,
            )
        )
        with self._db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def page(self, wallet_id: str, *, after: str | None, limit: int) -> list[DeviceRecord]:
        """Up to ``limit`` devices of the wallet in credential-id (creation) order, after the
        id ``after``: keyset pagination on the ``(wallet_id, credential_id)`` index."""
        conditions = [owner_devices.c.wallet_id == wallet_id]
        if after is not None:
            conditions.append(owner_devices.c.credential_id > after)
        query = (
            select(*_DEVICE_COLUMNS)
            .select_from(_JOINED)
            .where(and_(*conditions))
            .order_by(owner_devices.c.credential_id)
            .limit(limit)
        )
        with self._db.reading() as conn:
            return [_device(row._mapping) for row in conn.execute(query)]

    # --- pairing codes ------------------------------------------------------------------

    def add_code(
        self,
        *,
        code_id: str,
        hashed: str,
        wallet_id: str,
        created_by: str,
        now: int,
        expires_at: int,
        device_ttl_s: int,
    ) -> None:
        with self._db.writing() as conn:
            conn.execute(
                insert(pairing_codes).values(
                    id=code_id,
                    code_hash=hashed,
                    wallet_id=wallet_id,
                    created_by=created_by,
                    created_at=now,
                    expires_at=expires_at,
                    device_ttl_s=device_ttl_s,
                )
            )

    def claim_code(
        self, hashed: str, *, now: int, device_id: str
    ) -> PairingCodeRecord | ClaimRefusal:
        """Mark the code ``hashed`` used by ``device_id`` if it is unused and unexpired (one
        conditional update: of two racing claims exactly one wins); otherwise why not."""
        with self._db.writing() as conn:
            row = conn.execute(
                select(pairing_codes).where(pairing_codes.c.code_hash == hashed)
            ).first()
            if row is None:
                return "invalid"
            m = row._mapping
            if m["used_at"] is not None:
                return "used"
            if m["expires_at"] <= now:
                return "expired"
            claimed = conn.execute(
                update(pairing_codes)
                .where(
                    pairing_codes.c.id == m["id"],
                    pairing_codes.c.used_at.is_(None),
                    pairing_codes.c.expires_at > now,
                )
                .values(used_at=now, used_by=device_id)
            )
            if claimed.rowcount != 1:
                return "used"
        return PairingCodeRecord(
            id=m["id"],
            wallet_id=m["wallet_id"],
            created_by=m["created_by"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            device_ttl_s=m["device_ttl_s"],
        )
