"""The social-insurance subsidy of 38号 (九): first entrants that hire hard-to-employ people
(就业困难人员) on contracts of a year or more and pay their social insurance in full get what
they actually paid subsidised, for at most 3 years a hire, from the employment fund.

Here: the events (on the employer's stream, naming people by pseudonym only), the book of the
files imported (which also indexes each pseudonym's employers), an employer's subsidy facts
folded from its events, and the one pure function that decides each month's subsidy. The
commands are in `domain.subsidy_commands`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from eventsourcing.domain import Aggregate

from domain.enterprise import NAMESPACE, Enterprise, FirmState
from domain.errors import InvalidInputError
from domain.persons import Erasure
from domain.policy import SocialInsuranceRule

SI_BOOK_ID = uuid.uuid5(NAMESPACE, "social-insurance-book")
FUND = "employment"
"""The fund the subsidy is paid from: never counted with the provincial award fund."""
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


# Events (module paths and names are part of the stored schema) ------------------------------
# Declared here rather than nested in `Enterprise` (whose module holds the register's events):
# they are the employer's, on its stream, but only this subsidy reads them, and the register's
# fold passes over them as `Enterprise.SubsidyEvent`s.


class EmployerEvent(Enterprise.SubsidyEvent):
    """A (九) event of the employer: folded into the aggregate's `si_state` (the firm's
    `FirmState` passes over it)."""

    def apply(self, aggregate: Any) -> None:
        state = aggregate.__dict__.get("si_state")
        if state is None:
            state = aggregate.si_state = SubsidyState(aggregate.state.uscc)
        state.apply(self)


class HiresRecorded(EmployerEvent):
    """The human-resources bureau recorded hires of hard-to-employ people by the firm: each
    `{"person": PSEUDONYM, "contract_start": DATE, "contract_end": DATE or None}` (None: an
    open-ended contract). A person's identity, name and category are in the vault, never here."""

    hires: list[dict[str, Any]]

    def fact_day(self) -> date:
        return min(date.fromisoformat(h["contract_start"]) for h in self.hires)


class ContributionsReported(EmployerEvent):
    """What the firm paid, as employer, of its hires' social insurance for `month` (YYYY-MM):
    pseudonym -> fen."""

    month: str
    amounts: dict[str, int]

    def fact_day(self) -> date:
        return month_start(self.month)


class SubsidyPaid(EmployerEvent):
    """A payment of the subsidy from the employment fund to the firm for one hire's month
    (`claim_id`: USCC/si/PSEUDONYM/YYYY-MM) under the treasury voucher `payment_ref`."""

    claim_id: str
    person: str
    month: str
    payment_ref: str
    amount_fen: int
    paid_on: date

    def fact_day(self) -> date:
        return self.paid_on


class PersonErased(EmployerEvent):
    """A person hired by the firm was erased under `document` (their key destroyed: no command
    shows their identity again); the pseudonym and every amount remain."""

    person: str
    document: str
    erased_on: date

    def fact_day(self) -> date:
        return self.erased_on


SUBSIDY_EVENTS = (HiresRecorded, ContributionsReported, SubsidyPaid, PersonErased)


class SubsidyBook(Aggregate):
    """The (九) files imported, the secret's fingerprint the pseudonyms are made under, and each
    pseudonym's employers (so that an erasure reaches every employer's stream)."""

    class Opened(Aggregate.Created):
        secret_fingerprint: str
        actor: str

    class HiresImported(Aggregate.Event):
        sha256: str
        rows: int
        counts: dict[str, int]
        employers: dict[str, list[str]]
        """USCC -> the pseudonyms it newly hired by this file."""
        actor: str

        def apply(self, aggregate: Any) -> None:
            for uscc, people in self.employers.items():
                for person in people:
                    aggregate.employers_of.setdefault(person, set()).add(uscc)

    class ContributionsImported(Aggregate.Event):
        month: str
        sha256: str
        rows: int
        counts: dict[str, int]
        actor: str

        def apply(self, aggregate: Any) -> None:
            pass

    def __init__(self, secret_fingerprint: str, actor: str) -> None:
        self.secret_fingerprint = secret_fingerprint
        self.employers_of: dict[str, set[str]] = {}

    @property
    def employers(self) -> set[str]:
        return {u for usccs in self.employers_of.values() for u in usccs}


