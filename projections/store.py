"""One small seam over the two stores' SQL: placeholders, exclusive view transactions, bulk writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.rows import tuple_row

STREAM_ROWS = 10000


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Like execute, with plain tuples for rows: for reads of many rows."""
        ...

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Like rows, fetched a batch at a time: for reads of a whole table."""
        ...

    def matching(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """`column` matching any of `values`, as (condition, params) pieces to run in turn."""
        ...

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
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

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql.replace("%s", "?"), tuple(params))
        return [tuple(r) for r in self.cursor.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        self.cursor.execute(sql.replace("%s", "?"), tuple(params))
        while chunk := self.cursor.fetchmany(STREAM_ROWS):
            yield from (tuple(r) for r in chunk)

    def matching(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        # SQLite caps bound parameters per statement.
        for i in range(0, len(values), 500):
            chunk = list(values[i : i + 500])
            yield f"{column} IN ({','.join('?' for _ in chunk)})", chunk

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
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
    """A transaction on PostgreSQL: bulk rows go through COPY, the fastest way in.

    Not executemany (psycopg runs it in pipeline mode, which the notes show can hang when large)
    and not arrays through unnest (their text dumping costs more than the insert itself).
    Upserts COPY into a temporary table first, then insert from it with ON CONFLICT.
    """

    def __init__(self, cursor: Any):
        self.cursor = cursor
        self._staging: set[str] = set()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(sql, tuple(params))
        if self.cursor.description is None:
            return []
        return list(self.cursor.fetchall())

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor.connection.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql, tuple(params))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor: the rows come STREAM_ROWS at a time, whatever the table's size.
        with self.cursor.connection.cursor(name="views_stream", row_factory=tuple_row) as cursor:
            cursor.itersize = STREAM_ROWS
            cursor.execute(sql, tuple(params))
            yield from cursor

    def matching(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        if values:
            yield f"{column} = ANY(%s)", [list(values)]

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        with self.cursor.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
    ) -> None:
        if not rows:
            return
        if not conflict:
            self.copy_rows(table, columns, rows)
            return
        staging = f"staging_{table}"
        if staging not in self._staging:
            self.cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            self._staging.add(staging)
        self.cursor.execute(f"DELETE FROM {staging}")
        self.copy_rows(staging, columns, rows)
        cols = ",".join(columns)
        self.cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} {conflict}")


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
