"""Corrections: a firm's register history re-derived when the bureau re-issues an imported year.

The import diff (domain.register) decides a firm's history one year at a time, against the year
before. A correction of year Y changes one year in the middle of that history, so the history is
derived again from the years the firm is now on, later years included, by the same rules:

- first presence on the baseline register: on the baseline, first entry as the bureau gave it;
- first presence after the baseline: a first entry with the route of that year's row, unless the
  row says the firm first entered earlier (a re-entrant, as in `RegisterDiff`);
- an imported year the firm is absent from after being on the year before: an exit (退库);
- a year on the register after an absence: a re-entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from domain.codes import divisions
from domain.enterprise import FirmState
from domain.policy import Route, SizeClass
from domain.register import PriorFirm, RegisterRow, RegisterSource, validate_year
from domain.rules import History


class YearFact(NamedTuple):
    """What the ledger holds of a firm's row in one register year."""

    name: str
    region_code: str
    industry_code: str
    size_class: str | None


@dataclass(frozen=True, slots=True)
class RestatedHistory:
    years: tuple[int, ...]
    exit_years: tuple[int, ...]
    re_entry_years: tuple[int, ...]
    baseline_year: int | None
    first_entry_year: int | None
    route: str | None
    entry_size_class: str | None

    def history(
        self,
        uscc: str,
        state: FirmState | None = None,
        corrected: tuple[int, RegisterRow | None] | None = None,
    ) -> History:
        """The restated history; `state` and `corrected` (the firm before; the corrected year and
        its row there) give what a correction does not restate: the cities of its years."""
        cities = dict(state.cities) if state else {}
        city = state.city_code if state else ""
        if corrected is not None and corrected[1] is not None:
            year, row = corrected[0], corrected[1]
            cities[year] = divisions()[row.region_code].city_code
            if not self.years or year >= max(self.years):
                city = cities[year]
        return History(
            uscc=uscc,
            years=frozenset(self.years),
            exit_years=frozenset(self.exit_years),
            baseline_year=self.baseline_year,
            first_entry_year=self.first_entry_year,
            route=Route(self.route) if self.route else None,
            entry_size_class=SizeClass(self.entry_size_class) if self.entry_size_class else None,
            cities=tuple(sorted(cities.items())),
            city=city,
        )

    def fields(self) -> dict[str, Any]:
        """As the fields of `Enterprise.RegisterYearCorrected`."""
        return {
            "years": list(self.years),
            "exit_years": list(self.exit_years),
            "re_entry_years": list(self.re_entry_years),
            "baseline_year": self.baseline_year,
            "derived_first_entry_year": self.first_entry_year,
            "derived_route": str(Route(self.route).value) if self.route else None,
            "entry_size_class": (
                str(SizeClass(self.entry_size_class).value) if self.entry_size_class else None
            ),
        }

    def same_as(self, s: FirmState | None) -> bool:
        if s is None:
            return not self.years
        return (
            set(self.years) == s.years
            and set(self.exit_years) == s.exit_years
            and set(self.re_entry_years) == s.re_entry_years
            and self.baseline_year == s.baseline_year
            and self.first_entry_year == s.first_entry_year
            and self.route == s.route
            and self.entry_size_class == s.entry_size_class
        )


def same_fact(row: RegisterRow | None, fact: YearFact | None) -> bool:
    """Whether a re-issued row says what the ledger holds for that year; an empty size class
    says nothing new (the last known class stands, as on import)."""
    if row is None or fact is None:
        return row is None and fact is None
    return (row.name, row.region_code, row.industry_code) == fact[:3] and (
        row.size_class is None or row.size_class == fact.size_class
    )