def employers_of(events: Iterable[Any]) -> set[str]:
    """The employers the book's events (up to some position) name."""
    found: set[str] = set()
    for e in events:
        if isinstance(e, SubsidyBook.HiresImported):
            found.update(e.employers)
    return found


# An employer's facts ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contract:
    start: date
    end: date | None

    def covers(self, month: str) -> bool:
        """Whether the contract runs on some day of the month."""
        first = month_start(month)
        return self.start <= month_end(first) and (self.end is None or first <= self.end)

    def text(self) -> str:
        return f"{self.start} to {self.end or 'open-ended'}"


@dataclass(slots=True)
class Hire:
    """A person's hires by one firm: the 3 years run from the first contract's start (a renewal
    continues the hire, it does not restart it)."""

    person: str
    contracts: list[Contract] = field(default_factory=list)

    @property
    def start(self) -> date:
        return min(c.start for c in self.contracts)


@dataclass(slots=True)
class SubsidyPayment:
    ref: str
    person: str
    month: str
    amount_fen: int
    paid_on: date


@dataclass(slots=True)
class SubsidyState:
    """A firm's (九) facts, folded from its subsidy events."""

    uscc: str
    hires: dict[str, Hire] = field(default_factory=dict)
    contributions: dict[tuple[str, str], int] = field(default_factory=dict)
    """(pseudonym, month) -> what the firm paid as employer, in fen."""
    payments: dict[str, SubsidyPayment] = field(default_factory=dict)
    erased: dict[str, Erasure] = field(default_factory=dict)

    def apply(self, event: Any) -> None:
        match event:
            case HiresRecorded():
                for h in event.hires:
                    end = h["contract_end"]
                    contract = Contract(
                        date.fromisoformat(h["contract_start"]),
                        date.fromisoformat(end) if end else None,
                    )
                    hire = self.hires.setdefault(h["person"], Hire(h["person"]))
                    hire.contracts.append(contract)
                    hire.contracts.sort(key=lambda c: c.start)
            case ContributionsReported():
                for person, fen in event.amounts.items():
                    self.contributions[(person, event.month)] = fen
            case SubsidyPaid():
                self.payments[event.payment_ref] = SubsidyPayment(
                    event.payment_ref, event.person, event.month, event.amount_fen, event.paid_on
                )
            case PersonErased():
                self.erased[event.person] = Erasure(event.document, event.erased_on)

    def paid_fen(self, person: str, month: str) -> int:
        return sum(
            p.amount_fen for p in self.payments.values() if (p.person, p.month) == (person, month)
        )


def subsidy_state(uscc: str, events: Iterable[Any]) -> SubsidyState:
    """A firm's subsidy facts from its events (others are passed over)."""
    state = SubsidyState(uscc)
    for event in events:
        if isinstance(event, Enterprise.SubsidyEvent):
            state.apply(event)
    return state


# The rule ---------------------------------------------------------------------------------


def month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:]), 1)


def month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:]) - 1


def checked_month(value: str, today: date) -> str:
    """A contribution month YYYY-MM, not after this month; InvalidInputError naming `month`."""
    if _MONTH.fullmatch(value) is None:
        raise InvalidInputError(
            f"{value!r} is not a month: write it YYYY-MM, e.g. 2024-03", field="month"
        )
    if month_number(value) > month_number(month_of(today)):
        raise InvalidInputError(
            f"{value} is after this month ({month_of(today)}, Asia/Shanghai): a contribution is "
            "reported once paid",
            field="month",
        )
    return value


def last_day_of_a_year(start: date) -> date:
    """The last day of a contract of exactly one year from `start` (a 29 February start runs to
    28 February)."""
    try:
        return start.replace(year=start.year + 1) - timedelta(days=1)
    except ValueError:
        return date(start.year + 1, 2, 28)


