"""The ledger's read models: firms, register, awards, payments, windows, imported years.

One projection keeps every table, so one tracking position covers them all: each batch of events
updates the view rows and the tracking row in one transaction (exactly once), and a rebuild
replays the log from the start into empty tables. Tables and SQL for both stores live here.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from domain.application import paused_gc
from domain.codes import divisions
from domain.enterprise import Enterprise, FirmState, RegisterBook
from domain.policy import Policy, Route, SizeClass, policy_from_json
from domain.register import PriorFirm
from domain.rules import History, entitlements, windows
from projections.store import (
    PostgresTx,
    SQLiteTx,
    Tx,
    postgres_read,
    postgres_write,
    sqlite_read,
    sqlite_write,
)

TRACKING_NAME = "ledger.views"
BATCH = 10000
LOCK_KEY = 0x1ED6E5  # advisory lock of the views' catch-up

_REGISTER_EVENTS = (
    Enterprise.OnBaselineRegister,
    Enterprise.EnteredRegister,
    Enterprise.ReEnteredRegister,
    Enterprise.RetainedInRegister,
)
_HISTORY_EVENTS = (*_REGISTER_EVENTS, Enterprise.LeftRegister)
# Windows depend on the first entry (its year, route, size) and the exits only.
_WINDOW_EVENTS = (
    Enterprise.OnBaselineRegister,
    Enterprise.EnteredRegister,
    Enterprise.ReEnteredRegister,
    Enterprise.LeftRegister,
)
_KIND = {
    Enterprise.OnBaselineRegister: "baseline",
    Enterprise.EnteredRegister: "entered",
    Enterprise.ReEnteredRegister: "re_entered",
    Enterprise.RetainedInRegister: "retained",
}

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS lv_firms (
        originator_id TEXT PRIMARY KEY, uscc TEXT NOT NULL UNIQUE, version BIGINT NOT NULL,
        name TEXT NOT NULL, region_code TEXT NOT NULL, city_code TEXT NOT NULL,
        industry_code TEXT NOT NULL, size_class TEXT, first_entry_year INTEGER, route TEXT,
        entry_size_class TEXT, baseline_year INTEGER, last_year INTEGER, years TEXT NOT NULL,
        exit_years TEXT NOT NULL, re_entry_years TEXT NOT NULL, cities TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lv_register (
        year INTEGER NOT NULL, uscc TEXT NOT NULL, kind TEXT NOT NULL, first_entry BOOLEAN NOT NULL,
        name TEXT NOT NULL, region_code TEXT NOT NULL, city_code TEXT NOT NULL,
        industry_code TEXT NOT NULL, size_class TEXT, PRIMARY KEY (year, uscc))""",
    """CREATE TABLE IF NOT EXISTS lv_awards (
        entitlement_id TEXT PRIMARY KEY, uscc TEXT NOT NULL, kind TEXT NOT NULL,
        clause TEXT NOT NULL, policy_id TEXT NOT NULL, amount_fen BIGINT NOT NULL,
        decided_year INTEGER NOT NULL, due_fiscal_year INTEGER NOT NULL, city_code TEXT NOT NULL,
        paid_fen BIGINT NOT NULL DEFAULT 0, status TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS lv_awards_due ON lv_awards (due_fiscal_year, city_code)",
    "CREATE INDEX IF NOT EXISTS lv_awards_uscc ON lv_awards (uscc)",
    """CREATE TABLE IF NOT EXISTS lv_payments (
        payment_ref TEXT PRIMARY KEY, entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL,
        amount_fen BIGINT NOT NULL, paid_on TEXT NOT NULL, fiscal_year INTEGER NOT NULL,
        actor TEXT NOT NULL, position BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS lv_payments_entitlement ON lv_payments (entitlement_id)",
    """CREATE TABLE IF NOT EXISTS lv_windows (
        uscc TEXT NOT NULL, window_kind TEXT NOT NULL, clause TEXT NOT NULL, starts_on TEXT NOT NULL,
        ends_on TEXT NOT NULL, closed_on TEXT, fee_cap_bp INTEGER, size_class TEXT,
        PRIMARY KEY (uscc, window_kind))""",
    """CREATE TABLE IF NOT EXISTS lv_years (
        year INTEGER PRIMARY KEY, baseline BOOLEAN NOT NULL, sha256 TEXT NOT NULL,
        row_count INTEGER NOT NULL, counts TEXT NOT NULL, actor TEXT NOT NULL, position BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lv_policy (
        policy_id TEXT NOT NULL, content_hash TEXT PRIMARY KEY, content TEXT NOT NULL,
        position BIGINT NOT NULL)""",
]
VIEW_TABLES = (
    "lv_firms",
    "lv_register",
    "lv_awards",
    "lv_payments",
    "lv_windows",
    "lv_years",
    "lv_policy",
)

