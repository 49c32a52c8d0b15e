"""What the (九) commands take and give: a file's rows as read, and typed results."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from domain.results import Point, jsonable
from domain.social_insurance import ClaimRow, FundTotal


@dataclasses.dataclass(frozen=True, slots=True)
class HireRow:
    """One line of a hires file, read and checked on its own."""

    line: int
    uscc: str
    person_id: str
    person_name: str
    category: str
    contract_start: date
    contract_end: date | None
    """None: an open-ended contract (无固定期限劳动合同)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ContributionRow:
    """One line of a month's contributions file, read and checked on its own."""

    line: int
    uscc: str
    person_id: str
    employer_paid_fen: int


@dataclasses.dataclass(frozen=True, slots=True)
class SubsidyImportResult:
    """A hires or contributions file imported (or found recorded already: `replay`)."""

    sha256: str
    month: str | None
    """The contributions' month (None: a hires file)."""
    replay: bool
    rows: int
    recorded: int
    """Hires (contracts) or person-months newly recorded."""
    already: int
    """Rows recorded already with the same details (a replay of them)."""
    people: int
    """People whose details the vault newly holds or holds more of (a new hire's category)."""
    firms: list[str]
    position: int | None
    views_error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Claims:
    """Every hire's months as known at a point, decided, with the employment fund's totals."""

    point: Point
    claims: list[ClaimRow]
    totals: list[FundTotal]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.point.header(),
            "claims": [jsonable(r) for r in self.claims],
            "totals": [jsonable(t) for t in self.totals],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class SubsidyPaymentResult:
    """A subsidy payment as recorded (or found recorded already: `replay`)."""

    claim_id: str
    uscc: str
    person: str
    month: str
    ref: str
    amount_fen: int
    paid_on: date
    replay: bool
    paid_fen: int
    """Paid so far of the month's subsidy, this payment included."""
    subsidy_fen: int
    fund: str


@dataclasses.dataclass(frozen=True, slots=True)
class PersonHire:
    uscc: str
    contract_start: date
    contract_end: date | None
    category: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class PersonView:
    """What the ledger holds of a person: their details (from the vault) and their hires."""

    person: str
    """The pseudonym the log knows them by."""
    person_id: str
    person_name: str
    hires: list[PersonHire]


@dataclasses.dataclass(frozen=True, slots=True)
class ErasureResult:
    """A person erased (or found erased already under the same document: `replay`)."""

    person: str
    document: str
    erased_on: date
    replay: bool
    firms: list[str]
    """The employers on whose streams the erasure is recorded."""
    position: int | None