def contract_problem(start: date, end: date | None, rule: SocialInsuranceRule) -> str | None:
    """Why the contract does not qualify ((九) 签订1年以上劳动合同), or None. An open-ended
    contract (无固定期限) qualifies."""
    if end is None:
        return None
    if end < start:
        return f"{end} is before contract_start {start}: check the dates"
    shortest = start
    for _ in range(rule.min_contract_years):
        shortest = last_day_of_a_year(shortest) + timedelta(days=1)
    if end < shortest - timedelta(days=1):
        return (
            f"a contract from {start} to {end} is shorter than {rule.min_contract_years} "
            f"year(s) (it must run to {shortest - timedelta(days=1)} at least): only hires on "
            f"contracts of a year or more are subsidised ({rule.clause})"
        )
    return None


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """One hire's month: what the employer paid, whether the month is subsidised, the subsidy
    (what was paid, never more), and what was paid of it."""

    uscc: str
    person: str
    """The pseudonym, never the identity number."""
    month: str
    employer_paid_fen: int
    eligible: bool
    subsidy_fen: int
    paid_fen: int
    outstanding_fen: int
    hire_start: date
    last_eligible_month: str
    """The hire's last subsidised month (the 3 years' end)."""
    why_not: str | None
    """Why the month is not subsidised (None: it is)."""
    fund: str = FUND

    @property
    def claim_id(self) -> str:
        return claim_id(self.uscc, self.person, self.month)


def claim_id(uscc: str, person: str, month: str) -> str:
    return f"{uscc}/si/{person}/{month}"


def hire_window_problem(hire_start: date, firm: FirmState, rule: SocialInsuranceRule) -> str | None:
    """Why a hire starting on `hire_start` is outside the firm's first-entry window, or None."""
    entry = firm.first_entry_year
    if entry is None or firm.route is None:
        return "the firm is not (or no longer) known as a first entrant"
    if rule.hire_window_years is None:
        return None
    last = entry + rule.hire_window_years - 1
    if not entry <= hire_start.year <= last:
        return (
            f"the hire starts in {hire_start.year}, outside the first-entry window "
            f"{entry}-{last} ({rule.clause})"
        )
    return None


def claim_rows(
    firm: FirmState,
    state: SubsidyState,
    rule: SocialInsuranceRule,
    wanted: Callable[[str], bool] = lambda _month: True,
) -> list[ClaimRow]:
    """Every reported month of every hire of the firm (those `wanted`), decided: a month is
    subsidised from the hire's first contract's month for `rule.months` months (the month it
    starts in counts as the first), if the hire is in the firm's first-entry window; the subsidy
    is what the employer paid that month."""
    rows = []
    for (person, month), fen in sorted(
        state.contributions.items(), key=lambda kv: (kv[0][1], kv[0][0])
    ):
        if not wanted(month):
            continue
        hire = state.hires[person]
        first = month_number(month_of(hire.start))
        last = first + rule.months - 1
        why = hire_window_problem(hire.start, firm, rule)
        if why is None and month_number(month) > last:
            why = f"past the hire's {rule.months} months ({rule.clause}: at most 3 years a hire)"
        subsidy = fen if why is None else 0
        paid = state.paid_fen(person, month)
        rows.append(
            ClaimRow(
                uscc=state.uscc,
                person=person,
                month=month,
                employer_paid_fen=fen,
                eligible=why is None,
                subsidy_fen=subsidy,
                paid_fen=paid,
                outstanding_fen=max(subsidy - paid, 0),
                hire_start=hire.start,
                last_eligible_month=f"{last // 12:04d}-{last % 12 + 1:02d}",
                why_not=why,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class FundTotal:
    """A fund's totals over the claim rows shown."""

    fund: str
    months: int
    employer_paid_fen: int
    subsidy_fen: int
    paid_fen: int
    outstanding_fen: int


def fund_totals(rows: list[ClaimRow]) -> list[FundTotal]:
    funds = sorted({r.fund for r in rows}) or [FUND]
    return [
        FundTotal(
            fund,
            sum(1 for r in rows if r.fund == fund),
            sum(r.employer_paid_fen for r in rows if r.fund == fund),
            sum(r.subsidy_fen for r in rows if r.fund == fund),
            sum(r.paid_fen for r in rows if r.fund == fund),
            sum(r.outstanding_fen for r in rows if r.fund == fund),
        )
        for fund in funds
    ]
