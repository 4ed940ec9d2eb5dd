"""Engine settings and the session scope."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from storage import repository as repo
from storage.engine import is_sqlite_memory, make_engine, normalize_url
from storage.models import User


def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path):
    db_file = tmp_path / "a" / "b" / "oraculo.db"
    engine = make_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == 5000
            assert pragma("foreign_keys") == 1
        assert db_file.exists()
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_can_be_switched_off_for_migrations(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'o.db'}", sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    finally:
        engine.dispose()


def test_postgres_urls_get_psycopg3_and_pre_ping():
    assert normalize_url("postgresql://u:p@h:5433/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    engine = make_engine("postgresql://u@127.0.0.1:1/db")  # nothing connects until used
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping is True
    finally:
        engine.dispose()


def test_memory_urls_are_recognised():
    assert is_sqlite_memory("sqlite://") and is_sqlite_memory("sqlite:///:memory:")
    assert not is_sqlite_memory("sqlite:///x.db") and not is_sqlite_memory("postgresql+psycopg://h/db")


def test_session_commits_on_success_and_rolls_back_on_error(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash="a" * 64)
    assert user.id is not None and user.user_hash == "a" * 64  # readable after the session closed

    with pytest.raises(RuntimeError, match="boom"), db.session() as session:
        repo.get_or_create_user(session, user_hash="b" * 64)
        session.flush()
        raise RuntimeError("boom")

    with db.session() as session:
        hashes = set(session.scalars(sa.select(User.user_hash)))
    assert hashes == {"a" * 64}


def test_concurrent_sqlite_writers_wait_instead_of_failing(sqlite_db):
    """WAL + busy timeout: writers from several threads queue up instead of 'database is locked'."""
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(15):
                with sqlite_db.session() as session:
                    user = repo.get_or_create_user(session, user_hash=f"{n:02d}{i:02d}".ljust(64, "0"))
                    repo.record_interaction(
                        session, user_id=user.id, question=f"q{n}-{i}", answer="a", sources=[],
                        strategy="extractive", abstained=False, model_version="m", index_version="i",
                        latency_ms=1.0, channel="cli")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with sqlite_db.session() as session:
        assert session.execute(sa.text("SELECT count(*) FROM interactions")).scalar_one() == 60
        assert session.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 60


def test_a_job_opens_the_database_migrated_and_leaves_it_closed_even_on_error(tmp_path, monkeypatch):
    from storage import migrate
    from storage.db import Database, migrated

    disposed = []
    monkeypatch.setattr(Database, "dispose", lambda self: disposed.append(self) or self.engine.dispose())
    url = f"sqlite:///{tmp_path / 'db' / 'oraculo.db'}"
    with migrated(url) as database:
        assert database.current_revision() == migrate.head()
    assert disposed == [database]
    with pytest.raises(RuntimeError, match="boom"), migrated(url) as again:
        raise RuntimeError("boom")
    assert disposed == [database, again]
