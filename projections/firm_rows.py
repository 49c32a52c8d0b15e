"""A firm as lv_firms keeps it: its folded state (`FirmState`) written as a row and read back,
with the views' own bookkeeping (its id and version). The fold (`projections.fold`) and the
queries share this one codec."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.enterprise import FirmState, Hold
from domain.policy import DesignationKind, Route, SizeClass
from domain.rules import Designation

_SIZE = {s.value: s for s in SizeClass}
_ROUTE = {r.value: r for r in Route}


@dataclass
class Firm:
    """A firm being updated by a batch: its folded state and what the views keep beside it."""

    originator_id: str
    version: int
    state: FirmState

    def row(self) -> tuple[Any, ...]:
        s = self.state
        return (
            self.originator_id,
            s.uscc,
            self.version,
            s.name,
            s.region_code,
            s.city_code,
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
            " ".join(f"{y}:{c}" for y, c in sorted(s.cities.items())),
            _designations_text(s),
            _holds_text(s),
        )

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> Firm:
        """From a row of lv_firms, in its columns' order."""
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
            designations,
            holds,
        ) = r
        state = FirmState(
            uscc=uscc,
            name=name,
            region_code=region,
            industry_code=industry,
            size_class=_SIZE[size] if size else None,
            years=years_of(years),
            exit_years=years_of(exits),
            re_entry_years=years_of(re_entries),
            baseline_year=baseline,
            first_entry_year=first_entry,
            route=_ROUTE[route] if route else None,
            entry_size_class=_SIZE[entry_size] if entry_size else None,
        )
        state.cities = {int(y): c for y, c in (pair.split(":") for pair in cities.split())}
        if designations != NO_DESIGNATIONS:
            for kind, document, start, end in json.loads(designations):
                state.designations[(kind, document)] = Designation(
                    DesignationKind(kind),
                    date.fromisoformat(start),
                    date.fromisoformat(end) if end else None,
                    document,
                )
        if holds != NO_DESIGNATIONS:
            for reason, authority, document, start, end, lifted, why in json.loads(holds):
                state.holds[document] = Hold(
                    reason,
                    authority,
                    document,
                    date.fromisoformat(start),
                    _day(end),
                    _day(lifted),
                    why,
                )
        return cls(oid, version, state)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _holds_text(s: FirmState) -> str:
    """The holds placed on a firm, as lv_firms keeps them: a JSON list of [reason, authority,
    document, valid_from, valid_to, lifted_on, lift_reason] (dates ISO or null); "[]" for none."""
    if not s.holds:
        return NO_DESIGNATIONS
    return json.dumps(
        [
            [
                h.reason,
                h.authority,
                h.document,
                h.valid_from.isoformat(),
                h.valid_to.isoformat() if h.valid_to else None,
                h.lifted_on.isoformat() if h.lifted_on else None,
                h.lift_reason,
            ]
            for h in sorted(s.holds.values(), key=lambda h: h.document)
        ],
        ensure_ascii=False,
    )


NO_DESIGNATIONS = "[]"
"""lv_firms.designations (and .holds) of a firm that has none: most firms, written and read
without JSON."""


def _designations_text(s: FirmState) -> str:
    """The designations a firm holds, as lv_firms keeps them: a JSON list of
    [kind, document, valid_from, valid_to or null]."""
    if not s.designations:
        return NO_DESIGNATIONS
    return json.dumps(
        [
            [
                d.kind,
                d.document,
                d.valid_from.isoformat(),
                d.valid_to.isoformat() if d.valid_to else None,
            ]
            for d in s.held_designations()
        ],
        ensure_ascii=False,
    )


def _years_text(years: set[int]) -> str:
    return " ".join(map(str, sorted(years)))


def years_of(text: str) -> set[int]:
    """The years of a `years` column (space-separated)."""
    return set(map(int, text.split())) if text else set()
