"""A register year's rows, their validation, and the diff against the year before (新入/再入/在规/退库)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

from eventsourcing.utils import get_topic

from domain.codes import (
    CodeError,
    Division,
    divisions,
    normalize_industry,
    resolve_region,
    validate_uscc,
)
from domain.enterprise import Enterprise, enterprise_id
from domain.errors import ImportRejectedError, PreconditionError, RowError
from domain.policy import Route, SizeClass
from domain.progress import stage
from domain.text import control_problem, has_control

COLUMNS = (
    "uscc",
    "name",
    "region_code",
    "industry_code",
    "size_class",
    "route",
    "first_entry_year",
)
EARLIEST_YEAR = 1949
_DIVISIONS = divisions
_GROWTH = Route.GROWTH.value
_SIZES = frozenset(SizeClass)  # str enums: a plain string is found by its value
_ROUTES = frozenset(Route)


class RegisterRow(NamedTuple):
    """One validated register row: a firm on the above-scale register of the import's year."""

    uscc: str
    name: str
    region_code: str
    """County-level unit or zone (6 digits); a 12-digit statistical code is cut to its division."""
    city_code: str
    industry_code: str
    """GB/T 4754-2017 class, 4 digits."""
    size_class: str | None
    route: str
    first_entry_year: int | None


class FieldError(NamedTuple):
    field: str
    reason: str


def parse_row(values: list[str], year: int) -> RegisterRow | list[FieldError]:
    """Validate the fields of one record for register year `year`; the row, normalised, or every
    field that is wrong."""
    if len(values) != len(COLUMNS):
        return [
            FieldError(
                "row", f"expected {len(COLUMNS)} fields ({','.join(COLUMNS)}), got {len(values)}"
            )
        ]
    errors: list[FieldError] = []
    fields = [v.strip() for v in values]
    division = _field_errors(fields, year, errors)
    if has_control("".join(values)):
        # A field with a control character is reported for that alone.
        control = {c: p for c, v in zip(COLUMNS, values, strict=True) if (p := control_problem(v))}
        errors = [e for e in errors if e.field not in control]
        errors += [FieldError(c, p) for c, p in control.items()]
        errors.sort(key=lambda e: COLUMNS.index(e.field))
    if errors or division is None:
        return errors
    return _normalised(fields, division)


def checked_row(values: list[str]) -> RegisterRow:
    """A record that `parse_row` already accepted, only normalised: the second pass of an import
    (which re-verifies its source's hash, so the record cannot have changed in between)."""
    fields = [v.strip() for v in values]
    return _normalised(fields, _DIVISIONS()[fields[2][:6]])


def _normalised(fields: list[str], division: Division) -> RegisterRow:
    """The one normalisation of a valid record: the county of a 12-digit statistical code, the
    4 digits of an industrial class, an empty route as growth, empty values as None."""
    uscc, name, _region, industry, size, route, first_entry = fields
    return RegisterRow(
        uscc,
        name,
        division.code,
        division.city_code,
        industry[-4:],
        size or None,
        route or _GROWTH,
        int(first_entry) if first_entry else None,
    )


def _field_errors(fields: list[str], year: int, errors: list[FieldError]) -> Division | None:
    """Append what is wrong with the fields to `errors`; the record's division, if its region is
    one."""
    uscc, name, region, industry, size, route, first_entry = fields
    division = None

    def required(column: str, value: str) -> bool:
        if not value:
            errors.append(FieldError(column, "missing: the field is required"))
        return bool(value)

    if required("uscc", uscc):
        try:
            validate_uscc(uscc)
        except CodeError as e:
            errors.append(FieldError("uscc", f"{uscc!r}: {e}"))
    required("name", name)
    if required("region_code", region):
        try:
            division = resolve_region(region)
        except CodeError as e:
            errors.append(FieldError("region_code", str(e)))
    if required("industry_code", industry):
        try:
            normalize_industry(industry)
        except CodeError as e:
            errors.append(FieldError("industry_code", str(e)))
    if size and size not in _SIZES:
        errors.append(
            FieldError("size_class", f"{size!r} is not one of {', '.join(SizeClass)} (or empty)")
        )
    if route and route not in _ROUTES:
        errors.append(
            FieldError("route", f"{route!r} is not one of {', '.join(Route)} (or empty for growth)")
        )
    if first_entry:
        if not (first_entry.isascii() and first_entry.isdigit() and len(first_entry) == 4):
            errors.append(FieldError("first_entry_year", f"{first_entry!r} is not a 4-digit year"))
        elif int(first_entry) > year:
            errors.append(
                FieldError("first_entry_year", f"{first_entry} is after the register year {year}")
            )
        elif int(first_entry) < EARLIEST_YEAR:
            errors.append(
                FieldError("first_entry_year", f"{first_entry} is before {EARLIEST_YEAR}")
            )
    return division


