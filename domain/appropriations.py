"""The year's appropriations and the switch to paying only what a payment batch released: the
payment book's budget side (`domain.batches` is its batches).

An appropriation is set once a fund and fiscal year and changed by signed adjustments, each under
its document; what approved batches commit, release and pay is read against it. Once the ledger
requires release from a fiscal year, a payment against an award due then or later is accepted only
once a batch released it, on or after the release day (`refuse_unreleased`, checked on the firm's
own stream).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.enterprise import Enterprise
from domain.errors import ConflictError, InvalidInputError, NotFoundError, PreconditionError
from domain.money import yuan
from domain.payment_book import PAYMENT_BOOK_ID, PaymentBook
from domain.payment_results import BookResult, BudgetRow
from domain.queries import PointInTimeQueries
from domain.text import checked_text

DEFAULT_SUBJECT = "2150805"
"""The budget subject (政府收支分类科目) of an appropriation unless one is given: 215 资源勘探工业
信息等支出, 08 支持中小企业发展和管理支出, 05 中小企业发展专项."""


class AppropriationCommands(PointInTimeQueries):
    """The payment book read and written, appropriations, and the release workflow's switch."""

    # The book ---------------------------------------------------------------------------------

    def get_payment_book(self) -> PaymentBook | None:
        try:
            book: PaymentBook = self._get(PAYMENT_BOOK_ID)
        except AggregateNotFoundError:
            return None
        return book

    def _book_for(self, actor: str) -> PaymentBook:
        book = self.get_payment_book()
        if book is None:
            book = PaymentBook._create(PaymentBook.Opened, id=PAYMENT_BOOK_ID, actor=actor)
        return book

    def _saved(self, during: str, *aggregates: Any) -> int:
        recordings = self.save_or_conflict(during, *aggregates)
        position: int = max(r.notification.id for r in recordings)
        return position

    # Appropriations ---------------------------------------------------------------------------

    def set_appropriation(
        self,
        fiscal_year: int,
        fund: str,
        amount_fen: int,
        document: str,
        *,
        subject: str = DEFAULT_SUBJECT,
        actor: str,
    ) -> BookResult:
        """The year's appropriation to a fund. The same again is a replay; another amount for
        a fund already appropriated is refused (adjust it)."""
        for value, name in (
            (fund, "fund"),
            (document, "document"),
            (subject, "subject"),
            (actor, "actor"),
        ):
            checked_text(value, name)
        checked_fiscal_year(fiscal_year)
        if type(amount_fen) is not int or amount_fen <= 0:
            raise InvalidInputError("must be a positive whole number of fen", field="amount_fen")
        self.ledger_book()
        book = self._book_for(actor)
        had = book.appropriations.get((fiscal_year, fund))
        if had is not None:
            if (
                had.documents[0] == document
                and had.subject == subject
                and (had.amount_fen == amount_fen or len(had.documents) > 1)
            ):
                return BookResult(True, None, f"{fiscal_year} {fund} is appropriated already")
            raise ConflictError(
                f"fund {fund} of fiscal year {fiscal_year} is appropriated already "
                f"({yuan(had.amount_fen)} yuan under {had.documents[0]}): change it with "
                "`budget adjust`",
                field="fund",
            )
        book.trigger_event(
            PaymentBook.AppropriationSet,
            fiscal_year=fiscal_year,
            fund=fund,
            amount_fen=amount_fen,
            subject=subject,
            document=document,
            actor=actor,
        )
        position = self._saved(f"while {fiscal_year} {fund} was appropriated", book)
        return BookResult(
            False,
            position,
            f"appropriated {yuan(amount_fen)} yuan to fund {fund} for fiscal year {fiscal_year}",
        )

    def adjust_appropriation(
        self, fiscal_year: int, fund: str, change_fen: int, document: str, *, actor: str
    ) -> BookResult:
        """A signed change of a fund's appropriation, under `document` (one change a
        document: the same again is a replay). A cut below what approved batches commit is
        recorded (it is a fact) and said; the reconciliation reports it until made good."""
        for value, name in ((fund, "fund"), (document, "document"), (actor, "actor")):
            checked_text(value, name)
        if type(change_fen) is not int or change_fen == 0:
            raise InvalidInputError("must be a non-zero whole number of fen", field="amount_fen")
        book = self.get_payment_book()
        had = book.appropriations.get((fiscal_year, fund)) if book else None
        if book is None or had is None:
            raise NotFoundError(
                f"fund {fund} has no appropriation for fiscal year {fiscal_year}: `budget set` it",
                field="fund",
            )
        if document in had.documents:
            return BookResult(True, None, f"{document} is recorded already")
        book.trigger_event(
            PaymentBook.AppropriationAdjusted,
            fiscal_year=fiscal_year,
            fund=fund,
            change_fen=change_fen,
            document=document,
            actor=actor,
        )
        position = self._saved(f"while {fiscal_year} {fund} was adjusted", book)
        committed = book.committed_fen(fiscal_year, fund)
        below = (
            f"; approved batches commit {yuan(committed)} yuan, more than that: the "
            "reconciliation reports appropriation_exceeded until it is made good"
            if committed > had.amount_fen
            else ""
        )
        return BookResult(
            False,
            position,
            f"fund {fund} of fiscal year {fiscal_year} is now {yuan(had.amount_fen)} yuan{below}",
        )

    def budget(self, fiscal_year: int | None = None) -> list[BudgetRow]:
        """Per fund and fiscal year: appropriated, committed, released, paid and remaining."""
        book = self.get_payment_book()
        if book is None:
            return []
        paid: dict[str, int] = {}
        if any(b.status == "released" for b in book.batches.values()):
            for award in self.awards(self.point()):
                paid[award.entitlement_id] = award.paid_fen - award.recovered_fen
        rows = []
        for (year, fund), a in sorted(book.appropriations.items()):
            if fiscal_year is not None and year != fiscal_year:
                continue
            released = [
                b
                for b in book.batches.values()
                if (b.fiscal_year, b.fund, b.status) == (year, fund, "released")
            ]
            committed = book.committed_fen(year, fund)
            rows.append(
                BudgetRow(
                    fiscal_year=year,
                    fund=fund,
                    subject=a.subject,
                    appropriated_fen=a.amount_fen,
                    committed_fen=committed,
                    released_fen=sum(sum(b.released.values()) for b in released),
                    paid_fen=sum(paid.get(eid, 0) for b in released for eid in b.released),
                    remaining_fen=a.amount_fen - committed,
                    documents=list(a.documents),
                )
            )
        return rows

    # The workflow switch ----------------------------------------------------------------------

    def require_release(self, from_fiscal_year: int, reason: str, *, actor: str) -> BookResult:
        """From `from_fiscal_year` on, pay an award only once released in a batch. Recorded
        once: the same again is a replay, another year refused."""
        checked_text(actor, "actor")
        checked_text(reason, "reason")
        checked_fiscal_year(from_fiscal_year)
        book = self.ledger_book()
        if book.release_from is not None:
            if book.release_from == from_fiscal_year:
                return BookResult(
                    True, None, f"release is required from {from_fiscal_year} already"
                )
            raise ConflictError(
                f"release is required from fiscal year {book.release_from} already",
                field="from_fiscal_year",
            )
        book.trigger_event(
            book.ReleaseRequired, from_fiscal_year=from_fiscal_year, actor=actor, reason=reason
        )
        position = self._saved("while the workflow was switched on", book)
        return BookResult(
            False,
            position,
            f"from fiscal year {from_fiscal_year} on, an award is paid only once released in a batch",
        )


def checked_fiscal_year(year: int) -> None:
    if not 2000 <= year <= 2100:
        raise InvalidInputError(f"{year} is not a fiscal year", field="fiscal_year")


def refuse_unreleased(
    firm: Enterprise, entitlement_id: str, due_fiscal_year: int, day: date, release_from: int
) -> None:
    """Under the release workflow (from fiscal year `release_from`), an award is paid only once
    released in a batch, and on or after the release day."""
    if due_fiscal_year < release_from:
        return
    released = firm.state.released.get(entitlement_id)
    if released is None:
        raise PreconditionError(
            f"{entitlement_id} is due in fiscal year {due_fiscal_year}, when an award is paid only "
            f"once released in a payment batch (required from fiscal year {release_from}): it is "
            "in no released batch (batch propose, approve, publish, release)",
            field="entitlement_id",
        )
    batch_id, released_on = released
    if day < released_on:
        raise PreconditionError(
            f"{entitlement_id} was released in {batch_id} on {released_on}: a payment against it "
            f"is dated on or after that day, not {day}",
            field="paid_on",
        )