FIRM_COLUMNS = (
    "originator_id",
    "uscc",
    "version",
    "name",
    "region_code",
    "city_code",
    "industry_code",
    "size_class",
    "first_entry_year",
    "route",
    "entry_size_class",
    "baseline_year",
    "last_year",
    "years",
    "exit_years",
    "re_entry_years",
    "cities",
)
REGISTER_COLUMNS = (
    "year",
    "uscc",
    "kind",
    "first_entry",
    "name",
    "region_code",
    "city_code",
    "industry_code",
    "size_class",
)
AWARD_COLUMNS = (
    "entitlement_id",
    "uscc",
    "kind",
    "clause",
    "policy_id",
    "amount_fen",
    "decided_year",
    "due_fiscal_year",
    "city_code",
    "status",
)
WINDOW_COLUMNS = (
    "uscc",
    "window_kind",
    "clause",
    "starts_on",
    "ends_on",
    "closed_on",
    "fee_cap_bp",
    "size_class",
)
PAYMENT_COLUMNS = (
    "payment_ref",
    "entitlement_id",
    "uscc",
    "amount_fen",
    "paid_on",
    "fiscal_year",
    "actor",
    "position",
)


def status_sql(paid: str = "paid_fen", amount: str = "amount_fen") -> str:
    """An award's status from what was paid against it: domain.rules.award_status, in SQL."""
    return f"CASE WHEN {paid} >= {amount} THEN 'paid' WHEN {paid} > 0 THEN 'partially_paid' ELSE 'due' END"


@dataclass
class _Firm:
    """A firm being updated by a batch: its folded state and what the views keep beside it."""

    originator_id: str
    version: int
    state: FirmState
    cities: dict[int, str]

    def row(self) -> tuple[Any, ...]:
        s = self.state
        return (
            self.originator_id,
            s.uscc,
            self.version,
            s.name,
            s.region_code,
            _city(s.region_code),
            s.industry_code,
            s.size_class,
            s.first_entry_year,
            s.route,
            s.entry_size_class,
            s.baseline_year,
            max(s.years) if s.years else None,
            _years_text(s.years),
            _years_text(s.exit_years),
            _years_text(s.re_entry_years),
            " ".join(f"{y}:{c}" for y, c in sorted(self.cities.items())),
        )

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> _Firm:
        """From a row of FIRM_COLUMNS, in that order."""
        (
            oid,
            uscc,
            version,
            name,
            region,
            _city_code,
            industry,
            size,
            first_entry,
            route,
            entry_size,
            baseline,
            _last,
            years,
            exits,
            re_entries,
            cities,
        ) = r
        state = FirmState(
            uscc=uscc,
            name=name,
            region_code=region,
            industry_code=industry,
            size_class=_SIZE[size] if size else None,
            years=_years(years),
            exit_years=_years(exits),
            re_entry_years=_years(re_entries),
            baseline_year=baseline,
            first_entry_year=first_entry,
            route=_ROUTE[route] if route else None,
            entry_size_class=_SIZE[entry_size] if entry_size else None,
        )
        by_year = {int(y): c for y, c in (pair.split(":") for pair in cities.split())}
        return cls(oid, version, state, by_year)


def _years_text(years: set[int]) -> str:
    return " ".join(map(str, sorted(years)))


def _years(text: str) -> set[int]:
    return set(map(int, text.split())) if text else set()


def _award_rows(firm: _Firm, history: History, policy: Policy) -> list[tuple[Any, ...]]:
    """The awards the rules give a firm's history, as lv_awards rows."""
    return [
        (
            e.entitlement_id,
            e.uscc,
            e.kind,
            e.clause,
            e.policy_id,
            e.amount_fen,
            e.decided_year,
            e.due_fiscal_year,
            # the firm's city in the decided year, which is always a register year
            firm.cities[e.decided_year],
            "due",
        )
        for e in entitlements(history, policy)
    ]


def _window_rows(history: History, policy: Policy) -> list[tuple[Any, ...]]:
    """The windows the rules give a firm's history, as lv_windows rows."""
    return [
        (
            w.uscc,
            w.window,
            w.clause,
            w.starts_on.isoformat(),
            w.ends_on.isoformat(),
            w.closed_on.isoformat() if w.closed_on else None,
            w.fee_cap_bp,
            w.size_class,
        )
        for w in windows(history, policy)
    ]


