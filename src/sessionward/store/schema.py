"""The tables, as SQLAlchemy Core metadata the repositories query.

The schema itself is created **only** by the Alembic migrations in ``store/migrations``; this
module mirrors the head revision so queries can be built with Core (a test compares the two with
Alembic's autogenerate and fails on any drift).

Conventions:

- Identifiers are opaque strings chosen by the service (``String(80)``).
- Times are integers (unix seconds unless a column says otherwise).
- Amounts, nonces and epochs are unsigned 256-bit integers (:class:`Uint256`): ``NUMERIC(78,0)``
  on PostgreSQL, a decimal string on SQLite (SQLite integers stop at 2**63 - 1 and its NUMERIC
  affinity silently turns larger values into floats). Arithmetic on them is never done by SQLite.
- JSON documents are stored as text exactly as produced by the writer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

UINT256_MAX: Final = 2**256 - 1
ID = String(80)


def uint256_column_value(value: int, dialect: str) -> str | Decimal:
    """How a uint256 is stored on ``dialect``: decimal text on SQLite, ``Decimal`` (for
    ``NUMERIC(78,0)``) on PostgreSQL. Raises ``ValueError`` for anything but an ``int`` in
    ``[0, 2**256 - 1]``: a value that cannot be represented on chain must never be stored."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a uint256 column takes an int")
    if not 0 <= value <= UINT256_MAX:
        raise ValueError("value outside the uint256 range")
    return str(value) if dialect == "sqlite" else Decimal(value)


