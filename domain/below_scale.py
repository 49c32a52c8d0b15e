"""(十七) The below-scale database (规下工业企业基础信息库): each month's file of the industrial
firms below the threshold, as tax or statistics report them, with their main-business revenue
for the year to that month.

A period (a month) is one aggregate: its first file is `PeriodReported`, a file re-issued for it
later `PeriodReissued` (a correction: what it added, removed and changed is recorded with it).
Each event carries the period's rows whole, so "what the database said at position P" is the
latest event of each period by then, and nothing is edited. The firms are the register's
enterprises (the same USCC, checked the same way); a file may name firms already on the register
(tax data cover every firm): they are kept, and the pipeline leaves them out.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, NamedTuple

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.command_results import BelowScaleResult
from domain.enterprise import NAMESPACE
from domain.errors import BelowScaleRejectedError, InvalidInputError, RowError
from domain.ledger_base import LedgerBase
from domain.text import checked_text

BELOW_SCALE_COLUMNS = (
    "uscc",
    "name",
    "region_code",
    "industry_code",
    "revenue_ytd_fen",
    "employees",
    "source",
)


class Source(StrEnum):
    """Who reported the figures: the departments that share the database."""

    TAX = "tax"
    STATISTICS = "statistics"
    MARKET_REGULATION = "market_regulation"


class BelowScaleRow(NamedTuple):
    """One firm of a period's file, checked: `region_code` the county-level unit, `city_code` its
    city, `industry_code` the 4-digit GB/T 4754-2017 class."""

    uscc: str
    name: str
    region_code: str
    city_code: str
    industry_code: str
    revenue_ytd_fen: int
    employees: int
    source: str

    def stored(self) -> list[Any]:
        """As the period's event stores it (the city follows from the region)."""
        return [
            self.uscc,
            self.name,
            self.region_code,
            self.city_code,
            self.industry_code,
            self.revenue_ytd_fen,
            self.employees,
            self.source,
        ]


_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """A calendar month, YYYY-MM."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str, field: str = "period") -> Period:
        found = _PERIOD.fullmatch(text)
        if found is None:
            raise InvalidInputError(
                f"{text!r} is not a month: write it YYYY-MM, e.g. 2026-03", field=field
            )
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def back(self, months: int) -> Period:
        index = self.year * 12 + self.month - 1 - months
        return Period(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def period_id(period: Period) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"below-scale/{period}")


def rows_hash(rows: Sequence[BelowScaleRow]) -> str:
    """The hash of a period's content, whatever the order or the encoding of its file: the same
    firms with the same figures are the same period."""
    canonical = json.dumps(sorted(r.stored() for r in rows), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class BelowScalePeriod(Aggregate):
    """One month of the below-scale database: its rows as last reported."""

    class PeriodReported(Aggregate.Created):
        period: str
        sha256: str
        content_hash: str
        rows: list[list[Any]]
        counts: dict[str, int]
        actor: str

    class PeriodReissued(Aggregate.Event):
        """The period's file re-issued: its rows replace the period's, the differences counted."""

        sha256: str
        content_hash: str
        rows: list[list[Any]]
        counts: dict[str, int]
        reason: str
        actor: str

        def apply(self, period: Any) -> None:
            period.sha256, period.content_hash = self.sha256, self.content_hash
            period.rows = self.rows

    def __init__(
        self,
        period: str,
        sha256: str,
        content_hash: str,
        rows: list[list[Any]],
        counts: dict[str, int],
        actor: str,
    ) -> None:
        self.period = period
        self.sha256 = sha256
        self.content_hash = content_hash
        self.rows = rows


def stored_row(values: Sequence[Any]) -> BelowScaleRow:
    """A row as a period's event stored it."""
    return BelowScaleRow(*values)


def changes(old: Sequence[Sequence[Any]], new: Sequence[BelowScaleRow]) -> dict[str, int]:
    """What a re-issued file does to the period: firms added, removed, with other figures, the
    same."""
    before = {r[0]: list(r) for r in old}
    after = {r.uscc: r.stored() for r in new}
    changed = sum(1 for u, r in after.items() if u in before and before[u] != r)
    added = sum(1 for u in after if u not in before)
    return {
        "rows": len(new),
        "added": added,
        "removed": sum(1 for u in before if u not in after),
        "changed": changed,
        "unchanged": len(after) - added - changed,
    }


