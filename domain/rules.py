"""The one pure function that decides money: entitlements and windows from a firm's register history."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from domain.policy import (
    Bonus,
    DesignationKind,
    FirstEntryRule,
    Policies,
    Policy,
    RetentionAward,
    Route,
    SizeClass,
)


@dataclass(frozen=True, slots=True)
class Designation:
    """A designation a certifying authority granted a firm, valid from a day to a day (None:
    open-ended), under a document."""

    kind: DesignationKind
    valid_from: date
    valid_to: date | None
    document: str

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def valid_in(self, year: int) -> bool:
        """Valid on any day of `year`."""
        return self.valid_from <= date(year, 12, 31) and (
            self.valid_to is None or self.valid_to >= date(year, 1, 1)
        )


@dataclass(frozen=True, slots=True)
class History:
    """What the ledger knows of one firm's place on the above-scale register."""

    uscc: str
    years: frozenset[int]
    """Register years the firm was on, as imported."""
    exit_years: frozenset[int]
    """First register years the firm was absent from after being on (退库)."""
    baseline_year: int | None
    """Set when the firm was on the ledger's baseline register."""
    first_entry_year: int | None
    route: Route | None
    """Route of the first entry; None for a re-entrant or a firm whose first entry is unknown."""
    entry_size_class: SizeClass | None
    """Size class the register gave in the entry year, if known."""
    cities: tuple[tuple[int, str], ...] = ()
    """(register year, city of the firm's row that year): the city an award of the year belongs to."""
    city: str = ""
    """The firm's city now (for an award of a year the firm has no row for)."""
    designations: tuple[Designation, ...] = ()
    """The designations in force (granted and not revoked)."""

    def award_city(self, year: int) -> str:
        return next((c for y, c in self.cities if y == year), self.city)

    def designated(self, kind: DesignationKind, year: int) -> bool:
        """Whether the firm held a designation of `kind` valid on any day of `year`."""
        return any(d.kind == kind and d.valid_in(year) for d in self.designations)

    def on_register(self, year: int) -> bool:
        if year in self.years:
            return True
        # DOMAIN.md default 5: a baseline firm whose bureau-given first entry predates the baseline is
        # taken to have stayed on the register from then until the baseline year.
        return (
            self.baseline_year is not None
            and self.first_entry_year is not None
            and self.first_entry_year <= year < self.baseline_year
        )

    @property
    def is_first_entrant(self) -> bool:
        return self.first_entry_year is not None and self.route is not None


@dataclass(frozen=True, slots=True)
class Entitlement:
    """An award the rules say is owed; its id is stable and never reused."""

    entitlement_id: str
    uscc: str
    kind: str
    clause: str
    policy_id: str
    amount_fen: int
    decided_year: int
    due_fiscal_year: int
    basis_years: tuple[int, ...]
    """The register years the award derives from."""
    policy_hash: str = ""
    """The content hash of the deciding policy version."""
    base_fen: int = 0
    """The amount before bonuses (the city's amount where the version gives one)."""
    bonuses: tuple[Bonus, ...] = ()
    """The bonuses applied: each designation the firm held when its bonus asked."""


AWARD_STATUSES = ("due", "partially_paid", "paid", "revoked", "recovery_due", "recovered")


def award_status(
    paid_fen: int, amount_fen: int, *, earned: bool = True, recovered_fen: int = 0
) -> str:
    """An award's status from what was paid and recovered against it: the one definition, which
    every answer (the views' rows included) computes when asked; no status is stored.

    Earned: `due`, `partially_paid` or `paid` by what was paid net of recoveries, and
    `recovery_due` while more was paid than the award now is (its amount went down: the excess
    is to come back). Revoked (a correction or a policy version took it away): `revoked` if
    nothing was paid, `recovery_due` while paid money is still to come back (追回), `recovered`
    once it has.
    """
    if not earned:
        if paid_fen > recovered_fen:
            return "recovery_due"
        return "recovered" if paid_fen > 0 else "revoked"
    net = paid_fen - recovered_fen
    if net > amount_fen:
        return "recovery_due"
    if net == amount_fen:
        return "paid"
    return "partially_paid" if net > 0 else "due"


def to_recover(paid_fen: int, amount_fen: int, *, earned: bool, recovered_fen: int) -> int:
    """What is still to come back: all paid and not yet recovered of a revoked award, the excess
    over its amount of an earned one."""
    net = paid_fen - recovered_fen
    return net if not earned else max(0, net - amount_fen)


def entitlement_id(uscc: str, kind: str, decided_year: int) -> str:
    return f"{uscc}/{kind}/{decided_year}"


_KIND = re.compile(r"[a-z0-9_]+")


def is_kind(value: str) -> bool:
    """Whether the text has the shape of an award kind (`first_entry`, `retention_2y`)."""
    return _KIND.fullmatch(value) is not None


def parse_entitlement_id(value: str) -> tuple[str, str, int]:
    """Split USCC/KIND/YEAR; raise ValueError if it is not of that shape (the USCC's check
    characters are not verified here)."""
    parts = value.split("/")
    if (
        len(parts) != 3
        or not (parts[2].isascii() and parts[2].isdigit() and len(parts[2]) == 4)
        or _KIND.fullmatch(parts[1]) is None
    ):
        raise ValueError(f"entitlement id must be USCC/KIND/YEAR, got {value!r}")
    return parts[0], parts[1], int(parts[2])


def governing(history: History, policies: Policies) -> Policy | None:
    """The policy version that decides a first entrant's awards and windows: the one governing
    its first-entry year. None for a firm that is not a first entrant."""
    if not history.is_first_entrant:
        return None
    assert history.first_entry_year is not None
    return policies.governing(history.first_entry_year)


