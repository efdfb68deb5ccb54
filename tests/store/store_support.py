"""Plain helpers of the store tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from sessionward.store import Store
from sessionward.store.credentials import Role

PG_URL = os.environ.get(
    "SESSIONWARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = 1_771_700_000
"""A fixed 'now' for store tests (unix seconds)."""


@dataclass(frozen=True)
class Seeded:
    wallet_id: str
    credential_id: str
    session_id: str


class Seeder:
    """Builds wallets, credentials and sessions with sensible defaults."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def wallet(self, wallet_id: str | None = None) -> str:
        n = self._next()
        wallet_id = wallet_id or f"w{n}"
        self.store.wallets.add(
            wallet_id=wallet_id,
            chain_id=1,
            account="0x" + f"{n:040x}",
            owner="0x" + f"{n + 1000:040x}",
            owner_kind="eoa",
            now=T0,
        )
        return wallet_id

    def credential(
        self,
        role: Role = "backend",
        *,
        expires_at: int | None = T0 + 86_400,
        cid: str | None = None,
    ) -> str:
        n = self._next()
        credential_id = cid or f"c{n}"
        self.store.credentials.add(
            credential_id=credential_id,
            role=role,
            alg="ecdsa-p256k-eip191",
            public_key="0x" + f"{n + 2000:040x}",
            now=T0,
            expires_at=expires_at,
            app_name="Agent",
            app_url="https://agent.example",
        )
        return credential_id

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
        n = self._next()
        wallet_id = wallet_id or self.wallet()
        credential_id = credential_id or self.credential()
        session_id = f"s{n}"
        self.store.sessions.add(
            session_id=session_id,
            wallet_id=wallet_id,
            credential_id=credential_id,
            session_key_id=f"vk{n}",
            session_key_address="0x" + f"{n + 3000:040x}",
            envelope='{"capabilities":["swap.execute"]}',
            grant='{"primaryType":"SessionGrant"}',
            grant_nonce=n,
            epoch=0,
            action_classes=action_classes,
            valid_after=valid_after,
            expires_at=expires_at,
            now=T0,
        )
        if approve:
            assert self.store.sessions.approve(session_id, now=T0)
        return Seeded(wallet_id, credential_id, session_id)
