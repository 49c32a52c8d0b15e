"""Shared fixtures: a PostgreSQL server for the run; per-test SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.pg_server import (
    NoPostgresError,
    ProvidedServer,
    create_database,
    drop_database,
    provide_postgres,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ProvidedServer]:
    """The server (given, local or throwaway) that holds every PostgreSQL database of the run."""
    try:
        server = provide_postgres()
    except NoPostgresError as exc:
        # Never skip: a suite that silently drops its PostgreSQL half would pass while untested.
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: ProvidedServer) -> Iterator[str]:
    """One database shared by the whole session (tests must not assume it is empty)."""
    url = create_database(postgres_server.admin_url)
    try:
        yield url
    finally:
        drop_database(postgres_server.admin_url, url)


@pytest.fixture
def pg_database_url(postgres_server: ProvidedServer) -> Iterator[str]:
    """A fresh, empty database for this test alone."""
    url = create_database(postgres_server.admin_url)
    try:
        yield url
    finally:
        drop_database(postgres_server.admin_url, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same behavioural test, once on each store."""
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_database_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url