def entitlements(history: History, policies: Policies) -> list[Entitlement]:
    """The awards (四) and (五) that a firm's history earns under the version governing its first
    entry year, in decided-year order.

    Awards decided in or before the baseline year belong to the time before the ledger
    (DOMAIN.md default 5) and are not listed.
    """
    policy = governing(history, policies)
    if policy is None or history.route not in policy.eligible_routes:
        return []
    entry = history.first_entry_year
    assert entry is not None

    def owed(decided: int) -> bool:
        return history.baseline_year is None or decided > history.baseline_year

    def award(rule: FirstEntryRule | RetentionAward, decided: int) -> Entitlement:
        def holds(bonus: Bonus) -> bool:
            return history.designated(
                bonus.designation, entry if bonus.valid_in == "entry_year" else decided
            )

        base, amount, applied = rule.amount(history.award_city(decided), holds)
        return Entitlement(
            entitlement_id=entitlement_id(history.uscc, rule.kind, decided),
            uscc=history.uscc,
            kind=rule.kind,
            clause=policy.clause_of(rule.kind),
            policy_id=policy.id,
            amount_fen=amount,
            decided_year=decided,
            due_fiscal_year=decided + policy.payment.lag_years,
            basis_years=tuple(range(entry, decided + 1)),
            policy_hash=policy.content_hash,
            base_fen=base,
            bonuses=applied,
        )

    result = []
    # (四) 当年首次"小升规"的工业企业, 给予每户30万元的奖励
    if owed(entry) and history.on_register(entry):
        result.append(award(policy.first_entry, entry))
    # (五) 首次"小升规"后连续N年未退出: every year from entry to the decided year on the register,
    # so an exit ends the count for good (DOMAIN.md default 2).
    first_counted = entry + 1 if policy.retention.counting == "years_after_entry" else entry
    for rule in sorted(policy.retention.awards, key=lambda a: a.consecutive_years):
        decided = first_counted + rule.consecutive_years - 1
        if decided < entry:
            continue
        if owed(decided) and all(history.on_register(y) for y in range(entry, decided + 1)):
            result.append(award(rule, decided))
    return result


@dataclass(frozen=True, slots=True)
class Window:
    """A three-year window of a first entrant: guarantee (八) or energy (十一)."""

    uscc: str
    window: str  # guarantee | energy
    clause: str
    starts_on: date
    ends_on: date
    closed_on: date | None
    fee_cap_bp: int | None
    size_class: SizeClass | None

    def active_on(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on and (
            self.closed_on is None or day < self.closed_on
        )


def windows(history: History, policies: Policies) -> list[Window]:
    """The windows (八) and (十一) opened by a firm's first entry, as the version governing its
    first-entry year sets them."""
    policy = governing(history, policies)
    if policy is None or history.route not in policy.eligible_routes:
        return []
    entry = history.first_entry_year
    assert entry is not None
    result = []
    g = policy.windows.guarantee
    # (八) 首次"小升规"3年内 … 小微企业, 担保费率不得超过1%: a firm known to be medium or large in
    # its entry year has no window; an unknown size is listed with size_class None.
    if history.entry_size_class is None or history.entry_size_class in g.size_classes:
        result.append(
            Window(
                uscc=history.uscc,
                window="guarantee",
                clause=g.clause,
                starts_on=date(entry, 1, 1),
                ends_on=date(entry + g.years - 1, 12, 31),
                closed_on=None,
                fee_cap_bp=g.fee_cap_bp,
                size_class=history.entry_size_class,
            )
        )
    e = policy.windows.energy
    last = entry + e.years - 1
    # (十一) 持续在规3年内: the window closes on 1 January of the first register year the firm is
    # absent from, when that falls within the window.
    exits = sorted(y for y in history.exit_years if entry < y <= last)
    result.append(
        Window(
            uscc=history.uscc,
            window="energy",
            clause=e.clause,
            starts_on=date(entry, 1, 1),
            ends_on=date(last, 12, 31),
            closed_on=date(exits[0], 1, 1) if exits else None,
            fee_cap_bp=None,
            size_class=history.entry_size_class,
        )
    )
    return result


@dataclass(frozen=True, slots=True)
class Priority:
    """A first entrant's place on a priority list of (六) or (七) on a day."""

    clause: str
    policy_id: str
    window_to: int
    """The last register year of its window (which opens on its first-entry year)."""
    documents: tuple[str, ...]
    """(六): the tech_sme designations valid on the day."""


def priority(history: History, policies: Policies, which: str, day: date) -> Priority | None:
    """Whether a firm has priority on `day` under (六) (`science`: a first entrant within its
    priority window holding a tech_sme designation valid on the day) or (七) (`upgrade`: a first
    entrant within its window). First entrants only: baseline firms whose first entry year is
    known count, re-entrants do not. The window is the governing version's (default the entry
    year and the two after it), counted in register years."""
    policy = governing(history, policies)
    if policy is None:
        return None
    entry = history.first_entry_year
    assert entry is not None
    rule = policy.priority_rule
    last = entry + rule.years - 1
    if not entry <= day.year <= last:
        return None
    documents: tuple[str, ...] = ()
    if which == "science":
        documents = tuple(
            d.document
            for d in history.designations
            if d.kind == DesignationKind.TECH_SME and d.valid_on(day)
        )
        if not documents:
            return None
    clause = rule.science_clause if which == "science" else rule.upgrade_clause
    return Priority(clause, policy.id, last, documents)
