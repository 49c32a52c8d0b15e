"""The (九) subsidy's claims and payments: each hire's months decided as known at a point, with
the employment fund's totals, and payments of a month's subsidy under a treasury voucher."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain.enterprise import Enterprise, PaymentRef, enterprise_id, payment_ref_id
from domain.errors import (
    ConcurrentWriteError,
    ConflictError,
    NotFoundError,
    PreconditionError,
)
from domain.ledger_base import checked_uscc
from domain.money_moves import RETRIES, _check_money, refuse_if_held
from domain.ports import Commit
from domain.social_insurance import (
    FUND,
    SI_BOOK_ID,
    SubsidyPaid,
    checked_month,
    claim_id,
    claim_rows,
    employers_of,
    fund_totals,
    month_number,
    subsidy_state,
)
from domain.subsidy_commands import SubsidyCommands, subsidy_of
from domain.subsidy_results import (
    Claims,
    SubsidyPaymentResult,
)
from domain.text import checked_text
from domain.trail import folded


class SubsidyMoney(SubsidyCommands):
    """`si_claims`, `record_si_payment`."""

    def si_claims(
        self,
        *,
        month: str | None = None,
        fiscal_year: int | None = None,
        uscc: str | None = None,
        known_at: str | None = None,
    ) -> Claims:
        """Every hire's reported months as known at `known_at` (default: now), decided by the
        policy version governing the employer's first entry: the month's subsidy (what the
        employer paid, if the month is eligible), what was paid of it and what is outstanding.
        `month` or `fiscal_year`: only those contribution months; `uscc`: one employer."""
        if month is not None:
            checked_month(month, self.today())
        if uscc is not None:
            checked_uscc(uscc)
        at = self.point(known_at)
        rows = []
        if at.recorded_at is not None:
            policies = self.policies_at(Commit(at.position, at.recorded_at))
            book = [e for e in self.store.select_trail(SI_BOOK_ID) if e.position <= at.position]
            employers = sorted(employers_of(self.decoded(book)))
            for u in employers if uscc is None else [u for u in employers if u == uscc]:
                trail = self.store.select_trail(enterprise_id(u))
                events = self.decoded([e for e in trail if e.position <= at.position])
                firm = folded(events)
                rule = policies.governing(firm.first_entry_year or 0).social_insurance_rule
                rows += claim_rows(
                    firm, subsidy_state(u, events), rule, _months(month, fiscal_year)
                )
        rows.sort(key=lambda r: (r.uscc, r.month, r.person))
        return Claims(at, rows, fund_totals(rows))

    def record_si_payment(
        self,
        uscc: str,
        person: str,
        month: str,
        ref: str,
        amount_fen: int,
        paid_on: date,
        *,
        actor: str,
    ) -> SubsidyPaymentResult:
        """Record a payment of the subsidy, from the employment fund, for one hire's month.

        Args:
            uscc: the employer paid.
            person: the hire's pseudonym, as `si_claims` shows it.
            month: the contribution month paid for, YYYY-MM.
            ref: the treasury's voucher number, unique ledger-wide (award payments' included).
            amount_fen: instalments allowed, never above the month's subsidy.
            paid_on: not after today; refused on a day a hold on the employer is in force.
        """
        checked_text(actor, "actor")
        checked_text(person, "person")
        checked_month(month, self.today())
        _check_money(amount_fen, paid_on, self.today(), ref, "paid_on")
        claim = claim_id(checked_uscc(uscc), person, month)
        for _attempt in range(RETRIES):
            firm = self.get_enterprise(uscc)
            row = self._claim(firm, person, month)
            claimed = self.get_payment_ref(ref)
            if claimed is not None:
                if (claimed.entitlement_id, claimed.amount_fen, claimed.paid_on) != (
                    claim,
                    amount_fen,
                    paid_on,
                ):
                    raise ConflictError(
                        f"{ref} already records {claimed.amount_fen} fen on {claimed.paid_on} "
                        f"against {claimed.entitlement_id}; a voucher number is used once",
                        field="ref",
                    )
                again = self._claim(self.get_enterprise(uscc), person, month)
                return SubsidyPaymentResult(
                    claim,
                    uscc,
                    person,
                    month,
                    ref,
                    amount_fen,
                    paid_on,
                    True,
                    again[1],
                    again[0],
                    FUND,
                )
            subsidy, paid = row
            refuse_if_held(firm, paid_on)
            if paid + amount_fen > subsidy:
                raise PreconditionError(
                    f"overpayment: the subsidy of {claim} is {subsidy} fen (what the employer "
                    f"paid), {paid} fen already paid, so at most {subsidy - paid} fen can be "
                    f"paid, not {amount_fen}",
                    field="amount_fen",
                )
            firm.trigger_event(
                SubsidyPaid,
                claim_id=claim,
                person=person,
                month=month,
                payment_ref=ref,
                amount_fen=amount_fen,
                paid_on=paid_on,
                actor=actor,
                source_sha256=None,
            )
            voucher: PaymentRef = PaymentRef._create(
                PaymentRef.Claimed,
                id=payment_ref_id(ref),
                ref=ref,
                uscc=uscc,
                entitlement_id=claim,
                amount_fen=amount_fen,
                paid_on=paid_on,
                actor=actor,
            )
            try:
                self.save(firm, voucher)
            except IntegrityError:
                continue  # a concurrent write of this firm or this ref: look again
            return SubsidyPaymentResult(
                claim,
                uscc,
                person,
                month,
                ref,
                amount_fen,
                paid_on,
                False,
                paid + amount_fen,
                subsidy,
                FUND,
            )
        raise ConcurrentWriteError(
            f"payment {ref} kept conflicting with concurrent writes; try again"
        )

    def _claim(self, firm: Enterprise, person: str, month: str) -> tuple[int, int]:
        """The month's subsidy and what was paid of it; refused if there is none to pay."""
        st = subsidy_of(firm)
        if person not in st.hires:
            raise NotFoundError(
                f"{person} is not a hire of {firm.uscc} (see si-claims)", field="person"
            )
        if (person, month) not in st.contributions:
            raise NotFoundError(
                f"no contribution of {person} for {month} is reported by "
                f"{firm.uscc}: nothing is owed for it",
                field="month",
            )
        rule = self.get_policies().governing(firm.state.first_entry_year or 0).social_insurance_rule
        row = claim_rows(firm.state, st, rule, lambda m: m == month)
        mine = next(r for r in row if r.person == person)
        if not mine.eligible:
            raise PreconditionError(
                f"{mine.claim_id} is not subsidised: {mine.why_not}", field="month"
            )
        return mine.subsidy_fen, mine.paid_fen


def _months(month: str | None, fiscal_year: int | None) -> Any:
    if month is not None:
        return lambda m: m == month
    if fiscal_year is not None:
        return lambda m: month_number(m) // 12 == fiscal_year
    return lambda _m: True
