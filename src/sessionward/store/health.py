"""The store's side of readiness and of a database outage (issue 13.7): the probe behind
``/readyz``'s ``database`` check and which exceptions mean the database could not be reached.

They live here because they speak SQL and know the drivers; the HTTP layer
(:mod:`sessionward.api.health`) only turns their answers into responses.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .database import Database

_DRIVER_OUTAGES: Final = (
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached (not a bug, not a conflict):
    a connection lost or refused, or no connection to be had from the pool in time."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (OperationalError, *_DRIVER_OUTAGES)):
        # Lost connections, refused connections, admin shutdowns, SQLite's "disk I/O error"
        # or "unable to open database file": the store is unavailable, not the request wrong.
        # The drivers' own classes too: the Execute path runs plain SQL on the driver.
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and database_outage(cause)


def write_problem(db: Database) -> str | None:
    """Why ``db`` cannot take writes now, or ``None``: a write transaction opens and, on
    PostgreSQL, is not read-only. A failure to connect raises (the caller names it)."""
    with db.writing() as conn:
        if db.is_postgresql:
            read_only = conn.execute(text("SHOW transaction_read_only")).scalar_one()
            if read_only == "on":
                return "the database is read-only"
        else:
            conn.execute(text("SELECT 1"))
    return None
