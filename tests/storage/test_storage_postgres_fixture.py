"""The reusable PostgreSQL fixture: loopback only, dropped privileges as root, fully cleaned up."""

from __future__ import annotations

import os
import socket

import pytest
import sqlalchemy as sa

from tests.fixtures.postgres import HOST, SERVER_USER, require_postgres_bin_dir, start_postgres


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def test_postgres_url_is_a_fresh_database_on_loopback(postgres_server, postgres_url):
    assert postgres_url.startswith(f"postgresql+psycopg://postgres@{HOST}:{postgres_server.port}/test_")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT current_setting('listen_addresses')")).scalar() == HOST
            tables = connection.execute(sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")).scalar()
            assert tables == 0
    finally:
        engine.dispose()


def test_a_server_stops_and_leaves_nothing_behind():
    server = start_postgres(bin_dir=require_postgres_bin_dir())
    try:
        assert _port_open(server.port)
        assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()
        if os.geteuid() == 0:  # initdb refuses root: the files must belong to the postgres user
            import pwd

            assert pwd.getpwuid(server.data_dir.stat().st_uid).pw_name == SERVER_USER
        url = server.create_database("probe_db")
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT current_database()")).scalar() == "probe_db"
        engine.dispose()
        with pytest.raises(ValueError):
            server.create_database('x"; DROP DATABASE postgres; --')
    finally:
        server.stop()
    assert not _port_open(server.port)
    assert not server.base_dir.exists()
    server.stop()  # twice is harmless (the atexit hook calls it again)
