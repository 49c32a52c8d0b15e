"""Drift: the views compared with a fresh derivation of them from the log.

The derivation replays the log up to a position through the views' own fold (the code the
catch-up runs), in memory, reading and writing no view table. The comparison reads each view as
it stood at that position (the versions known then, the money recorded by then) and lists what
differs. A difference means the views were changed behind the log's back, or a catch-up went
wrong: either way, answers read from them are suspect until `rebuild-projections`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application

from domain.application import paused_gc
from projections.store import Tx
from projections.views import (
    AWARD_COLUMNS,
    BATCH,
    FIRM_COLUMNS,
    PAYMENT_COLUMNS,
    RECOVERY_COLUMNS,
    REGISTER_COLUMNS,
    WINDOW_COLUMNS,
    LedgerViews,
    _Batch,
)

YEAR_COLUMNS = ("year", "baseline", "sha256", "row_count", "counts", "actor", "position")
CORRECTION_COLUMNS = ("position", "year", "sha256", "reason", "row_count", "counts", "actor")
POLICY_COLUMNS = ("policy_id", "content_hash", "content", "position")
EXAMPLES = 10
"""Differing rows quoted per table as evidence; the counts cover them all."""

Key = Any
Row = tuple[Any, ...]


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[int, ...]
    """Indexes of the key's columns."""
    kind: str
    """versioned (known_from/known_to), positioned (a position column), firm or year."""

    def key_of(self, row: Row) -> Key:
        return tuple(row[i] for i in self.key)


TABLES = (
    _Table("lv_firms", FIRM_COLUMNS, (0,), "firm"),
    _Table("lv_register", REGISTER_COLUMNS, (0, 1, 9), "versioned"),
    _Table("lv_awards", AWARD_COLUMNS, (0, 10), "versioned"),
    _Table("lv_windows", WINDOW_COLUMNS, (0, 1, 8), "versioned"),
    _Table("lv_payments", PAYMENT_COLUMNS, (0,), "positioned"),
    _Table("lv_recoveries", RECOVERY_COLUMNS, (0,), "positioned"),
    _Table("lv_years", YEAR_COLUMNS, (0,), "year"),
    _Table("lv_corrections", CORRECTION_COLUMNS, (0,), "positioned"),
    _Table("lv_policy", POLICY_COLUMNS, (1,), "positioned"),
)


@dataclass
class TableDrift:
    """One view compared with its derivation."""

    table: str
    rows: int = 0
    """Rows the log gives the view at the position."""
    missing: int = 0
    """Rows the log gives that the view lacks."""
    unexpected: int = 0
    """Rows of the view that the log does not give."""
    differing: int = 0
    """Rows whose key matches and whose values do not."""
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted(self) -> int:
        return self.missing + self.unexpected + self.differing

    def note(self, problem: str, key: Key, derived: Row | None, view: Row | None) -> None:
        setattr(self, problem, getattr(self, problem) + 1)
        if len(self.examples) < EXAMPLES:
            self.examples.append(
                {
                    "problem": problem,
                    "key": list(key),
                    "derived": None if derived is None else list(derived),
                    "view": None if view is None else list(view),
                }
            )


@dataclass
class Derived:
    """The views' rows at one position, by table and key, as the log gives them."""

    position: int
    events: int
    tables: dict[str, dict[Key, Row]]


def derive(app: Application[uuid.UUID], stop: int) -> Derived:
    """Replay the log up to position `stop` through the views' fold, in memory."""
    batch = _Batch(0, stop, 0, None)
    start, events = 0, 0
    with paused_gc():
        while True:
            notifications = app.recorder.select_notifications(
                start, BATCH, stop=stop, inclusive_of_start=False
            )
            if not notifications:
                break
            events += len(notifications)
            firm_events = LedgerViews._decode(app, batch, notifications)
            if firm_events:
                LedgerViews._fold(batch, firm_events, batch.firms, _no_rows, firm_rows=False)
            start = notifications[-1].id
    # The batch's `closes` name versions from before its start: from position 0 there are none.
    return Derived(stop, events, _tables(batch))


