"""The Alembic migrations are the schema: they build exactly the models, both ways, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from storage import migrate
from storage.db import Database
from storage.engine import make_engine
from storage.models import Base

TABLES = {"users", "interactions", "feedback", "training_runs", "index_versions"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url, poolclass=NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _diff(url: str, metadata: sa.MetaData) -> list:
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_upgrade_head_then_downgrade_base(db_url):
    assert migrate.current(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head() == "0003"
    assert _tables(db_url) == TABLES | {"alembic_version"}

    migrate.downgrade(db_url)
    assert migrate.current(db_url) is None
    assert _tables(db_url) == {"alembic_version"}

    migrate.upgrade(db_url)  # and back up again on the same database
    assert _tables(db_url) == TABLES | {"alembic_version"}


def test_migration_matches_models(db_url):
    migrate.upgrade(db_url)
    assert _diff(db_url, Base.metadata) == []


def test_model_comparison_would_catch_a_drift(db_url):
    """The no-diff check above is only worth something if a real drift shows up."""
    migrate.upgrade(db_url)
    drifted = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["users"].append_column(sa.Column("nickname", sa.String(20)))
    drifted.tables["interactions"].c.channel.type = sa.String(99)

    kinds = {diff[0] if isinstance(diff, tuple) else diff[0][0] for diff in _diff(db_url, drifted)}
    assert {"add_column", "modify_type"} <= kinds


def test_schema_enforces_constraints(db):
    inspector = sa.inspect(db.engine)
    unique = {uc["name"]: uc["column_names"] for uc in inspector.get_unique_constraints("feedback")}
    assert unique.get("uq_feedback_interaction_id_user_id") == ["interaction_id", "user_id"]
    for table in ("interactions", "feedback"):
        fks = inspector.get_foreign_keys(table)
        assert fks and all(fk["options"].get("ondelete", "").upper() == "CASCADE" for fk in fks), fks

    with db.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO users (user_hash, created_at) VALUES ('h', CURRENT_TIMESTAMP)"))
        connection.execute(sa.text(
            "INSERT INTO interactions (user_id, channel, question, answer, sources, strategy, abstained, "
            "model_version, index_version, latency_ms, created_at) "
            "VALUES (1, 'cli', 'q', 'a', '[]', 'extractive', false, 'm', 'i', 1.0, CURRENT_TIMESTAMP)"
        ))
    insert_vote = sa.text("INSERT INTO feedback (interaction_id, user_id, vote, created_at, updated_at) "
                          "VALUES (1, 1, :vote, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(insert_vote, {"vote": 0})  # CHECK vote IN (-1, 1)
    with db.engine.begin() as connection:
        connection.execute(insert_vote, {"vote": 1})
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(insert_vote, {"vote": -1})  # UNIQUE (interaction_id, user_id)
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO training_runs (status, started_at, base_model) VALUES ('weird', CURRENT_TIMESTAMP, 'm')"
        ))


def test_database_upgrade_works_in_memory():
    """An in-memory SQLite database exists per connection: upgrade must migrate the one the engine uses."""
    database = Database("sqlite://")
    try:
        database.upgrade()
        assert database.current_revision() == "0003"
        with database.session() as session:
            assert session.execute(sa.text("SELECT count(*) FROM feedback")).scalar_one() == 0
    finally:
        database.dispose()


def test_alembic_command_line_from_another_directory(tmp_path):
    """`alembic -c alembic/alembic.ini` works with -x url=..., with DATABASE_URL, and offline (--sql)."""
    ini = str(migrate.ALEMBIC_DIR / "alembic.ini")
    db_file = tmp_path / "cli" / "oraculo.db"
    url = f"sqlite:///{db_file}"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}

    def alembic(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alembic", "-c", ini, *args], cwd=tmp_path,
                              env={**env, **extra_env}, capture_output=True, text=True, timeout=120)

    result = alembic("-x", f"url={url}", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert migrate.current(url) == "0003"

    result = alembic("downgrade", "base", DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert migrate.current(url) is None

    result = alembic("-x", "url=sqlite:///offline.db", "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE feedback" in result.stdout and "CREATE TABLE training_runs" in result.stdout
    assert not (tmp_path / "offline.db").exists()

    result = alembic("upgrade", "head")  # no URL anywhere: a clear error, not a guess
    assert result.returncode != 0 and "no database URL" in result.stderr
