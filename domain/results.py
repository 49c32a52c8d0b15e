"""What the application answers: the typed results of its point-in-time queries (its commands'
reports are in `domain.command_results`, the money's path's in `domain.payment_results`).

Values keep their types (`date`, `datetime`, int fen); `jsonable` turns any of them into the JSON
the command line prints and the gRPC service embeds, the one place where they become text.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    """Where an answer stands: known at a log position, committed at `recorded_at` (None: nothing
    committed yet), and valid on the day `as_of`."""

    position: int
    recorded_at: datetime | None
    as_of: date

    def header(self) -> dict[str, Any]:
        """The point as every register-wide answer names it in JSON."""
        return {
            "as_of": self.as_of.isoformat(),
            "known_at": {"position": self.position, "recorded_at": _instant(self.recorded_at)},
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AwardRow:
    """One entitlement as known at a point, with the money paid and recovered against it by then."""

    entitlement_id: str
    uscc: str
    name: str
    """As the register of the decided year gave it."""
    city_code: str
    """The city the award counts for."""
    kind: str
    clause: str
    policy: str
    amount_fen: int
    decided_year: int
    due_fiscal_year: int
    paid_fen: int
    recovered_fen: int
    status: str
    earned: bool = True
    """Whether the rules still give it (False: a correction or a policy version took it away)."""
    policy_hash: str = ""
    """The content hash of the deciding version."""
    base_fen: int = 0
    """The amount before bonuses."""
    bonuses: list[AwardBonus] = dataclasses.field(default_factory=list)
    hold: AwardHold | None = None
    """The firm's longest-standing hold in force on the answer's day (None: not held)."""

    @property
    def outstanding_fen(self) -> int:
        """What is still to pay: the amount less what was paid net of recoveries (never below
        0; what was paid above it is `recovery_due`)."""
        return max(0, self.amount_fen - (self.paid_fen - self.recovered_fen))


@dataclasses.dataclass(frozen=True, slots=True)
class AwardHold:
    """A hold in force on the firm of an award: no payment while it stands."""

    reason: str
    authority: str
    document: str
    since: date
    """Its first day in force."""


@dataclasses.dataclass(frozen=True, slots=True)
class AwardBonus:
    """A bonus an award carries: the designation it rests on and its percentage."""

    designation: str
    percent: int


@dataclasses.dataclass(frozen=True, slots=True)
class TotalRow:
    """Fiscal totals of one group (a kind or a city code) in one fiscal year."""

    fiscal_year: int
    group: str
    count: int
    entitled_fen: int
    paid_fen: int
    outstanding_fen: int
    recovery_due_fen: int | None
    """Due basis: what is still to come back on revoked awards (None on the cash basis)."""
    recovered_fen: int | None
    """Cash basis: what came back that year (None on the due basis)."""


@dataclasses.dataclass(frozen=True, slots=True)
class GuaranteeWindow:
    """The guarantee window (八) of a first entrant."""

    uscc: str
    window: str
    clause: str
    starts_on: date
    ends_on: date
    fee_cap_bp: int | None
    size_class: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class EnergyWindow:
    """The energy window (十一) of a first entrant; `closed_on` once it closed (None: open)."""

    uscc: str
    window: str
    clause: str
    starts_on: date
    ends_on: date
    closed_on: date | None
    size_class: str | None


WindowRow = GuaranteeWindow | EnergyWindow


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterSize:
    year: int
    city_code: str
    size: int
    first_entries: int
    re_entries: int


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterEntry:
    """A firm on the register of one year, as the register gave it (or a correction re-issued it)."""

    uscc: str
    name: str
    kind: str
    """baseline, entered, re_entered or retained."""
    first_entry: bool
    region_code: str
    city_code: str
    industry_code: str
    size_class: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedYearRow:
    year: int
    baseline: bool
    sha256: str
    rows: int
    counts: dict[str, int]
    actor: str
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class TrailEvent:
    """An event of one firm as the log holds it: where, when committed, by whom, valid from when."""

    position: int
    recorded_at: datetime | None
    version: int
    type: str
    actor: str | None
    valid_from: date
    client_timestamp: datetime
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class AppliedBonus:
    """A bonus an award carries: the designation it asks for, its percentage, and the documents
    of the firm's designations that earned it."""

    designation: str
    percent: int
    documents: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class EntitlementView:
    """An entitlement of one firm as of a day: what was paid and recovered against it by then."""

    entitlement_id: str
    uscc: str
    kind: str
    clause: str
    amount_fen: int
    decided_year: int
    due_fiscal_year: int
    policy: str
    basis_years: list[int]
    paid_fen: int
    recovered_fen: int
    status: str
    policy_hash: str = ""
    """The content hash of the deciding version."""
    base_fen: int = 0
    """The amount before bonuses."""
    bonuses: list[AppliedBonus] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class DesignationView:
    """A designation the firm holds (granted, not revoked), where its grant is in the log, and
    whether it is valid on the answer's day."""

    kind: str
    document: str
    valid_from: date
    valid_to: date | None
    valid: bool | None
    """Valid on the answer's day (None: the answer has no day, as `explain`'s)."""
    position: int
    recorded_at: datetime | None
    actor: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class PaymentView:
    payment_ref: str
    entitlement_id: str
    amount_fen: int
    paid_on: date


@dataclasses.dataclass(frozen=True, slots=True)
class RecoveryView:
    recovery_ref: str
    entitlement_id: str
    amount_fen: int
    received_on: date


