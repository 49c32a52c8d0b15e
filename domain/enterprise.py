"""Aggregates and their events: enterprises and payment refs (the register book is in
`domain.register_book`).

Event classes' module paths and names are part of the stored schema: never move or rename one
without registering its old topic. Each event class has a version (the library's `class_version`,
1 unless set): a change of shape bumps it and adds a static `upcast_vN_vN+1(state)` that brings a
stored event of the old shape up to date when it is read (see `domain.register_book.RegisterBook.YearImported`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

from domain.codes import divisions
from domain.policy import (
    DesignationKind,
    Policies,
    Route,
    SizeClass,
)
from domain.rules import Designation, Entitlement, History, entitlements

# Ids derive from natural keys, so the same firm, ref or book can never be created twice.
NAMESPACE = uuid.UUID("6f1c2a8e-3b4d-5e6f-9a0b-1c2d3e4f5a6b")


def enterprise_id(uscc: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"enterprise:{uscc}")


def payment_ref_id(ref: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"payment-ref:{ref}")


def recovery_ref_id(ref: str) -> uuid.UUID:
    """A recovery's voucher: a PaymentRef of its own namespace, whose `paid_on` is the day the
    money came back."""
    return uuid.uuid5(NAMESPACE, f"recovery-ref:{ref}")


@dataclass(slots=True)
class Payment:
    ref: str
    entitlement_id: str
    amount_fen: int
    paid_on: date


@dataclass(slots=True)
class Recovery:
    ref: str
    entitlement_id: str
    amount_fen: int
    received_on: date


@dataclass(frozen=True, slots=True)
class Hold:
    """A compliance hold (a serious-default list, an investigation, a deregistration, an
    objection heard in a public notice): no payment to the firm while it is in force. In force
    from `valid_from` to `valid_to` (None: until lifted), both days included, and no longer from
    the day it is lifted (`lifted_on`, the first day free)."""

    reason: str
    authority: str
    document: str
    valid_from: date
    valid_to: date | None
    lifted_on: date | None = None
    lift_reason: str | None = None

    def in_force(self, day: date) -> bool:
        return (
            self.valid_from <= day
            and (self.valid_to is None or day <= self.valid_to)
            and (self.lifted_on is None or day < self.lifted_on)
        )


@dataclass(slots=True)
class FirmState:
    """A firm's facts folded from its events; the aggregate and the projections share this fold."""

    uscc: str
    name: str
    region_code: str
    industry_code: str
    size_class: SizeClass | None
    years: set[int] = field(default_factory=set)
    exit_years: set[int] = field(default_factory=set)
    re_entry_years: set[int] = field(default_factory=set)
    baseline_year: int | None = None
    first_entry_year: int | None = None
    route: Route | None = None
    entry_size_class: SizeClass | None = None
    payments: dict[str, Payment] = field(default_factory=dict)
    recoveries: dict[str, Recovery] = field(default_factory=dict)
    revoked: dict[str, str] = field(default_factory=dict)
    """Entitlements a correction or a policy version took away: id -> the corrected file's
    SHA-256, or `policy:ID` for the version."""
    cities: dict[int, str] = field(default_factory=dict)
    """The city of the firm's row on each register year it was on: the city its awards of that
    year belong to. Kept when a correction takes the year away (its revoked awards still
    belong there)."""
    designations: dict[tuple[str, str], Designation] = field(default_factory=dict)
    """The designations in force, by (kind, document): granted and not revoked."""
    revoked_designations: dict[tuple[str, str], tuple[Designation, str]] = field(
        default_factory=dict
    )
    """Designations revoked, by (kind, document): the grant voided and the revoking document."""
    holds: dict[str, Hold] = field(default_factory=dict)
    """Compliance holds placed on the firm, by document, lifted ones included."""
    released: dict[str, tuple[str, date]] = field(default_factory=dict)
    """Awards released in a payment batch: entitlement id -> (batch id, release day)."""

    @property
    def city_code(self) -> str:
        """The city the firm is in now ("" for a firm identified by a designation alone, on no
        register yet)."""
        return divisions()[self.region_code].city_code if self.region_code else ""

    def award_city(self, decided_year: int) -> str:
        """The city an award decided on register year `decided_year` belongs to: the firm's city
        on that year's register (the one rule that listing, paying, totals and the reconciliation
        follow)."""
        return self.cities.get(decided_year, self.city_code)

    def belongs_to(self, city: str) -> bool:
        """Whether a user of `city` may see the firm: it is there now, or was on a register
        year there."""
        return self.city_code == city or city in self.cities.values()

    @classmethod
    def created(cls, event: Any) -> FirmState:
        """A firm as its first event records it: `Registered` (from a register's row) or
        `Identified` (by its USCC alone, from a designation)."""
        if isinstance(event, Enterprise.Identified):
            return cls(event.uscc, "", "", "", None)
        return cls(
            event.uscc, event.name, event.region_code, event.industry_code, _size(event.size_class)
        )

    def history(self) -> History:
        return History(
            uscc=self.uscc,
            years=frozenset(self.years),
            exit_years=frozenset(self.exit_years),
            baseline_year=self.baseline_year,
            first_entry_year=self.first_entry_year,
            route=self.route,
            entry_size_class=self.entry_size_class,
            cities=tuple(sorted(self.cities.items())),
            city=self.city_code,
            designations=self.held_designations(),
        )

    def held_designations(self) -> tuple[Designation, ...]:
        """The designations in force, in one order: by kind, then from when they hold."""
        return tuple(
            sorted(self.designations.values(), key=lambda d: (d.kind, d.valid_from, d.document))
        )

    def holds_in_force(self, day: date) -> list[Hold]:
        """The holds in force on `day`, the longest-standing first."""
        return sorted(
            (h for h in self.holds.values() if h.in_force(day)),
            key=lambda h: (h.valid_from, h.document),
        )

    def paid_fen(self, entitlement_id: str) -> int:
        return sum(
            p.amount_fen for p in self.payments.values() if p.entitlement_id == entitlement_id
        )

    def recovered_fen(self, entitlement_id: str) -> int:
        return sum(
            r.amount_fen for r in self.recoveries.values() if r.entitlement_id == entitlement_id
        )

    def restate(self, event: Any) -> None:
        """Take the register history a correction re-derived (see domain.correction)."""
        self.years = set(event.years)
        self.exit_years = set(event.exit_years)
        self.re_entry_years = set(event.re_entry_years)
        self.baseline_year = event.baseline_year
        self.first_entry_year = event.derived_first_entry_year
        self.route = _route(event.derived_route)
        self.entry_size_class = _size(event.entry_size_class)
        row = event.row
        if row is not None:
            self.cities[event.year] = divisions()[row["region_code"]].city_code
        # The corrected row names the firm only if it is the firm's latest register year.
        if row is not None and event.year >= max(self.years):
            self.name = row["name"]
            self.region_code = row["region_code"]
            self.industry_code = row["industry_code"]
            if row["size_class"]:
                self.size_class = _size(row["size_class"])
        for entitlement_id in event.revoked:
            self.revoked[entitlement_id] = event.source_sha256
        for entitlement_id in event.earned:
            self.revoked.pop(entitlement_id, None)

    def apply(self, event: Any) -> None:
        """Fold one enterprise event into the state."""
        match event:
            case Enterprise.NameChanged():
                self.name = event.name
            case Enterprise.RegionChanged():
                self.region_code = event.region_code
            case Enterprise.IndustryChanged():
                self.industry_code = event.industry_code
            case Enterprise.SizeClassChanged():
                self.size_class = _size(event.size_class)
            case Enterprise.OnBaselineRegister():
                self.years.add(event.year)
                self.cities[event.year] = self.city_code
                self.baseline_year = event.year
                self.first_entry_year = event.first_entry_year
                self.route = _route(event.route) if event.first_entry_year is not None else None
                if event.first_entry_year == event.year:
                    self.entry_size_class = self.size_class
            case Enterprise.EnteredRegister():
                self.years.add(event.year)
                self.cities[event.year] = self.city_code
                self.first_entry_year = event.year
                self.route = _route(event.route)
                self.entry_size_class = self.size_class
            case Enterprise.ReEnteredRegister():
                self.years.add(event.year)
                self.cities[event.year] = self.city_code
                self.re_entry_years.add(event.year)
                if self.first_entry_year is None:
                    self.first_entry_year = event.first_entry_year
            case Enterprise.RetainedInRegister():
                self.years.add(event.year)
                self.cities[event.year] = self.city_code
            case Enterprise.LeftRegister():
                self.exit_years.add(event.year)
            case Enterprise.PaymentRecorded():
                self.payments[event.payment_ref] = Payment(
                    event.payment_ref, event.entitlement_id, event.amount_fen, event.paid_on
                )
            case Enterprise.RegisterYearCorrected():
                self.restate(event)
            case Enterprise.PolicyApplied():
                for entitlement_id in event.revoked:
                    self.revoked[entitlement_id] = f"policy:{event.policy_id}"
                for entitlement_id in event.earned:
                    self.revoked.pop(entitlement_id, None)
            case Enterprise.RecoveryRecorded():
                self.recoveries[event.recovery_ref] = Recovery(
                    event.recovery_ref, event.entitlement_id, event.amount_fen, event.received_on
                )
            case Enterprise.DesignationGranted():
                self.designations[(event.kind, event.document)] = Designation(
                    DesignationKind(event.kind), event.valid_from, event.valid_to, event.document
                )
            case Enterprise.DesignationRevoked():
                key = (event.kind, event.of_document)
                self.revoked_designations[key] = (self.designations.pop(key), event.document)
            case Enterprise.HoldPlaced():
                self.holds[event.document] = Hold(
                    event.reason, event.authority, event.document, event.valid_from, event.valid_to
                )
            case Enterprise.HoldLifted():
                self.holds[event.document] = replace(
                    self.holds[event.document], lifted_on=event.lifted_on, lift_reason=event.reason
                )
            case Enterprise.AwardsReleased():
                for entitlement_id in event.amounts:
                    self.released[entitlement_id] = (event.batch_id, event.released_on)
            case Enterprise.SubsidyEvent():
                pass  # (九) hires: folded by domain.social_insurance
            case Enterprise.Registered() | Enterprise.Identified():
                pass
            case _:
                raise TypeError(f"not an enterprise event: {type(event).__name__}")


