"""Database fixtures (tests/fixtures/databases.py)."""

from tests.fixtures.databases import db, db_url, sqlite_db  # noqa: F401  (fixtures)