class RegisterSource(Protocol):
    """A register year's rows: their hash, and a fresh pass over them on each call of `records`."""

    @property
    def name(self) -> str:
        """How errors name the source."""
        ...

    @property
    def sha256(self) -> str:
        """What identifies the year's file: the same rows, the same import."""
        ...

    @property
    def encoding(self) -> str: ...

    def records(
        self, *, checked: bool = False
    ) -> Iterator[tuple[int, RegisterRow | list[FieldError]]]:
        """(line, row or what is wrong with it), for every record. `checked`: a pass over
        records already validated, which are only normalised."""
        ...


class RegisterRows:
    """A register year's records, wherever they come from (a file's lines, a stream of gRPC
    messages): a source says where each record starts and gives its values, or what is wrong
    with it; `records` validates them, or, once they have been, normalises them.

    A pass over the records is made afresh at each call of `records`, so a source is read twice
    (validation, then writing) and never held by the import."""

    name: str
    """How errors name the source: a file's path, or "row" for messages."""
    year: int
    sha256: str
    encoding: str

    def raw(self) -> Iterator[tuple[int, list[str] | tuple[FieldError, ...]]]:
        """(line, the record's values, or a tuple of what is wrong with it), in order."""
        raise NotImplementedError

    def records(
        self, *, checked: bool = False
    ) -> Iterator[tuple[int, RegisterRow | list[FieldError]]]:
        year = self.year
        for line, item in self.raw():
            if type(item) is tuple:
                yield line, list(item)
            elif checked:
                yield line, checked_row(cast(list[str], item))
            else:
                yield line, parse_row(cast(list[str], item), year)


class PriorFirm(NamedTuple):
    """The little the diff needs to know of a firm already in the ledger."""

    uscc: str
    originator_id: uuid.UUID
    version: int
    name: str
    region_code: str
    industry_code: str
    size_class: str | None
    years: frozenset[int]
    first_entry_year: int | None
    baseline_year: int | None
    route: str | None = None
    """The route of the firm's first entry, if the ledger knows one."""


def check_against_ledger(row: RegisterRow, prior: PriorFirm | None) -> list[FieldError]:
    """Facts in a row that contradict what the ledger already recorded of the firm."""
    if (
        prior is None
        or row.first_entry_year is None
        or row.first_entry_year == prior.first_entry_year
    ):
        return []
    known = (
        f"the ledger recorded {prior.first_entry_year}"
        if prior.first_entry_year is not None
        else f"the ledger has the firm on the register since {min(prior.years)} with no first entry year"
    )
    return [
        FieldError(
            "first_entry_year",
            f"{row.first_entry_year} contradicts what {known}; leave it empty or give the recorded "
            "year (a change to an imported year is a correction)",
        )
    ]


@dataclass
class DiffCounts:
    on_baseline: int = 0
    entered: int = 0
    re_entered: int = 0
    retained: int = 0
    left: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "on_baseline": self.on_baseline,
            "entered": self.entered,
            "re_entered": self.re_entered,
            "retained": self.retained,
            "left": self.left,
        }


