"""Engines: one way to make a SQLAlchemy Engine for a database URL, used by sessions and migrations alike.

SQLite gets what a bot writing from several tasks needs (WAL, a 5 s busy timeout, enforced foreign keys);
other databases get `pool_pre_ping`. `postgresql://` and `postgres://` URLs are routed to psycopg 3.

Example::

    >>> from storage.engine import is_sqlite_memory, normalize_url
    >>> normalize_url("postgresql://u@h/db").drivername
    'postgresql+psycopg'
    >>> is_sqlite_memory("sqlite://")
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 5000


def normalize_url(url: str | URL) -> URL:
    """Parse `url`; plain PostgreSQL URLs get the psycopg 3 driver (psycopg2 is not installed)."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite_memory(url: str | URL) -> bool:
    """Whether `url` names an in-memory SQLite database (one per connection)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def make_engine(url: str | URL, *, sqlite_foreign_keys: bool = True, **engine_kwargs: Any) -> Engine:
    """An Engine for `url`; for a SQLite file, its folder is created first.

    `sqlite_foreign_keys=False` is for migrations only: SQLite batch operations recreate tables, and with
    enforcement on, dropping the old table would fire ON DELETE CASCADE on the rows that point at it.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **engine_kwargs)

    if not is_sqlite_memory(parsed) and not str(parsed.database).startswith("file:"):
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not is_sqlite_memory(parsed):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if sqlite_foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    return engine
