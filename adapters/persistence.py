"""Persistence settings (LEDGER_DATABASE_URL) and the log's recorders for SQLite and PostgreSQL.

Both recorders subclass the library's application recorders, so every append still takes the
library's table lock (PostgreSQL) or the single writer lock (SQLite) that makes commit order equal
position order. They add two things:

- each transaction records its commit time from the database clock, taken under that lock, in
  `ledger_commits` (position = the highest notification id of the transaction), so "what the
  ledger knew at T" follows commit order, not the client's event timestamps;
- `insert_event_stream` appends a long stream of events (a register year) in one transaction,
  chunk by chunk (COPY on PostgreSQL, the library's executemany on SQLite), so an interrupted
  import leaves nothing behind.

On PostgreSQL the inserts run in an ordinary transaction, not psycopg's pipeline mode, which hangs
on large saves (../shared/eventsourcing-notes.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic, retry
from psycopg import InterfaceError, OperationalError
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

DEFAULT_DATABASE_URL = "sqlite:///ledger.db"
COMMITS_TABLE = "ledger_commits"


@dataclass(frozen=True)
class TrailEntry:
    """An event as the log holds it: its position, its stored form and when it was committed."""

    position: int
    stored: StoredEvent
    recorded_at: datetime | None


@dataclass(frozen=True)
class Commit:
    """A transaction of the log: its last position and when the database committed it."""

    position: int
    recorded_at: datetime


def _parse_sqlite_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sqlite_time(moment: datetime) -> str:
    # The same text form the commits table holds (UTC, milliseconds, Z), so text order is time order.
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


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


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, with commit times and one-transaction event streams."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {COMMITS_TABLE} ("
            "position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL)",
        ]

    def commit_at(
        self, position: int | None = None, instant: datetime | None = None
    ) -> Commit | None:
        """The last commit at or before a position or an instant (the log's head by default)."""
        where, params = "", tuple[Any, ...]()
        if position is not None:
            where, params = "WHERE position <= ?", (position,)
        elif instant is not None:
            where, params = "WHERE recorded_at <= ?", (_sqlite_time(instant),)
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT position, recorded_at FROM {COMMITS_TABLE} {where} "
                "ORDER BY position DESC LIMIT 1",
                params,
            )
            row = c.fetchone()
        return Commit(row[0], _parse_sqlite_time(row[1])) if row else None

    def select_trail(self, originator_id: UUID) -> list[TrailEntry]:
        """One aggregate's events in log order, each with its position and commit time."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT e.rowid, e.originator_version, e.topic, e.state, (SELECT recorded_at "
                f"FROM {COMMITS_TABLE} k WHERE k.position >= e.rowid ORDER BY k.position LIMIT 1) "
                f"FROM {self.events_table_name} e WHERE e.originator_id = ? ORDER BY e.rowid",
                (originator_id.hex,),
            )
            return [
                TrailEntry(
                    r[0],
                    StoredEvent(originator_id, r[1], r[2], bytes(r[3])),
                    _parse_sqlite_time(r[4]) if r[4] else None,
                )
                for r in c.fetchall()
            ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if ids and kwargs.get("_commit_row", True):
            self._record_commit(c, max(ids))
        return ids

    def _record_commit(self, c: SQLiteCursor, position: int) -> None:
        # SQLite has one writer at a time, so the clock read here follows commit order;
        # max() keeps recorded times monotonic even if the system clock steps back.
        c.execute(
            f"INSERT INTO {COMMITS_TABLE} (position, recorded_at) "
            "SELECT ?, max(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), coalesce((SELECT recorded_at "
            f"FROM {COMMITS_TABLE} ORDER BY position DESC LIMIT 1), ''))",
            (position,),
        )

    def insert_event_stream(self, chunks: Iterable[Sequence[StoredEvent]]) -> int | None:
        """Append every chunk in one transaction; return the last position written."""
        count = 0
        with self.datastore.transaction(commit=True) as c:
            for chunk in chunks:
                # the library's executemany INSERT; SQLite's single writer lock is held
                SQLiteAggregateRecorder._insert_events(self, c, chunk)
                count += len(chunk)
            if not count:
                return None
            c.execute(self.select_max_notification_id_statement)
            last = int(c.fetchone()[0])
            self._record_commit(c, last)
        return last


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, without pipeline mode, with commit times and streams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits_table = f"{self.events_table_name.rsplit('_', 1)[0]}_commits"
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "position bigint PRIMARY KEY, recorded_at timestamptz NOT NULL)"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.commits_table))
        )
        # Under the table lock, so clock_timestamp() follows commit order; greatest() keeps
        # recorded times monotonic even if the server clock steps back.
        self.record_commit_statement = SQL(
            "INSERT INTO {schema}.{table} (position, recorded_at) SELECT %s, greatest("
            "clock_timestamp(), (SELECT recorded_at FROM {schema}.{table} "
            "ORDER BY position DESC LIMIT 1))"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.commits_table))
        self.copy_events_statement = SQL(
            "COPY {schema}.{table} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self.last_position_statement = SQL(
            "SELECT currval(pg_get_serial_sequence(%s, 'notification_id')) AS last"
        )
        self._qualified_events_table = f'"{self.datastore.schema}"."{self.events_table_name}"'
        self.select_trail_statement = SQL(
            "SELECT e.notification_id, e.originator_version, e.topic, e.state, (SELECT recorded_at "
            "FROM {schema}.{commits} k WHERE k.position >= e.notification_id ORDER BY k.position "
            "LIMIT 1) FROM {schema}.{table} e WHERE e.originator_id = %s ORDER BY e.notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            commits=Identifier(self.commits_table),
            table=Identifier(self.events_table_name),
        )
        self.select_after_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's query; the views' catch-up form (after `start`) reads plain tuples,
        which saves a dict per row on batches of ten thousand."""
        if start is None or inclusive_of_start or stop is not None or topics:
            notifications: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return notifications
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self.select_after_statement, (start, limit), prepare=True)
            return [
                Notification(
                    id=nid,
                    originator_id=oid,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                for nid, oid, version, topic, state in curs.fetchall()
            ]

    def commit_at(
        self, position: int | None = None, instant: datetime | None = None
    ) -> Commit | None:
        """The last commit at or before a position or an instant (the log's head by default)."""
        condition, params = SQL(""), tuple[Any, ...]()
        if position is not None:
            condition, params = SQL("WHERE position <= %s"), (position,)
        elif instant is not None:
            condition, params = SQL("WHERE recorded_at <= %s"), (instant,)
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(
                SQL(
                    "SELECT position, recorded_at FROM {schema}.{commits} {where} "
                    "ORDER BY position DESC LIMIT 1"
                ).format(
                    schema=Identifier(self.datastore.schema),
                    commits=Identifier(self.commits_table),
                    where=condition,
                ),
                params,
            )
            row = curs.fetchone()
        return Commit(row[0], row[1]) if row else None

    def select_trail(self, originator_id: UUID) -> list[TrailEntry]:
        """One aggregate's events in log order, each with its position and commit time."""
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self.select_trail_statement, (originator_id,))
            return [
                TrailEntry(r[0], StoredEvent(originator_id, r[1], r[2], bytes(r[3])), r[4])
                for r in curs.fetchall()
            ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: list[int] = []
        with self.datastore.transaction(commit=True) as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the library's hook (tracking)
            if stored_events:
                self._lock_table(curs)
                self._notify_channel(curs)
                # the library's INSERT … unnest … RETURNING notification_id
                PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events)
                ids = [row["notification_id"] for row in curs.fetchall()]
                curs.execute(self.record_commit_statement, (max(ids),))
        return ids

    def insert_event_stream(self, chunks: Iterable[Sequence[StoredEvent]]) -> int | None:
        """Append every chunk in one transaction; return the last position written.

        A register year is tens of thousands of events, so they go in by COPY (the composite-array
        INSERT spends more time dumping text than inserting). Same lock, same table, same
        constraints: a conflicting (originator_id, version) still fails the whole transaction.
        """
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            self._notify_channel(curs)
            count = 0
            with curs.copy(self.copy_events_statement) as copy:
                for chunk in chunks:
                    for e in chunk:
                        copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
                    count += len(chunk)
            if not count:
                return None
            # The table lock is held, so this session's last sequence value is the log's head.
            curs.execute(self.last_position_statement, (self._qualified_events_table,))
            row = curs.fetchone()
            assert row is not None
            last = int(row["last"])
            curs.execute(self.record_commit_statement, (last,))
        return last


LedgerRecorder = LedgerSQLiteRecorder | LedgerPostgresRecorder