class Uint256(TypeDecorator[int]):
    """An exact unsigned 256-bit integer: ``NUMERIC(78,0)`` on PostgreSQL, text on SQLite.

    Binding refuses anything outside ``[0, 2**256 - 1]`` (``ValueError``): a value that cannot be
    represented on chain must never be stored.
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(78))
        return dialect.type_descriptor(Numeric(78, 0))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return uint256_column_value(value, dialect.name)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


metadata = MetaData()

wallets = Table(
    "wallets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("account", String(42), nullable=False),
    Column("owner", String(42), nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("frozen_at", BigInteger),
    Column("frozen_reason", Text),
    # The SessionWardModule a third-party ERC-7579 account has installed (migration 0010);
    # NULL for a SessionAccount, whose sessions live in the account itself.
    Column("session_module", String(42)),
    UniqueConstraint("chain_id", "account", name="uq_wallets_chain_account"),
    # The wallet-creation budget counts an owner's wallets of the last day (migration 0007).
    Index("ix_wallets_owner_created", "owner", "created_at"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", ID, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("alg", String(32), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("app_name", Text),
    Column("app_url", Text),
    Column("wallet_id", ID, ForeignKey("wallets.id")),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("revoked_reason", Text),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("wallet_id", ID, ForeignKey("wallets.id"), nullable=False),
    Column("credential_id", ID, ForeignKey("credentials.id"), nullable=False),
    Column("session_key_id", ID, nullable=False),
    Column("session_key_address", String(42), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("grant", Text, nullable=False),
    Column("grant_nonce", Uint256, nullable=False),
    Column("epoch", Uint256, nullable=False),
    Column("action_classes", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("approved_at", BigInteger),
    Column("valid_after", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("revoked_by", Text),
    Column("revoke_reason", Text),
    Column("onchain_revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Column("owner_signature", Text),
    Column("call_nonce", Uint256, nullable=False, server_default="0"),
    Column("onchain_enabled_at", BigInteger),
    Column("renewal_nonce", Uint256),
    Index("ix_sessions_wallet_id", "wallet_id"),
    Index("ix_sessions_credential_id", "credential_id"),
    Index("ix_sessions_status", "status"),
    # Keyset pages in id order after a cursor: one range scan each (migration 0007).
    Index("ix_sessions_wallet_page", "wallet_id", "id"),
    Index("ix_sessions_credential_page", "credential_id", "id"),
)

usage = Table(
    "usage",
    metadata,
    Column("session_id", ID, ForeignKey("sessions.id"), nullable=False),
    Column("bucket", String(80), nullable=False),
    Column("window", BigInteger, nullable=False, quote=True),
    Column("amount", Uint256, nullable=False),
    PrimaryKeyConstraint("session_id", "bucket", name="pk_usage"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("session_id", ID, ForeignKey("sessions.id"), nullable=False),
    Column("charges", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("settled_at", BigInteger),
    Column("released_at", BigInteger),
    Index("ix_reservations_session_id", "session_id"),
    Index(
        "ix_reservations_held",
        "created_at",
        sqlite_where=text("status = 'held'"),
        postgresql_where=text("status = 'held'"),
    ),
)

nonces = Table(
    "nonces",
    metadata,
    Column("scope", String(16), nullable=False),
    Column("key", String(80), nullable=False),
    Column("nonce", String(78), nullable=False),
    Column("expires_at", BigInteger),
    PrimaryKeyConstraint("scope", "key", "nonce", name="pk_nonces"),
    Index("ix_nonces_expires_at", "expires_at"),
)

decision_events = Table(
    "decision_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("session_id", ID),
    Column("wallet_id", ID),
    Column("credential_id", ID),
    Column("action_class", String(80)),
    Column("verdict", String(8), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("rule", Text),
    Column("latency_us", BigInteger, nullable=False),
    Column("request_kind", String(32), nullable=False),
    Index("ix_decision_events_at", "at"),
    Index("ix_decision_events_session_id", "session_id"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("rule", String(80), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("session_id", ID),
    Column("wallet_id", ID),
    Column("credential_id", ID),
    Column("detail", Text, nullable=False),
    Column("action_taken", Text),
    Column("action_at", BigInteger),
    Index("ix_alerts_at", "at"),
)

anomaly_counters = Table(
    # The anomaly rules' windowed counters, one row per counted subject (migration 0008).
    "anomaly_counters",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("recent", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

freezes = Table(
    "freezes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("target", String(80)),
    Column("reason", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("lifted_at", BigInteger),
    Column("lifted_by", Text),
    Index("ix_freezes_scope_target", "scope", "target"),
)

audit = Table(
    "audit",
    metadata,
    Column("stream", String(80), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("stream", "seq", name="pk_audit"),
)

vault_keys = Table(
    "vault_keys",
    metadata,
    Column("key_id", ID, primary_key=True),
    Column("address", String(42), nullable=False),
    Column("wrapped_data_key", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("nonces", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("not_after", BigInteger),
    Column("disabled_at", BigInteger),
    Column("destroyed_at", BigInteger),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("session_id", ID, ForeignKey("sessions.id"), nullable=False),
    Column("wallet_id", ID, ForeignKey("wallets.id"), nullable=False),
    Column("credential_id", ID, ForeignKey("credentials.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("to_address", String(42), nullable=False),
    Column("value", Uint256, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("fee_wei", Uint256, nullable=False),
    Column("action_class", String(80), nullable=False),
    Column("intent", Text, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("quote_expires_at", BigInteger, nullable=False),
    Column("executed_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("reservation_id", ID),
    Column("call_nonce", Uint256),
    Column("deadline", BigInteger),
    Column("mode", LargeBinary),
    Column("execution", LargeBinary),
    Column("signature", LargeBinary),
    Column("tx_hash", String(66)),
    Column("failure", Text),
    Index("ix_transactions_status", "status", "created_at"),
    Index("ix_transactions_session", "session_id"),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("credential_id", ID, nullable=False),
    Column("key", String(128), nullable=False),
    Column("method", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response", Text),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("credential_id", "key", name="pk_idempotency"),
)

freeze_lift_approvals = Table(
    "freeze_lift_approvals",
    metadata,
    Column("freeze_id", ID, ForeignKey("freezes.id"), nullable=False),
    Column("ops_credential_id", ID, nullable=False),
    Column("at", BigInteger, nullable=False),
    PrimaryKeyConstraint("freeze_id", "ops_credential_id", name="pk_freeze_lift_approvals"),
)

_RELAY_OUTSTANDING: Final = "state IN ('signed', 'submitted')"

relay_jobs = Table(
    "relay_jobs",
    metadata,
    Column("job_id", ID, primary_key=True),
    Column("sender", String(42), nullable=False),
    Column("to_address", String(42), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("value", Uint256, nullable=False),
    Column("gas_limit", BigInteger, nullable=False),
    Column("fee_cap_wei", Uint256, nullable=True),
    Column("authorization_list", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False),
    Column("nonce", BigInteger, nullable=True),
    Column("max_fee_per_gas", Uint256, nullable=True),
    Column("max_priority_fee_per_gas", Uint256, nullable=True),
    Column("raw_tx", LargeBinary, nullable=True),
    Column("tx_hash", String(66), nullable=True),
    Column("tx_hashes", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("submitted_at_ms", BigInteger, nullable=True),
    Column("updated_at_ms", BigInteger, nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("gas_used", BigInteger, nullable=True),
    Column("effective_gas_price", Uint256, nullable=True),
    Column("revert_reason", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_relay_jobs_sender_state", "sender", "state"),
    Index(
        "uq_relay_jobs_outstanding_nonce",
        "sender",
        "nonce",
        unique=True,
        sqlite_where=text(_RELAY_OUTSTANDING),
        postgresql_where=text(_RELAY_OUTSTANDING),
    ),
)

user_operations = Table(
    # Session calls planned as ERC-4337 user operations (migration 0009): the fields without
    # the signature, keyed by the userOpHash the transaction's signature covers.
    "user_operations",
    metadata,
    Column("user_op_hash", String(66), primary_key=True),
    Column("txn_id", ID, nullable=False),
    Column("chain_id", BigInteger, nullable=False),
    Column("operation", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("submitted_at", BigInteger, nullable=True),
    Index("ix_user_operations_txn", "txn_id"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)

owner_devices = Table(
    "owner_devices",
    metadata,
    # A device credential (role "owner", bound to ``wallet_id``): its expiry and revocation are
    # the credential's own columns, so request authentication needs nothing from this table.
    # A row here is what makes an owner credential a *device* (it may not pair devices).
    Column("credential_id", ID, ForeignKey("credentials.id"), primary_key=True),
    Column("wallet_id", ID, ForeignKey("wallets.id"), nullable=False),
    Column("label", String(64)),
    Column("paired_via", String(16), nullable=False),
    Column("paired_by", ID, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_owner_devices_wallet", "wallet_id", "credential_id"),
)

pairing_codes = Table(
    "pairing_codes",
    metadata,
    # One-time pairing codes: only the SHA-256 of the code is stored, never the code.
    Column("id", ID, primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("wallet_id", ID, ForeignKey("wallets.id"), nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("device_ttl_s", BigInteger, nullable=False),
    Column("used_at", BigInteger),
    Column("used_by", ID),
)

relay_job_refs = Table(
    "relay_job_refs",
    metadata,
    Column("job_id", ID, ForeignKey("relay_jobs.job_id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("ref", ID, nullable=False),
    PrimaryKeyConstraint("job_id", "position", name="pk_relay_job_refs"),
    UniqueConstraint("ref", name="uq_relay_job_refs_ref"),
)
"""What a relay job carries, in order (a batch's calls: their transaction ids), written with
the job. A ref belongs to one job at most, ever: a call relayed in a batch can never be
relayed again on its own."""

ALL_TABLES: Final = (
    user_operations,
    pairing_codes,
    owner_devices,
    leases,
    relay_job_refs,
    relay_jobs,
    audit,
    alerts,
    decision_events,
    freeze_lift_approvals,
    freezes,
    idempotency,
    transactions,
    nonces,
    reservations,
    usage,
    sessions,
    credentials,
    wallets,
    vault_keys,
)
"""Every table, children before parents (the order to empty them in)."""

__all__ = [
    "ALL_TABLES",
    "UINT256_MAX",
    "Uint256",
    "alerts",
    "audit",
    "credentials",
    "decision_events",
    "freeze_lift_approvals",
    "freezes",
    "idempotency",
    "leases",
    "metadata",
    "nonces",
    "owner_devices",
    "pairing_codes",
    "relay_job_refs",
    "relay_jobs",
    "reservations",
    "sessions",
    "transactions",
    "usage",
    "user_operations",
    "vault_keys",
    "wallets",
]