def _no_rows(oids: list[str]) -> dict[str, Any]:
    return {}


def _tables(b: _Batch) -> dict[str, dict[Key, Row]]:
    by_name = {t.name: t for t in TABLES}

    def keyed(name: str, rows: Any) -> dict[Key, Row]:
        table = by_name[name]
        return {table.key_of(r): tuple(r) for r in rows}

    register: dict[tuple[int, str], list[list[Any]]] = {}
    for r in b.register_rows:
        register.setdefault((r[0], r[1]), []).append(list(r))
    for position, year, uscc, kind, first_entry, values in b.register_changes:
        # What LedgerViews._change_register_row does in SQL, in the same order.
        versions = register.setdefault((year, uscc), [])
        current = [v for v in versions if v[-1] is None and v[-2] < position]
        if values is None and kind:
            versions += [[year, uscc, kind, first_entry, *v[4:9], position, None] for v in current]
        for v in current:
            v[-1] = position
        if values is not None:
            versions.append([year, uscc, kind, first_entry, *values, position, None])
    years = {r[0]: list(r) for r in b.year_rows}
    for c in b.correction_rows:
        years[c[1]][2] = c[2]  # the corrected file is now the year's record
    return {
        "lv_firms": keyed("lv_firms", (f.row() for f in b.firms.values())),
        "lv_register": keyed("lv_register", (v for vs in register.values() for v in vs)),
        "lv_awards": keyed("lv_awards", _visible(b.awards.rows)),
        "lv_windows": keyed("lv_windows", _visible(b.windows.rows)),
        "lv_payments": keyed("lv_payments", b.payment_rows),
        "lv_recoveries": keyed("lv_recoveries", b.recovery_rows),
        "lv_years": keyed("lv_years", years.values()),
        "lv_corrections": keyed("lv_corrections", b.correction_rows),
        "lv_policy": keyed("lv_policy", b.policy_rows),
    }


def _visible(rows: list[list[Any]]) -> Iterator[list[Any]]:
    """As _Versions.write keeps them: not a version opened and closed at one position."""
    return (r for r in rows if r[-1] is None or r[-1] > r[-2])


def compare(
    tx: Tx, derived: Derived, first_position: Callable[[str], int | None]
) -> list[TableDrift]:
    """Each view at the derived position against the derivation, one table at a time.

    `first_position(originator_id)`: the position of a firm's first event (None if it has
    none), to tell a firm created after the position from one the log never had.
    """
    p = derived.position
    corrected_later = {
        int(r[0]) for r in tx.rows("SELECT year FROM lv_corrections WHERE position > %s", (p,))
    }
    result = []
    for table in TABLES:
        want = derived.tables[table.name]
        drift = TableDrift(table.name, rows=len(want))
        columns = ",".join(table.columns)
        if table.kind == "versioned":
            rows = tx.stream(f"SELECT {columns} FROM {table.name} WHERE known_from <= %s", (p,))
        elif table.kind in ("positioned", "year"):
            rows = tx.stream(f"SELECT {columns} FROM {table.name} WHERE position <= %s", (p,))
        else:
            rows = tx.stream(f"SELECT {columns} FROM {table.name}")
        for row in rows:
            if table.kind == "versioned" and row[-1] is not None and row[-1] > p:
                row = (*row[:-1], None)  # replaced after the position: current then
            key = table.key_of(row)
            expected = want.pop(key, None)
            if table.kind == "firm":
                if expected is None:
                    first = first_position(row[0])
                    if first is not None and first > p:
                        continue  # a firm that came after the position
                elif row[2] > expected[2]:
                    continue  # the firm has events after the position: its row moved on
            if table.kind == "year" and expected is not None and row[0] in corrected_later:
                row = (*row[:2], expected[2], *row[3:])  # its file was corrected after
            if expected is None:
                drift.note("unexpected", key, None, row)
            elif expected != row:
                drift.note("differing", key, expected, row)
        for key, expected in sorted(want.items(), key=lambda kv: repr(kv[0])):
            drift.note("missing", key, expected, None)
        result.append(drift)
    return result
