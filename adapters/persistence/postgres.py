"""The log's recorder on PostgreSQL: the library's, without pipeline mode, with commit times,
one-transaction event streams and the hash chain (see adapters/persistence/__init__.py)."""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Connection, Cursor, InterfaceError, OperationalError, ServerCursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier, Literal

from adapters.persistence.chain import (
    GENESIS,
    Anchor,
    EventRow,
    Verification,
    check,
    events_to_verify,
    fold,
)
from adapters.persistence.group_commit import GroupedAppends, time_left
from adapters.persistence.log import (
    CHAIN_FETCH_ROWS,
    MAX_POSITION,
    MIN_POSITION,
    Moved,
    stored_bytes,
)
from domain.ports import Commit, TrailEntry

ANALYZE_AFTER = 10_000
"""Events a bulk append (a register year's import) must bring for the log's statistics to be
refreshed after it."""


class LedgerPostgresRecorder(GroupedAppends, PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, without pipeline mode, with commit times, streams and
    the hash chain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits_table = f"{self.events_table_name.rsplit('_', 1)[0]}_commits"
        self.chain_table = f"{self.events_table_name.rsplit('_', 1)[0]}_chain"
        schema = Identifier(self.datastore.schema)
        chain = Identifier(self.chain_table)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "position bigint PRIMARY KEY, recorded_at timestamptz NOT NULL)"
            ).format(schema=schema, table=Identifier(self.commits_table)),
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} (position bigint PRIMARY KEY, "
                "link bytea NOT NULL CHECK (octet_length(link) = 32))"
            ).format(schema=schema, chain=chain),
        ]
        # Under the table lock, so clock_timestamp() follows commit order; greatest() keeps
        # recorded times monotonic even if the server clock steps back.
        self.record_commit_statement = SQL(
            "INSERT INTO {schema}.{table} (position, recorded_at) SELECT %s, greatest("
            "clock_timestamp(), (SELECT recorded_at FROM {schema}.{table} "
            "ORDER BY position DESC LIMIT 1))"
        ).format(schema=schema, table=Identifier(self.commits_table))
        # An event as the chain sees it (adapters/chain.py EventRow), the state hashed by the
        # server: the same expression on both append paths and in verify_chain.
        chain_columns = SQL(
            "notification_id, originator_id::text, originator_version, coalesce(topic, ''), "
            "encode(sha256(coalesce(state, ''::bytea)), 'hex')"
        )
        head_link = SQL(
            "(SELECT link FROM {schema}.{chain} ORDER BY position DESC LIMIT 1)"
        ).format(schema=schema, chain=chain)
        # A payment is a few events, so round trips are its cost: the library's INSERT … unnest
        # … RETURNING notification_id also returns each event's chain columns and the last
        # stored link, and one statement stores the new links and the commit time.
        self.insert_events_statement += SQL(", {columns}, {head}").format(
            columns=chain_columns, head=head_link
        )
        self.insert_links_and_commit_statement = (
            SQL(
                "WITH links AS (INSERT INTO {schema}.{chain} (position, link) "
                "SELECT * FROM unnest(%s::bigint[], %s::bytea[])) "
            ).format(schema=schema, chain=chain)
            + self.record_commit_statement
        )
        self.chain_head_statement = SQL(
            "SELECT position, link FROM {schema}.{chain} ORDER BY position DESC LIMIT 1"
        ).format(schema=schema, chain=chain)
        self.copy_links_statement = SQL(
            "COPY {schema}.{chain} (position, link) FROM STDIN (FORMAT BINARY)"
        ).format(schema=schema, chain=chain)
        # A register year's events are the sequence values this transaction takes under the
        # lock: after the sequence's last value before the COPY, up to its currval after it (a
        # row someone inserted by hand with a higher position stays out, and unlinked).
        sequence = SQL("pg_get_serial_sequence({table}, 'notification_id')").format(
            table=Literal(f'"{self.datastore.schema}"."{self.events_table_name}"')
        )
        self.stream_start_statement = SQL(
            "SELECT coalesce(pg_sequence_last_value({sequence}), 0), {head}"
        ).format(sequence=sequence, head=head_link)
        self.copy_chain_rows_statement = SQL(
            "COPY (SELECT {columns} FROM {schema}.{table} WHERE notification_id > %s "
            "AND notification_id <= (SELECT currval({sequence})) ORDER BY notification_id) "
            "TO STDOUT (FORMAT BINARY)"
        ).format(
            columns=chain_columns,
            schema=schema,
            table=Identifier(self.events_table_name),
            sequence=sequence,
        )
        self.select_chain_rows_statement = SQL(
            "SELECT {columns} FROM {schema}.{table} WHERE notification_id > %s "
            "AND notification_id <= %s ORDER BY notification_id"
        ).format(columns=chain_columns, schema=schema, table=Identifier(self.events_table_name))
        self.link_at_statement = SQL(
            "SELECT position, link FROM {schema}.{chain} WHERE position = %s"
        ).format(schema=schema, chain=chain)
        self.select_topics_before_statement = SQL(
            "SELECT notification_id, topic FROM {schema}.{table} WHERE notification_id <= %s "
            "ORDER BY notification_id DESC LIMIT 100"
        ).format(schema=schema, table=Identifier(self.events_table_name))
        self.select_links_statement = SQL(
            "SELECT position, link FROM {schema}.{chain} WHERE position >= %s AND position <= %s "
            "ORDER BY position"
        ).format(schema=schema, chain=chain)
        self.copy_events_statement = SQL(
            "COPY {schema}.{table} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self.select_streams_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self.select_trail_statement = SQL(
            "SELECT e.notification_id, e.originator_version, e.topic, e.state, (SELECT recorded_at "
            "FROM {schema}.{commits} k WHERE k.position >= e.notification_id ORDER BY k.position "
            "LIMIT 1) FROM {schema}.{table} e WHERE e.originator_id = %s ORDER BY e.notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            commits=Identifier(self.commits_table),
            table=Identifier(self.events_table_name),
        )
        self.moved_since_statement = SQL(
            "SELECT originator_id, max(originator_version) AS version FROM {schema}.{table} "
            "WHERE notification_id > %s GROUP BY originator_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self.select_after_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    _probe: Connection[tuple[Any, ...]] | None = None

    def probe(self, timeout: float = 1.0) -> str | None:
        """Whether the server answers, on a connection of its own (the pool's may all be waiting
        on a server that went away): None, or what went wrong."""
        try:
            if self._probe is None or self._probe.closed:
                given = cast(dict[str, Any], self.datastore.pool.kwargs or {})
                kwargs = {k: v for k, v in given.items() if k != "row_factory"}
                self._probe = psycopg.connect(
                    **kwargs, connect_timeout=max(1, int(timeout)), autocommit=True
                )
                self._probe.execute(
                    SQL("SET statement_timeout = {}").format(Literal(int(timeout * 1000)))
                )
            self._probe.execute("SELECT 1")
            return None
        except psycopg.Error as e:
            if self._probe is not None:
                self._probe.close()
            self._probe = None
            return str(e).strip() or type(e).__name__

    def renew_connections(self) -> None:
        """After the server came back: a pool of new connections in place of the old one, whose
        attempts to reconnect back off for longer and longer while the server was away."""
        old = cast(Any, self.datastore.pool)
        fresh = type(old)(
            old.conninfo,
            connection_class=old.connection_class,
            kwargs=old.kwargs,
            min_size=old.min_size,
            max_size=old.max_size,
            open=False,
            configure=old._configure,
            check=old._check,
            timeout=old.timeout,
            max_waiting=old.max_waiting,
            max_lifetime=old.max_lifetime,
            get_password_func=old.get_password_func,
        )
        self.datastore.pool = fresh
        # The old pool's callers stuck waiting are let go when it closes.
        threading.Thread(target=old.close, name="old-pool-close", daemon=True).start()

    def create_table(self) -> None:
        """The library's tables, in the ledger's schema (`?schema=NAME`), which is made first:
        the library does not make it."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema))
            )
        super().create_table()

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
                    state=stored_bytes(state),
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
                TrailEntry(r[0], StoredEvent(originator_id, r[1], r[2], stored_bytes(r[3])), r[4])
                for r in curs.fetchall()
            ]

    def select_streams(self, originator_ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Several aggregates' events, each in version order, in one query."""
        streams: dict[UUID, list[StoredEvent]] = {}
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self.select_streams_statement, (list(originator_ids),))
            for oid, version, topic, state in curs.fetchall():
                streams.setdefault(oid, []).append(
                    StoredEvent(oid, version, topic, stored_bytes(state))
                )
        return streams

    def insert_now(
        self, stored_events: Sequence[StoredEvent], *, deadline: float | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        """Append in a transaction of its own: the library's lock, notify and insert, the links
        and the commit time; committed before `deadline` (waits for the lock and statements
        bounded by it) or not at all."""
        ids: list[int] = []
        with self.datastore.transaction(commit=True) as curs:
            left = time_left(deadline)
            if left is not None:
                ms = max(1, int(left * 1000))
                curs.execute(SQL("SET LOCAL statement_timeout = {}").format(Literal(ms)))
                curs.execute(SQL("SET LOCAL lock_timeout = {}").format(Literal(ms)))
            self._insert_events(curs, stored_events, **kwargs)  # the library's hook (tracking)
            if stored_events:
                self._lock_table(curs)
                self._notify_channel(curs)
                # the library's INSERT … unnest, returning ids, chain columns and the last link
                PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events)
                returned = [tuple(r.values()) for r in curs.fetchall()]
                ids = [r[0] for r in returned]
                rows = sorted(cast(EventRow, r[:5]) for r in returned)
                positions, links = zip(*fold(returned[0][5] or GENESIS, rows), strict=True)
                curs.execute(
                    self.insert_links_and_commit_statement,
                    (list(positions), list(links), max(ids)),
                )
            time_left(deadline)  # the commit is what is left: not started after the deadline
        return ids

    def insert_event_stream(
        self, chunks: Iterable[Sequence[StoredEvent]], *, since: int = 0, under_lock: Moved = None
    ) -> int | None:
        """Append every chunk in one transaction; return the last position written.

        A register year is tens of thousands of events, so they go in by COPY (the composite-array
        INSERT spends more time dumping text than inserting). Same lock, same table, same
        constraints: a conflicting (originator_id, version) still fails the whole transaction.
        `under_lock`, once the lock is held and before the first chunk is taken, is given the
        latest version of every aggregate that moved after position `since`.
        """
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            self._notify_channel(curs)
            if under_lock is not None:
                curs.execute(self.moved_since_statement, (since,))
                under_lock({r["originator_id"]: r["version"] for r in curs.fetchall()})
            curs.execute(self.stream_start_statement)
            after, head = cast(DictRow, curs.fetchone()).values()
            count = 0
            with curs.copy(self.copy_events_statement) as copy:
                for chunk in chunks:
                    for e in chunk:
                        copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
                    count += len(chunk)
            if not count:
                return None
            last = self._link_new_events(curs, after, head or GENESIS)
            curs.execute(self.record_commit_statement, (last,))
        if count >= ANALYZE_AFTER:
            self._analyze()
        return last

    def _analyze(self) -> None:
        """Fresh statistics for the log's tables after a bulk append, as after any bulk load.
        Without them the planner took a firm's few events for tens of thousands (a 500,000-firm
        log the autovacuum had not analysed yet) and answered each point-in-time query with a
        parallel plan and JIT: 60 ms instead of 0.06 (bench/national.py, README "Scaling").
        ANALYZE samples a fixed number of rows: a fraction of a second at millions of events."""
        with self.datastore.get_connection() as conn:
            was = conn.autocommit
            conn.autocommit = True  # ANALYZE in a transaction of its own, not the pool's
            try:
                for table in (self.events_table_name, self.commits_table):
                    conn.execute(
                        SQL("ANALYZE {}.{}").format(
                            Identifier(self.datastore.schema), Identifier(table)
                        )
                    )
            finally:
                conn.autocommit = was

    def _link_new_events(self, curs: Cursor[DictRow], after: int, head: bytes) -> int:
        """Link this transaction's events, the positions after `after`, continuing from the link
        `head`; return the last position.

        The server hashes the states and COPYs the chain's columns out in position order, so it
        hashes the next rows while these are linked; the links go back in by COPY."""
        positions = array("q")
        links: list[bytes] = []
        # Rows straight off the index, in position order: with no statistics on rows this new,
        # the planner may otherwise sort them all (on disk) before the first one comes out.
        curs.execute("SET LOCAL enable_sort = off")
        with curs.copy(self.copy_chain_rows_statement, (after,)) as out:
            out.set_types(["int8", "text", "int8", "text", "text"])
            for position, link in fold(head, cast(Iterator[EventRow], out.rows())):
                positions.append(position)
                links.append(link)
        with curs.copy(self.copy_links_statement) as copy:
            copy.set_types(["int8", "bytea"])
            for row in zip(positions, links, strict=True):
                copy.write_row(row)
        return positions[-1]

    @staticmethod
    def _reader(conn: Connection[DictRow], name: str) -> ServerCursor[tuple[Any, ...]]:
        """A server-side cursor of plain tuples: rows come a batch at a time, at any log size."""
        reader = conn.cursor(name=name, row_factory=tuple_row)
        reader.itersize = CHAIN_FETCH_ROWS
        return reader

    def chain_head(self) -> Anchor:
        """The last stored link (position 0 and 32 zero bytes for an empty log)."""
        with self.datastore.transaction() as curs:
            curs.execute(self.chain_head_statement)
            head = curs.fetchone()
        return Anchor(head["position"], head["link"]) if head else Anchor(0, GENESIS)

    def link_at(self, position: int) -> Anchor | None:
        """The stored link at a position (0: the genesis), if there is one."""
        if position == 0:
            return Anchor(0, GENESIS)
        with self.datastore.transaction() as curs:
            curs.execute(self.link_at_statement, (position,))
            row = curs.fetchone()
        return Anchor(row["position"], row["link"]) if row else None

    def last_position(self, stop: int, *, skipping: str) -> int:
        """The last position at or before `stop` whose event's topic does not start with
        `skipping` (0 if none); read backwards by the position's index."""
        with self.datastore.transaction() as curs:
            while stop > 0:
                curs.execute(self.select_topics_before_statement, (stop,))
                rows = curs.fetchall()
                if not rows:
                    return 0
                for row in rows:
                    if not row["topic"].startswith(skipping):
                        return int(row["notification_id"])
                stop = int(rows[-1]["notification_id"]) - 1
        return 0

    def verify_chain(
        self, anchor: Anchor | None = None, since: Anchor | None = None, stop: int = MAX_POSITION
    ) -> Verification:
        """Recompute the chain from every event (after `since`, up to `stop`) and compare it with
        the stored links (see adapters.chain.check)."""
        first = since.position if since else MIN_POSITION
        total = events_to_verify(self, first, stop)
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            # Both reads see one snapshot, so a link committed meanwhile cannot look missing.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with (
                self._reader(conn, "ledger_verify_events") as events,
                self._reader(conn, "ledger_verify_links") as links,
            ):
                events.execute(self.select_chain_rows_statement, (first, stop))
                links.execute(self.select_links_statement, (first, stop))
                return check(events, links, anchor, since, total)
