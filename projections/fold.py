"""The views' fold: a batch of the log turned into view rows, in memory, with no SQL.

The catch-up folds each batch of events into its firms' states (the aggregate's own fold,
`FirmState.apply`) and turns what changed into rows of the tables declared in
`projections.tables`, in their columns' order; the runner writes them. The drift check folds the
whole log the same way to derive what the views should hold.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from domain.enterprise import (
    CREATED_EVENTS,
    HISTORY_EVENTS,
    REDERIVING_EVENTS,
    REVOKING_EVENTS,
    WINDOW_EVENTS,
    Enterprise,
    FirmState,
    PaymentRef,
)
from domain.payment_book import PaymentBook
from domain.policy import Bonus, Policies, policy_from_json
from domain.reconciliation import ReconciliationBook
from domain.register_book import RegisterBook
from domain.rules import History, entitlements, windows
from projections.firm_rows import Firm

BATCH = 10000
"""Events read, folded and written per transaction (the catch-up's and the drift check's)."""
_HISTORY_TYPES = frozenset(HISTORY_EVENTS)
_UNVIEWED_TOPICS = (
    get_topic(PaymentRef) + ".",
    get_topic(ReconciliationBook) + ".",
    get_topic(PaymentBook) + ".",
)
"""Topic prefixes of events nothing in the views comes from: skipped without decoding."""
_WINDOW_TYPES = frozenset(WINDOW_EVENTS)
_KIND = {
    Enterprise.OnBaselineRegister: "baseline",
    Enterprise.EnteredRegister: "entered",
    Enterprise.ReEnteredRegister: "re_entered",
    Enterprise.RetainedInRegister: "retained",
}


def award_rows(firm: Firm, history: History, policies: Policies) -> dict[str, tuple[Any, ...]]:
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
            firm.state.award_city(e.decided_year),
            e.base_fen,
            bonus_text(e.bonuses),
            True,
        )
        for e in entitlements(history, policies)
    }


def bonus_text(bonuses: Sequence[Bonus]) -> str:
    """An award's bonuses as lv_awards keeps them: `designation:percent`, space-separated."""
    return " ".join(f"{b.designation}:{b.percent}" for b in bonuses)


def window_rows(history: History, policies: Policies) -> dict[str, tuple[Any, ...]]:
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
        for w in windows(history, policies)
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
class Versions:
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

    def visible(self) -> list[list[Any]]:
        """The versions to keep: one opened and closed at one position was never visible at any
        commit."""
        return [r for r in self.rows if r[-1] is None or r[-1] > r[-2]]


@dataclass
class Batch:
    """A batch of the log turned into view rows, to be written with its position `end`.

    The rows hold for views at position `start`; the writer checks that under its lock.
    """

    start: int
    end: int
    events: int
    policies: list[tuple[int, Policies]]
    """The policy versions in force from each position on, in log order: those before the batch
    first (at its start), then each version the batch adopts."""
    firms: dict[str, Firm] = field(default_factory=dict)
    """Every firm of the batch, folded: the next batch starts from these."""
    new_firms: set[str] = field(default_factory=set)
    firm_rows: list[tuple[Any, ...]] = field(default_factory=list)
    register_rows: list[tuple[Any, ...]] = field(default_factory=list)
    """New register rows of imports (current from their position)."""
    register_changes: list[tuple[Any, ...]] = field(default_factory=list)
    """Corrections' changes to register rows, in log order: (position, year, uscc, kind,
    first_entry, row) where row is the corrected year's new row (None: off the register, or
    another year whose kind alone changes)."""
    awards: Versions = field(default_factory=Versions)
    windows: Versions = field(default_factory=Versions)
    payment_rows: list[tuple[Any, ...]] = field(default_factory=list)
    recovery_rows: list[tuple[Any, ...]] = field(default_factory=list)
    hold_rows: list[tuple[Any, ...]] = field(default_factory=list)
    hold_lift_rows: list[tuple[Any, ...]] = field(default_factory=list)
    policy_rows: list[tuple[Any, ...]] = field(default_factory=list)
    year_rows: list[tuple[Any, ...]] = field(default_factory=list)
    correction_rows: list[tuple[Any, ...]] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    """Events of the batch that could not be read, left out: (position, why)."""
    locked: threading.Event = field(default_factory=threading.Event)
    """Set once the writer holds the lock (or gave up): the views are then frozen but for it."""

    @property
    def latest(self) -> Policies | None:
        """The policy versions in force after the batch."""
        return self.policies[-1][1] if self.policies else None

    def policies_at(self, position: int) -> Policies:
        """The versions in force at a position of the batch."""
        chosen = None
        for start, policies in self.policies:
            if start <= position:
                chosen = policies
        assert chosen is not None, "an enterprise event before any policy was adopted"
        return chosen


