"""Databases and rows for the rooms whose tests run on SQLite and on PostgreSQL alike (store,
telemetry); each room's fixtures (its conftest.py) are thin wrappers over what is here.

PostgreSQL is ``$SESSIONWARD_TEST_PG_URL`` (default: the local server, trust auth); every store
opened on it gets a fresh schema, dropped afterwards. Nothing here skips: if the server is
unreachable the PostgreSQL tests fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sessionward.store import Store, open_store
from sessionward.store.credentials import Role

PG_URL = os.environ.get(
    "SESSIONWARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
"""The ``backend`` fixture's parameters: PostgreSQL cases carry the ``postgres`` marker."""


@contextmanager
def migrated_sqlite_store(data_dir: Path) -> Iterator[Store]:
    """A migrated store on a SQLite file under ``data_dir``, closed on exit."""
    store = open_store(data_dir=data_dir)
    try:
        store.upgrade()
        yield store
    finally:
        store.close()


@contextmanager
def migrated_postgresql_store(schema_prefix: str) -> Iterator[Store]:
    """A migrated store on PostgreSQL in a fresh schema ``<schema_prefix>_<random hex>``; on exit
    the store is closed and the schema dropped (even if the migration failed)."""
    schema = f"{schema_prefix}_{uuid.uuid4().hex[:16]}"
    try:
        store = open_store(PG_URL, schema=schema)
        try:
            store.upgrade()
            yield store
        finally:
            store.close()
    finally:
        drop_schema(schema)


def drop_schema(schema: str) -> None:
    """Drop a PostgreSQL schema a test made, and everything in it (if it exists)."""
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def empty_store_on(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, *, shared_postgresql: str
) -> Iterator[Store]:
    """A migrated store without rows for one test on ``backend``: on ``"sqlite"`` a new file
    under ``tmp_path``; on ``"postgresql"`` the module's shared store (the fixture named
    ``shared_postgresql``; a schema per test would cost a migration each), emptied before and
    after the test."""
    if backend == "sqlite":
        with migrated_sqlite_store(tmp_path) as store:
            yield store
        return
    shared: Store = request.getfixturevalue(shared_postgresql)
    shared.empty()
    try:
        yield shared
    finally:
        shared.empty()


class RowWriter:
    """Adds wallets, credentials and sessions through the store's repositories.

    Every row draws the next row number ``n`` of this writer; its addresses are derived from it
    (account ``n``, owner ``n + 1000``, credential key ``n + 2000``, session key ``n + 3000``) so
    that rows of one writer never collide. Rooms subclass it with their own defaults.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._n = 0

    def next_number(self) -> int:
        """Draw the next row number (1, 2, …)."""
        self._n += 1
        return self._n

    def add_wallet(self, *, now: int, wallet_id: str | None = None) -> str:
        """Add a chain-1 wallet owned by an EOA, ``wallet_id`` (default ``w<n>``); return its id."""
        n = self.next_number()
        wallet_id = wallet_id or f"w{n}"
        self.store.wallets.add(
            wallet_id=wallet_id,
            chain_id=1,
            account="0x" + f"{n:040x}",
            owner="0x" + f"{n + 1000:040x}",
            owner_kind="eoa",
            now=now,
        )
        return wallet_id

    def add_credential(
        self,
        *,
        now: int,
        expires_at: int | None,
        role: Role = "backend",
        credential_id: str | None = None,
    ) -> str:
        """Add an EIP-191 credential of app "Agent", ``credential_id`` (default ``c<n>``); return
        its id."""
        n = self.next_number()
        credential_id = credential_id or f"c{n}"
        self.store.credentials.add(
            credential_id=credential_id,
            role=role,
            alg="ecdsa-p256k-eip191",
            public_key="0x" + f"{n + 2000:040x}",
            now=now,
            expires_at=expires_at,
            app_name="Agent",
            app_url="https://agent.example",
        )
        return credential_id

    def add_session(
        self,
        session_id: str,
        *,
        number: int | None = None,
        wallet_id: str,
        credential_id: str,
        action_classes: Sequence[str],
        valid_after: int,
        expires_at: int,
        created_at: int,
        approved_at: int | None,
    ) -> None:
        """Add a session (pending at ``created_at``) and approve it at ``approved_at`` unless that
        is None. ``number`` is a row number the caller has already drawn (default: the next);
        the envelope and grant are placeholders, opaque to the store."""
        n = self.next_number() if number is None else number
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
            now=created_at,
        )
        if approved_at is not None:
            assert self.store.sessions.approve(session_id, now=approved_at)
            # As if the chain showed it installed (the reconciler's record): active.
            assert self.store.sessions.mark_onchain_enabled(session_id, now=approved_at)
