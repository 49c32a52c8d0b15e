"""What the pipeline (十七) and the city progress report (十四) answer (`jsonable` turns them into
JSON)."""

from __future__ import annotations

import dataclasses
from typing import Any

from domain.results import Point


@dataclasses.dataclass(frozen=True, slots=True)
class PipelineRow:
    """A below-scale firm in the pipeline, with the figures that put it there."""

    uscc: str
    name: str
    city_code: str
    region_code: str
    industry_code: str
    period: str
    """The latest month the database holds for the firm (within the twelve months to the day)."""
    revenue_ytd_fen: int
    annualised_revenue_fen: int
    rule: str
    """How the year-to-date revenue was annualised: `ytd × 12 / M` (rounded down to the fen), or
    `full year` for a December figure."""
    employees: int
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class Pipeline:
    point: Point
    on: str
    threshold_fen: int
    pool_from_fen: int
    pool_percent: int
    policy_id: str
    clause: str
    register_year: int | None
    """The register the pipeline leaves out the firms of: the latest imported for a year not
    after the day's (None: none yet)."""
    periods: list[dict[str, Any]]
    """The months read: each with the position its file was recorded at and its rows."""
    reached: list[PipelineRow]
    pool: list[PipelineRow]
    on_register: int
    """Firms of those months left out because they are on that register."""

    def to_json(self) -> dict[str, Any]:
        return {
            **self.point.header(),
            "on": self.on,
            "threshold_fen": self.threshold_fen,
            "pool_from_fen": self.pool_from_fen,
            "pool_percent": self.pool_percent,
            "policy_id": self.policy_id,
            "clause": self.clause,
            "register_year": self.register_year,
            "periods": self.periods,
            "on_register": self.on_register,
            "reached": [dataclasses.asdict(r) for r in self.reached],
            "pool": [dataclasses.asdict(r) for r in self.pool],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ConversionRow:
    """Of a city's pipeline at the end of Y−1, how many first entered in Y."""

    city_code: str
    pipeline: int
    reached: int
    pool: int
    entered: int
    """Pipeline firms (of this city in the database) that are first entrants of year Y."""
    entered_from_reached: int
    entered_from_pool: int
    first_entries: int
    """Year Y's first entrants of this city (by the register)."""
    outside_pipeline: int
    """Of them, those that were not in the pipeline (anywhere)."""
    conversion: float | None
    """entered / pipeline (None: an empty pipeline)."""
    coverage: float | None
    """first entries that were in the pipeline / first entries (None: no first entry)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Conversion:
    point: Point
    year: int
    pipeline_on: str
    cities: list[ConversionRow]
    province: ConversionRow

    def to_json(self) -> dict[str, Any]:
        return {
            **self.point.header(),
            "year": self.year,
            "pipeline_on": self.pipeline_on,
            "cities": [dataclasses.asdict(c) for c in self.cities],
            "province": dataclasses.asdict(self.province),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CityProgress:
    """One city's row of the progress report (十四)."""

    city_code: str
    city_name: str
    register_size: int
    first_entries: int
    re_entries: int
    exits: int | None
    """Firms of this city on the year before's register that are on no register of the year
    (None: the year before is not in the ledger)."""
    net_change: int | None
    """Register size less the year before's (firms that moved city count where they are)."""
    pipeline: int
    """The pipeline at the year's end: reached and pool."""
    pipeline_reached: int
    pipeline_pool: int
    target: int | None
    share_of_target: float | None
    """register_size / target, to 4 decimals."""
    rank: int | None
    """By share of target, 1 the highest; equal shares share a rank."""
    mark: str | None
    """`praise`, `criticise` or None, by the targets' rule."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProgressReport:
    point: Point
    year: int
    clause: str
    province_goal: int
    goal_year: int
    targets_from: str
    """Where the targets came from: the targets file (its name and hash), or the default."""
    praise_top: int
    criticise_bottom: int
    cities: list[CityProgress]
    province: dict[str, Any]
    trajectory: list[dict[str, Any]]
    """The province's register size each imported year up to this one, against the goal."""

    def to_json(self) -> dict[str, Any]:
        return {
            **self.point.header(),
            "year": self.year,
            "clause": self.clause,
            "province_goal": self.province_goal,
            "goal_year": self.goal_year,
            "targets_from": self.targets_from,
            "rule": {"praise_top": self.praise_top, "criticise_bottom": self.criticise_bottom},
            "cities": [dataclasses.asdict(c) for c in self.cities],
            "province": self.province,
            "trajectory": self.trajectory,
        }
