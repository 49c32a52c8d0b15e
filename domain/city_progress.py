"""(十四) The city progress report: for each of the 11 cities, the register at the year's end, its
first entries, re-entries and exits, the net change, the pipeline, and the share of the city's
target reached, ranked, with the cities to praise (表扬) and to criticise (通报) marked; and the
province's trajectory toward the goal of (一).

Targets come from a targets file for the year, or by default from the province goal split by
each city's share of the latest register before the year (the register the year started from:
with the year's own register every city would reach the same share), the city targets adding up
to the goal by the largest remainders. A city with no target gets no share, rank or mark.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from fractions import Fraction
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from domain.codes import cities
from domain.errors import NotFoundError, PreconditionError
from domain.pipeline import PipelineQueries
from domain.pipeline_results import CityProgress, ProgressReport

PROVINCE = "140000"


class Targets(BaseModel):
    """A year's targets file: each city's register size to reach by the year's end, and the rule
    of the marks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: Annotated[StrictInt, Field(ge=1990, le=2100)]
    targets: dict[str, Annotated[StrictInt, Field(gt=0)]]
    """City code -> the firms on its register the year should end with."""
    province_goal: Annotated[StrictInt, Field(gt=0)] | None = None
    """The province's total for the year (default: the cities' targets added up)."""
    praise_top: Annotated[StrictInt, Field(ge=0, le=11)] = 3
    """The cities ranked this high or higher by share of target are praised."""
    criticise_bottom: Annotated[StrictInt, Field(ge=0, le=11)] = 3
    """The cities ranked this low or lower (counted from the bottom) are criticised, unless
    praised."""
    source: str = ""
    """Where the file came from (its name and hash): set by the reader."""

    @field_validator("targets")
    @classmethod
    def _cities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(cities()))
        if unknown:
            raise ValueError(
                f"not Shanxi city codes: {', '.join(unknown)} (one of {', '.join(sorted(cities()))})"
            )
        return value


def split_goal(goal: int, sizes: dict[str, int]) -> dict[str, int]:
    """The goal split by each city's share of `sizes`, adding up to the goal: each city gets the
    whole part of its share, and the firms left go one each to the largest remainders (ties to
    the lower city code). A city of size 0 gets nothing."""
    total = sum(sizes.values())
    if total == 0:
        return {}
    exact = {c: Fraction(goal * n, total) for c, n in sizes.items() if n > 0}
    split = {c: int(q) for c, q in exact.items()}
    left = goal - sum(split.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - split[c]), c))[:left]:
        split[c] += 1
    return split


def ranks(shares: dict[str, Fraction]) -> tuple[dict[str, int], dict[str, int]]:
    """Each city's rank by share, from the top and from the bottom (equal shares, equal rank:
    1 + the number of cities strictly above, or strictly below)."""
    top = {c: 1 + sum(1 for o in shares.values() if o > s) for c, s in shares.items()}
    bottom = {c: 1 + sum(1 for o in shares.values() if o < s) for c, s in shares.items()}
    return top, bottom


class ProgressQueries(PipelineQueries):
    """`progress`."""

    def progress(
        self, year: int, *, targets: Targets | None = None, known_at: str | None = None
    ) -> ProgressReport:
        """The progress report of `year`, as known at `known_at` (default now): a report
        reproduced as it was issued."""
        point = self.point(known_at, date(year, 12, 31))
        imported = sorted(
            y.year for y in self.views.imported_years() if y.position <= point.position
        )
        if year not in imported:
            raise NotFoundError(
                f"register year {year} is not in the ledger (known at position "
                f"{point.position}; imported: {', '.join(map(str, imported)) or 'none'})",
                field="year",
            )
        if targets is not None and targets.year != year:
            raise PreconditionError(
                f"the targets file is for {targets.year}, not {year}: give the year's own",
                field="targets",
            )
        policies = self._policies_known(known_at)
        rule = policies.latest.cultivation_rule
        sizes = {(s.year, s.city_code): s for s in self.views.register_sizes(point)}
        cur = {e.uscc: e.city_code for e in self.views.register(year, point)}
        before_year = year - 1 if year - 1 in imported else None
        prev = (
            {e.uscc: e.city_code for e in self.views.register(before_year, point)}
            if before_year is not None
            else None
        )
        exits = Counter(c for u, c in (prev or {}).items() if u not in cur)
        pipe = self._pipeline(point, policies, None, None)
        reached = Counter(r.city_code for r in pipe.reached)
        pool = Counter(r.city_code for r in pipe.pool)
        codes = sorted(cities())
        if targets is not None:
            city_targets = dict(targets.targets)
            goal = targets.province_goal or sum(city_targets.values())
            targets_from = targets.source or "targets file"
            praise_top, criticise_bottom = targets.praise_top, targets.criticise_bottom
        else:
            share_year = max((y for y in imported if y < year), default=year)
            share_sizes = {
                c: sizes[(share_year, c)].size if (share_year, c) in sizes else 0 for c in codes
            }
            goal = rule.province_goal
            city_targets = split_goal(goal, share_sizes)
            targets_from = (
                f"default: the province goal {goal} split by each city's share of the "
                f"{share_year} register"
            )
            praise_top = criticise_bottom = 3
        size = {c: sizes[(year, c)].size if (year, c) in sizes else 0 for c in codes}
        shares = {c: Fraction(size[c], t) for c, t in city_targets.items()}
        top, bottom = ranks(shares)
        rows = []
        for c in codes:
            s = sizes.get((year, c))
            mark = None
            if c in top and top[c] <= praise_top:
                mark = "praise"
            elif c in bottom and bottom[c] <= criticise_bottom:
                mark = "criticise"
            rows.append(
                CityProgress(
                    c,
                    cities()[c].name,
                    size[c],
                    s.first_entries if s else 0,
                    s.re_entries if s else 0,
                    exits[c] if prev is not None else None,
                    size[c] - sum(1 for v in prev.values() if v == c) if prev is not None else None,
                    reached[c] + pool[c],
                    reached[c],
                    pool[c],
                    city_targets.get(c),
                    round(float(shares[c]), 4) if c in shares else None,
                    top.get(c),
                    mark,
                )
            )
        total = sum(size.values())
        province = {
            "city_code": PROVINCE,
            "register_size": total,
            "first_entries": sum(r.first_entries for r in rows),
            "re_entries": sum(r.re_entries for r in rows),
            "exits": sum(exits.values()) if prev is not None else None,
            "net_change": total - len(prev) if prev is not None else None,
            "pipeline": len(pipe.reached) + len(pipe.pool),
            "pipeline_reached": len(pipe.reached),
            "pipeline_pool": len(pipe.pool),
            "target": goal,
            "share_of_target": round(total / goal, 4),
        }
        trajectory = [
            {
                "year": y,
                "register_size": sum(s.size for (sy, _), s in sizes.items() if sy == y),
            }
            for y in imported
            if y <= year
        ]
        return ProgressReport(
            point,
            year,
            rule.progress_clause,
            rule.province_goal,
            rule.goal_year,
            targets_from,
            praise_top,
            criticise_bottom,
            rows,
            province,
            trajectory,
        )