def _city(region_code: str) -> str:
    return divisions()[region_code].city_code


_SIZE = {s.value: s for s in SizeClass}
_ROUTE = {r.value: r for r in Route}


class _StaleBatchError(Exception):
    """Another writer moved the views after the batch was folded: fold it again."""


@dataclass
class _Batch:
    """A batch of the log turned into view rows, to be written with its position `end`.

    The rows hold for views at position `start`; the writer checks that under its lock.
    """

    start: int
    end: int
    events: int
    policy: Policy | None
    """The policy in force after the batch."""
    firms: dict[str, _Firm] = field(default_factory=dict)
    """Every firm of the batch, folded: the next batch starts from these."""
    new_firms: set[str] = field(default_factory=set)
    firm_rows: list[tuple[Any, ...]] = field(default_factory=list)
    register_rows: list[tuple[Any, ...]] = field(default_factory=list)
    award_rows: list[tuple[Any, ...]] = field(default_factory=list)
    window_rows: list[tuple[Any, ...]] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    """Firms whose windows are replaced by `window_rows`."""
    payment_rows: list[tuple[Any, ...]] = field(default_factory=list)
    policy_rows: list[tuple[Any, ...]] = field(default_factory=list)
    year_rows: list[tuple[Any, ...]] = field(default_factory=list)
    locked: threading.Event = field(default_factory=threading.Event)
    """Set once the writer holds the lock (or gave up): the views are then frozen but for it."""