def restate(
    state: FirmState | None,
    year: int,
    row: RegisterRow | None,
    imported: Iterable[int],
    baseline: int,
    sizes: dict[int, str | None],
) -> RestatedHistory:
    """A firm's register history after year `year` is corrected to `row` (None: not on it).

    Args:
        state: the firm as the ledger knows it before the correction (None: a firm new to it).
        imported: every register year the ledger has imported.
        baseline: the ledger's baseline year.
        sizes: the size class the ledger holds for the firm in each register year it is on.
    """
    old_years = state.years if state else set()
    years = (old_years - {year}) | ({year} if row is not None else set())
    if not years:
        return RestatedHistory((), (), (), None, None, None, None)
    first = min(years)
    re_entries = {y for y in years if y > first and y - 1 not in years}
    exits = {y for y in imported if y > first and y - 1 in years and y not in years}
    size_at_first = row.size_class if first == year and row else sizes.get(first)
    given: int | None
    route: str | None
    if first == baseline:
        # The baseline row gives the first entry year (DOMAIN.md default 5).
        if year == baseline:
            assert row is not None
            first_entry, route = row.first_entry_year, row.route
        else:
            assert state is not None
            first_entry, route = state.first_entry_year, state.route
        return RestatedHistory(
            tuple(sorted(years)),
            tuple(sorted(exits)),
            tuple(sorted(re_entries)),
            baseline,
            first_entry,
            route if first_entry is not None else None,
            size_at_first if first_entry == baseline else None,
        )
    if first == year:
        assert row is not None
        given, route = row.first_entry_year, row.route
    elif (
        state is not None and state.baseline_year is None and old_years and min(old_years) == first
    ):
        # The first year is as before: so is what its row said.
        re_entrant = first in state.re_entry_years
        given = state.first_entry_year if re_entrant else None
        route = state.route
    else:
        # The firm's first year was taken away and a later year is now its first: the ledger
        # never recorded that later row's route, so the route the bureau gave for the firm's
        # entry stands (growth if it gave none).
        given = None
        route = state.route if state and state.route else Route.GROWTH.value
    if given is not None and given < first:
        # The row says the firm was on an earlier register: a re-entrant, never a first entrant.
        return RestatedHistory(
            tuple(sorted(years)),
            tuple(sorted(exits)),
            tuple(sorted(re_entries | {first})),
            None,
            given,
            None,
            None,
        )
    return RestatedHistory(
        tuple(sorted(years)),
        tuple(sorted(exits)),
        tuple(sorted(re_entries)),
        None,
        first,
        route,
        size_at_first,
    )


def validate_correction(
    year: int, source: RegisterSource, prior: Mapping[str, PriorFirm]
) -> dict[str, RegisterRow]:
    """Every bad line of a corrected year (ImportRejectedError), or its rows by USCC. A row's first
    entry year and route are the correction's to change where they decide the firm's history (the
    baseline year, the firm's first year); elsewhere they must agree with the ledger, as on import."""
    decisive = {
        u
        for u, p in prior.items()
        if p.baseline_year == year or not p.years or year <= min(p.years)
    }
    validate_year(year, source, {u: p for u, p in prior.items() if u not in decisive})
    rows: dict[str, RegisterRow] = {}
    for _line, row in source.records(checked=True):
        assert not isinstance(row, list)  # validated above
        rows[row.uscc] = row
    return rows


def changed_firms(
    year: int,
    baseline: int,
    rows: Mapping[str, RegisterRow],
    prior: Mapping[str, PriorFirm],
    facts: Mapping[str, YearFact],
) -> set[str]:
    """Firms a correction may change: on one of the two versions of the year only, with a different
    row, or with a different first entry where the year is the firm's first."""
    changed = set(rows).symmetric_difference(facts)
    for uscc in set(rows) & set(facts):
        row, p = rows[uscc], prior[uscc]
        if not same_fact(row, facts[uscc]):
            changed.add(uscc)
        elif year == baseline:
            route = row.route if row.first_entry_year is not None else None
            if (row.first_entry_year, route) != (p.first_entry_year, p.route):
                changed.add(uscc)
        elif year == min(p.years):
            given = row.first_entry_year
            first_entry = given if given is not None and given < year else year
            route = None if first_entry < year else row.route
            if (first_entry, route) != (p.first_entry_year, p.route):
                changed.add(uscc)
    return changed