@dataclass
class RegisterDiff:
    """Turns a register year into enterprise events, one firm at a time, against the year before."""

    year: int
    baseline: bool
    actor: str
    source_sha256: str
    prior: Mapping[str, PriorFirm]
    counts: DiffCounts = field(default_factory=DiffCounts)
    moved: dict[uuid.UUID, int] = field(default_factory=dict)
    """Firms whose events went on after `prior` was read (payments, while the import was being
    checked): their latest versions, which the diff carries on from."""

    def _event(self, cls: type[Any], firm_id: uuid.UUID, version: int, **kwargs: Any) -> Any:
        return cls(
            originator_id=firm_id,
            originator_version=version,
            timestamp=cls.create_timestamp(),
            actor=self.actor,
            source_sha256=self.source_sha256,
            **kwargs,
        )

    def events_for_row(self, row: RegisterRow) -> list[Any]:
        """The events one row of the register adds to its firm's history."""
        prior = self.prior.get(row.uscc)
        firm_id = enterprise_id(row.uscc) if prior is None else prior.originator_id
        events: list[Any] = []
        y = self.year
        if prior is None:
            events.append(
                self._event(
                    Enterprise.Registered,
                    firm_id,
                    1,
                    originator_topic=ENTERPRISE_TOPIC,
                    uscc=row.uscc,
                    name=row.name,
                    region_code=row.region_code,
                    industry_code=row.industry_code,
                    size_class=row.size_class,
                    year=y,
                )
            )
            version = 1
        else:
            version = max(prior.version, self.moved.get(firm_id, 0))
            changes: list[tuple[type[Any], dict[str, Any]]] = []
            if row.name != prior.name:
                changes.append((Enterprise.NameChanged, {"name": row.name}))
            if row.region_code != prior.region_code:
                changes.append((Enterprise.RegionChanged, {"region_code": row.region_code}))
            if row.industry_code != prior.industry_code:
                changes.append((Enterprise.IndustryChanged, {"industry_code": row.industry_code}))
            # An empty size class says nothing new: the last known class stands.
            if row.size_class is not None and row.size_class != prior.size_class:
                changes.append((Enterprise.SizeClassChanged, {"size_class": row.size_class}))
            for cls, kwargs in changes:
                version += 1
                events.append(self._event(cls, firm_id, version, year=y, **kwargs))
        version += 1
        if self.baseline:
            self.counts.on_baseline += 1
            route = row.route if row.first_entry_year is not None else None
            events.append(
                self._event(
                    Enterprise.OnBaselineRegister,
                    firm_id,
                    version,
                    year=y,
                    first_entry_year=row.first_entry_year,
                    route=route,
                )
            )
        elif prior is not None and (y - 1) in prior.years:
            self.counts.retained += 1
            events.append(self._event(Enterprise.RetainedInRegister, firm_id, version, year=y))
        elif self._was_on_register_before(row, prior):
            self.counts.re_entered += 1
            first_entry = row.first_entry_year if prior is None else prior.first_entry_year
            events.append(
                self._event(
                    Enterprise.ReEnteredRegister,
                    firm_id,
                    version,
                    year=y,
                    first_entry_year=first_entry,
                )
            )
        else:
            self.counts.entered += 1
            events.append(
                self._event(Enterprise.EnteredRegister, firm_id, version, year=y, route=row.route)
            )
        return events

    def _was_on_register_before(self, row: RegisterRow, prior: PriorFirm | None) -> bool:
        if row.first_entry_year is not None and row.first_entry_year < self.year:
            return True
        if prior is None:
            return False
        return bool(prior.years) or (
            prior.first_entry_year is not None and prior.first_entry_year < self.year
        )

    def left_events(self, present: set[str] | frozenset[str]) -> Iterator[Any]:
        """LeftRegister for every firm on last year's register and absent from this one."""
        if self.baseline:
            return
        for prior in self.prior.values():
            if (self.year - 1) in prior.years and prior.uscc not in present:
                self.counts.left += 1
                yield self._event(
                    Enterprise.LeftRegister,
                    prior.originator_id,
                    max(prior.version, self.moved.get(prior.originator_id, 0)) + 1,
                    year=self.year,
                )


ENTERPRISE_TOPIC = get_topic(Enterprise)


def validate_year(year: int, source: RegisterSource, prior: Mapping[str, PriorFirm]) -> set[str]:
    """The first pass over a register year: every bad line (ImportRejectedError, naming each), or
    the set of USCCs on the register."""
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    with stage(f"check register {year}") as bar:
        for line, row in source.records():
            bar.advance()
            if isinstance(row, list):
                errors.extend(RowError(line, e.field, e.reason) for e in row)
                continue
            if row.uscc in seen:
                duplicate = f"{row.uscc} duplicates line {seen[row.uscc]}"
                errors.append(RowError(line, "uscc", duplicate))
                continue
            seen[row.uscc] = line
            errors.extend(
                RowError(line, e.field, e.reason)
                for e in check_against_ledger(row, prior.get(row.uscc))
            )
    if errors:
        raise ImportRejectedError(source.name, errors)
    if not seen:
        raise ImportRejectedError(
            source.name, [RowError(1, "file", f"no rows: a register of {year} cannot be empty")]
        )
    return set(seen)


def check_year_order(
    years: Mapping[int, Any], baseline_year: int | None, year: int, baseline: bool
) -> None:
    """A register year comes after the one before it, and the first is the baseline."""
    if not years:
        if not baseline:
            raise PreconditionError(
                f"the ledger has no register yet: the first year imported must be the baseline "
                f"(import {year} as the baseline)",
                field="baseline",
            )
        return
    if baseline:
        raise PreconditionError(
            f"the baseline is already imported ({baseline_year}); import {year} as a later year, "
            "not as the baseline",
            field="baseline",
        )
    first, last = min(years), max(years)
    if year < first:
        raise PreconditionError(f"register year {year} is before the baseline year {first}")
    if year - 1 not in years:
        raise PreconditionError(
            f"register year {year} needs {year - 1} imported first (the ledger has {first}-{last})"
        )