def _size(value: str | None) -> SizeClass | None:
    return SizeClass(value) if value else None


def _route(value: str | None) -> Route | None:
    return Route(value) if value else None


class Enterprise(Aggregate):
    """An industrial enterprise, identified by its USCC, and its life on the register."""

    class Event(Aggregate.Event):
        actor: str
        """Who caused the event: the user acting, as the command line or the service names them."""
        source_sha256: str | None
        """SHA-256 of the imported file the event came from, if any."""

        def apply(self, aggregate: Any) -> None:
            aggregate.state.apply(self)

    class Registered(Event, Aggregate.Created):
        uscc: str
        name: str
        region_code: str
        industry_code: str
        size_class: str | None
        year: int
        """The register year the firm was first seen on."""

    class Identified(Event, Aggregate.Created):
        """A firm on no register yet, known by its USCC alone: a certifying authority designated
        it (its name, region and trade come with its first register row)."""

        uscc: str

    class NameChanged(Event):
        name: str
        year: int

    class RegionChanged(Event):
        region_code: str
        year: int

    class IndustryChanged(Event):
        industry_code: str
        year: int

    class SizeClassChanged(Event):
        size_class: str | None
        year: int

    class OnBaselineRegister(Event):
        """On the baseline register: already above scale when the ledger began."""

        year: int
        first_entry_year: int | None
        route: str | None

    class EnteredRegister(Event):
        """First entry (小升规 or 视同小升规) in register year `year`."""

        year: int
        route: str

    class ReEnteredRegister(Event):
        """Back on the register after leaving it: never a first entry."""

        year: int
        first_entry_year: int | None

    class RetainedInRegister(Event):
        year: int

    class LeftRegister(Event):
        """Absent from register year `year` after being on the year before (退库)."""

        year: int

    class PaymentRecorded(Event):
        entitlement_id: str
        payment_ref: str
        amount_fen: int
        paid_on: date

    class RegisterYearCorrected(Event):
        """The statistics bureau re-issued register year `year`: the firm's row there (None if it
        is no longer on that year's register) and the register history re-derived from it, later
        years included. `source_sha256` is the corrected file's hash."""

        year: int
        row: dict[str, Any] | None
        reason: str
        years: list[int]
        exit_years: list[int]
        re_entry_years: list[int]
        baseline_year: int | None
        derived_first_entry_year: int | None
        derived_route: str | None
        entry_size_class: str | None
        earned: list[str]
        """Entitlements owed after the correction that were not before (arrears)."""
        revoked: list[str]
        """Entitlements owed before the correction that are not after."""

    class PolicyApplied(Event):
        """A policy version adopted after the firm's awards were decided re-derived them: the
        awards it gives that the firm had not (`earned`: arrears), those it no longer gives
        (`revoked`), and those whose amount or deciding version changed (`changed`)."""

        policy_id: str
        content_hash: str
        year: int
        """The firm's first-entry year: the register year the version governs it from."""
        reason: str
        earned: list[str]
        revoked: list[str]
        changed: list[str]

    class DesignationGranted(Event):
        """A certifying authority designated the firm (`kind`, e.g. strategic_emerging) under
        `document`, valid from `valid_from` to `valid_to` (None: open-ended). Awards whose bonus
        asks for the designation are re-derived (`changed`: those whose amount changes)."""

        kind: str
        document: str
        valid_from: date
        valid_to: date | None
        changed: list[str]

    class DesignationRevoked(Event):
        """The designation granted under `of_document` is void, as if never granted: `document`
        is the revoking instrument. `valid_from` is the voided grant's."""

        kind: str
        of_document: str
        document: str
        reason: str
        valid_from: date
        changed: list[str]

    class HoldPlaced(Event):
        """A compliance hold on the firm under `document` of `authority`, for `reason` (one of
        `domain.holds.HOLD_REASONS`), in force from `valid_from` to `valid_to` (None: until
        lifted). It never changes what is owed; no payment is made while it is in force."""

        reason: str
        authority: str
        document: str
        valid_from: date
        valid_to: date | None

    class HoldLifted(Event):
        """The hold placed under `document` is lifted: the firm is free of it from `lifted_on`
        (the first day free); `reason` says why (and under which instrument)."""

        document: str
        lifted_on: date
        reason: str

    class AwardsReleased(Event):
        """The public notice of payment batch `batch_id` ended and it was released: these awards
        of the firm are payable from `released_on`, each up to its amount (what was outstanding
        that day)."""

        batch_id: str
        released_on: date
        amounts: dict[str, int]

    class SubsidyEvent(Event):
        """The social-insurance subsidy's events (38号 (九), `domain.social_insurance`): facts of
        the firm's hires that the register's fold passes over."""

        def fact_day(self) -> date:
            """The day the fact holds from (the audit trail's valid time)."""
            raise NotImplementedError

    class RecoveryRecorded(Event):
        """Money paid against a revoked entitlement came back to the treasury (追回)."""

        entitlement_id: str
        recovery_ref: str
        amount_fen: int
        received_on: date

    def __init__(
        self,
        uscc: str,
        name: str = "",
        region_code: str = "",
        industry_code: str = "",
        size_class: str | None = None,
    ) -> None:
        # `Identified` gives the USCC alone: the library passes the created event's attributes
        # that are parameters here.
        self.state = FirmState(uscc, name, region_code, industry_code, _size(size_class))

    @classmethod
    def identified(cls, uscc: str, actor: str, source_sha256: str | None) -> Enterprise:
        """A firm on no register yet, known by its USCC alone (a designation, a hold)."""
        firm: Enterprise = cls._create(
            cls.Identified,
            id=enterprise_id(uscc),
            uscc=uscc,
            actor=actor,
            source_sha256=source_sha256,
        )
        return firm

    @property
    def uscc(self) -> str:
        return self.state.uscc

    def entitlements(self, policies: Policies) -> list[Entitlement]:
        return entitlements(self.state.history(), policies)

    def record_payment(
        self, entitlement_id: str, ref: str, amount_fen: int, paid_on: date, actor: str
    ) -> None:
        self.trigger_event(
            self.PaymentRecorded,
            entitlement_id=entitlement_id,
            payment_ref=ref,
            amount_fen=amount_fen,
            paid_on=paid_on,
            actor=actor,
            source_sha256=None,
        )

    def place_hold(self, hold: Hold, actor: str, source_sha256: str | None = None) -> None:
        """A compliance hold on the firm (from a list file when `source_sha256` is given)."""
        self.trigger_event(
            self.HoldPlaced,
            reason=hold.reason,
            authority=hold.authority,
            document=hold.document,
            valid_from=hold.valid_from,
            valid_to=hold.valid_to,
            actor=actor,
            source_sha256=source_sha256,
        )

    def record_recovery(
        self, entitlement_id: str, ref: str, amount_fen: int, received_on: date, actor: str
    ) -> None:
        self.trigger_event(
            self.RecoveryRecorded,
            entitlement_id=entitlement_id,
            recovery_ref=ref,
            amount_fen=amount_fen,
            received_on=received_on,
            actor=actor,
            source_sha256=None,
        )


