"""One small seam over the two stores' SQL: placeholders, exclusive view transactions, bulk writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

# A batch of bulk rows per statement: bounded, so no statement grows with the log.
BULK_ROWS = 2000


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
    ) -> None: ...


class SQLiteTx:
    """A transaction on SQLite: `?` placeholders, executemany for bulk rows."""

    def __init__(self, cursor: Any):
        # The library wraps sqlite3 cursors; the wrapper lacks `description`.
        self.cursor = getattr(cursor, "sqlite_cursor", cursor)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(sql.replace("%s", "?"), tuple(params))
        if self.cursor.description is None:
            return []
        return [dict(r) for r in self.cursor.fetchall()]

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
    ) -> None:
        if not rows:
            return
        marks = ",".join("?" for _ in columns)
        self.cursor.executemany(
            f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks}) {conflict}",
            [tuple(r) for r in rows],
        )


class PostgresTx:
    """A transaction on PostgreSQL: bulk rows as arrays through unnest, one statement per batch.

    Not executemany: that runs in psycopg's pipeline mode, which the notes show can hang when
    large (../shared/eventsourcing-notes.md).
    """

    def __init__(self, cursor: Any):
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(sql, tuple(params))
        if self.cursor.description is None:
            return []
        return list(self.cursor.fetchall())

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
    ) -> None:
        for start in range(0, len(rows), BULK_ROWS):
            batch = rows[start : start + BULK_ROWS]
            arrays = [list(col) for col in zip(*batch, strict=True)]
            unnest = ",".join(f"%s::{t}[]" for t in types)
            self.cursor.execute(
                f"INSERT INTO {table} ({','.join(columns)}) SELECT * FROM unnest({unnest}) {conflict}",
                arrays,
            )


@contextmanager
def sqlite_write(datastore: SQLiteDatastore) -> Iterator[SQLiteTx]:
    """An exclusive write transaction: BEGIN IMMEDIATE takes SQLite's writer lock up front, so two
    processes catching up never both read the same tracking position."""
    with datastore.get_connection(commit=True) as conn:
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield SQLiteTx(cursor)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


@contextmanager
def sqlite_read(datastore: SQLiteDatastore) -> Iterator[SQLiteTx]:
    with datastore.transaction(commit=False) as cursor:
        yield SQLiteTx(cursor)


@contextmanager
def postgres_write(datastore: PostgresDatastore, lock_key: int) -> Iterator[PostgresTx]:
    """A write transaction that first takes an advisory lock, so concurrent catch-ups queue."""
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        yield PostgresTx(cursor)


@contextmanager
def postgres_read(datastore: PostgresDatastore) -> Iterator[PostgresTx]:
    # REPEATABLE READ: every query of one answer sees the same snapshot.
    with (
        datastore.get_connection() as conn,
        conn.transaction(force_rollback=True),
        conn.cursor() as cursor,
    ):
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield PostgresTx(cursor)
