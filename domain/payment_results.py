"""The typed results of the money's path: the budget, payment batches and their orders, the
book's commands, and the budget forecast (`domain.results` holds the ledger's other answers)."""

from __future__ import annotations

import dataclasses
from datetime import date


@dataclasses.dataclass(frozen=True, slots=True)
class BudgetRow:
    """A fund's appropriation of one fiscal year and what the batches drew on it."""

    fiscal_year: int
    fund: str
    subject: str
    appropriated_fen: int
    committed_fen: int
    """Approved batches (published and released ones included), less what objections took out."""
    released_fen: int
    paid_fen: int
    """Paid (net of recoveries) against the awards released in the fund's batches."""
    remaining_fen: int
    """Appropriated less committed."""
    documents: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class BatchAward:
    """An award in a payment batch."""

    entitlement_id: str
    uscc: str
    name: str
    city_code: str
    kind: str
    clause: str
    policy_id: str
    amount_fen: int
    """Outstanding when proposed (released: outstanding on the release day)."""
    status: str
    """in_batch, objected (an objection took it out), released, or withheld (at release)."""
    note: str | None = None
    """Why it was withheld, or the objection's reason."""
    paid_fen: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class BatchObjection:
    uscc: str
    reason: str
    received_on: date
    hold_document: str
    removed: list[str]
    removed_fen: int
    actor: str


@dataclasses.dataclass(frozen=True, slots=True)
class BatchView:
    """A payment batch: where it stands, who did each step, its awards."""

    batch_id: str
    fiscal_year: int
    city: str | None
    fund: str
    status: str
    awards_count: int
    total_fen: int
    """The awards left in it (released: the amount released)."""
    proposed_on: date
    proposed_by: str
    approved_on: date | None
    approved_by: str | None
    notice_from: date | None
    notice_to: date | None
    working_days: int | None
    objections_to: str | None
    released_on: date | None
    released_by: str | None
    objections: list[BatchObjection]
    awards: list[BatchAward]
    replay: bool = False
    position: int | None = None
    views_error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PaymentOrder:
    """A line of a batch's payment orders for the budget-management system (预算管理一体化)."""

    order_no: str
    payee_uscc: str
    payee_name: str
    amount_fen: int
    subject: str
    fund: str
    purpose: str
    entitlement_id: str
    batch_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class BookResult:
    """A budget or workflow command recorded (or a replay: nothing recorded)."""

    replay: bool
    position: int | None
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class LifeTableRow:
    """Of the first entrants on the register `age` years after entry (without a break),
    `stayed` of `at_risk` were on it the year after; `low` and `high` are the lowest and highest
    rate of a single cohort (of `cohorts` with enough firms)."""

    age: int
    at_risk: int
    stayed: int
    rate: float
    low: float
    high: float
    cohorts: int


@dataclasses.dataclass(frozen=True, slots=True)
class ForecastYear:
    """A fiscal year's forecast: decided and unpaid, staying (expected), new entries
    (expected), each with bounds, and the total."""

    fiscal_year: int
    decided_fen: int
    staying_fen: int
    staying_low_fen: int
    staying_high_fen: int
    new_entries: float
    new_entries_fen: int
    new_entries_low_fen: int
    new_entries_high_fen: int
    total_fen: int
    low_fen: int
    high_fen: int


@dataclasses.dataclass(frozen=True, slots=True)
class ForecastResult:
    known_at: int
    """The log position the forecast was made from."""
    last_register_year: int
    city: str | None
    life_table: list[LifeTableRow]
    years: list[ForecastYear]
