"""Engines and the one place that owns a session's life.

SQLite gets what a bot writing from several tasks needs (WAL, a 5 s busy timeout, enforced foreign keys);
other databases get `pool_pre_ping`. `postgresql://` and `postgres://` URLs are routed to psycopg 3.

Example::

    >>> import tempfile, pathlib
    >>> from sqlalchemy import text
    >>> from storage.db import Database
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> db = Database(f"sqlite:///{folder}/sub/oraculo.db")
    >>> db.upgrade()  # runs the Alembic migrations
    >>> with db.session() as session:
    ...     session.execute(text("SELECT count(*) FROM users")).scalar_one()
    0
    >>> db.dispose()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

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


class Database:
    """An engine plus a session factory for one database URL.

    Sessions keep their objects readable after commit (`expire_on_commit=False`), so a caller can return
    an interaction's id or a feedback's vote once the session is closed.
    """

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.url: URL = normalize_url(url)
        self.engine: Engine = make_engine(self.url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` with the Alembic migrations."""
        from storage import migrate

        if is_sqlite_memory(self.url):
            # Each new connection would be a fresh empty database: migrate through one of ours.
            with self.engine.connect() as connection:
                migrate.upgrade(self.url, revision, connection=connection)
                connection.commit()
        else:
            migrate.upgrade(self.url, revision)

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, None when it was never migrated."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds, rolls back when it raises, and always closes."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection (tests, shutdown)."""
        self.engine.dispose()
