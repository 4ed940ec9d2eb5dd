"""Alembic environment for Oráculo: the schema's metadata comes from `storage.models`.

The database URL is, in order: `config.attributes["url"]` (set by `storage.migrate`), `-x url=...` on the
command line, the DATABASE_URL environment variable. `config.attributes["connection"]` may carry an open
connection instead (an in-memory SQLite database, a test's transaction).

Example (from the repository root)::

    alembic -c alembic/alembic.ini -x url=sqlite:///data/oraculo.db upgrade head
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from storage.engine import make_engine, normalize_url
from storage.models import Base, UTCDateTime

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    # Keep loggers the host application already created.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    """The URL to migrate, from the first place that sets one."""
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise RuntimeError(
            "no database URL: pass `-x url=...`, set DATABASE_URL, or call storage.migrate.upgrade(url)"
        )
    return normalize_url(url).render_as_string(hide_password=False)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our UTC type as a plain DateTime so migrations never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_as_batch": dialect_name == "sqlite",  # SQLite cannot ALTER most things in place
        "compare_type": True,
        "render_item": render_item,
    }


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic ... upgrade head --sql`) without a database."""
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_options(normalize_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    # SQLite batch operations copy and drop tables; with foreign keys enforced, dropping a parent table
    # would cascade-delete its children. Switch enforcement off for the migration, back on afterwards.
    toggle_fk = connection.dialect.name == "sqlite" and not connection.in_transaction()
    fk_was_on = False
    if toggle_fk:
        fk_was_on = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(connection=connection, **_configure_options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if toggle_fk and fk_was_on:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def run_migrations_online() -> None:
    """Migrate a live database: the connection handed over, or a fresh engine for the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(database_url(), sqlite_foreign_keys=False, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
