"""Credentials: the public keys that authenticate backends, owners and ops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from sessionward.domain.wire_types import ROLES, Role

from .database import Database
from .errors import AlreadyExists
from .schema import credentials
from .sql import RowValues, Select

_BY_ID = Select(credentials, "id = :credential_id")


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A registered credential. ``public_key`` is public data: an address (secp256k1) or the
    hex of a P-256 public key. ``expires_at`` None means no expiry (ops credentials)."""

    id: str
    role: Role
    alg: str
    public_key: str
    app_name: str | None
    app_url: str | None
    wallet_id: str | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    revoked_reason: str | None

    def is_live(self, now: int) -> bool:
        """Not revoked and not expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _record(m: RowValues) -> CredentialRecord:
    return CredentialRecord(
        id=m["id"],
        role=cast(Role, m["role"]),
        alg=m["alg"],
        public_key=m["public_key"],
        app_name=m["app_name"],
        app_url=m["app_url"],
        wallet_id=m["wallet_id"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        revoked_reason=m["revoked_reason"],
    )


class CredentialRecords:
    """Registration, lookup and revocation of credentials."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        credential_id: str,
        role: Role,
        alg: str,
        public_key: str,
        now: int,
        expires_at: int | None = None,
        app_name: str | None = None,
        app_url: str | None = None,
        wallet_id: str | None = None,
    ) -> CredentialRecord:
        """Register a credential. Raises :class:`AlreadyExists` for a taken id."""
        if role not in ROLES:
            raise ValueError("role is 'backend', 'owner' or 'ops'")
        record = CredentialRecord(
            id=credential_id,
            role=role,
            alg=alg,
            public_key=public_key,
            app_name=app_name,
            app_url=app_url,
            wallet_id=wallet_id,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            revoked_reason=None,
        )
        try:
            with self._db.writing() as conn:
                conn.execute(
                    insert(credentials).values(
                        id=record.id,
                        role=record.role,
                        alg=record.alg,
                        public_key=record.public_key,
                        app_name=record.app_name,
                        app_url=record.app_url,
                        wallet_id=record.wallet_id,
                        created_at=record.created_at,
                        expires_at=record.expires_at,
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"credential {credential_id} exists") from None
        return record

    def get(self, credential_id: str) -> CredentialRecord | None:
        with self._db.reading() as conn:
            row = _BY_ID.first(conn, {"credential_id": credential_id})
        return None if row is None else _record(row)

    def with_role(self, role: Role) -> list[CredentialRecord]:
        """Every credential of ``role``, revoked ones included, oldest first."""
        query = (
            select(credentials)
            .where(credentials.c.role == role)
            .order_by(credentials.c.created_at, credentials.c.id)
        )
        with self._db.reading() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def revoke(self, credential_id: str, *, reason: str, now: int) -> bool:
        """Revoke a credential; True only for the revocation that took effect (the first).

        Linearizable with reservations: it closes the revocation gate, so once it returns no
        reservation for a session of this credential can succeed. (The sessions themselves are
        revoked separately, by :meth:`SessionRecords.revoke_sessions_of_credential`.)
        """
        with self._db.writing(durable=True) as conn:
            self._db.close_gate(conn)
            result = conn.execute(
                update(credentials)
                .where(credentials.c.id == credential_id, credentials.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )
        return result.rowcount == 1
