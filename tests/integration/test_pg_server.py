"""Tests of the PostgreSQL provisioning itself, against real servers on this machine."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from support import pg_server
from support.pg_server import (
    ENV_PROVIDER,
    ENV_URL,
    NoPostgresError,
    create_database,
    drop_database,
    provide_postgres,
)

LOCAL_TCP_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _database_exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test chooses its path itself, whatever the developer's shell has set."""
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_PROVIDER, raising=False)


@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_local_server_is_found_and_databases_are_created_and_dropped() -> None:
    with provide_postgres("local") as server:
        assert server.kind == "local"
        assert server.admin_url == LOCAL_TCP_URL
        url = create_database(server.admin_url)
        name = conninfo_to_dict(url)["dbname"]
        assert isinstance(name, str) and name.startswith(f"ledger_test_{os.getpid()}_")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
        assert _database_exists(server.admin_url, name)

        drop_database(server.admin_url, url)
        assert not _database_exists(server.admin_url, name)


@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_each_created_database_is_new_and_empty() -> None:
    with provide_postgres("local") as server:
        first, second = create_database(server.admin_url), create_database(server.admin_url)
        try:
            assert first != second
            with psycopg.connect(second) as conn:
                tables = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone()
            assert tables == (0,)
        finally:
            drop_database(server.admin_url, first)
            drop_database(server.admin_url, second)


@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_drop_database_ends_sessions_a_test_left_open() -> None:
    with provide_postgres("local") as server:
        url = create_database(server.admin_url)
        leaked = psycopg.connect(url)
        try:
            drop_database(server.admin_url, url)
            assert not _database_exists(server.admin_url, str(conninfo_to_dict(url)["dbname"]))
        finally:
            leaked.close()


@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_drop_database_refuses_a_database_it_did_not_make() -> None:
    with pytest.raises(ValueError, match="refusing to drop 'postgres'"):
        drop_database(LOCAL_TCP_URL, LOCAL_TCP_URL)
    assert _database_exists(LOCAL_TCP_URL, "postgres")


@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_env_url_is_used_as_given_and_wins_over_a_local_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = "postgresql://postgres@localhost:5432/postgres?application_name=ledger"
    monkeypatch.setenv(ENV_URL, given)
    with provide_postgres() as server:
        assert (server.kind, server.admin_url) == ("url", given)
        url = create_database(server.admin_url)
        assert url.endswith("?application_name=ledger")
        drop_database(server.admin_url, url)


@pytest.mark.usefixtures("no_env")
def test_a_broken_env_url_is_reported_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, f"postgresql://someone:secret@127.0.0.1:{_unused_port()}/db")
    with pytest.raises(NoPostgresError) as raised:
        provide_postgres()
    message = str(raised.value)
    assert "does not work" in message
    assert "secret" not in message and "someone:***@" in message


@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_env_provider_forces_one_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PROVIDER, "url")
    with pytest.raises(NoPostgresError, match=f"{ENV_URL} is not set"):
        provide_postgres()

    monkeypatch.setenv(ENV_PROVIDER, "local")
    with provide_postgres() as server:
        assert server.kind == "local"

    monkeypatch.setenv(ENV_PROVIDER, "docker")
    with pytest.raises(NoPostgresError, match="is not one of url, local, cluster"):
        provide_postgres()


@pytest.mark.usefixtures("no_env")
def test_with_no_server_at_all_the_error_says_how_to_provide_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        pg_server, "LOCAL_URLS", (f"postgresql://postgres@127.0.0.1:{_unused_port()}/postgres",)
    )
    monkeypatch.setattr(pg_server, "BIN_DIR_GLOBS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NoPostgresError) as raised:
        provide_postgres()
    message = str(raised.value)
    assert f"{ENV_URL}=postgresql://USER@HOST:PORT/DB" in message
    assert "127.0.0.1:5432" in message
    assert "apt-get install postgresql" in message
    assert "no initdb and pg_ctl" in message


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.usefixtures("no_env")
def test_throwaway_cluster_starts_answers_and_is_gone_after_close() -> None:
    server = provide_postgres("cluster")
    try:
        assert server.kind == "cluster"
        assert server.directory is not None and server.directory.is_dir()
        assert ":5432/" not in server.admin_url
        with psycopg.connect(server.admin_url, connect_timeout=3) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            # initdb -U postgres made a superuser, so tests can create databases here.
            is_super = conn.execute("SELECT current_setting('is_superuser')").fetchone()
            assert is_super == ("on",)
        # postgres refuses to run as root, so a root test run must have handed it to another user.
        owner = (server.directory / "data").stat().st_uid
        assert owner != 0 if os.geteuid() == 0 else owner == os.geteuid()
        url = create_database(server.admin_url)
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("CREATE TABLE t (x int)")
        drop_database(server.admin_url, url)
    finally:
        server.close()

    assert not server.directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.admin_url, connect_timeout=3).close()
    server.close()  # a second close is harmless
