"""Migrations and connection setup: Alembic alone creates the schema, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from store_support import PG_URL, insert_old_wallet

from sessionward.store import Store, open_store
from sessionward.store.database import ENV_DATABASE_URL, normalize_url, resolve_url
from sessionward.store.schema import metadata

TABLES = set(metadata.tables)
HEAD = "0011"  # the newest migration in store/migrations/versions


def table_names(store: Store) -> set[str]:
    return set(inspect(store.db.engine).get_table_names())


def test_upgrade_from_empty_creates_every_table(unmigrated_store: Store) -> None:
    assert unmigrated_store.current_revision() is None
    unmigrated_store.upgrade()
    assert unmigrated_store.current_revision() == HEAD
    assert table_names(unmigrated_store) == TABLES | {"alembic_version"}


def test_downgrade_to_base_and_upgrade_again_round_trips(unmigrated_store: Store) -> None:
    unmigrated_store.upgrade()
    unmigrated_store.downgrade("base")
    assert unmigrated_store.current_revision() is None
    assert table_names(unmigrated_store) == {"alembic_version"}
    unmigrated_store.upgrade()
    assert table_names(unmigrated_store) == TABLES | {"alembic_version"}
    unmigrated_store.wallets.add(
        wallet_id="w",
        chain_id=1,
        account="0x" + "1" * 40,
        owner="0x" + "2" * 40,
        owner_kind="eoa",
        now=1,
    )
    assert unmigrated_store.wallets.get("w") is not None


def test_upgrade_is_idempotent(unmigrated_store: Store) -> None:
    unmigrated_store.upgrade()
    unmigrated_store.upgrade()
    assert unmigrated_store.current_revision() == HEAD


def test_migrated_schema_matches_the_table_metadata(unmigrated_store: Store) -> None:
    unmigrated_store.upgrade()
    with unmigrated_store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    store = open_store(data_dir=tmp_path)
    try:
        with store.db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 5_000
        assert (tmp_path / "sessionward.db").exists()
    finally:
        store.close()


def test_url_comes_from_the_argument_then_the_environment_then_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_DATABASE_URL, "postgresql://u@db:5432/sw")
    assert resolve_url("sqlite:///x.db", tmp_path) == "sqlite:///x.db"
    assert resolve_url(None, tmp_path) == "postgresql+psycopg://u@db:5432/sw"
    monkeypatch.delenv(ENV_DATABASE_URL)
    assert resolve_url(None, tmp_path) == f"sqlite:///{tmp_path / 'sessionward.db'}"
    with pytest.raises(ValueError):
        resolve_url(None, None)


def test_postgres_urls_use_psycopg_3() -> None:
    assert normalize_url("postgres://a@h/d") == "postgresql+psycopg://a@h/d"
    assert normalize_url("postgresql://a@h/d") == "postgresql+psycopg://a@h/d"
    assert normalize_url("postgresql+psycopg://a@h/d") == "postgresql+psycopg://a@h/d"


def test_schema_option_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        open_store(data_dir=tmp_path, schema="s1")
    with pytest.raises(ValueError):
        open_store(PG_URL, schema='x"; DROP TABLE wallets; --')
    with pytest.raises(ValueError):
        open_store("mysql://u@h/d")


def test_wallets_registered_before_0010_survive_it_as_session_accounts(
    unmigrated_store: Store,
) -> None:
    """0010 adds ``wallets.session_module`` in place: rows other tables refer to stay (a
    table copy would have to drop ``wallets``, which SQLite refuses under foreign keys)."""
    unmigrated_store.upgrade("0009")
    with unmigrated_store.db.writing() as conn:
        insert_old_wallet(conn)
        conn.execute(
            text(
                "INSERT INTO credentials (id, role, alg, public_key, wallet_id, created_at)"
                " VALUES ('cred_1', 'owner', 'ecdsa-p256k-eip191', '0x22', 'wal_1', 100)"
            )
        )
    unmigrated_store.upgrade()
    record = unmigrated_store.wallets.get("wal_1")
    assert record is not None and record.session_module is None
    unmigrated_store.downgrade("0009")
    unmigrated_store.upgrade()
    assert unmigrated_store.wallets.get("wal_1") is not None
