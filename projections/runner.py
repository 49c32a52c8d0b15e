"""The views' runner: their tables made from the declarations, the tracking position, the
pipelined catch-up and the rebuild, the batches written; and the read model the application asks.

One projection keeps every table, so one tracking position covers them all: each batch of events
updates the view rows and the tracking row in one transaction (exactly once), and a rebuild
replays the log from the start into empty tables. One module per store (projections/sqlite.py,
projections/postgres.py) supplies the transactions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import DataError, Notification

from domain.bulk import paused_gc
from domain.correction import YearFact
from domain.enterprise import FirmState, Hold
from domain.policy import Policies, policy_from_json
from domain.progress import SILENT, Bar, shown, stage
from domain.reconciliation import LedgerPayment
from domain.register import PriorFirm
from domain.results import (
    AwardRow,
    ImportedYearRow,
    Point,
    RegisterEntry,
    RegisterSize,
    TotalRow,
    WindowRow,
)
from projections import queries
from projections.drift import derive
from projections.firm_rows import Firm
from projections.fold import BATCH, Batch, Versions, decode, fold
from projections.queries import At
from projections.store import Tx
from projections.tables import (
    AWARDS,
    CORRECTIONS,
    FIRMS,
    HOLD_LIFTS,
    HOLDS,
    PAYMENTS,
    POLICY,
    RECOVERIES,
    REGISTER,
    SCHEMA_TABLE,
    SCHEMA_VERSION,
    TABLES,
    WINDOWS,
    YEARS,
    Table,
)

log = logging.getLogger("subsidy_ledger.views")
TRACKING_NAME = "ledger.views"


class StaleBatchError(Exception):
    """Another writer moved the views after the batch was folded: fold it again."""


def _write_versions(tx: Tx, table: Table, versions: Versions) -> None:
    """Close the versions the batch replaces, then insert its own (so only older versions match
    the close). The key of a versioned table is its primary key less known_from."""
    key = [c for c in table.primary_key if c != "known_from"]
    # A key closed twice in a batch (removed, then given again, then replaced) is closed at its
    # first position: the later closes would find no current version before the batch's own.
    first: dict[Any, int] = {}
    for value, position in versions.closes:
        first.setdefault(value, position)
    tx.close_versions(
        table.name,
        key,
        [(p, v if isinstance(v, tuple) else (v,)) for v, p in first.items()],
    )
    tx.bulk_insert(table.name, table.names, versions.visible())


class LedgerViews:
    """The projection: catch up, rebuild, and the read model the application answers from."""

    kind: str

    # Store-specific parts, provided by the subclasses below.
    def _write(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def read(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def _create_views(self) -> None:
        with self._write() as tx:
            tx.execute(SCHEMA_TABLE)
            found = tx.rows("SELECT version FROM lv_schema")
            if found and found[0][0] == SCHEMA_VERSION:
                return
            # Views of another shape (or none yet): drop them; the catch-up rebuilds from the log.
            for table in TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {table.name}")
            tx.execute(
                f"DELETE FROM {self._tracking_table} WHERE application_name = %s", (TRACKING_NAME,)
            )
            for table in TABLES:
                for statement in table.ddl():
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

    def catch_up(self, app: Application[uuid.UUID]) -> int:
        """Apply every event after the tracked position; return the position reached.

        Pipelined over two threads so that the database (on the other core) writes and commits
        batch k while this thread reads and folds batch k+1. Batch k+1 is folded from the views
        as they were when batch k's writer took the lock, plus batch k's own firms, which is what
        a serial catch-up would see. Each batch still commits with its position in one
        transaction; if another writer moved the views in between, the stale batch is refused
        under the lock and the catch-up starts again from where the views are.
        """
        with (
            ThreadPoolExecutor(1, thread_name_prefix="views-writer") as writer,
            self._progress(app) as bar,
        ):
            while True:
                try:
                    return self._pipeline(app, writer, bar)
                except StaleBatchError:
                    continue

    @contextmanager
    def _progress(self, app: Application[uuid.UUID]) -> Iterator[Bar]:
        """A bar over the positions the views are behind, if anyone looks."""
        if not shown():
            yield SILENT
            return
        with self.read() as tx:
            start = self._position(tx)
        behind = (app.recorder.max_notification_id() or 0) - start
        if behind <= 0:
            yield SILENT
            return
        with stage("bring the views up to date", total=behind, unit="events") as bar:
            yield bar

    def _pipeline(self, app: Application[uuid.UUID], writer: ThreadPoolExecutor, bar: Bar) -> int:
        in_flight: Batch | None = None  # the batch the writer thread is committing
        committed: Future[None] | None = None
        while True:
            if in_flight is None:
                with self.read() as tx, paused_gc():
                    # position and firms from one snapshot; the writer checks the position again
                    start, policies = self._position(tx), self._policies(tx)
                    batch = self._prepare(tx, app, start, policies, {})
            else:
                start = in_flight.end
                with paused_gc():
                    notifications = self._notifications(app, start)
                    # Once the writer holds the lock and found the position it expected, the
                    # views can change only by its own batch, whose firms we carry over.
                    in_flight.locked.wait()
                    with self.read() as tx:
                        batch = self._prepare(
                            tx, app, start, in_flight.latest, in_flight.firms, notifications
                        )
            if committed is not None and in_flight is not None:
                committed.result()  # the writer's error, StaleBatchError included
                bar.advance(in_flight.end - in_flight.start)
            if batch is None:
                return start
            committed = writer.submit(self._commit, batch)
            in_flight = batch

    def _commit(self, batch: Batch) -> None:
        """Write a batch's rows and its position in one transaction (in the writer thread).

        A view never fails on a committed event: a row the store cannot hold (a NUL, which
        PostgreSQL's text refuses, from an event written before the ledger refused them at its
        boundaries) is written once more with such characters replaced by U+FFFD. The views then
        differ from the log there, which the reconciliation's drift check reports."""
        try:
            try:
                self._commit_once(batch, clean=False)
            except DataError:
                log.warning(
                    "views: a batch up to position %s held text the store cannot keep; "
                    "written with it replaced (a drift finding)",
                    batch.end,
                )
                self._commit_once(batch, clean=True)
        finally:
            batch.locked.set()

    def _commit_once(self, batch: Batch, *, clean: bool) -> None:
        with self._write() as tx:
            tx.clean = clean
            if self._position(tx) != batch.start:
                raise StaleBatchError
            batch.locked.set()
            self._write_batch(tx, batch)
            self._track(tx, batch.end)

    def rebuild(self, app: Application[uuid.UUID]) -> int:
        """Empty every view and replay the whole log into them."""
        with self._write() as tx:
            for table in TABLES:
                tx.execute(f"DELETE FROM {table.name}")
            tx.execute(
                f"DELETE FROM {self._tracking_table} WHERE application_name = %s", (TRACKING_NAME,)
            )
        return self.catch_up(app)

    @staticmethod
    def _notifications(app: Application[uuid.UUID], start: int) -> Sequence[Notification]:
        return app.recorder.select_notifications(start, BATCH, inclusive_of_start=False)

    def _prepare(
        self,
        tx: Tx,
        app: Application[uuid.UUID],
        start: int,
        policies: Policies | None,
        carried: dict[str, Firm],
        notifications: Sequence[Notification] | None = None,
    ) -> Batch | None:
        """The view rows of the events after `start`, from the views read in `tx` and the firms
        `carried` over from the batch before (not yet committed); None when there are none."""
        if notifications is None:
            notifications = self._notifications(app, start)
        if not notifications:
            return None
        batch = Batch(
            start, notifications[-1].id, len(notifications), [(start, policies)] if policies else []
        )
        firm_events = decode(app, batch, notifications)
        for position, why in batch.unreadable:
            log.warning(
                "views: the event at position %s cannot be read and is left out (%s)", position, why
            )
        if firm_events:
            fold(batch, firm_events, carried, lambda oids: self._read_firms(tx, oids))
        return batch

    def _policies(self, tx: Tx) -> Policies | None:
        """The policy versions the views hold (None: none yet)."""
        rows = tx.execute("SELECT content FROM lv_policy ORDER BY position")
        return Policies.of(policy_from_json(r["content"]) for r in rows) if rows else None

    @staticmethod
    def _read_firms(tx: Tx, oids: list[str]) -> dict[str, Firm]:
        known: dict[str, Firm] = {}
        for condition, params in tx.matching("originator_id", oids):
            for r in tx.rows(
                f"SELECT {','.join(FIRMS.names)} FROM lv_firms WHERE {condition}", params
            ):
                known[r[0]] = Firm.from_row(r)
        return known

    def _write_batch(self, tx: Tx, b: Batch) -> None:
        tx.bulk_insert(POLICY.name, POLICY.names, b.policy_rows)
        tx.bulk_insert(YEARS.name, YEARS.names, b.year_rows)
        tx.bulk_insert(CORRECTIONS.name, CORRECTIONS.names, b.correction_rows)
        for row in b.correction_rows:
            tx.execute("UPDATE lv_years SET sha256 = %s WHERE year = %s", (row[2], row[1]))
        # Firms not in the views when the batch was folded are inserted, the others updated.
        new_rows: list[tuple[Any, ...]] = []
        known_rows: list[tuple[Any, ...]] = []
        for r in b.firm_rows:
            (new_rows if r[0] in b.new_firms else known_rows).append(r)
        tx.bulk_insert(FIRMS.name, FIRMS.names, new_rows)
        tx.bulk_insert(
            FIRMS.name,
            FIRMS.names,
            known_rows,
            conflict="ON CONFLICT (originator_id) DO UPDATE SET "
            + ",".join(f"{c} = excluded.{c}" for c in FIRMS.names[1:]),
        )
        tx.bulk_insert(REGISTER.name, REGISTER.names, b.register_rows)
        for change in b.register_changes:
            self._change_register_row(tx, *change)
        _write_versions(tx, AWARDS, b.awards)
        _write_versions(tx, WINDOWS, b.windows)
        tx.bulk_insert(PAYMENTS.name, PAYMENTS.names, b.payment_rows)
        tx.bulk_insert(RECOVERIES.name, RECOVERIES.names, b.recovery_rows)
        tx.bulk_insert(HOLDS.name, HOLDS.names, b.hold_rows)
        tx.bulk_insert(HOLD_LIFTS.name, HOLD_LIFTS.names, b.hold_lift_rows)

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
            copied = {"kind": "%s", "first_entry": "%s", "known_from": "%s", "known_to": "NULL"}
            tx.execute(
                f"INSERT INTO lv_register ({','.join(REGISTER.names)}) "
                f"SELECT {','.join(copied.get(c, c) for c in REGISTER.names)} "
                f"FROM lv_register WHERE {current}",
                (kind, first_entry, position, uscc, year, position),
            )
        tx.execute(
            f"UPDATE lv_register SET known_to = %s WHERE {current}",
            (position, uscc, year, position),
        )
        if values is not None:
            tx.execute(
                f"INSERT INTO lv_register ({','.join(REGISTER.names)}) "
                f"VALUES ({','.join('%s' for _ in REGISTER.names)})",
                (year, uscc, kind, first_entry, *values, position, None),
            )

    # The read model ---------------------------------------------------------------------------

    def awards(
        self,
        point: Point | None,
        *,
        fiscal_year: int | None = None,
        city: str | None = None,
        status: str | None = None,
        held: bool | None = None,
    ) -> list[AwardRow]:
        with self.read() as tx:
            return queries.awards(
                tx, fiscal_year=fiscal_year, city=city, status=status, held=held, at=At.of(point)
            )

    def holds(self, point: Point | None) -> dict[str, list[Hold]]:
        with self.read() as tx:
            return {
                uscc: [h for h, _, _ in placed]
                for uscc, placed in queries.placed_holds(tx, At.of(point)).items()
            }

    def totals(
        self,
        point: Point | None,
        *,
        fiscal_year: int | None = None,
        by: str = "kind",
        basis: str = "due",
        city: str | None = None,
        known_awards: list[AwardRow] | None = None,
    ) -> list[TotalRow]:
        with self.read() as tx:
            return queries.totals(
                tx,
                fiscal_year=fiscal_year,
                by=by,
                basis=basis,
                city=city,
                at=At.of(point),
                known_awards=known_awards,
            )

    def windows(
        self,
        point: Point | None,
        *,
        uscc: str | None = None,
        active_on: date | None = None,
        city: str | None = None,
    ) -> list[WindowRow]:
        with self.read() as tx:
            return queries.windows(tx, uscc=uscc, active_on=active_on, city=city, at=At.of(point))

    def first_entrants(
        self, entered_from: int, entered_to: int, city: str | None
    ) -> list[FirmState]:
        with self.read() as tx:
            return queries.first_entrants(tx, entered_from, entered_to, city)

    def firms_known_at(self, app: Application[uuid.UUID], position: int) -> list[FirmState]:
        """Every firm as the log had it at `position`: the views' rows when they stand there,
        else the log replayed to it in memory (the drift check's fold)."""
        if position >= self.position():
            with self.read() as tx:
                return [
                    Firm.from_row(r).state
                    for r in tx.rows(f"SELECT {','.join(FIRMS.names)} FROM lv_firms")
                ]
        return [f.state for f in derive(app, position).batch.firms.values()]

    def register_sizes(self, point: Point | None) -> list[RegisterSize]:
        with self.read() as tx:
            return queries.register_sizes(tx, At.of(point))

    def register(self, year: int, point: Point | None) -> list[RegisterEntry]:
        with self.read() as tx:
            return queries.register(tx, year, At.of(point))

    def imported_years(self) -> list[ImportedYearRow]:
        with self.read() as tx:
            return queries.imported_years(tx)

    def payments(self, point: Point | None) -> list[LedgerPayment]:
        with self.read() as tx:
            return queries.ledger_payments(tx, At.of(point))

    def revocations(self, point: Point | None) -> dict[str, int]:
        with self.read() as tx:
            return queries.revocations(tx, At.of(point))

    def prior_firms(self) -> dict[str, PriorFirm]:
        with self.read() as tx:
            return queries.prior_firms(tx)

    def year_facts(self, year: int) -> dict[str, YearFact]:
        with self.read() as tx:
            return queries.year_facts(tx, year)

    def firm_sizes(self, usccs: Sequence[str]) -> dict[str, dict[int, str | None]]:
        with self.read() as tx:
            return queries.firm_sizes(tx, usccs)
