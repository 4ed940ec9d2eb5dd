"""Storage fixtures: a migrated database on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.db import Database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database URL, once per backend; the folder of the SQLite file does not exist yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'oraculo.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A database migrated to head, on each backend."""
    database = Database(db_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    """A migrated SQLite database only, for behaviour that does not depend on the backend."""
    database = Database(f"sqlite:///{tmp_path / 'oraculo.db'}")
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()
