"""The award policy as data: 晋办发〔2020〕38号 and later versions, validated with pydantic."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)


class Route(StrEnum):
    """How a firm first entered the register: (一) growth, merger, individual conversion,
    (二) new build, (三) sector conversion."""

    GROWTH = "growth"
    NEW_BUILD = "new_build"
    SECTOR_CONVERSION = "sector_conversion"
    MERGER = "merger"
    INDIVIDUAL_CONVERSION = "individual_conversion"


class SizeClass(StrEnum):
    """NBS size class of an industrial enterprise (国统字〔2017〕213号)."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


class DesignationKind(StrEnum):
    """What a certifying authority designates a firm, for a period: a strategic emerging industry
    firm (战略性新兴产业) or a valid tech-based SME (科技型中小企业, 在有效期内)."""

    STRATEGIC_EMERGING = "strategic_emerging"
    TECH_SME = "tech_sme"


Fen = Annotated[StrictInt, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _empty(value: object) -> bool:
    return not value


def _none(value: object) -> bool:
    return value is None


# Keys added after versions were adopted are left out of the canonical JSON while they hold their
# default (`exclude_if`), so that the content hash of a version already in a log never changes.


class Bonus(_Model):
    """A percentage added to an award's base amount for a firm holding a designation."""

    designation: DesignationKind
    percent: Annotated[StrictInt, Field(ge=1, le=1000)]
    valid_in: Literal["entry_year", "decided_year"] = "entry_year"
    """The designation counts if it was valid on any day of this register year: the first-entry
    year (the default) or the award's decided year."""


class Amounts(_Model):
    """How an award's amount is given: a base, amounts by city (a table of city division codes,
    default the base) and bonuses by designation, which add to one another."""

    amount_fen: Fen
    by_city: dict[str, Fen] = Field(default_factory=dict, exclude_if=_empty)
    """City division code (e.g. 140100) -> amount for an award that belongs to that city."""
    bonuses: tuple[Bonus, ...] = Field(default=(), exclude_if=_empty)

    @field_validator("by_city")
    @classmethod
    def _cities(cls, table: dict[str, int]) -> dict[str, int]:
        from domain.codes import cities

        unknown = sorted(set(table) - set(cities()))
        if unknown:
            raise ValueError(f"not city division codes: {', '.join(unknown)}")
        return table

    @field_validator("bonuses")
    @classmethod
    def _one_per_designation(cls, bonuses: tuple[Bonus, ...]) -> tuple[Bonus, ...]:
        if len({b.designation for b in bonuses}) != len(bonuses):
            raise ValueError("one bonus per designation")
        return bonuses

    def amount(
        self, city: str, holds: Callable[[Bonus], bool]
    ) -> tuple[int, int, tuple[Bonus, ...]]:
        """(base, amount, bonuses applied) for an award of `city`, where `holds` says whether the
        firm held a bonus's designation when the bonus asks. The bonuses add to one another and
        the result is rounded half up to the fen."""
        base = self.by_city.get(city, self.amount_fen)
        applied = tuple(b for b in self.bonuses if holds(b))
        return base, with_percent(base, sum(b.percent for b in applied)), applied


def with_percent(base_fen: int, percent: int) -> int:
    """`base_fen` plus `percent` per cent of it, rounded half up to the fen (the one rounding rule)."""
    whole, rest = divmod(base_fen * (100 + percent), 100)
    return whole + (1 if rest * 2 >= 100 else 0)


class FirstEntryRule(Amounts):
    clause: str
    kind: Literal["first_entry"] = "first_entry"


class RetentionAward(Amounts):
    kind: str = Field(pattern=r"^retention_[a-z0-9]+$")
    consecutive_years: Annotated[StrictInt, Field(ge=1, le=10)]


class RetentionRule(_Model):
    clause: str
    counting: Literal["years_after_entry", "entry_year_counts"]
    awards: tuple[RetentionAward, ...]

    @field_validator("awards")
    @classmethod
    def _distinct(cls, awards: tuple[RetentionAward, ...]) -> tuple[RetentionAward, ...]:
        if len({a.kind for a in awards}) != len(awards):
            raise ValueError("retention award kinds must be distinct")
        if len({a.consecutive_years for a in awards}) != len(awards):
            raise ValueError("two retention awards count the same number of years")
        return awards


class PaymentRule(_Model):
    lag_years: Annotated[StrictInt, Field(ge=0, le=5)]


class GuaranteeWindow(_Model):
    clause: str
    years: Annotated[StrictInt, Field(ge=1, le=10)]
    size_classes: tuple[SizeClass, ...]
    fee_cap_bp: Annotated[StrictInt, Field(ge=0, le=10_000)]


class EnergyWindow(_Model):
    clause: str
    years: Annotated[StrictInt, Field(ge=1, le=10)]


class Windows(_Model):
    guarantee: GuaranteeWindow
    energy: EnergyWindow


class PriorityRule(_Model):
    """(六)(七): first entrants' priority in provincial science programmes (if a valid tech-based
    SME) and in technical-transformation funds, within a window of register years from entry."""

    science_clause: str = "(六)"
    upgrade_clause: str = "(七)"
    years: Annotated[StrictInt, Field(ge=1, le=10)] = 3
    """The entry year and the years after it: 3 is the entry year and the two after it."""


class CultivationRule(_Model):
    """(十七) the below-scale database and (十四)(一) the province's goal: the register threshold a
    below-scale firm's annualised revenue is measured against (应统尽统), the share of it from
    which a firm is in the cultivation pool (重点培育库), and the goal the progress report tracks."""

    clause: str = "(十七)"
    register_threshold_fen: Annotated[StrictInt, Field(gt=0)] = 2_000_000_000
    """20 million yuan of main-business revenue a year: the above-scale threshold."""
    pool_percent: Annotated[StrictInt, Field(ge=1, le=99)] = 75
    """A firm whose annualised revenue is at least this share of the threshold, and below it."""
    progress_clause: str = "(十四)"
    province_goal: Annotated[StrictInt, Field(gt=0)] = 10_000
    """(一): more than 10,000 above-scale industrial firms ..."""
    goal_year: Annotated[StrictInt, Field(ge=1990, le=2100)] = 2025
    """... by the end of this year."""

    @property
    def pool_from_fen(self) -> int:
        """The least annualised revenue in the pool: the threshold's share, rounded up to a fen."""
        return -(-self.register_threshold_fen * self.pool_percent // 100)


class SocialInsuranceRule(_Model):
    """(九): first entrants' hires of hard-to-employ people (就业困难人员) on contracts of at
    least `min_contract_years`, whose social insurance the employer pays in full, have what the
    employer paid subsidised for at most `months` months a hire, from the employment fund."""

    clause: str = "(九)"
    months: Annotated[StrictInt, Field(ge=1, le=120)] = 36
    """"最长不超过3年": counted from the month the hire's first contract starts."""
    min_contract_years: Annotated[StrictInt, Field(ge=1, le=10)] = 1
    """"签订1年以上劳动合同"."""
    hire_window_years: Annotated[StrictInt, Field(ge=1, le=10)] | None = 3
    """The hire's first contract starts in the first-entry year or the years after it: 3 is the
    entry year and the two after it (the clause speaks of first entrants, not of a window: this
    is the ledger's reading). None: no window, any hire of a first entrant."""


class Policy(_Model):
    """One version of the award rules. Its content hash identifies it in the log."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    issued_on: date
    applies_from: Annotated[StrictInt, Field(ge=1990, le=2100)] | None = Field(
        default=None, exclude_if=_none
    )
    """The first register year of first entry this version governs (None: from the beginning)."""
    eligible_routes: tuple[Route, ...]
    first_entry: FirstEntryRule
    retention: RetentionRule
    payment: PaymentRule
    windows: Windows
    priority: PriorityRule | None = Field(default=None, exclude_if=_none)
    """(六)(七); None: the defaults of `PriorityRule`."""
    cultivation: CultivationRule | None = Field(default=None, exclude_if=_none)
    """(十七)(十四)(一); None: the defaults of `CultivationRule`."""
    social_insurance: SocialInsuranceRule | None = Field(default=None, exclude_if=_none)
    """(九); None: the defaults of `SocialInsuranceRule`."""

    @model_validator(mode="after")
    def _kinds_distinct(self) -> Policy:
        if self.first_entry.kind in {a.kind for a in self.retention.awards}:
            raise ValueError("award kinds must be distinct")
        return self

    def canonical_json(self) -> str:
        """The policy content as canonical JSON (sorted keys, no spaces): what the hash covers."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.first_entry.kind, *(a.kind for a in self.retention.awards))

    def clause_of(self, kind: str) -> str:
        return self.first_entry.clause if kind == self.first_entry.kind else self.retention.clause

    @property
    def priority_rule(self) -> PriorityRule:
        return self.priority or PriorityRule()

    @property
    def cultivation_rule(self) -> CultivationRule:
        return self.cultivation or CultivationRule()

    @property
    def social_insurance_rule(self) -> SocialInsuranceRule:
        return self.social_insurance or SocialInsuranceRule()

    @property
    def starts(self) -> int:
        """The first entry year this version governs from (0: from the beginning)."""
        return self.applies_from or 0


@dataclass(frozen=True)
class Policies:
    """The policy versions adopted, each governing the firms whose first entry falls in or after
    its `applies_from` and before the next version's."""

    versions: tuple[Policy, ...]
    """In order of `applies_from` (a version without one first)."""

    @classmethod
    def of(cls, versions: Iterable[Policy]) -> Policies:
        ordered = tuple(sorted(versions, key=lambda p: p.starts))
        starts = [p.starts for p in ordered]
        if len(set(starts)) != len(starts):
            raise ValueError("two policy versions apply from the same year")
        return cls(ordered)

    def governing(self, first_entry_year: int) -> Policy:
        """The version with the latest `applies_from` not after the year (the earliest version
        when none is that early)."""
        chosen = self.versions[0]
        for version in self.versions:
            if version.starts <= first_entry_year:
                chosen = version
        return chosen

    @property
    def latest(self) -> Policy:
        """The version that applies from the latest year: the one whose province-wide
        parameters (the register threshold, the goal) are in force."""
        return self.versions[-1]

    def with_version(self, policy: Policy) -> Policies:
        return Policies.of((*self.versions, policy))

    def without(self, content_hash: str) -> Policies:
        """The versions but the one of this content: those a version's adoption re-derives
        against."""
        return Policies.of(v for v in self.versions if v.content_hash != content_hash)


DEFAULT_POLICY_FILE = "jinbanfa-2020-38.toml"


class PolicyFileError(ValueError):
    """A policy file that cannot be read or is not a valid policy; the message says where."""


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (TOML); the packaged 38号 policy when no path is given."""
    name = str(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        if path is None:
            packaged = resources.files("domain").joinpath("policies", DEFAULT_POLICY_FILE)
            text = packaged.read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        return Policy.model_validate(tomllib.loads(text))
    except OSError as e:
        raise PolicyFileError(f"{name}: cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise PolicyFileError(f"{name}: not valid TOML: {e}") from e
    except ValidationError as e:
        lines = [
            f"{name}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in e.errors()
        ]
        raise PolicyFileError("\n".join(lines)) from e


def policy_from_json(content: str) -> Policy:
    """Rebuild a policy from the canonical JSON recorded in the log."""
    return Policy.model_validate_json(content)
