"""The budget forecast: what the awards will cost in coming fiscal years, from the ledger's own
history, each figure with a low and a high bound.

For each fiscal year F, three parts:

1. **decided**: the awards already decided and due in F, less what was paid (net of recoveries):
   known, so its bounds are itself;
2. **staying**: the awards that fall due in F if first entrants now on the register stay. Each
   firm's history is carried forward year by year through the rules themselves
   (`domain.rules.entitlements`), and an award it would then earn is weighted by the chance of
   staying that long: the product of the yearly survival rates the ledger's register shows by
   years since first entry (the life table: of the first entrants on the register a years after
   entry, the share still on it the year after, pooled over the cohorts the ledger observed).
   The bounds take, at each age, the lowest and the highest rate of a single cohort; beyond the
   oldest age observed, the oldest age's rates;
3. **new entries**: first entries of the coming register years, by city, at the mean of the
   last three cohorts' entries the ledger observed (bounds: their least and most), each at the mean first-entry
   award of the last cohort of the city (bonuses included).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from statistics import mean

from domain.enterprise import FirmState
from domain.errors import InvalidInputError
from domain.ledger_base import checked_city
from domain.payment_results import ForecastResult, ForecastYear, LifeTableRow
from domain.policy import Policies
from domain.queries import PointInTimeQueries
from domain.results import Point
from domain.rules import History, entitlements

RECENT_COHORTS = 3
"""The cohorts whose entries project the coming ones: the last three the ledger observed (first
entries after its baseline)."""
MIN_COHORT = 20
"""A cohort's rate counts for the bounds only with at least this many firms at risk."""


def _continuous(s: FirmState, entry: int, last: int) -> int:
    """How many years after entry the firm stayed on the register without a break (up to
    `last`)."""
    a = 0
    while entry + a + 1 <= last and (entry + a + 1) in s.years:
        a += 1
    return a


def life_table(entrants: Iterable[FirmState], last: int) -> list[LifeTableRow]:
    """Of the first entrants on the register `age` years after entry (continuously), how many
    were still on it the year after, pooled and by cohort."""
    at_risk: dict[int, int] = defaultdict(int)
    stayed: dict[int, int] = defaultdict(int)
    cohort: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for s in entrants:
        entry = s.first_entry_year
        assert entry is not None
        reached = _continuous(s, entry, last)
        for age in range(0, last - entry):
            if age > reached:
                break
            at_risk[age] += 1
            cohort[(age, entry)][0] += 1
            if age < reached:
                stayed[age] += 1
                cohort[(age, entry)][1] += 1
    rows = []
    for age in sorted(at_risk):
        rates = [n / r for (a, _), (r, n) in cohort.items() if a == age and r >= MIN_COHORT]
        rate = stayed[age] / at_risk[age]
        rows.append(
            LifeTableRow(
                age=age,
                at_risk=at_risk[age],
                stayed=stayed[age],
                rate=round(rate, 4),
                low=round(min(rates, default=rate), 4),
                high=round(max(rates, default=rate), 4),
                cohorts=sum(1 for (a, _), (r, _) in cohort.items() if a == age and r >= MIN_COHORT),
            )
        )
    return rows


def _carried(s: FirmState, last: int, more: int) -> History:
    """The firm's history if it stays `more` register years after `last`, in its city."""
    h = s.history()
    extra = range(last + 1, last + more + 1)
    return dataclasses.replace(
        h,
        years=h.years | frozenset(extra),
        cities=h.cities + tuple((y, s.city_code) for y in extra),
    )


