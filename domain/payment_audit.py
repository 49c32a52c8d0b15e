"""The reconciliation's rules of the money's path (`domain.reconciliation` holds the matching and
the other audit rules): payments outside the release workflow or during a notice, and funds
drawn beyond their appropriation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from domain.money import yuan
from domain.payment_book import PaymentBook
from domain.payment_results import BudgetRow
from domain.reconciliation import AwardFacts, Finding, LedgerPayment


def workflow_audit(
    awards: Sequence[AwardFacts],
    payments: Sequence[LedgerPayment],
    book: PaymentBook | None,
    release_from: int | None,
    budget: Sequence[BudgetRow],
) -> list[Finding]:
    """The rules of the money's path, over the payment book as the ledger holds it now.

    - `paid_without_release`: with the release workflow on from fiscal year Y, a payment against
      an award due in Y or later that no released batch holds, or dated before its release (the
      ledger refuses both: this is what got past, or a payment recorded before the switch).
    - `paid_before_notice_ended`: a payment against an award of a published batch dated on or
      before the notice's last day (objections were still open).
    - `appropriation_exceeded`: a fund's year where approved batches commit, or released or paid
      awards draw, more than is appropriated (a cut after approval, an award grown since).
    """
    findings: list[Finding] = []
    due = {a.entitlement_id: a.due_fiscal_year for a in awards}
    released: dict[str, tuple[str, date]] = {}
    notices: dict[str, tuple[str, date]] = {}
    for b in book.batches.values() if book else ():
        if b.released_on is not None:
            for eid in b.released:
                released[eid] = (b.batch_id, b.released_on)
        if b.notice_to is not None:
            for item in b.left():
                notices[item.entitlement_id] = (b.batch_id, b.notice_to)
    for p in sorted(payments, key=lambda p: p.position):
        year = due.get(p.entitlement_id)
        if release_from is not None and year is not None and year >= release_from:
            where = released.get(p.entitlement_id)
            if where is None or p.paid_on < where[1]:
                findings.append(
                    Finding(
                        "paid_without_release",
                        "audit",
                        p.ref,
                        f"payment {p.ref} of {yuan(p.amount_fen)} yuan against "
                        f"{p.entitlement_id} (fiscal year {year}, released payment only from "
                        f"{release_from}) is dated {p.paid_on}"
                        + (
                            f", before its release in {where[0]} on {where[1]}"
                            if where
                            else ", and no released batch holds the award"
                        ),
                        {
                            "payment": p.evidence(),
                            "release": {"batch_id": where[0], "released_on": where[1].isoformat()}
                            if where
                            else None,
                        },
                        uscc=p.uscc,
                        entitlement_id=p.entitlement_id,
                        amount_fen=p.amount_fen,
                    )
                )
        notice = notices.get(p.entitlement_id)
        if notice is not None and p.paid_on <= notice[1]:
            findings.append(
                Finding(
                    "paid_before_notice_ended",
                    "audit",
                    p.ref,
                    f"payment {p.ref} of {yuan(p.amount_fen)} yuan against {p.entitlement_id} is "
                    f"dated {p.paid_on}, while the public notice of {notice[0]} ran (to "
                    f"{notice[1]}): objections were still open",
                    {
                        "payment": p.evidence(),
                        "batch_id": notice[0],
                        "notice_to": notice[1].isoformat(),
                    },
                    uscc=p.uscc,
                    entitlement_id=p.entitlement_id,
                    amount_fen=p.amount_fen,
                )
            )
    for row in budget:
        drawn = max(row.committed_fen, row.released_fen, row.paid_fen)
        if drawn > row.appropriated_fen:
            findings.append(
                Finding(
                    "appropriation_exceeded",
                    "audit",
                    f"{row.fiscal_year}/{row.fund}",
                    f"fund {row.fund} of fiscal year {row.fiscal_year} is appropriated "
                    f"{yuan(row.appropriated_fen)} yuan, and its batches commit "
                    f"{yuan(row.committed_fen)}, release {yuan(row.released_fen)} and paid "
                    f"{yuan(row.paid_fen)}: {yuan(drawn - row.appropriated_fen)} yuan over",
                    {"budget": _budget_evidence(row)},
                    amount_fen=drawn - row.appropriated_fen,
                )
            )
    return findings


def _budget_evidence(row: BudgetRow) -> dict[str, Any]:
    return {
        "fiscal_year": row.fiscal_year,
        "fund": row.fund,
        "appropriated_fen": row.appropriated_fen,
        "committed_fen": row.committed_fen,
        "released_fen": row.released_fen,
        "paid_fen": row.paid_fen,
        "documents": list(row.documents),
    }
