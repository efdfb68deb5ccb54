"""Storage: tables, migrations, atomic usage and revocation (SQLite or PostgreSQL)."""

from .engine import Store, open_store

__all__ = ["Store", "open_store"]
