"""Persistence settings: LEDGER_DATABASE_URL (or --db) as the library's environment for a store."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import psycopg
from eventsourcing.utils import get_topic

from adapters.persistence.codec import OrjsonTranscoder
from adapters.persistence.postgres import LedgerPostgresRecorder
from adapters.persistence.sqlite import LedgerSQLiteRecorder

DEFAULT_DATABASE_URL = "sqlite:///ledger.db"


class SettingsError(ValueError):
    """A database URL the ledger cannot use."""


class NoLedgerError(SettingsError):
    """No ledger at the URL (no file, no database, or no ledger's tables in it)."""


class ServerUnreachableError(OSError):
    """The database server does not answer."""


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
                "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
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
        shown = DatabaseSettings(url, "postgres", {}).display
        query = _options(shown, parts.query)
        try:
            port = parts.port or 5432
        except ValueError:
            raise SettingsError(f"{shown}: the port must be a number, e.g. HOST:5432") from None
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": unquote(parts.hostname or query.get("host", "localhost")),
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": unquote(parts.username or os.environ.get("USER", "postgres")),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", "5"),
            # Wait at most this long for the log's lock, then fail rather than hang for ever.
            "POSTGRES_LOCK_TIMEOUT": query.get("lock_timeout", "60"),
            "POSTGRES_POOL_SIZE": str(pool_size or int(query.get("pool_size", "2"))),
            "POSTGRES_MAX_OVERFLOW": query.get("max_overflow", "8"),
            # No check of a connection before each use (an extra round trip per call, a third of
            # a GetEnterprise): the server's database watch renews the pool when the database
            # comes back (adapters.grpc.server.DatabaseWatch); other commands are short-lived.
            "APPLICATION_RECORDER_TOPIC": get_topic(LedgerPostgresRecorder),
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"]
        return DatabaseSettings(url, "postgres", env)
    raise SettingsError(
        f"{url}: unsupported database URL; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )


NUMBERS = {
    "connect_timeout": (1, 600, "seconds to wait for a connection"),
    "lock_timeout": (0, 3600, "seconds to wait for the log's write lock (0: for ever)"),
    "pool_size": (1, 256, "connections kept open"),
    "max_overflow": (0, 256, "connections opened beyond them when busy"),
}
"""The URL's numeric options: (least, most, what it is)."""
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _options(url: str, text: str) -> dict[str, str]:
    """The URL's query options, each checked: SettingsError naming the one that is wrong."""
    query = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    known = {*NUMBERS, "schema", "host"}
    for key, value in query.items():
        if key not in known:
            raise SettingsError(
                f"{url}: unknown option {key!r}; the options are {', '.join(sorted(known))}"
            )
        if key in NUMBERS:
            least, most, what = NUMBERS[key]
            if not (value.isascii() and value.isdigit() and least <= int(value) <= most):
                raise SettingsError(
                    f"{url}: {key}={value!r} must be a whole number from {least} to {most} ({what})"
                )
    if "schema" in query and _SCHEMA.fullmatch(query["schema"]) is None:
        raise SettingsError(
            f"{url}: schema={query['schema']!r} must be a lower-case name of letters, digits and "
            "_ (not starting with a digit), at most 63 characters"
        )
    return query


NO_LEDGER_ADVICE = "import a baseline register first (import-register --baseline)"


def _connect(env: dict[str, str], dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        dbname=dbname,
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
    )


def read_database_settings() -> DatabaseSettings | None:
    """The settings of LEDGER_READ_DATABASE_URL (a PostgreSQL hot standby of the ledger's
    database, where queries read), or None when it is not set. The library makes no table there
    (a standby is read-only): the primary's tables replicate with their rows."""
    url = os.environ.get("LEDGER_READ_DATABASE_URL")
    if not url:
        return None
    settings = database_settings(url)
    if settings.kind != "postgres":
        raise SettingsError(
            f"LEDGER_READ_DATABASE_URL={settings.display}: a replica is a PostgreSQL hot standby "
            "(postgresql://...)"
        )
    return DatabaseSettings(settings.url, settings.kind, {**settings.env, "CREATE_TABLE": "n"})


class StandbyError(SettingsError):
    """A command that writes was pointed at a read-only standby."""


def require_ledger(settings: DatabaseSettings, *, replica: bool = False) -> None:
    """Refuse (NoLedgerError) when there is no ledger at the settings' URL, so that a command that
    only reads never creates one by a typo; a server that does not answer is told apart at once
    (ServerUnreachableError); a standby (in recovery) is refused (StandbyError) unless it is
    opened as a `replica`, to read."""
    where = settings.display
    if settings.kind == "sqlite":
        path = Path(settings.env["SQLITE_DBNAME"])
        if not path.exists():
            raise NoLedgerError(f"no ledger at {where} (no such file): {NO_LEDGER_ADVICE}")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
                ).fetchone()
        except sqlite3.DatabaseError as e:
            raise NoLedgerError(
                f"no ledger at {where}: the file is not a SQLite database ({e})"
            ) from e
        if found is None:
            raise NoLedgerError(f"no ledger at {where} (the file holds none): {NO_LEDGER_ADVICE}")
        return
    env = settings.env
    schema = env.get("POSTGRES_SCHEMA", "public")
    server = f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}"
    try:
        with _connect(env, env["POSTGRES_DBNAME"]) as conn:
            row = conn.execute(
                "SELECT to_regclass(format('%%I.%%I', %s::text, 'ledger_events')), "
                "pg_is_in_recovery()",
                (schema,),
            ).fetchone()
    except psycopg.OperationalError as e:
        # Told apart by asking the server's own database (a failed connection carries no
        # SQLSTATE): it answers and has no such database, or it does not answer at all.
        try:
            with _connect(env, "postgres") as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (env["POSTGRES_DBNAME"],)
                ).fetchone()
        except psycopg.OperationalError:
            raise ServerUnreachableError(
                f"the database server at {server} does not answer ({str(e).strip()})"
            ) from e
        if exists is None:
            raise NoLedgerError(
                f"no ledger at {where}: database {env['POSTGRES_DBNAME']!r} does not exist on "
                f"{server}; check its name, or {NO_LEDGER_ADVICE}"
            ) from None
        raise  # the server answered and refused us this database: its words say why
    if row is None or row[0] is None:
        raise NoLedgerError(
            f"no ledger at {where} (database {env['POSTGRES_DBNAME']!r}, schema {schema!r} holds "
            f"none): {NO_LEDGER_ADVICE}"
        )
    if row[1] and not replica:
        raise StandbyError(
            f"the database at {where} is a read-only standby (in recovery): commands write to "
            "the primary; give the standby as LEDGER_READ_DATABASE_URL, where queries read"
        )