class BelowScaleCommands(LedgerBase):
    """`import_below_scale`."""

    def import_below_scale(
        self,
        period: str,
        name: str,
        sha256: str,
        rows: list[tuple[int, BelowScaleRow]],
        *,
        actor: str,
        unreadable: Sequence[RowError] = (),
        reason: str | None = None,
    ) -> BelowScaleResult:
        """Record a period's file (`rows`: each with its line), all or none.

        The same content again (the same file, or the same rows in another order or encoding)
        changes nothing; other content for a period already reported is a correction
        (`PeriodReissued`, with `reason` or "re-issued by its source"). Every bad line is listed,
        with those the reader could not read (`unreadable`); a firm named twice is one of them.
        """
        checked_text(actor, "actor")
        if reason is not None:
            checked_text(reason, "reason")
        month = Period.parse(period)
        this_month = Period.of(self.today())
        if month > this_month:
            raise InvalidInputError(
                f"{month} has not begun (today is {self.today()}): a period's figures are "
                "reported after it",
                field="period",
            )
        self.ledger_book()
        errors: list[RowError] = list(unreadable)
        seen: dict[str, int] = {}
        for line, row in rows:
            first = seen.setdefault(row.uscc, line)
            if first != line:
                errors.append(RowError(line, "uscc", f"{row.uscc} is on line {first} already"))
        if errors:
            raise BelowScaleRejectedError(name, sorted(errors, key=lambda e: e.line))
        checked = [row for _, row in rows]
        content = rows_hash(checked)
        stored = [r.stored() for r in checked]
        on_register = self._on_register(month, {r.uscc for r in checked})
        try:
            current: BelowScalePeriod = self._get(period_id(month))
        except AggregateNotFoundError:
            counts = {"rows": len(checked), "on_register": on_register}
            book = BelowScalePeriod._create(
                BelowScalePeriod.PeriodReported,
                id=period_id(month),
                period=str(month),
                sha256=sha256,
                content_hash=content,
                rows=stored,
                counts=counts,
                actor=actor,
            )
            return self._period_saved(book, str(month), sha256, counts, corrected=False)
        if current.content_hash == content:
            return BelowScaleResult(str(month), sha256, True, False, {"rows": len(checked)}, None)
        counts = {**changes(current.rows, checked), "on_register": on_register}
        current.trigger_event(
            BelowScalePeriod.PeriodReissued,
            sha256=sha256,
            content_hash=content,
            rows=stored,
            counts=counts,
            reason=reason or "re-issued by its source",
            actor=actor,
        )
        return self._period_saved(current, str(month), sha256, counts, corrected=True)

    def _period_saved(
        self,
        period: BelowScalePeriod,
        month: str,
        sha256: str,
        counts: dict[str, int],
        *,
        corrected: bool,
    ) -> BelowScaleResult:
        recordings = self.save_or_conflict(
            f"while the below-scale period {month} was recorded", period
        )
        return BelowScaleResult(
            month, sha256, False, corrected, counts, max(r.notification.id for r in recordings)
        )

    def _on_register(self, month: Period, usccs: set[str]) -> int:
        """How many of the firms are on the latest register imported for a year not after the
        period's (the pipeline leaves them out)."""
        years = [y.year for y in self.views.imported_years() if y.year <= month.year]
        if not years:
            return 0
        return sum(1 for e in self.views.register(max(years), None) if e.uscc in usccs)

    def below_scale_periods(
        self, last: Period, months: int, position: int | None
    ) -> dict[Period, tuple[int, list[list[Any]]]]:
        """The periods of the `months` months ending at `last` the database holds, as known at
        `position` (None: now): each with the position of its file then in force, and its rows
        as the event stores them (`stored_row` reads one)."""
        found: dict[Period, tuple[int, list[list[Any]]]] = {}
        for back in range(months):
            month = last.back(back)
            entries = [
                e
                for e in self.store.select_trail(period_id(month))
                if position is None or e.position <= position
            ]
            if not entries:
                continue
            (event,) = self.decoded(entries[-1:])
            found[month] = (entries[-1].position, event.rows)
        return found