@dataclasses.dataclass(frozen=True, slots=True)
class FirmWindow:
    """A window of the firm `enterprise` answers for (its USCC is the answer's)."""

    window: str
    clause: str
    starts_on: date
    ends_on: date
    closed_on: date | None
    fee_cap_bp: int | None
    size_class: str | None

    def as_json(self) -> dict[str, Any]:
        """An energy window has no fee cap, a guarantee window never closes."""
        omit = "fee_cap_bp" if self.window == "energy" else "closed_on"
        return {k: jsonable(v) for k, v in _fields(self) if k != omit}


@dataclasses.dataclass(frozen=True, slots=True)
class KnownAt:
    position: int
    recorded_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class EnterpriseView:
    """One firm from its own events, valid on `as_of`, as the ledger knew it at `known_at`."""

    as_of: date
    known_at: KnownAt
    uscc: str
    name: str
    region_code: str
    region_name: str
    city_code: str
    city_name: str
    industry_code: str
    size_class: str | None
    register_years: list[int]
    exit_years: list[int]
    re_entry_years: list[int]
    on_baseline: bool
    first_entry_year: int | None
    first_entry_route: str | None
    entry_size_class: str | None
    version: int
    entitlements: list[EntitlementView]
    payments: list[PaymentView]
    recoveries: list[RecoveryView]
    windows: list[FirmWindow]
    designations: list[DesignationView] = dataclasses.field(default_factory=list)
    holds: list[HoldView] = dataclasses.field(default_factory=list)
    """Its compliance holds as known then, lifted ones included, each in force on `as_of` or not."""


@dataclasses.dataclass(frozen=True, slots=True)
class FactRef:
    """A register event an entitlement derives from."""

    position: int
    recorded_at: datetime | None
    type: str
    actor: str | None
    valid_from: date
    year: int
    source_sha256: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class MoneyMoved:
    """A payment or a recovery against an entitlement, where it is in the log."""

    position: int
    recorded_at: datetime | None
    actor: str | None
    ref: str
    amount_fen: int
    on: date
    recovery: bool

    def as_json(self) -> dict[str, Any]:
        ref, day = ("recovery_ref", "received_on") if self.recovery else ("payment_ref", "paid_on")
        return {
            "position": self.position,
            "recorded_at": _instant(self.recorded_at),
            "actor": self.actor,
            ref: self.ref,
            "amount_fen": self.amount_fen,
            day: self.on.isoformat(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Revocation:
    """The correction, or the adoption of a policy version, that took an entitlement away."""

    position: int
    recorded_at: datetime | None
    year: int | None
    """The corrected register year (None: a policy version)."""
    reason: str
    source_sha256: str | None
    actor: str | None
    policy_id: str | None = None
    """The policy version whose adoption took it away (None: a correction)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyRef:
    id: str
    content_hash: str


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    """Why an entitlement is (or was) owed, traced to the policy, the facts and the money."""

    entitlement_id: str
    uscc: str
    kind: str
    clause: str
    policy: PolicyRef
    amount_fen: int
    decided_year: int
    due_fiscal_year: int
    basis_years: list[int]
    assumed_years: list[int]
    """Years before the baseline taken as on the register (DOMAIN.md default 5)."""
    derives_from: list[FactRef]
    payments: list[MoneyMoved]
    recoveries: list[MoneyMoved]
    paid_fen: int
    recovered_fen: int
    status: str
    revoked_by: Revocation | None
    base_fen: int = 0
    """The amount before bonuses (the city's amount where the version gives one)."""
    bonuses: list[AppliedBonus] = dataclasses.field(default_factory=list)
    designations: list[DesignationView] = dataclasses.field(default_factory=list)
    """The designations the bonuses rest on."""
    holds: list[HoldView] = dataclasses.field(default_factory=list)
    """The firm's compliance holds, each in force today or not: a payment is refused while one
    is."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """A reconciliation run as recorded in the log."""

    position: int
    recorded_at: datetime | None
    actor: str
    date: date
    log_position: int
    anchor: str | None
    treasury_sha256: str
    treasury_encoding: str
    treasury_rows: int
    options: dict[str, int]
    exit_status: int
    findings: int
    counts: dict[str, int]
    report_sha256: str
    html_sha256: str


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyVersion:
    """A policy version as adopted in the log."""

    id: str
    content_hash: str
    title: str
    issued_on: date
    applies_from: int | None
    position: int
    recorded_at: datetime | None
    actor: str
    reason: str | None
    content: dict[str, Any]


def _instant(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _fields(obj: Any) -> list[tuple[str, Any]]:
    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]


def jsonable(value: Any) -> Any:
    """A result as JSON values: dataclasses as objects in field order (or their own `as_json`),
    dates as YYYY-MM-DD, instants as UTC RFC 3339, enums as their values."""
    as_json = getattr(value, "as_json", None)
    if as_json is not None and dataclasses.is_dataclass(value):
        return as_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in _fields(value)}
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class PriorityRow:
    """A first entrant on a priority list of (六) science programmes or (七) technical
    transformation on a day."""

    uscc: str
    name: str
    region_code: str
    city_code: str
    first_entry_year: int
    window_from: int
    window_to: int
    clause: str
    policy_id: str
    tech_sme_documents: list[str]
    """(六): the tech_sme designations valid on the day."""


@dataclasses.dataclass(frozen=True, slots=True)
class HoldView:
    """A compliance hold as the ledger knows it at a point, and whether it is in force on the
    answer's day."""

    reason: str
    authority: str
    document: str
    valid_from: date
    """Its first day in force."""
    valid_to: date | None
    """Its last day in force (None: until lifted)."""
    lifted_on: date | None
    """The first day free (None: not lifted)."""
    lift_reason: str | None
    in_force: bool | None
    """In force on the answer's day (None: the answer has no day)."""
    position: int
    """Where the hold was placed in the log."""
    actor: str | None
