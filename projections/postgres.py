"""The views on PostgreSQL: its transactions (COPY for bulk rows, advisory locks) and the projection."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from projections.runner import LedgerViews
from projections.store import REPLACEMENT, STREAM_ROWS

LOCK_KEY = 0x1ED6E5
"""Advisory lock of the views' catch-up (with the schema's key)."""


class PostgresTx:
    """A transaction on PostgreSQL: bulk rows go through COPY, the fastest way in.

    Not executemany (psycopg runs it in pipeline mode, which the notes show can hang when large)
    and not arrays through unnest (their text dumping costs more than the insert itself).
    Upserts COPY into a temporary table first, then insert from it with ON CONFLICT.
    """

    def __init__(self, cursor: Any):
        self.cursor = cursor
        self._staging: set[str] = set()
        self.clean = False

    def _held(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """The values as the store can hold them: PostgreSQL's text refuses NUL."""
        if not self.clean:
            return tuple(values)
        return tuple(v.replace("\x00", REPLACEMENT) if isinstance(v, str) else v for v in values)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(sql, self._held(params))
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
                copy.write_row(self._held(row) if self.clean else row)

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
        staging = self._staged(
            f"staging_{table}",
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
            columns,
            rows,
        )
        cols = ",".join(columns)
        self.cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} {conflict}")

    def _staged(
        self, staging: str, shape: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> str:
        """`rows` COPYed into the temporary table `staging` (made once a session, of `shape`,
        emptied first); its name."""
        if staging not in self._staging:
            self.cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} {shape}")
            self._staging.add(staging)
        self.cursor.execute(f"DELETE FROM {staging}")
        self.copy_rows(staging, columns, rows)
        return staging

    def close_versions(
        self, table: str, key: Sequence[str], closes: Sequence[tuple[int, Sequence[Any]]]
    ) -> None:
        # One statement from a staging table, not one UPDATE a key (a version adopted over a
        # province closes tens of thousands of awards).
        if not closes:
            return
        staging = self._staged(
            f"closing_{table}",
            f"ON COMMIT DELETE ROWS AS SELECT {','.join(key)}, known_from AS position FROM {table} "
            "WITH NO DATA",
            [*key, "position"],
            [(*v, p) for p, v in closes],
        )
        match = " AND ".join(f"t.{c} = c.{c}" for c in key)
        self.cursor.execute(
            f"UPDATE {table} t SET known_to = c.position FROM {staging} c "
            f"WHERE {match} AND t.known_to IS NULL AND t.known_from < c.position"
        )


def schema_key(schema: str) -> int:
    """The second key of a ledger's advisory locks: its schema's, so that two ledgers in one
    database (two schemas) never wait for each other's catch-up or reconciliation."""
    key = zlib.crc32(schema.encode())
    return key - 2**32 if key >= 2**31 else key


def _in_schema(cursor: Any, schema: str) -> None:
    """The views' tables are named without their schema: they are the ledger's schema's, as its
    log is (`?schema=NAME`), for this transaction."""
    cursor.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(schema)))


@contextmanager
def postgres_write(datastore: PostgresDatastore, lock_key: int) -> Iterator[PostgresTx]:
    """A write transaction that first takes an advisory lock, so concurrent catch-ups queue."""
    with datastore.transaction(commit=True) as cursor:
        _in_schema(cursor, datastore.schema)
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (lock_key, schema_key(datastore.schema))
        )
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
        # A read may pause between its queries while Python compares what it read (the drift
        # check over a whole province): a read-only snapshot holds no lock, so it is given a
        # minute there instead of the library's 5 s for writers.
        cursor.execute("SET LOCAL idle_in_transaction_session_timeout = '60s'")
        _in_schema(cursor, datastore.schema)
        yield PostgresTx(cursor)


class PostgresLedgerViews(LedgerViews, PostgresTrackingRecorder):
    kind = "postgres"

    def create_table(self) -> None:
        super().create_table()
        self._create_views()
        with self._write() as tx:
            # Every batch rewrites its firms' rows; free room in each page lets PostgreSQL update
            # them in place (HOT) without touching the indexes. Set once: ALTER TABLE locks.
            options = tx.execute(
                "SELECT reloptions FROM pg_class WHERE oid = 'lv_firms'::regclass"
            )[0]["reloptions"]
            if not options or "fillfactor=50" not in options:
                tx.execute("ALTER TABLE lv_firms SET (fillfactor = 50)")

    def _write(self) -> AbstractContextManager[PostgresTx]:
        return postgres_write(self.datastore, LOCK_KEY)

    def read(self) -> AbstractContextManager[PostgresTx]:
        return postgres_read(self.datastore)

    @property
    def _tracking_table(self) -> str:
        return f"{self.datastore.schema}.{self.tracking_table_name}"
