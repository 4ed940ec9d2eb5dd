"""Run Oráculo's Alembic migrations from Python, from any working directory.

The migrations live in the repository's top-level `alembic/` folder and are the only source of the schema.
The same migrations run from a shell with `alembic -c alembic/alembic.ini -x url=sqlite:///x.db upgrade head`.

Example::

    >>> import tempfile, pathlib
    >>> from storage import migrate
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'oraculo.db'}"
    >>> migrate.current(url) is None
    True
    >>> migrate.upgrade(url)
    >>> migrate.current(url) == migrate.head()
    True
    >>> migrate.downgrade(url)
    >>> migrate.current(url) is None
    True
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from storage.engine import make_engine, normalize_url

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(url: str | URL | None = None, *, connection: Connection | None = None) -> Config:
    """A programmatic Alembic Config: script location set, URL (or an open connection) passed to env.py."""
    if not (ALEMBIC_DIR / "env.py").is_file():
        raise FileNotFoundError(
            f"Alembic migrations not found at {ALEMBIC_DIR}; run from a source checkout "
            "(pip install -e .) where the top-level alembic/ folder exists"
        )
    config = Config()
    # ConfigParser interpolates '%', which may appear in a path.
    config.set_main_option("script_location", str(ALEMBIC_DIR).replace("%", "%%"))
    config.attributes["configure_logger"] = False  # never reconfigure the host application's logging
    if url is not None:
        config.attributes["url"] = normalize_url(url).render_as_string(hide_password=False)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str | URL, revision: str = "head", *, connection: Connection | None = None) -> None:
    """Migrate the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url, connection=connection), revision)


def downgrade(url: str | URL, revision: str = "base", *, connection: Connection | None = None) -> None:
    """Migrate the database at `url` down to `revision` (default: drop everything)."""
    command.downgrade(alembic_config(url, connection=connection), revision)


def current(url: str | URL) -> str | None:
    """The revision the database at `url` is at; None when it was never migrated (or fully downgraded)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision id among the migration scripts."""
    script = ScriptDirectory.from_config(alembic_config())
    revision = script.get_current_head()
    if revision is None:
        raise RuntimeError(f"no migration scripts in {ALEMBIC_DIR / 'versions'}")
    return revision
