"""The one place that owns a session's life: a database's engine (:mod:`storage.engine`), sessions, migrations.

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
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from storage import migrate
from storage.engine import is_sqlite_memory, make_engine, normalize_url


@contextmanager
def migrated(url: str | URL, **engine_kwargs: Any) -> Iterator["Database"]:
    """The one way a job opens the database: migrated to head first, disposed when the block ends (also on error).

    The service (:class:`pipeline.service.Oraculo`) keeps its own :class:`Database` open for the life of the bot.
    """
    database = Database(url, **engine_kwargs)
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()


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
