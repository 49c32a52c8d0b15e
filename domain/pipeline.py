"""(十七) The pipeline: below-scale firms whose annualised revenue reaches the register threshold
and that are not on the register (应统尽统, "push firms that have reached the threshold to
report"), and the cultivation pool (重点培育库) just below it; and how well the pipeline at the
end of one year predicted the next year's first entries.

The rule of annualisation: each firm's latest month in the database within the twelve months
to the day (periods up to the day's month), its year-to-date revenue × 12 / the month, rounded
down to the fen; a December figure is the year's own. The threshold and the pool's share are
the policy's (`CultivationRule`, of the version that applies from the latest year).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from domain.below_scale import BelowScaleCommands, BelowScaleRow, Period, stored_row
from domain.codes import cities
from domain.errors import NotFoundError
from domain.ledger_base import checked_city
from domain.pipeline_results import Conversion, ConversionRow, Pipeline, PipelineRow
from domain.policy import CultivationRule, Policies
from domain.queries import PointInTimeQueries
from domain.results import Point

WINDOW_MONTHS = 12
"""A firm's latest figure counts only from the twelve months to the day."""


def annualised(row: BelowScaleRow, period: Period) -> tuple[int, str]:
    """The year's revenue a period's year-to-date figure stands for, and the rule applied."""
    if period.month == 12:
        return row.revenue_ytd_fen, "full year"
    return row.revenue_ytd_fen * 12 // period.month, f"ytd × 12 / {period.month}"


class PipelineQueries(BelowScaleCommands, PointInTimeQueries):
    """`pipeline`, `conversion`."""

    def pipeline(
        self,
        on: date | None = None,
        *,
        city: str | None = None,
        known_at: str | None = None,
        pool_percent: int | None = None,
    ) -> Pipeline:
        """The pipeline on a day (default today), as known at `known_at` (default now); of one
        city's firms (in the database) if given; `pool_percent` in place of the policy's."""
        checked_city(city)
        point = self.point(known_at, on)
        return self._pipeline(point, self._policies_known(known_at), city, pool_percent)

    def _policies_known(self, known_at: str | None) -> Policies:
        return (
            self.get_policies() if known_at is None else self.policies_at(self.commit_at(known_at))
        )

    def _pipeline(
        self, point: Point, policies: Policies, city: str | None, pool_percent: int | None
    ) -> Pipeline:
        policy = policies.latest
        rule = policy.cultivation_rule
        if pool_percent is not None:
            rule = CultivationRule.model_validate(
                {**rule.model_dump(), "pool_percent": pool_percent}
            )
        on = point.as_of
        register_year = self._register_year(point, on.year)
        registered = (
            {e.uscc for e in self.views.register(register_year, point)}
            if register_year is not None
            else set()
        )
        periods = self.below_scale_periods(Period.of(on), WINDOW_MONTHS, point.position)
        reached: list[PipelineRow] = []
        pool: list[PipelineRow] = []
        on_register = 0
        seen: set[str] = set()
        # The newest month first: a firm's first row met is its latest. The rows stay as the
        # events stored them until one is in the pipeline (a month is 30,000 of them).
        for month in sorted(periods, reverse=True):
            for values in periods[month][1]:
                uscc = values[0]
                if uscc in seen:
                    continue
                seen.add(uscc)
                if uscc in registered:
                    on_register += 1
                    continue
                row = stored_row(values)
                if city is not None and row.city_code != city:
                    continue
                revenue, how = annualised(row, month)
                if revenue < rule.pool_from_fen:
                    continue
                found = PipelineRow(
                    uscc,
                    row.name,
                    row.city_code,
                    row.region_code,
                    row.industry_code,
                    str(month),
                    row.revenue_ytd_fen,
                    revenue,
                    how,
                    row.employees,
                    row.source,
                )
                (reached if revenue >= rule.register_threshold_fen else pool).append(found)
        return Pipeline(
            point,
            on.isoformat(),
            rule.register_threshold_fen,
            rule.pool_from_fen,
            rule.pool_percent,
            policy.id,
            rule.clause,
            register_year,
            [
                {"period": str(m), "position": position, "rows": len(rows)}
                for m, (position, rows) in sorted(periods.items())
            ],
            _ordered(reached),
            _ordered(pool),
            on_register,
        )

    def _register_year(self, point: Point, not_after: int) -> int | None:
        """The latest register year imported by the point's position, not after `not_after`."""
        years = [
            y.year
            for y in self.views.imported_years()
            if y.year <= not_after and y.position <= point.position
        ]
        return max(years) if years else None

    def conversion(self, year: int, *, known_at: str | None = None) -> Conversion:
        """Of the firms in the pipeline at the end of `year` − 1, how many first entered in
        `year`, by city (of the firm in the database), beside the year's first entries (by the
        register's city)."""
        point = self.point(known_at, date(year, 12, 31))
        if self._register_year(point, year) != year:
            raise NotFoundError(
                f"register year {year} is not in the ledger (known at position "
                f"{point.position}): import it to measure the pipeline's conversion",
                field="year",
            )
        before = Point(point.position, point.recorded_at, date(year - 1, 12, 31))
        pipe = self._pipeline(before, self._policies_known(known_at), None, None)
        entrants = {e.uscc: e.city_code for e in self.views.register(year, point) if e.first_entry}
        in_pipeline = {r.uscc for r in (*pipe.reached, *pipe.pool)}
        rows = [
            _conversion_row(
                code,
                [r for r in pipe.reached if r.city_code == code],
                [r for r in pipe.pool if r.city_code == code],
                entrants,
                [u for u, c in entrants.items() if c == code],
                in_pipeline,
            )
            for code in sorted(cities())
        ]
        province = _conversion_row(
            "140000", pipe.reached, pipe.pool, entrants, list(entrants), in_pipeline
        )
        return Conversion(point, year, before.as_of.isoformat(), rows, province)


def _conversion_row(
    city: str,
    reached: list[PipelineRow],
    pool: list[PipelineRow],
    entrants: dict[str, str],
    city_entrants: list[str],
    in_pipeline: set[str],
) -> ConversionRow:
    from_reached = sum(1 for r in reached if r.uscc in entrants)
    from_pool = sum(1 for r in pool if r.uscc in entrants)
    size = len(reached) + len(pool)
    covered = sum(1 for u in city_entrants if u in in_pipeline)
    return ConversionRow(
        city,
        size,
        len(reached),
        len(pool),
        from_reached + from_pool,
        from_reached,
        from_pool,
        len(city_entrants),
        len(city_entrants) - covered,
        _ratio(from_reached + from_pool, size),
        _ratio(covered, len(city_entrants)),
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _ordered(rows: Iterable[PipelineRow]) -> list[PipelineRow]:
    """By city, the largest revenue first, then by USCC."""
    return sorted(rows, key=lambda r: (r.city_code, -r.annualised_revenue_fen, r.uscc))