class ForecastQueries(PointInTimeQueries):
    """`forecast`."""

    def forecast(
        self, first: int, last_year: int, *, city: str | None = None, known_at: str | None = None
    ) -> ForecastResult:
        """Fiscal years `first` to `last_year` as the ledger knows them at `known_at`."""
        checked_city(city)
        if not 2000 <= first <= last_year <= first + 9:
            raise InvalidInputError(
                f"{first}-{last_year}: give a range of at most 10 fiscal years, e.g. 2027-2029",
                field="fiscal_years",
            )
        point = self.point(known_at)
        commit = self.commit_at(known_at)
        policies = self.policies_at(commit)
        firms = self.views.firms_known_at(self, point.position)
        last = max((max(s.years) for s in firms if s.years), default=None)
        if last is None:
            raise InvalidInputError("the ledger holds no register yet", field="known_at")
        entrants = [
            s
            for s in firms
            if s.first_entry_year is not None
            and s.route is not None
            and (s.baseline_year is None or s.first_entry_year > s.baseline_year)
        ]
        table = life_table(entrants, last)
        rates = {r.age: (r.rate, r.low, r.high) for r in table}
        years = range(first, last_year + 1)
        decided = self._decided(point, years, city)
        staying = _staying(entrants, last, years, city, policies, rates)
        new = _new_entries(entrants, last, years, city, policies)
        rows = []
        for fy in years:
            d = decided.get(fy, 0)
            s_mid, s_low, s_high = staying.get(fy, (0.0, 0.0, 0.0))
            n_mid, n_low, n_high, count = new.get(fy, (0.0, 0.0, 0.0, 0.0))
            rows.append(
                ForecastYear(
                    fiscal_year=fy,
                    decided_fen=d,
                    staying_fen=round(s_mid),
                    staying_low_fen=round(s_low),
                    staying_high_fen=round(s_high),
                    new_entries=round(count, 1),
                    new_entries_fen=round(n_mid),
                    new_entries_low_fen=round(n_low),
                    new_entries_high_fen=round(n_high),
                    total_fen=d + round(s_mid) + round(n_mid),
                    low_fen=d + round(s_low) + round(n_low),
                    high_fen=d + round(s_high) + round(n_high),
                )
            )
        return ForecastResult(
            known_at=point.position,
            last_register_year=last,
            city=city,
            life_table=table,
            years=rows,
        )

    def _decided(self, point: Point, years: range, city: str | None) -> dict[int, int]:
        found: dict[int, int] = defaultdict(int)
        for a in self.awards(point, city=city):
            if a.earned and a.due_fiscal_year in years:
                found[a.due_fiscal_year] += a.outstanding_fen
        return found


def _staying(
    entrants: list[FirmState],
    last: int,
    years: range,
    city: str | None,
    policies: Policies,
    rates: dict[int, tuple[float, float, float]],
) -> dict[int, tuple[float, float, float]]:
    """Expected awards of first entrants on the `last` register decided after it, by fiscal
    year: (expected, low, high)."""
    found: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    horizon = years.stop - last
    if not rates:
        return {}
    for s in entrants:
        entry = s.first_entry_year
        assert entry is not None
        if last not in s.years or entry < last - 10:
            continue
        known = {e.entitlement_id for e in entitlements(s.history(), policies)}
        weight = [1.0, 1.0, 1.0]
        for more in range(1, horizon + 1):
            age = last - entry + more - 1
            # Beyond the oldest age observed, the oldest age's rates.
            rate = rates.get(age) or rates[max(rates)]
            weight = [w * r for w, r in zip(weight, rate, strict=True)]
            for e in entitlements(_carried(s, last, more), policies):
                if e.entitlement_id in known or e.decided_year != last + more:
                    continue
                if e.due_fiscal_year in years and (city is None or s.city_code == city):
                    for i in range(3):
                        found[e.due_fiscal_year][i] += e.amount_fen * weight[i]
    return {fy: (v[0], v[1], v[2]) for fy, v in found.items()}


def _new_entries(
    entrants: list[FirmState], last: int, years: range, city: str | None, policies: Policies
) -> dict[int, tuple[float, float, float, float]]:
    """Expected first-entry awards of the coming register years' entrants, by fiscal year (the
    one after the entry): (expected, low, high, entrants)."""
    by_city: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    amounts: dict[str, list[int]] = defaultdict(list)
    observed = sorted({s.first_entry_year for s in entrants if s.first_entry_year is not None})
    recent = observed[-RECENT_COHORTS:]
    for s in entrants:
        entry = s.first_entry_year
        assert entry is not None
        place = s.award_city(entry)
        if entry in recent:
            by_city[place][entry] += 1
        if entry == last:
            # The award decided in the entry year is the first-entry award (四).
            amounts[place] += [
                e.amount_fen for e in entitlements(s.history(), policies) if e.decided_year == last
            ]
    found: dict[int, tuple[float, float, float, float]] = {}
    for fy in years:
        if fy - 1 <= last:
            continue  # entered on a register the ledger has: decided or staying already
        mid = low = high = count = 0.0
        for place, counts in by_city.items():
            if city is not None and place != city:
                continue
            series = [counts.get(y, 0) for y in recent]
            per = mean(amounts[place]) if amounts[place] else 0.0
            count += mean(series)
            mid += mean(series) * per
            low += min(series) * per
            high += max(series) * per
        found[fy] = (mid, low, high, count)
    return found
