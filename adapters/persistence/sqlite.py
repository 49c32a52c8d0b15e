"""The log's recorder on SQLite: the library's, with commit times, one-transaction event streams
and the hash chain (see adapters/persistence/__init__.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteCursor

from adapters.persistence.chain import (
    GENESIS,
    Anchor,
    EventRow,
    Verification,
    check,
    event_row,
    events_to_verify,
    fold,
)
from adapters.persistence.group_commit import GroupedAppends, time_left
from adapters.persistence.log import (
    CHAIN_FETCH_ROWS,
    CHAIN_TABLE,
    COMMITS_TABLE,
    MAX_POSITION,
    MIN_POSITION,
    Moved,
    stored_bytes,
)
from domain.ports import Commit, TrailEntry


def _parse_sqlite_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sqlite_time(moment: datetime) -> str:
    # The same text form the commits table holds (UTC, milliseconds, Z), so text order is time order.
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class LedgerSQLiteRecorder(GroupedAppends, SQLiteApplicationRecorder):
    """The library's SQLite recorder, with commit times, one-transaction event streams and the
    hash chain."""

    chain_head_statement = (
        f"SELECT position, link FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
    )

    def insert_now(
        self, stored_events: Sequence[StoredEvent], *, deadline: float | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        """Append in a transaction of its own (the library's), not begun after `deadline`."""
        time_left(deadline)
        return SQLiteApplicationRecorder.insert_events(self, stored_events, **kwargs)

    def probe(self, timeout: float = 1.0) -> str | None:
        """Whether the database file answers: None, or what went wrong."""
        try:
            path = cast(Any, self.datastore).pool.db_name
            with contextlib.closing(sqlite3.connect(path, timeout=timeout)) as conn:
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            return None
        except sqlite3.Error as e:
            return str(e)

    def renew_connections(self) -> None:
        """Nothing to renew: SQLite has no server to come back."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {COMMITS_TABLE} ("
            "position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
            "position INTEGER PRIMARY KEY, link BLOB NOT NULL CHECK (length(link) = 32))",
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

    def select_streams(self, originator_ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Several aggregates' events, each in version order, in one transaction (a few hundred
        aggregates a statement, under SQLite's limit on parameters)."""
        streams: dict[UUID, list[StoredEvent]] = {}
        ids = list(originator_ids)
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE originator_id IN "
                    f"({', '.join('?' * len(chunk))}) ORDER BY originator_id, originator_version",
                    [oid.hex for oid in chunk],
                )
                for oid, version, topic, state in c.fetchall():
                    key = UUID(oid)
                    streams.setdefault(key, []).append(
                        StoredEvent(key, version, topic, stored_bytes(state))
                    )
        return streams

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
                    StoredEvent(originator_id, r[1], r[2], stored_bytes(r[3])),
                    _parse_sqlite_time(r[4]) if r[4] else None,
                )
                for r in c.fetchall()
            ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if ids:
            # SQLite gives each new row the highest rowid plus one: ids come in position order.
            self._extend_chain(
                c,
                (
                    event_row(p, e.originator_id, e.originator_version, e.topic, e.state)
                    for p, e in zip(ids, stored_events, strict=True)
                ),
            )
            if kwargs.get("_commit_row", True):
                self._record_commit(c, max(ids))
        return ids

    def _extend_chain(self, c: SQLiteCursor, rows: Iterable[EventRow]) -> None:
        # Called after this transaction's first write, so SQLite's single writer lock is held
        # and the last stored link is the chain's head.
        c.execute(self.chain_head_statement)
        head = c.fetchone()
        c.executemany(
            f"INSERT INTO {CHAIN_TABLE} (position, link) VALUES (?, ?)",
            fold(bytes(head[1]) if head else GENESIS, rows),
        )

    def _chain_rows(
        self, c: SQLiteCursor, first: int | None = None, last: int = MAX_POSITION
    ) -> Iterator[EventRow]:
        """The events (from position `first` on, or all, up to `last`) as the chain sees them, in
        position order, read by a cursor of their own in c's transaction: c stays free to write
        links."""
        reader = c.sqlite_cursor.connection.cursor()
        reader.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid >= ? AND rowid <= ? ORDER BY rowid",
            (MIN_POSITION if first is None else first, last),
        )
        while batch := reader.fetchmany(CHAIN_FETCH_ROWS):
            for r in batch:
                yield event_row(r[0], r[1], r[2], r[3], r[4])

    def chain_head(self) -> Anchor:
        """The last stored link (position 0 and 32 zero bytes for an empty log)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.chain_head_statement)
            head = c.fetchone()
        return Anchor(head[0], bytes(head[1])) if head else Anchor(0, GENESIS)

    def link_at(self, position: int) -> Anchor | None:
        """The stored link at a position (0: the genesis), if there is one."""
        if position == 0:
            return Anchor(0, GENESIS)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, link FROM {CHAIN_TABLE} WHERE position = ?", (position,))
            row = c.fetchone()
        return Anchor(row[0], bytes(row[1])) if row else None

    def last_position(self, stop: int, *, skipping: str) -> int:
        """The last position at or before `stop` whose event's topic does not start with
        `skipping` (0 if none)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT max(rowid) FROM {self.events_table_name} "
                "WHERE rowid <= ? AND substr(topic, 1, ?) <> ?",
                (stop, len(skipping), skipping),
            )
            row = c.fetchone()
        return int(row[0] or 0)

    def verify_chain(
        self, anchor: Anchor | None = None, since: Anchor | None = None, stop: int = MAX_POSITION
    ) -> Verification:
        """Recompute the chain from every event (after `since`, up to `stop`) and compare it with
        the stored links (see adapters.chain.check)."""
        first = since.position if since else MIN_POSITION
        total = events_to_verify(self, first, stop)
        with self.datastore.transaction(commit=False) as c:
            # One read transaction: both cursors see the same snapshot of the log.
            c.execute(
                f"SELECT position, link FROM {CHAIN_TABLE} WHERE position >= ? AND position <= ? "
                "ORDER BY position",
                (first, stop),
            )
            links = ((r[0], bytes(r[1])) for r in c.sqlite_cursor)
            events = self._chain_rows(c, first + 1 if since else first, stop)
            return check(events, links, anchor, since, total)

    def _record_commit(self, c: SQLiteCursor, position: int) -> None:
        # SQLite has one writer at a time, so the clock read here follows commit order;
        # max() keeps recorded times monotonic even if the system clock steps back.
        c.execute(
            f"INSERT INTO {COMMITS_TABLE} (position, recorded_at) "
            "SELECT ?, max(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), coalesce((SELECT recorded_at "
            f"FROM {COMMITS_TABLE} ORDER BY position DESC LIMIT 1), ''))",
            (position,),
        )

    def insert_event_stream(
        self, chunks: Iterable[Sequence[StoredEvent]], *, since: int = 0, under_lock: Moved = None
    ) -> int | None:
        """Append every chunk in one transaction; return the last position written. `under_lock`
        as on PostgreSQL: given, with the writer lock held, what moved after `since`."""
        count = 0
        with self.datastore.transaction(commit=True) as c:
            if under_lock is not None:
                # A write that changes nothing takes SQLite's single writer lock now, so that
                # nothing moves between this look and the commit.
                c.execute(f"UPDATE {COMMITS_TABLE} SET position = position WHERE 0")
                c.execute(
                    f"SELECT originator_id, max(originator_version) FROM {self.events_table_name} "
                    "WHERE rowid > ? GROUP BY originator_id",
                    (since,),
                )
                under_lock({UUID(r[0]): int(r[1]) for r in c.fetchall()})
            for chunk in chunks:
                # the library's executemany INSERT; SQLite's single writer lock is held
                SQLiteAggregateRecorder._insert_events(self, c, chunk)
                count += len(chunk)
            if not count:
                return None
            c.execute(self.select_max_notification_id_statement)
            last = int(c.fetchone()[0])
            # Under the single writer each new row takes the highest rowid plus one, so this
            # transaction's events are the last `count` positions.
            self._extend_chain(c, self._chain_rows(c, last - count + 1))
            self._record_commit(c, last)
        return last
