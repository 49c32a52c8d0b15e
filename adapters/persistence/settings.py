"""Persistence settings: LEDGER_DATABASE_URL (or --db) as the library's environment for a store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from eventsourcing.utils import get_topic

from adapters.persistence.postgres import LedgerPostgresRecorder
from adapters.persistence.sqlite import LedgerSQLiteRecorder

DEFAULT_DATABASE_URL = "sqlite:///ledger.db"


class SettingsError(ValueError):
    """A database URL the ledger cannot use."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    kind: str  # sqlite | postgres
    env: dict[str, str]

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.url


def database_settings(url: str | None = None, *, pool_size: int | None = None) -> DatabaseSettings:
    """The eventsourcing environment for `url`, or LEDGER_DATABASE_URL, or the SQLite default."""
    url = url or os.environ.get("LEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise SettingsError(f"{url}: give a file, e.g. sqlite:///ledger.db")
        return DatabaseSettings(
            url,
            "sqlite",
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": get_topic(LedgerSQLiteRecorder),
            },
        )
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        secret = os.environ.get("LEDGER_DATABASE_PASSWORD_FILE")
        if secret and not parts.password:
            # A mounted secret (docker/): the password is never in the URL or the environment.
            try:
                password = Path(secret).read_text("utf-8").strip()
            except OSError as e:
                raise SettingsError(f"LEDGER_DATABASE_PASSWORD_FILE {secret}: {e.strerror}") from e
            host = parts.netloc.rpartition("@")[2]
            user = quote(unquote(parts.username or "postgres"), safe="")
            parts = parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}")
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise SettingsError(
                f"{url}: name the database, e.g. postgresql://user@host:5432/ledger"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": unquote(parts.hostname or query.get("host", "localhost")),
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or os.environ.get("USER", "postgres")),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", "5"),
            # Wait at most this long for the log's lock, then fail rather than hang for ever.
            "POSTGRES_LOCK_TIMEOUT": query.get("lock_timeout", "60"),
            "POSTGRES_POOL_SIZE": str(pool_size or int(query.get("pool_size", "2"))),
            "POSTGRES_MAX_OVERFLOW": query.get("max_overflow", "8"),
            "APPLICATION_RECORDER_TOPIC": get_topic(LedgerPostgresRecorder),
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"]
        return DatabaseSettings(url, "postgres", env)
    raise SettingsError(
        f"{url}: unsupported database URL; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )
