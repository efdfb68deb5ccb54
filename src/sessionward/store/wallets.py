"""Wallets: a smart account on one chain, bound to its owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from .database import Database
from .errors import AlreadyExists
from .schema import wallets
from .sql import RowValues, Select

_BY_ID = Select(wallets, "id = :wallet_id")

OwnerKind = Literal["eoa", "erc1271"]


@dataclass(frozen=True, slots=True)
class WalletRecord:
    """A registered wallet. ``account`` and ``owner`` are lower-case ``0x`` addresses.

    ``session_module``: for a third-party ERC-7579 account, the SessionWardModule it has
    installed (its sessions live there); ``None`` for a SessionAccount."""

    id: str
    chain_id: int
    account: str
    owner: str
    owner_kind: OwnerKind
    created_at: int
    frozen_at: int | None
    frozen_reason: str | None
    session_module: str | None = None


def _record(m: RowValues) -> WalletRecord:
    return WalletRecord(
        id=m["id"],
        chain_id=m["chain_id"],
        account=m["account"],
        owner=m["owner"],
        owner_kind=cast(OwnerKind, m["owner_kind"]),
        created_at=m["created_at"],
        frozen_at=m["frozen_at"],
        frozen_reason=m["frozen_reason"],
        session_module=m["session_module"],
    )


class WalletRecords:
    """Registration and lookup of wallets. A (chain, account) pair is registered once."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        wallet_id: str,
        chain_id: int,
        account: str,
        owner: str,
        owner_kind: OwnerKind,
        now: int,
        session_module: str | None = None,
    ) -> WalletRecord:
        """Register a wallet. Raises :class:`AlreadyExists` for a taken id or (chain, account)."""
        if owner_kind not in ("eoa", "erc1271"):
            raise ValueError("owner_kind is 'eoa' or 'erc1271'")
        module = None if session_module is None else session_module.lower()
        values = {
            "id": wallet_id,
            "chain_id": chain_id,
            "account": account.lower(),
            "owner": owner.lower(),
            "owner_kind": owner_kind,
            "created_at": now,
            "session_module": module,
        }
        try:
            with self._db.writing() as conn:
                conn.execute(insert(wallets).values(values))
        except IntegrityError:
            raise AlreadyExists(f"wallet {wallet_id} or its account is registered") from None
        return WalletRecord(
            id=wallet_id,
            chain_id=chain_id,
            account=account.lower(),
            owner=owner.lower(),
            owner_kind=owner_kind,
            created_at=now,
            frozen_at=None,
            frozen_reason=None,
            session_module=module,
        )

    def get(self, wallet_id: str) -> WalletRecord | None:
        with self._db.reading() as conn:
            row = _BY_ID.first(conn, {"wallet_id": wallet_id})
        return None if row is None else _record(row)

    def count(self, chain_id: int) -> int:
        """How many wallets are registered on ``chain_id``."""
        query = select(func.count()).select_from(wallets).where(wallets.c.chain_id == chain_id)
        with self._db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def created_since(self, owner: str, *, since: int) -> tuple[int, int | None]:
        """How many wallets of ``owner`` were recorded at or after ``since``, and the oldest of
        their ``created_at`` (None if none): one range of the ``(owner, created_at)`` index."""
        query = select(func.count(), func.min(wallets.c.created_at)).where(
            wallets.c.owner == owner.lower(), wallets.c.created_at >= since
        )
        with self._db.reading() as conn:
            count, oldest = conn.execute(query).one()
        return int(count), None if oldest is None else int(oldest)

    def find(self, chain_id: int, account: str) -> WalletRecord | None:
        """The wallet registered for ``account`` on ``chain_id``, if any."""
        query = select(wallets).where(
            wallets.c.chain_id == chain_id, wallets.c.account == account.lower()
        )
        with self._db.reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row._mapping)