REGISTER_EVENTS = (
    Enterprise.OnBaselineRegister,
    Enterprise.EnteredRegister,
    Enterprise.ReEnteredRegister,
    Enterprise.RetainedInRegister,
)
"""Events that put a firm on a register year."""
HISTORY_EVENTS = (*REGISTER_EVENTS, Enterprise.LeftRegister)
"""Events of an import that change a firm's register history (and so its awards)."""
REGISTER_CHANGES = (*HISTORY_EVENTS, Enterprise.RegisterYearCorrected)
"""Events that change a firm's register history: an import's, or a correction's."""
IDENTITY_EVENTS = (
    Enterprise.NameChanged,
    Enterprise.RegionChanged,
    Enterprise.IndustryChanged,
    Enterprise.SizeClassChanged,
)
"""Events that change what the firm is called, where it is, its trade or its size."""
WINDOW_EVENTS = (
    Enterprise.OnBaselineRegister,
    Enterprise.EnteredRegister,
    Enterprise.ReEnteredRegister,
    Enterprise.LeftRegister,
)
"""Events that can change a firm's windows: its first entry and its exits."""
DESIGNATION_EVENTS = (Enterprise.DesignationGranted, Enterprise.DesignationRevoked)
"""Events that change the designations a firm holds (and so its awards' bonuses)."""
REVOKING_EVENTS = (Enterprise.RegisterYearCorrected, Enterprise.PolicyApplied)
"""Events that re-derive a firm's awards and may give or take some away (their `earned` and
`revoked`)."""
REDERIVING_EVENTS = (*REVOKING_EVENTS, *DESIGNATION_EVENTS)
"""Events that re-derive the awards and windows a firm already has (a designation changes
amounts only)."""
HOLD_EVENTS = (Enterprise.HoldPlaced, Enterprise.HoldLifted)
"""Events that place or lift a compliance hold (they never change what is owed)."""
CREATED_EVENTS = (Enterprise.Registered, Enterprise.Identified)
"""A firm's first event: from a register's row, or from a designation."""


class PaymentRef(Aggregate):
    """A treasury voucher number, claimed once ledger-wide by the payment (or, under
    `recovery_ref_id`, the recovery) it records."""

    class Claimed(Aggregate.Created):
        ref: str
        uscc: str
        entitlement_id: str
        amount_fen: int
        paid_on: date
        actor: str

    def __init__(
        self, ref: str, uscc: str, entitlement_id: str, amount_fen: int, paid_on: date, actor: str
    ) -> None:
        self.ref = ref
        self.uscc = uscc
        self.entitlement_id = entitlement_id
        self.amount_fen = amount_fen
        self.paid_on = paid_on
