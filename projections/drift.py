"""Drift: the views compared with a fresh derivation of them from the log.

The derivation replays the log up to a position through the views' own fold (the code the
catch-up runs), in memory, reading and writing no view table. The comparison reads each view as
it stood at that position (the versions known then, the money recorded by then) and lists what
differs. A difference means the views were changed behind the log's back, or a catch-up went
wrong: either way, answers read from them are suspect until `rebuild-projections`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application

from domain.bulk import paused_gc
from domain.progress import stage
from projections.fold import BATCH, Batch, decode, fold
from projections.store import Tx
from projections.tables import TABLES, Table

EXAMPLES = 10
"""Differing rows quoted per table as evidence; the counts cover them all."""

Key = Any
Row = tuple[Any, ...]


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
    """The first EXAMPLES differences in key order (whatever order the rows came in, so that a
    re-run quotes the same ones)."""

    @property
    def drifted(self) -> int:
        return self.missing + self.unexpected + self.differing

    def note(self, problem: str, key: Key, derived: Row | None, view: Row | None) -> None:
        setattr(self, problem, getattr(self, problem) + 1)
        self.examples.append(
            {
                "problem": problem,
                "key": list(key),
                "derived": None if derived is None else list(derived),
                "view": None if view is None else list(view),
            }
        )
        if len(self.examples) >= 5 * EXAMPLES:
            self.keep_first_examples()

    def keep_first_examples(self) -> None:
        self.examples.sort(key=lambda e: (repr(e["key"]), e["problem"]))
        del self.examples[EXAMPLES:]


@dataclass
class Derived:
    """The views' rows at one position as the log gives them, built a table at a time (`take`),
    so that no more than one table is held twice."""

    position: int
    events: int
    batch: Batch

    def take(self, name: str) -> dict[Key, Row]:
        """The table's rows by key; what they were built from is let go."""
        b = self.batch
        table = next(t for t in TABLES if t.name == name)

        def keyed(rows: Iterable[Sequence[Any]]) -> dict[Key, Row]:
            return {_key(table, r): tuple(r) for r in rows}

        if name == "lv_firms":
            rows = keyed(f.row() for f in b.firms.values())
            b.firms.clear()
        elif name == "lv_register":
            rows = register_rows(b)
            b.register_rows.clear()
        elif name in ("lv_awards", "lv_windows"):
            versions = b.awards if name == "lv_awards" else b.windows
            rows = keyed(versions.visible())
            versions.rows.clear()
        elif name == "lv_payments":
            rows = keyed(b.payment_rows)
            b.payment_rows.clear()
        elif name == "lv_recoveries":
            rows = keyed(b.recovery_rows)
            b.recovery_rows.clear()
        elif name == "lv_holds":
            rows = keyed(b.hold_rows)
            b.hold_rows.clear()
        elif name == "lv_hold_lifts":
            rows = keyed(b.hold_lift_rows)
            b.hold_lift_rows.clear()
        elif name == "lv_years":
            years = {r[0]: list(r) for r in b.year_rows}
            for c in b.correction_rows:
                years[c[1]][2] = c[2]  # the corrected file is now the year's record
            rows = keyed(years.values())
        elif name == "lv_corrections":
            rows = keyed(b.correction_rows)
        else:
            rows = keyed(b.policy_rows)
        return rows


def derive(app: Application[uuid.UUID], stop: int) -> Derived:
    """Replay the log up to position `stop` through the views' fold, in memory."""
    batch = Batch(0, stop, 0, [])
    start, events = 0, 0
    with paused_gc(), stage("replay the log in memory", total=stop, unit="events") as bar:
        while True:
            notifications = app.recorder.select_notifications(
                start, BATCH, stop=stop, inclusive_of_start=False
            )
            if not notifications:
                break
            events += len(notifications)
            firm_events = decode(app, batch, notifications)
            if firm_events:
                fold(batch, firm_events, batch.firms, _no_rows, firm_rows=False)
            bar.advance(notifications[-1].id - start)
            start = notifications[-1].id
    # The batch's `closes` name versions from before its start: from position 0 there are none.
    return Derived(stop, events, batch)


def _no_rows(oids: list[str]) -> dict[str, Any]:
    return {}


def register_rows(b: Batch) -> dict[Key, Row]:
    """lv_register: the imports' rows, then the corrections' changes applied in log order as
    the runner's `_change_register_row` does in SQL."""
    rows: dict[Key, Row] = {(r[0], r[1], r[9]): tuple(r) for r in b.register_rows}
    changed = {(c[1], c[2]) for c in b.register_changes}
    versions: dict[tuple[int, str], list[Key]] = {pair: [] for pair in changed}
    for key in rows:
        if (key[0], key[1]) in changed:
            versions[(key[0], key[1])].append(key)
    for position, year, uscc, kind, first_entry, values in b.register_changes:
        keys = versions[(year, uscc)]
        current = [k for k in keys if rows[k][-1] is None and k[2] < position]
        if values is None and kind:
            for k in current:
                rows[(year, uscc, position)] = (
                    year,
                    uscc,
                    kind,
                    first_entry,
                    *rows[k][4:9],
                    position,
                    None,
                )
                keys.append((year, uscc, position))
        for k in current:
            rows[k] = (*rows[k][:-1], position)
        if values is not None:
            rows[(year, uscc, position)] = (year, uscc, kind, first_entry, *values, position, None)
            keys.append((year, uscc, position))
    return rows


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
        with paused_gc():
            result.append(_compare_table(tx, table, derived, p, corrected_later, first_position))
    return result


def _key(table: Table, row: Sequence[Any]) -> Key:
    return tuple(row[i] for i in table.key)


def _compare_table(
    tx: Tx,
    table: Table,
    derived: Derived,
    p: int,
    corrected_later: set[int],
    first_position: Callable[[str], int | None],
) -> TableDrift:
    want = derived.take(table.name)
    drift = TableDrift(table.name, rows=len(want))
    columns = ",".join(table.names)
    if table.kind == "versioned":
        rows = tx.stream(f"SELECT {columns} FROM {table.name} WHERE known_from <= %s", (p,))
    elif table.kind in ("positioned", "year"):
        rows = tx.stream(f"SELECT {columns} FROM {table.name} WHERE position <= %s", (p,))
    else:
        rows = tx.stream(f"SELECT {columns} FROM {table.name}")
    for row in rows:
        if table.kind == "versioned" and row[-1] is not None and row[-1] > p:
            row = (*row[:-1], None)  # replaced after the position: current then
        key = _key(table, row)
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
    for key, expected in want.items():
        drift.note("missing", key, expected, None)
    drift.keep_first_examples()
    return drift
