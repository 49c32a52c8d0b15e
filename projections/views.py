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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import get_topic

from domain.application import paused_gc
from domain.codes import divisions
from domain.correction import YearFact
from domain.enterprise import (
    HISTORY_EVENTS,
    WINDOW_EVENTS,
    Enterprise,
    FirmState,
    PaymentRef,
    RegisterBook,
)
from domain.policy import Policy, Route, SizeClass, policy_from_json
from domain.reconciliation import ReconciliationBook
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

_HISTORY_TYPES = frozenset(HISTORY_EVENTS)
_UNVIEWED_TOPICS = (get_topic(PaymentRef) + ".", get_topic(ReconciliationBook) + ".")
"""Topic prefixes of events nothing in the views comes from: skipped without decoding."""
_WINDOW_TYPES = frozenset(WINDOW_EVENTS)
_KIND = {
    Enterprise.OnBaselineRegister: "baseline",
    Enterprise.EnteredRegister: "entered",
    Enterprise.ReEnteredRegister: "re_entered",
    Enterprise.RetainedInRegister: "retained",
}

# Register rows, awards and windows are bitemporal: each row is one version of a fact, known from
# the log position that gave it (known_from) until the position that replaced it (known_to, NULL
# while current). "What the ledger said at position P" reads the versions with
# known_from <= P < known_to; nothing is updated in place but known_to.
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
        industry_code TEXT NOT NULL, size_class TEXT, known_from BIGINT NOT NULL, known_to BIGINT,
        PRIMARY KEY (year, uscc, known_from))""",
    """CREATE TABLE IF NOT EXISTS lv_awards (
        entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL, kind TEXT NOT NULL,
        clause TEXT NOT NULL, policy_id TEXT NOT NULL, amount_fen BIGINT NOT NULL,
        decided_year INTEGER NOT NULL, due_fiscal_year INTEGER NOT NULL, city_code TEXT NOT NULL,
        earned BOOLEAN NOT NULL, known_from BIGINT NOT NULL, known_to BIGINT,
        PRIMARY KEY (entitlement_id, known_from))""",
    "CREATE INDEX IF NOT EXISTS lv_awards_due ON lv_awards (due_fiscal_year, city_code)",
    "CREATE INDEX IF NOT EXISTS lv_awards_uscc ON lv_awards (uscc)",
    """CREATE TABLE IF NOT EXISTS lv_payments (
        payment_ref TEXT PRIMARY KEY, entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL,
        amount_fen BIGINT NOT NULL, paid_on TEXT NOT NULL, fiscal_year INTEGER NOT NULL,
        actor TEXT NOT NULL, position BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS lv_payments_entitlement ON lv_payments (entitlement_id)",
    """CREATE TABLE IF NOT EXISTS lv_recoveries (
        recovery_ref TEXT PRIMARY KEY, entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL,
        amount_fen BIGINT NOT NULL, received_on TEXT NOT NULL, fiscal_year INTEGER NOT NULL,
        actor TEXT NOT NULL, position BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lv_windows (
        uscc TEXT NOT NULL, window_kind TEXT NOT NULL, clause TEXT NOT NULL, starts_on TEXT NOT NULL,
        ends_on TEXT NOT NULL, closed_on TEXT, fee_cap_bp INTEGER, size_class TEXT,
        known_from BIGINT NOT NULL, known_to BIGINT, PRIMARY KEY (uscc, window_kind, known_from))""",
    """CREATE TABLE IF NOT EXISTS lv_years (
        year INTEGER PRIMARY KEY, baseline BOOLEAN NOT NULL, sha256 TEXT NOT NULL,
        row_count INTEGER NOT NULL, counts TEXT NOT NULL, actor TEXT NOT NULL, position BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lv_corrections (
        position BIGINT PRIMARY KEY, year INTEGER NOT NULL, sha256 TEXT NOT NULL,
        reason TEXT NOT NULL, row_count INTEGER NOT NULL, counts TEXT NOT NULL, actor TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lv_policy (
        policy_id TEXT NOT NULL, content_hash TEXT PRIMARY KEY, content TEXT NOT NULL,
        position BIGINT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS lv_schema (version INTEGER NOT NULL)",
]
SCHEMA_VERSION = 3
"""Bumped when the views' tables change shape: the views are then dropped and rebuilt from the log."""
VIEW_TABLES = (
    "lv_firms",
    "lv_register",
    "lv_awards",
    "lv_payments",
    "lv_recoveries",
    "lv_windows",
    "lv_years",
    "lv_corrections",
    "lv_policy",
)
KNOWN = ("known_from", "known_to")

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
    *KNOWN,
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
    "earned",
    *KNOWN,
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
    *KNOWN,
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
RECOVERY_COLUMNS = (
    "recovery_ref",
    "entitlement_id",
    "uscc",
    "amount_fen",
    "received_on",
    "fiscal_year",
    "actor",
    "position",
)


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


def _award_rows(firm: _Firm, history: History, policy: Policy) -> dict[str, tuple[Any, ...]]:
    """The awards the rules give a firm's history, as lv_awards rows (without known_*) by id."""
    return {
        e.entitlement_id: (
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
            True,
        )
        for e in entitlements(history, policy)
    }


def _window_rows(history: History, policy: Policy) -> dict[str, tuple[Any, ...]]:
    """The windows the rules give a firm's history, as lv_windows rows (without known_*)."""
    return {
        w.window: (
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
    }


def register_kind(s: FirmState, year: int) -> tuple[str, bool]:
    """How a firm is on the register of `year` (baseline, entered, re_entered, retained) and
    whether that is its first entry; the same as the import events say."""
    first_entry = s.first_entry_year == year
    if year == s.baseline_year:
        return "baseline", first_entry
    if year in s.re_entry_years:
        return "re_entered", first_entry
    return ("entered" if first_entry else "retained"), first_entry


@dataclass
class _Versions:
    """New versions of one bitemporal table in a batch, and the older versions they close."""

    rows: list[list[Any]] = field(default_factory=list)
    """Rows with known_from and known_to last."""
    closes: list[tuple[Any, int]] = field(default_factory=list)
    """(key, position): the version current in the table before the batch ends at position."""
    current: dict[Any, int] = field(default_factory=dict)
    """Key -> index in `rows` of the batch's own current version."""

    def replace(self, key: Any, row: tuple[Any, ...] | None, position: int) -> None:
        """`row` (None: no row) holds for `key` from `position` on."""
        i = self.current.pop(key, None)
        if i is None:
            self.closes.append((key, position))
        else:
            self.rows[i][-1] = position
        if row is not None:
            self.current[key] = len(self.rows)
            self.rows.append([*row, position, None])

    def add(self, key: Any, row: tuple[Any, ...], position: int) -> None:
        """A row for a key that had none."""
        self.current[key] = len(self.rows)
        self.rows.append([*row, position, None])

    def write(self, tx: Tx, table: str, columns: Sequence[str], key: Sequence[str]) -> None:
        """Close the versions the batch replaces, then insert its own (so only older versions
        match the close). A version opened and closed at one position was never visible at any
        commit and is left out."""
        where = " AND ".join(f"{c} = %s" for c in key)
        for value, position in self.closes:
            values = value if isinstance(value, tuple) else (value,)
            tx.execute(
                f"UPDATE {table} SET known_to = %s "
                f"WHERE {where} AND known_to IS NULL AND known_from < %s",
                (position, *values, position),
            )
        tx.bulk_insert(table, columns, [r for r in self.rows if r[-1] is None or r[-1] > r[-2]])


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
    """New register rows of imports (current from their position)."""
    register_changes: list[tuple[Any, ...]] = field(default_factory=list)
    """Corrections' changes to register rows, in log order: (position, year, uscc, kind,
    first_entry, row) where row is the corrected year's new row (None: off the register, or
    another year whose kind alone changes)."""
    awards: _Versions = field(default_factory=_Versions)
    windows: _Versions = field(default_factory=_Versions)
    payment_rows: list[tuple[Any, ...]] = field(default_factory=list)
    recovery_rows: list[tuple[Any, ...]] = field(default_factory=list)
    policy_rows: list[tuple[Any, ...]] = field(default_factory=list)
    year_rows: list[tuple[Any, ...]] = field(default_factory=list)
    correction_rows: list[tuple[Any, ...]] = field(default_factory=list)
    locked: threading.Event = field(default_factory=threading.Event)
    """Set once the writer holds the lock (or gave up): the views are then frozen but for it."""


def _replace_windows(
    batch: _Batch,
    uscc: str,
    before: dict[str, tuple[Any, ...]],
    after: dict[str, tuple[Any, ...]],
    position: int,
) -> None:
    for window in ("guarantee", "energy"):
        old, new = before.get(window), after.get(window)
        if old == new:
            continue
        if old is None:
            assert new is not None
            batch.windows.add((uscc, window), new, position)
        else:
            batch.windows.replace((uscc, window), new, position)


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
            tx.execute(SCHEMA[-1])
            found = tx.rows("SELECT version FROM lv_schema")
            if found and found[0][0] == SCHEMA_VERSION:
                return
            # Views of another shape (or none yet): drop them; the catch-up rebuilds from the log.
            for table in VIEW_TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {table}")
            tx.execute(
                f"DELETE FROM {self._tracking_table} WHERE application_name = %s", (TRACKING_NAME,)
            )
            for statement in SCHEMA:
                tx.execute(statement)
            tx.execute("DELETE FROM lv_schema")
            tx.execute("INSERT INTO lv_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

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
        firm_events = self._decode(app, batch, notifications)
        if firm_events:
            self._fold(batch, firm_events, carried, lambda oids: self._read_firms(tx, oids))
        return batch

    @staticmethod
    def _decode(
        app: Application[uuid.UUID], batch: _Batch, notifications: Sequence[Notification]
    ) -> dict[str, list[tuple[Any, int]]]:
        """Put the register book's events of `notifications` in the batch; return the firms'
        events by firm, in log order."""
        firm_events: dict[str, list[tuple[Any, int]]] = defaultdict(list)
        for n in notifications:
            if n.topic.startswith(_UNVIEWED_TOPICS):
                continue
            event = app.mapper.to_domain_event(n)
            if isinstance(event, Enterprise.Event):
                firm_events[event.originator_id.hex].append((event, n.id))
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
            elif isinstance(event, RegisterBook.YearCorrected):
                batch.correction_rows.append(
                    (
                        n.id,
                        event.year,
                        event.sha256,
                        event.reason,
                        event.rows,
                        json.dumps(event.counts, sort_keys=True),
                        event.actor,
                    )
                )
        if firm_events and batch.policy is None:
            raise RuntimeError("enterprise events before any policy was adopted")
        return firm_events

    def _policy(self, tx: Tx) -> Policy | None:
        rows = tx.execute("SELECT content FROM lv_policy ORDER BY position DESC LIMIT 1")
        return policy_from_json(rows[0]["content"]) if rows else None

    @staticmethod
    def _read_firms(tx: Tx, oids: list[str]) -> dict[str, _Firm]:
        known: dict[str, _Firm] = {}
        for condition, params in tx.matching("originator_id", oids):
            for r in tx.rows(
                f"SELECT {','.join(FIRM_COLUMNS)} FROM lv_firms WHERE {condition}", params
            ):
                known[r[0]] = _Firm.from_row(r)
        return known

    @classmethod
    def _fold(
        cls,
        batch: _Batch,
        firm_events: dict[str, list[tuple[Any, int]]],
        carried: dict[str, _Firm],
        read_firms: Callable[[list[str]], dict[str, _Firm]],
        *,
        firm_rows: bool = True,
    ) -> None:
        """Fold each firm's events into its state and turn the result into view rows.

        `read_firms`: the views' rows of firms not `carried`; `firm_rows`: take each firm's row
        now (the next batch may fold it further while this one is written)."""
        known = read_firms([oid for oid in firm_events if oid not in carried])
        for oid, events in firm_events.items():
            firm = carried.get(oid) or known.get(oid)
            if firm is None:
                batch.new_firms.add(oid)
                first = events[0][0]
                assert isinstance(first, Enterprise.Registered), first
                firm = _Firm(oid, 0, FirmState.registered(first), {})
            for event, position in events:
                cls._fold_event(batch, firm, event, position)
            batch.firms[oid] = firm
            if firm_rows:
                batch.firm_rows.append(firm.row())

    @staticmethod
    def _fold_event(batch: _Batch, firm: _Firm, event: Any, position: int) -> None:
        """One event of a firm: its state, and the view versions it starts at `position`."""
        policy = batch.policy
        assert policy is not None
        s = firm.state
        if isinstance(event, Enterprise.RegisterYearCorrected):
            history = s.history()
            before = (
                {y: register_kind(s, y) for y in s.years},
                _award_rows(firm, history, policy),
                _window_rows(history, policy),
            )
            s.apply(event)
            firm.version = event.originator_version
            LedgerViews._fold_correction(batch, firm, event, position, *before)
            return
        kind_of_event = type(event)
        # Windows depend on the first entry (its year, route, size) and the exits only; a firm
        # with no first entry has none.
        windows_before = None
        if kind_of_event in _WINDOW_TYPES:
            windows_before = (
                _window_rows(s.history(), policy) if s.first_entry_year and s.route else {}
            )
        s.apply(event)
        firm.version = event.originator_version
        if kind_of_event is Enterprise.PaymentRecorded:
            batch.payment_rows.append(
                (
                    event.payment_ref,
                    event.entitlement_id,
                    s.uscc,
                    event.amount_fen,
                    event.paid_on.isoformat(),
                    event.paid_on.year,
                    event.actor,
                    position,
                )
            )
            return
        if kind_of_event is Enterprise.RecoveryRecorded:
            batch.recovery_rows.append(
                (
                    event.recovery_ref,
                    event.entitlement_id,
                    s.uscc,
                    event.amount_fen,
                    event.received_on.isoformat(),
                    event.received_on.year,
                    event.actor,
                    position,
                )
            )
            return
        kind = _KIND.get(kind_of_event)
        if kind is not None:
            city = _city(s.region_code)
            firm.cities[event.year] = city
            batch.register_rows.append(
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
                    position,
                    None,
                )
            )
        # An import of year Y adds Y to the history (imports come in year order), so the only
        # awards it can change are those decided in Y, which had no row before.
        if kind_of_event in _HISTORY_TYPES and s.first_entry_year and s.route:
            # Only a first entrant has awards or windows (domain.rules).
            history = s.history()
            for eid, row in _award_rows(firm, history, policy).items():
                if row[6] == event.year:
                    batch.awards.add(eid, row, position)
            if windows_before is not None:
                _replace_windows(
                    batch, s.uscc, windows_before, _window_rows(history, policy), position
                )

    @staticmethod
    def _fold_correction(
        batch: _Batch,
        firm: _Firm,
        event: Any,
        position: int,
        kinds_before: dict[int, tuple[str, bool]],
        old: dict[str, tuple[Any, ...]],
        old_windows: dict[str, tuple[Any, ...]],
    ) -> None:
        """A corrected year: the firm's register rows, awards and windows as re-derived."""
        policy = batch.policy
        assert policy is not None
        s = firm.state
        row = event.row
        if row is not None:
            firm.cities[event.year] = _city(row["region_code"])
        else:
            firm.cities.pop(event.year, None)
        for year in sorted(set(kinds_before) | s.years):
            kind = register_kind(s, year) if year in s.years else None
            if year == event.year:
                values = None
                if row is not None:
                    values = (
                        row["name"],
                        row["region_code"],
                        firm.cities[year],
                        row["industry_code"],
                        # an empty size class keeps the last known one, as on import
                        row["size_class"] or s.size_class,
                    )
                batch.register_changes.append(
                    (position, year, s.uscc, *(kind or ("", False)), values)
                )
            elif kind != kinds_before.get(year):
                assert kind is not None
                batch.register_changes.append((position, year, s.uscc, *kind, None))
        new = _award_rows(firm, s.history(), policy)
        for eid in event.revoked:
            if eid in old:
                new[eid] = (*old[eid][:-1], False)
        for eid in sorted(old.keys() | new.keys() | set(event.earned)):
            if eid in event.earned or old.get(eid) != new.get(eid):
                batch.awards.replace(eid, new.get(eid), position)
        _replace_windows(batch, s.uscc, old_windows, _window_rows(s.history(), policy), position)

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
        for row in b.correction_rows:
            tx.execute(
                "INSERT INTO lv_corrections (position, year, sha256, reason, row_count, counts, "
                "actor) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                row,
            )
            tx.execute("UPDATE lv_years SET sha256 = %s WHERE year = %s", (row[2], row[1]))
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
        for change in b.register_changes:
            self._change_register_row(tx, *change)
        b.awards.write(tx, "lv_awards", AWARD_COLUMNS, ("entitlement_id",))
        b.windows.write(tx, "lv_windows", WINDOW_COLUMNS, ("uscc", "window_kind"))
        tx.bulk_insert("lv_payments", PAYMENT_COLUMNS, b.payment_rows)
        tx.bulk_insert("lv_recoveries", RECOVERY_COLUMNS, b.recovery_rows)

    @staticmethod
    def _change_register_row(
        tx: Tx,
        position: int,
        year: int,
        uscc: str,
        kind: str,
        first_entry: bool,
        values: tuple[Any, ...] | None,
    ) -> None:
        """A correction's change of one register row from `position` on: the corrected year's
        row replaced (`values`; none when the firm is off the register), or another year's kind."""
        current = "uscc = %s AND year = %s AND known_to IS NULL AND known_from < %s"
        if values is None and kind:
            # Same row, another kind: copy it before the current version is closed.
            tx.execute(
                f"INSERT INTO lv_register ({','.join(REGISTER_COLUMNS)}) "
                "SELECT year, uscc, %s, %s, name, region_code, city_code, industry_code, "
                f"size_class, %s, NULL FROM lv_register WHERE {current}",
                (kind, first_entry, position, uscc, year, position),
            )
        tx.execute(
            f"UPDATE lv_register SET known_to = %s WHERE {current}",
            (position, uscc, year, position),
        )
        if values is not None:
            tx.execute(
                f"INSERT INTO lv_register ({','.join(REGISTER_COLUMNS)}) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,NULL)",
                (year, uscc, kind, first_entry, *values, position),
            )

    # What the importer needs ------------------------------------------------------------------

    def year_facts(self, year: int) -> dict[str, YearFact]:
        """Each firm's current row of register year `year`."""
        with self.read() as tx:
            rows = tx.rows(
                "SELECT uscc, name, region_code, industry_code, size_class FROM lv_register "
                "WHERE year = %s AND known_to IS NULL",
                (year,),
            )
        return {r[0]: YearFact(*r[1:]) for r in rows}

    def firm_sizes(self, usccs: Sequence[str]) -> dict[str, dict[int, str | None]]:
        """The size class of each firm in each register year it is on, as currently known."""
        result: dict[str, dict[int, str | None]] = defaultdict(dict)
        with self.read() as tx:
            for condition, params in tx.matching("uscc", list(usccs)):
                for uscc, year, size in tx.rows(
                    "SELECT uscc, year, size_class FROM lv_register "
                    f"WHERE {condition} AND known_to IS NULL",
                    params,
                ):
                    result[uscc][year] = size
        return result

    def prior_firms(self) -> dict[str, PriorFirm]:
        """Every firm the ledger knows, as the register diff needs it."""
        with self.read() as tx:
            rows = tx.rows(
                "SELECT uscc, originator_id, version, name, region_code, industry_code, "
                "size_class, years, first_entry_year, baseline_year, route FROM lv_firms"
            )
        result: dict[str, PriorFirm] = {}
        for (
            uscc,
            oid,
            version,
            name,
            region,
            industry,
            size,
            years,
            first_entry,
            base,
            route,
        ) in rows:
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
                route,
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
