"""Plain helpers of the store tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from database_support import PG_URL as PG_URL  # re-exported: the store tests import it from here
from database_support import RowWriter
from sessionward.store.credentials import Role

T0 = 1_771_700_000


def insert_old_wallet(conn: Connection, wallet_id: str = "wal_1") -> None:
    """A wallet row in plain SQL, with only the columns every schema version has had (for the
    migration tests, which write rows at an old version before upgrading)."""
    conn.execute(
        text(
            "INSERT INTO wallets (id, chain_id, account, owner, owner_kind, created_at) "
            "VALUES (:id, 1, :a, :o, 'eoa', 100)"
        ),
        {"id": wallet_id, "a": "0x" + "11" * 20, "o": "0x" + "22" * 20},
    )


"""A fixed 'now' for store tests (unix seconds)."""


@dataclass(frozen=True)
class Seeded:
    wallet_id: str
    credential_id: str
    session_id: str


class Seeder(RowWriter):
    """Builds wallets, credentials and sessions with sensible defaults, all created at T0."""

    def wallet(self, wallet_id: str | None = None) -> str:
        return self.add_wallet(now=T0, wallet_id=wallet_id)

    def credential(
        self,
        role: Role = "backend",
        *,
        expires_at: int | None = T0 + 86_400,
        cid: str | None = None,
    ) -> str:
        return self.add_credential(now=T0, expires_at=expires_at, role=role, credential_id=cid)

    def session(
        self,
        *,
        wallet_id: str | None = None,
        credential_id: str | None = None,
        approve: bool = True,
        valid_after: int = T0,
        expires_at: int = T0 + 3_600,
        action_classes: Sequence[str] = ("swap.execute",),
    ) -> Seeded:
        """A session ``s<n>`` (approved at T0 unless ``approve`` is false), with a new wallet and
        a new credential unless given."""
        n = self.next_number()  # drawn first, as the session's own number
        wallet_id = wallet_id or self.wallet()
        credential_id = credential_id or self.credential()
        session_id = f"s{n}"
        self.add_session(
            session_id,
            number=n,
            wallet_id=wallet_id,
            credential_id=credential_id,
            action_classes=action_classes,
            valid_after=valid_after,
            expires_at=expires_at,
            created_at=T0,
            approved_at=T0 if approve else None,
        )
        return Seeded(wallet_id, credential_id, session_id)

    def quote(self, txn_id: str, seeded: Seeded) -> None:
        """A quoted transaction ``txn_id`` in ``seeded``'s session, made at T0 (a quote of
        2**200 wei, to show uint256 values survive)."""
        self.store.transactions.add_quote(
            txn_id=txn_id,
            session_id=seeded.session_id,
            wallet_id=seeded.wallet_id,
            credential_id=seeded.credential_id,
            status="quoted",
            to_address="0x" + "11" * 20,
            value=2**200,
            data=b"\x01\x02",
            fee_wei=7,
            action_class="erc20.transfer",
            intent="[]",
            reasons=[],
            now=T0,
            quote_expires_at=T0 + 60,
        )
