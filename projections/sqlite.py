"""The views on SQLite: its transactions (`?` placeholders, the single writer) and the projection."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections.runner import LedgerViews
from projections.store import STREAM_ROWS


class SQLiteTx:
    """A transaction on SQLite: `?` placeholders, executemany for bulk rows."""

    def __init__(self, cursor: Any):
        # The library wraps sqlite3 cursors; the wrapper lacks `description`.
        self.cursor = getattr(cursor, "sqlite_cursor", cursor)
        self.clean = False  # SQLite's text holds any character

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

    def close_versions(
        self, table: str, key: Sequence[str], closes: Sequence[tuple[int, Sequence[Any]]]
    ) -> None:
        where = " AND ".join(f"{c} = ?" for c in key)
        self.cursor.executemany(
            f"UPDATE {table} SET known_to = ? WHERE {where} AND known_to IS NULL "
            "AND known_from < ?",
            [(position, *values, position) for position, values in closes],
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


class SQLiteLedgerViews(LedgerViews, SQLiteTrackingRecorder):
    kind = "sqlite"

    def create_table(self) -> None:
        super().create_table()
        self._create_views()

    def _write(self) -> AbstractContextManager[SQLiteTx]:
        return sqlite_write(self.datastore)

    def read(self) -> AbstractContextManager[SQLiteTx]:
        return sqlite_read(self.datastore)

    @property
    def _tracking_table(self) -> str:
        return "tracking"
