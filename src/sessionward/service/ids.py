"""Identifiers: a short prefix saying what it names, then 128 random bits."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``cred_…``, ``wal_…``, ``ses_…``, ``txn_…``: unguessable and unique."""
    return f"{prefix}_{secrets.token_hex(16)}"