def replace_windows(
    batch: Batch,
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


def decode(
    app: Application[uuid.UUID], batch: Batch, notifications: Sequence[Notification]
) -> dict[str, list[tuple[Any, int]]]:
    """Put the register book's events of `notifications` in the batch; return the firms'
    events by firm, in log order."""
    firm_events: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for n in notifications:
        if (n.topic or "").startswith(_UNVIEWED_TOPICS):
            continue
        try:
            event = app.mapper.to_domain_event(n)
        except Exception as error:
            # A view never fails on a committed event: one changed outside the ledger so that it
            # cannot be read is left out (the hash chain breaks there; the reconciliation says so).
            batch.unreadable.append((n.id, f"{type(error).__name__}: {error}"))
            continue
        if isinstance(event, Enterprise.Event):
            firm_events[event.originator_id.hex].append((event, n.id))
        elif isinstance(event, RegisterBook.PolicyAdopted):
            batch.policy_rows.append((event.policy_id, event.content_hash, event.content, n.id))
            version = policy_from_json(event.content)
            latest = batch.latest
            batch.policies.append(
                (n.id, latest.with_version(version) if latest else Policies.of([version]))
            )
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
    if firm_events and batch.latest is None:
        raise RuntimeError("enterprise events before any policy was adopted")
    return firm_events


def fold(
    batch: Batch,
    firm_events: dict[str, list[tuple[Any, int]]],
    carried: dict[str, Firm],
    read_firms: Callable[[list[str]], dict[str, Firm]],
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
            first = events[0][0]
            if not isinstance(first, CREATED_EVENTS):
                # The firm's registration could not be read (see `decode`): nothing of it can be
                # folded, so none of its events is, each named.
                batch.unreadable += [
                    (p, "the firm's registration cannot be read") for _, p in events
                ]
                continue
            batch.new_firms.add(oid)
            firm = Firm(oid, 0, FirmState.created(first))
        for event, position in events:
            fold_event(batch, firm, event, position)
        batch.firms[oid] = firm
        if firm_rows:
            batch.firm_rows.append(firm.row())


def fold_event(batch: Batch, firm: Firm, event: Any, position: int) -> None:
    """One event of a firm: its state, and the view versions it starts at `position`."""
    policies = batch.policies_at(position)
    s = firm.state
    if isinstance(event, REDERIVING_EVENTS):
        history = s.history()
        # A policy version's awards are re-derived against the versions before it.
        was = (
            policies.without(event.content_hash)
            if isinstance(event, Enterprise.PolicyApplied)
            else policies
        )
        kinds_before = {y: register_kind(s, y) for y in s.years}
        old = award_rows(firm, history, was), window_rows(history, was)
        s.apply(event)
        firm.version = event.originator_version
        if isinstance(event, Enterprise.RegisterYearCorrected):
            fold_correction(batch, firm, event, position, kinds_before)
        # A designation changes amounts only: it neither gives nor takes an award away.
        earned, revoked = (
            (event.earned, event.revoked) if isinstance(event, REVOKING_EVENTS) else ((), ())
        )
        rederive(batch, firm, earned, revoked, position, policies, *old)
        return
    kind_of_event = type(event)
    # Windows depend on the first entry (its year, route, size) and the exits only; a firm
    # with no first entry has none.
    windows_before = None
    if kind_of_event in _WINDOW_TYPES:
        windows_before = (
            window_rows(s.history(), policies) if s.first_entry_year and s.route else {}
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
    if kind_of_event is Enterprise.HoldPlaced:
        batch.hold_rows.append(
            (
                s.uscc,
                event.document,
                event.reason,
                event.authority,
                event.valid_from.isoformat(),
                event.valid_to.isoformat() if event.valid_to else None,
                event.actor,
                position,
            )
        )
        return
    if kind_of_event is Enterprise.HoldLifted:
        batch.hold_lift_rows.append(
            (
                s.uscc,
                event.document,
                event.lifted_on.isoformat(),
                event.reason,
                event.actor,
                position,
            )
        )
        return
    kind = _KIND.get(kind_of_event)
    if kind is not None:
        city = s.cities[event.year]
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
        for eid, row in award_rows(firm, history, policies).items():
            if row[6] == event.year:
                batch.awards.add(eid, row, position)
        if windows_before is not None:
            replace_windows(batch, s.uscc, windows_before, window_rows(history, policies), position)


def fold_correction(
    batch: Batch,
    firm: Firm,
    event: Any,
    position: int,
    kinds_before: dict[int, tuple[str, bool]],
) -> None:
    """A corrected year: the firm's register rows as re-derived."""
    s = firm.state
    row = event.row
    for year in sorted(set(kinds_before) | s.years):
        kind = register_kind(s, year) if year in s.years else None
        if year == event.year:
            values = None
            if row is not None:
                values = (
                    row["name"],
                    row["region_code"],
                    s.cities[year],
                    row["industry_code"],
                    # an empty size class keeps the last known one, as on import
                    row["size_class"] or s.size_class,
                )
            batch.register_changes.append((position, year, s.uscc, *(kind or ("", False)), values))
        elif kind != kinds_before.get(year):
            assert kind is not None
            batch.register_changes.append((position, year, s.uscc, *kind, None))


def rederive(
    batch: Batch,
    firm: Firm,
    earned: Sequence[str],
    revoked: Sequence[str],
    position: int,
    policies: Policies,
    old: dict[str, tuple[Any, ...]],
    old_windows: dict[str, tuple[Any, ...]],
) -> None:
    """A correction or a policy version re-derived the firm's awards and windows: a new version
    of each that changed, the revoked ones kept as not earned."""
    s = firm.state
    new = award_rows(firm, s.history(), policies)
    for eid in revoked:
        if eid in old:
            new[eid] = (*old[eid][:-1], False)
    for eid in sorted(old.keys() | new.keys() | set(earned)):
        if eid in earned or old.get(eid) != new.get(eid):
            batch.awards.replace(eid, new.get(eid), position)
    replace_windows(batch, s.uscc, old_windows, window_rows(s.history(), policies), position)
