"""Alembic environment for SessionWard's schema.

Migrations run only through :meth:`sessionward.store.Store.upgrade` / ``downgrade``, which hand
in an open connection (``config.attributes["connection"]``); there is no alembic.ini and no URL
here, so the same code migrates SQLite files and PostgreSQL schemas (the connection's
``search_path`` selects the schema).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sessionward.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("SessionWard migrations run through sessionward.store, with a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
