"""Payment batches (拨付批次): the awards of a fiscal year from review to payable, drawing on the
appropriations of `domain.appropriations`.

A batch lists the awards due in one fiscal year (province-wide or of one city), not fully paid,
not held and in no other batch, drawing on one fund. It is approved by a user other than the one
who proposed it (maker-checker) within the fund's appropriation, published for objections (公示,
at least 5 working days by the official calendar), and released once the notice ended: the
awards left are then payable, each up to what was outstanding on the release day. An objection
heard during the notice takes the firm's awards out and places an `objection` hold on the firm.
Every step is an event with its actor (`domain.payment_book`).
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from domain.appropriations import AppropriationCommands, checked_fiscal_year
from domain.enterprise import Enterprise, Hold
from domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotPermittedError,
    OutOfScopeError,
    PreconditionError,
)
from domain.holds import HoldReason
from domain.ledger_base import checked_city, checked_uscc
from domain.money import yuan
from domain.payment_book import BATCH_STATUSES, Batch, BatchItem, PaymentBook
from domain.payment_results import BatchAward, BatchObjection, BatchView, PaymentOrder
from domain.text import checked_text
from domain.working_days import last_working_day

MIN_WORKING_DAYS = 5
"""A public notice lasts at least 5 working days (DOMAIN.md; 7 in Guangdong)."""


class BatchCommands(AppropriationCommands):
    """Payment batches: propose, approve, publish, object, release; a batch, the batches, the
    orders."""

    def _batch(self, book: PaymentBook | None, batch_id: str, city: str | None) -> Batch:
        checked_text(batch_id, "batch_id")
        batch = book.batches.get(batch_id) if book else None
        if batch is None or (city is not None and batch.city != city):
            if city is not None:
                raise OutOfScopeError(f"{batch_id} is not a batch of city {city}", field="batch_id")
            known = ", ".join(sorted(book.batches)[-5:]) if book else ""
            raise NotFoundError(
                f"no payment batch {batch_id!r}" + (f" (the latest: {known})" if known else ""),
                field="batch_id",
            )
        return batch

    # Batches ----------------------------------------------------------------------------------

    def propose_batch(
        self, fiscal_year: int, *, city: str | None = None, fund: str | None = None, actor: str
    ) -> BatchView:
        """Every award due in the fiscal year (of `city`), not fully paid, not held today and in
        no other batch, drawing on `fund` (default: the year's only fund)."""
        checked_text(actor, "actor")
        checked_fiscal_year(fiscal_year)
        checked_city(city)
        self.ledger_book()
        book = self._book_for(actor)
        funds = book.funds(fiscal_year)
        if fund is None:
            if not funds:
                raise PreconditionError(
                    f"no fund is appropriated for fiscal year {fiscal_year}: `budget set` first",
                    field="fiscal_year",
                )
            if len(funds) > 1:
                raise InvalidInputError(
                    f"fiscal year {fiscal_year} has {len(funds)} funds ({', '.join(funds)}): name "
                    "the one the batch draws on",
                    field="fund",
                )
            fund = funds[0]
        elif fund not in funds:
            raise NotFoundError(
                f"fund {fund!r} has no appropriation for fiscal year {fiscal_year}"
                + (f" (it has {', '.join(funds)})" if funds else ""),
                field="fund",
            )
        today = self.today()
        items = [
            BatchItem(
                a.entitlement_id,
                a.uscc,
                a.name,
                a.city_code,
                a.kind,
                a.clause,
                a.policy,
                a.outstanding_fen,
            )
            # "Not held" is as of the day of the proposal.
            for a in self.awards(self.point(as_of=today), fiscal_year=fiscal_year, city=city)
            if a.earned
            and a.outstanding_fen > 0
            and a.entitlement_id not in book.in_batch
            and a.hold is None
        ]
        if not items:
            raise PreconditionError(
                f"no award due in fiscal year {fiscal_year}"
                + (f" of city {city}" if city else "")
                + " is left to propose: each is paid, held or in a batch already",
                field="fiscal_year",
            )
        batch_id = book.next_batch_id(fiscal_year, city)
        book.trigger_event(
            PaymentBook.BatchProposed,
            batch_id=batch_id,
            fiscal_year=fiscal_year,
            city=city,
            fund=fund,
            items=[i.as_dict() for i in items],
            proposed_on=today,
            actor=actor,
        )
        position = self._saved(f"while {batch_id} was proposed", book)
        return self._view(book.batches[batch_id], position=position)

    def approve_batch(self, batch_id: str, *, actor: str, city: str | None = None) -> BatchView:
        """Approval by a user other than the proposer, within the fund's appropriation."""
        checked_text(actor, "actor")
        book = self.get_payment_book()
        batch = self._batch(book, batch_id, city)
        assert book is not None
        if batch.status != "proposed":
            if batch.approved_by == actor:
                return self._view(batch, replay=True)
            raise PreconditionError(f"{batch_id} is {batch.status} already", field="batch_id")
        if actor == batch.proposed_by:
            raise NotPermittedError(
                f"{actor} proposed {batch_id}: another user approves it (maker-checker)",
                field="actor",
            )
        appropriation = book.appropriations[(batch.fiscal_year, batch.fund)]
        committed = book.committed_fen(batch.fiscal_year, batch.fund)
        over = committed + batch.total_fen - appropriation.amount_fen
        if over > 0:
            raise PreconditionError(
                f"approving {batch_id} ({yuan(batch.total_fen)} yuan) would exceed the "
                f"appropriation of fund {batch.fund} for fiscal year {batch.fiscal_year} by "
                f"{yuan(over)} yuan (appropriated {yuan(appropriation.amount_fen)}, committed "
                f"{yuan(committed)}): `budget adjust` first, or propose by city",
                field="batch_id",
            )
        book.trigger_event(
            PaymentBook.BatchApproved, batch_id=batch_id, approved_on=self.today(), actor=actor
        )
        position = self._saved(f"while {batch_id} was approved", book)
        return self._view(batch, position=position)

    def publish_batch(
        self,
        batch_id: str,
        notice_from: date,
        *,
        working_days: int = MIN_WORKING_DAYS,
        objections_to: str,
        actor: str,
        city: str | None = None,
    ) -> BatchView:
        """The public notice (公示) from `notice_from` for `working_days` working days by the
        official calendar (the first day counted when it is one); `objections_to`: where to
        object. The same notice again is a replay."""
        checked_text(actor, "actor")
        checked_text(objections_to, "objections_to")
        if working_days < MIN_WORKING_DAYS:
            raise InvalidInputError(
                f"a public notice lasts at least {MIN_WORKING_DAYS} working days, not {working_days}",
                field="working_days",
            )
        book = self.get_payment_book()
        batch = self._batch(book, batch_id, city)
        if batch.status in ("published", "released"):
            if (batch.notice_from, batch.working_days) == (notice_from, working_days):
                return self._view(batch, replay=True)
            raise PreconditionError(
                f"{batch_id} was published already, from {batch.notice_from} to {batch.notice_to}",
                field="batch_id",
            )
        if batch.status != "approved":
            raise PreconditionError(
                f"{batch_id} is not approved yet: `batch approve` it first (by another user)",
                field="batch_id",
            )
        notice_to = last_working_day(notice_from, working_days)
        assert book is not None
        book.trigger_event(
            PaymentBook.BatchPublished,
            batch_id=batch_id,
            notice_from=notice_from,
            notice_to=notice_to,
            working_days=working_days,
            objections_to=objections_to,
            actor=actor,
        )
        position = self._saved(f"while {batch_id} was published", book)
        return self._view(batch, position=position)

    def object_to_batch(
        self,
        batch_id: str,
        uscc: str,
        reason: str,
        received_on: date,
        *,
        actor: str,
        city: str | None = None,
    ) -> BatchView:
        """An objection received during the notice (both ends included): the firm's awards
        leave the batch and an `objection` hold is placed on it from `received_on` until
        lifted. The same objection again is a replay."""
        checked_text(actor, "actor")
        checked_text(reason, "reason")
        checked_uscc(uscc)
        book = self.get_payment_book()
        batch = self._batch(book, batch_id, city)
        assert book is not None
        for o in batch.objections:
            if o.uscc == uscc:
                if (o.reason, o.received_on) == (reason, received_on):
                    return self._view(batch, replay=True)
                raise ConflictError(
                    f"an objection to {uscc} in {batch_id} was heard already (received "
                    f"{o.received_on}): its awards are out of the batch",
                    field="uscc",
                )
        if batch.status != "published" or batch.notice_from is None or batch.notice_to is None:
            raise PreconditionError(
                f"{batch_id} is {batch.status}: objections are heard during its public notice",
                field="batch_id",
            )
        if not batch.notice_from <= received_on <= batch.notice_to:
            raise InvalidInputError(
                f"{received_on} is outside the notice of {batch_id} ({batch.notice_from} to "
                f"{batch.notice_to}, both included)",
                field="received_on",
            )
        if received_on > self.today():
            raise InvalidInputError(f"{received_on} is after today", field="received_on")
        removed = sorted(i.entitlement_id for i in batch.left() if i.uscc == uscc)
        if not removed:
            raise NotFoundError(f"{uscc} has no award in {batch_id}", field="uscc")
        firm = self.get_enterprise(uscc)
        document = f"{batch_id}/objection/{uscc}"
        objection = Hold(
            HoldReason.OBJECTION.value,
            f"public notice of {batch_id}: {batch.objections_to}",
            document,
            received_on,
            None,
        )
        firm.place_hold(objection, actor)
        book.trigger_event(
            PaymentBook.ObjectionHeard,
            batch_id=batch_id,
            uscc=uscc,
            reason=reason,
            received_on=received_on,
            hold_document=document,
            removed=removed,
            actor=actor,
        )
        position = self._saved(f"while the objection to {uscc} was heard", book, firm)
        return self.caught_up(self._view(batch, position=position))

    def release_batch(self, batch_id: str, *, actor: str, city: str | None = None) -> BatchView:
        """Release once the notice ended (from the day after its last): the awards left become
        payable, each up to what is outstanding today; one held today, paid meanwhile or
        revoked is withheld, saying why."""
        checked_text(actor, "actor")
        book = self.get_payment_book()
        batch = self._batch(book, batch_id, city)
        assert book is not None
        if batch.status == "released":
            return self._view(batch, replay=True)
        if batch.status != "published" or batch.notice_to is None:
            raise PreconditionError(
                f"{batch_id} is {batch.status}: it is released after its public notice",
                field="batch_id",
            )
        today = self.today()
        if today <= batch.notice_to:
            raise PreconditionError(
                f"the notice of {batch_id} runs to {batch.notice_to}: release it from "
                f"{batch.notice_to + timedelta(days=1)} (today is {today}, Asia/Shanghai)",
                field="batch_id",
            )
        left = batch.left()
        firms = {f.uscc: f for f in self.get_enterprises(sorted({i.uscc for i in left}))}
        policies = self.get_policies()
        released: dict[str, int] = {}
        withheld: dict[str, str] = {}
        by_firm: dict[str, dict[str, int]] = {}
        owed = {e.entitlement_id: e for f in firms.values() for e in f.entitlements(policies)}
        for item in left:
            s = firms[item.uscc].state
            e = owed.get(item.entitlement_id)
            holds = s.holds_in_force(today)
            if e is None:
                withheld[item.entitlement_id] = "revoked since it was proposed"
                continue
            if holds:
                withheld[item.entitlement_id] = f"on hold: {holds[0].reason} {holds[0].document}"
                continue
            outstanding = e.amount_fen - (
                s.paid_fen(item.entitlement_id) - s.recovered_fen(item.entitlement_id)
            )
            if outstanding <= 0:
                withheld[item.entitlement_id] = "paid in full since it was proposed"
                continue
            released[item.entitlement_id] = outstanding
            by_firm.setdefault(item.uscc, {})[item.entitlement_id] = outstanding
        for uscc, amounts in by_firm.items():
            firms[uscc].trigger_event(
                Enterprise.AwardsReleased,
                batch_id=batch_id,
                released_on=today,
                amounts=amounts,
                actor=actor,
                source_sha256=None,
            )
        book.trigger_event(
            PaymentBook.BatchReleased,
            batch_id=batch_id,
            released_on=today,
            released=released,
            withheld=withheld,
            actor=actor,
        )
        position = self._saved(f"while {batch_id} was released", book, *(firms[u] for u in by_firm))
        return self.caught_up(self._view(batch, position=position))

    def batch(self, batch_id: str, *, city: str | None = None) -> BatchView:
        """A batch, its awards with `entitlement_id`, `amount_fen` and status, and what was
        paid against each."""
        book = self.get_payment_book()
        batch = self._batch(book, batch_id, city)
        paid = {
            a.entitlement_id: a.paid_fen - a.recovered_fen
            for a in self.awards(self.point(), fiscal_year=batch.fiscal_year, city=batch.city)
        }
        return self._view(batch, paid=paid)

    def batches(
        self,
        *,
        fiscal_year: int | None = None,
        status: str | None = None,
        city: str | None = None,
    ) -> list[BatchView]:
        """The batches (of the fiscal year, in the status, of the city), without their awards."""
        if status is not None and status not in BATCH_STATUSES:
            raise InvalidInputError(
                f"{status!r} is not one of {', '.join(BATCH_STATUSES)}", field="status"
            )
        book = self.get_payment_book()
        if book is None:
            return []
        return [
            self._view(b, awards=False)
            for b in book.batches.values()
            if (fiscal_year is None or b.fiscal_year == fiscal_year)
            and (status is None or b.status == status)
            and (city is None or b.city == city)
        ]

    def batch_orders(self, batch_id: str, *, city: str | None = None) -> list[PaymentOrder]:
        """The payment orders of a released batch: one an award released, for its amount."""
        book = self.get_payment_book()
        batch = self._batch(book, batch_id, city)
        assert book is not None
        if batch.status != "released":
            raise PreconditionError(
                f"{batch_id} is {batch.status}: its orders are written once it is released",
                field="batch_id",
            )
        subject = book.appropriations[(batch.fiscal_year, batch.fund)].subject
        orders = []
        for n, item in enumerate(
            sorted(
                (batch.items[eid] for eid in batch.released),
                key=lambda i: (i.city_code, i.uscc, i.entitlement_id),
            ),
            start=1,
        ):
            orders.append(
                PaymentOrder(
                    order_no=f"{batch_id}-{n:05d}",
                    payee_uscc=item.uscc,
                    payee_name=item.name,
                    amount_fen=batch.released[item.entitlement_id],
                    subject=subject,
                    fund=batch.fund,
                    purpose=f"{item.clause} {item.entitlement_id} 拨付批次 {batch_id}",
                    entitlement_id=item.entitlement_id,
                    batch_id=batch_id,
                )
            )
        return orders

    def _view(
        self,
        b: Batch,
        *,
        replay: bool = False,
        position: int | None = None,
        awards: bool = True,
        paid: dict[str, int] | None = None,
    ) -> BatchView:
        objected = {eid: o.reason for o in b.objections for eid in o.removed}
        rows = []
        if awards:
            for eid, i in sorted(
                b.items.items(), key=lambda kv: (kv[1].city_code, kv[1].uscc, kv[0])
            ):
                if eid in objected:
                    status, note, amount = "objected", objected[eid], i.amount_fen
                elif eid in b.released:
                    status, note, amount = "released", None, b.released[eid]
                elif eid in b.withheld:
                    status, note, amount = "withheld", b.withheld[eid], i.amount_fen
                else:
                    status, note, amount = "in_batch", None, i.amount_fen
                rows.append(
                    BatchAward(
                        eid,
                        i.uscc,
                        i.name,
                        i.city_code,
                        i.kind,
                        i.clause,
                        i.policy_id,
                        amount,
                        status,
                        note,
                        (paid or {}).get(eid, 0),
                    )
                )
        released = b.status == "released"
        return BatchView(
            batch_id=b.batch_id,
            fiscal_year=b.fiscal_year,
            city=b.city,
            fund=b.fund,
            status=b.status,
            awards_count=len(b.released) if released else len(b.left()),
            total_fen=sum(b.released.values()) if released else b.total_fen,
            proposed_on=b.proposed_on,
            proposed_by=b.proposed_by,
            approved_on=b.approved_on,
            approved_by=b.approved_by,
            notice_from=b.notice_from,
            notice_to=b.notice_to,
            working_days=b.working_days,
            objections_to=b.objections_to,
            released_on=b.released_on,
            released_by=b.released_by,
            objections=[
                # The book's objection and the answer's have the same fields.
                BatchObjection(**dataclasses.asdict(o))
                for o in b.objections
            ],
            awards=rows,
            replay=replay,
            position=position,
        )