class LedgerViews:
    """The projection: catch up, rebuild, and the queries the CLI answers from the views."""

    kind: str

    # Store-specific parts, provided by the subclasses below.
    def _write(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def read(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def _create_views(self) -> None:
        with self._write() as tx:
            for statement in SCHEMA:
                tx.execute(statement)

    # Tracking ---------------------------------------------------------------------------------

    def position(self) -> int:
        with self.read() as tx:
            return self._position(tx)

    def _position(self, tx: Tx) -> int:
        rows = tx.execute(
            f"SELECT notification_id FROM {self._tracking_table} WHERE application_name = %s",
            (TRACKING_NAME,),
        )
        return int(rows[0]["notification_id"]) if rows else 0

    @property
    def _tracking_table(self) -> str:
        raise NotImplementedError

    def _track(self, tx: Tx, position: int) -> None:
        # One row per projection; the WHERE makes a stale writer fail instead of going back.
        rows = tx.execute(
            f"INSERT INTO {self._tracking_table} (application_name, notification_id) VALUES (%s, %s) "
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
            f"WHERE {self._tracking_table}.notification_id < excluded.notification_id "
            "RETURNING notification_id",
            (TRACKING_NAME, position),
        )
        if not rows:
            raise RuntimeError(f"views already past position {position}: processed twice?")

    # Catch-up and rebuild ---------------------------------------------------------------------

    def catch_up(self, app: Application[uuid.UUID], *, progress: Any = None) -> int:
        """Apply every event after the tracked position; return the position reached.

        Pipelined over two threads so that the database (on the other core) writes and commits
        batch k while this thread reads and folds batch k+1. Batch k+1 is folded from the views
        as they were when batch k's writer took the lock, plus batch k's own firms, which is what
        a serial catch-up would see. Each batch still commits with its position in one
        transaction; if another writer moved the views in between, the stale batch is refused
        under the lock and the catch-up starts again from where the views are.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="views-writer") as writer:
            while True:
                try:
                    return self._pipeline(app, writer, progress)
                except _StaleBatchError:
                    continue

    def _pipeline(
        self, app: Application[uuid.UUID], writer: ThreadPoolExecutor, progress: Any
    ) -> int:
        in_flight: _Batch | None = None  # the batch the writer thread is committing
        committed: Future[None] | None = None
        while True:
            if in_flight is None:
                with self.read() as tx, paused_gc():
                    # position and firms from one snapshot; the writer checks the position again
                    start, policy = self._position(tx), self._policy(tx)
                    batch = self._prepare(tx, app, start, policy, {})
            else:
                start = in_flight.end
                with paused_gc():
                    notifications = self._notifications(app, start)
                    # Once the writer holds the lock and found the position it expected, the
                    # views can change only by its own batch, whose firms we carry over.
                    in_flight.locked.wait()
                    with self.read() as tx:
                        batch = self._prepare(
                            tx, app, start, in_flight.policy, in_flight.firms, notifications
                        )
            if committed is not None and in_flight is not None:
                committed.result()  # the writer's error, _StaleBatchError included
                if progress is not None:
                    progress(in_flight.events)
            if batch is None:
                return start
            committed = writer.submit(self._commit, batch)
            in_flight = batch

    def _commit(self, batch: _Batch) -> None:
        """Write a batch's rows and its position in one transaction (in the writer thread)."""
        try:
            with self._write() as tx:
                if self._position(tx) != batch.start:
                    raise _StaleBatchError
                batch.locked.set()
                self._write_batch(tx, batch)
                self._track(tx, batch.end)
        finally:
            batch.locked.set()

    def rebuild(self, app: Application[uuid.UUID], *, progress: Any = None) -> int:
        """Empty every view and replay the whole log into them."""
        with self._write() as tx:
            for table in VIEW_TABLES:
                tx.execute(f"DELETE FROM {table}")
            tx.execute(
                f"DELETE FROM {self._tracking_table} WHERE application_name = %s", (TRACKING_NAME,)
            )
        return self.catch_up(app, progress=progress)

    @staticmethod
    def _notifications(app: Application[uuid.UUID], start: int) -> Sequence[Notification]:
        return app.recorder.select_notifications(start, BATCH, inclusive_of_start=False)

    def _prepare(
        self,
        tx: Tx,
        app: Application[uuid.UUID],
        start: int,
        policy: Policy | None,
        carried: dict[str, _Firm],
        notifications: Sequence[Notification] | None = None,
    ) -> _Batch | None:
        """The view rows of the events after `start`, from the views read in `tx` and the firms
        `carried` over from the batch before (not yet committed); None when there are none."""
        if notifications is None:
            notifications = self._notifications(app, start)
        if not notifications:
            return None
        batch = _Batch(start, notifications[-1].id, len(notifications), policy)
        firm_events: dict[str, list[Any]] = defaultdict(list)
        payments: list[tuple[Any, int]] = []
        for n in notifications:
            event = app.mapper.to_domain_event(n)
            if isinstance(event, Enterprise.Event):
                firm_events[event.originator_id.hex].append(event)
                if isinstance(event, Enterprise.PaymentRecorded):
                    payments.append((event, n.id))
            elif isinstance(event, RegisterBook.PolicyAdopted):
                batch.policy_rows.append((event.policy_id, event.content_hash, event.content, n.id))
                batch.policy = policy_from_json(event.content)
            elif isinstance(event, RegisterBook.YearImported):
                batch.year_rows.append(
                    (
                        event.year,
                        event.baseline,
                        event.sha256,
                        event.rows,
                        json.dumps(event.counts, sort_keys=True),
                        event.actor,
                        n.id,
                    )
                )
        if not firm_events:
            return batch
        if batch.policy is None:
            raise RuntimeError("enterprise events before any policy was adopted")
        self._fold(tx, batch, firm_events, carried)
        batch.payment_rows = [
            (
                e.payment_ref,
                e.entitlement_id,
                batch.firms[e.originator_id.hex].state.uscc,
                e.amount_fen,
                e.paid_on.isoformat(),
                e.paid_on.year,
                e.actor,
                position,
            )
            for e, position in payments
        ]
        return batch

    def _policy(self, tx: Tx) -> Policy | None:
        rows = tx.execute("SELECT content FROM lv_policy ORDER BY position DESC LIMIT 1")
        return policy_from_json(rows[0]["content"]) if rows else None

    def _fold(
        self,
        tx: Tx,
        batch: _Batch,
        firm_events: dict[str, list[Any]],
        carried: dict[str, _Firm],
    ) -> None:
        """Fold each firm's events into its state and turn the result into view rows."""
        policy = batch.policy
        assert policy is not None
        known: dict[str, _Firm] = {}
        unread = [oid for oid in firm_events if oid not in carried]
        for condition, params in tx.matching("originator_id", unread):
            for r in tx.rows(
                f"SELECT {','.join(FIRM_COLUMNS)} FROM lv_firms WHERE {condition}", params
            ):
                known[r[0]] = _Firm.from_row(r)
        register_rows = batch.register_rows
        for oid, events in firm_events.items():
            firm = carried.get(oid) or known.get(oid)
            if firm is None:
                batch.new_firms.add(oid)
            for event in events:
                if firm is None:
                    assert isinstance(event, Enterprise.Registered), event
                    firm = _Firm(
                        oid,
                        0,
                        FirmState(
                            event.uscc,
                            event.name,
                            event.region_code,
                            event.industry_code,
                            _SIZE[event.size_class] if event.size_class else None,
                        ),
                        {},
                    )
                firm.state.apply(event)
                firm.version = event.originator_version
                kind = _KIND.get(type(event))
                if kind is not None:
                    s = firm.state
                    city = _city(s.region_code)
                    firm.cities[event.year] = city
                    register_rows.append(
                        (
                            event.year,
                            s.uscc,
                            kind,
                            s.first_entry_year == event.year,
                            s.name,
                            s.region_code,
                            city,
                            s.industry_code,
                            s.size_class,
                        )
                    )
            assert firm is not None
            batch.firms[oid] = firm
            # Rows now: the next batch may fold these firms further while this one is written.
            batch.firm_rows.append(firm.row())
            # Awards change only with a firm's place on the register, windows only with its entry
            # and exits; payments and renames leave both as they are.
            types = {type(e) for e in events}
            awards_change = not types.isdisjoint(_HISTORY_EVENTS)
            windows_change = not types.isdisjoint(_WINDOW_EVENTS)
            if awards_change or windows_change:
                history = firm.state.history()
                if awards_change:
                    batch.award_rows.extend(_award_rows(firm, history, policy))
                if windows_change:
                    batch.reopened.append(firm.state.uscc)
                    batch.window_rows.extend(_window_rows(history, policy))

    def _write_batch(self, tx: Tx, b: _Batch) -> None:
        for row in b.policy_rows:
            tx.execute(
                "INSERT INTO lv_policy (policy_id, content_hash, content, position) VALUES (%s,%s,%s,%s)",
                row,
            )
        for row in b.year_rows:
            tx.execute(
                "INSERT INTO lv_years (year, baseline, sha256, row_count, counts, actor, position) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s)",
                row,
            )
        # Firms not in the views when the batch was folded are inserted, the others updated.
        new_rows: list[tuple[Any, ...]] = []
        known_rows: list[tuple[Any, ...]] = []
        for r in b.firm_rows:
            (new_rows if r[0] in b.new_firms else known_rows).append(r)
        tx.bulk_insert("lv_firms", FIRM_COLUMNS, new_rows)
        tx.bulk_insert(
            "lv_firms",
            FIRM_COLUMNS,
            known_rows,
            conflict="ON CONFLICT (originator_id) DO UPDATE SET "
            + ",".join(f"{c} = excluded.{c}" for c in FIRM_COLUMNS[1:]),
        )
        tx.bulk_insert("lv_register", REGISTER_COLUMNS, b.register_rows)
        # Amounts and clauses follow the rules; what was paid stays with the award.
        tx.bulk_insert(
            "lv_awards",
            AWARD_COLUMNS,
            b.award_rows,
            conflict="ON CONFLICT (entitlement_id) DO UPDATE SET "
            + ",".join(f"{c} = excluded.{c}" for c in AWARD_COLUMNS[1:-2])
            + f", status = {status_sql('lv_awards.paid_fen', 'excluded.amount_fen')}",
        )
        for condition, params in tx.matching("uscc", b.reopened):
            tx.execute(f"DELETE FROM lv_windows WHERE {condition}", params)
        tx.bulk_insert("lv_windows", WINDOW_COLUMNS, b.window_rows)
        if not b.payment_rows:
            return
        tx.bulk_insert("lv_payments", PAYMENT_COLUMNS, b.payment_rows)
        # Recomputed from the payments rows, never incremented, so nothing can drift.
        ids = sorted({r[1] for r in b.payment_rows})
        for condition, params in tx.matching("entitlement_id", ids):
            tx.execute(
                "UPDATE lv_awards SET paid_fen = (SELECT coalesce(sum(p.amount_fen), 0) "
                "FROM lv_payments p WHERE p.entitlement_id = lv_awards.entitlement_id) "
                f"WHERE {condition}",
                params,
            )
            tx.execute(f"UPDATE lv_awards SET status = {status_sql()} WHERE {condition}", params)

    # What the importer needs ------------------------------------------------------------------

    def prior_firms(self) -> dict[str, PriorFirm]:
        """Every firm the ledger knows, as the register diff needs it."""
        with self.read() as tx:
            rows = tx.rows(
                "SELECT uscc, originator_id, version, name, region_code, industry_code, "
                "size_class, years, first_entry_year, baseline_year FROM lv_firms"
            )
        result: dict[str, PriorFirm] = {}
        for uscc, oid, version, name, region, industry, size, years, first_entry, base in rows:
            result[uscc] = PriorFirm(
                uscc,
                uuid.UUID(oid),
                version,
                name,
                region,
                industry,
                size,
                frozenset(_years(years)),
                first_entry,
                base,
            )
        return result


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
