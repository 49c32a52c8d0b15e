"""The payment book: the year's appropriations and the payment batches (拨付批次) that draw on
them, each reviewed, approved by a second person, published for objections (公示) and released.

One aggregate for all of it, so that concurrent batch steps conflict here and exactly one wins,
and an award is never in two open batches. An award released in a batch is recorded on its
firm's stream too (`Enterprise.AwardsReleased`): a payment checks it there, with no read of this
book.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

from domain.enterprise import NAMESPACE

PAYMENT_BOOK_ID = uuid.uuid5(NAMESPACE, "payment-book")
BATCH_STATUSES = ("proposed", "approved", "published", "released")


@dataclass(slots=True)
class Appropriation:
    """A fiscal year's appropriation to one fund: set, then adjusted by signed changes."""

    fiscal_year: int
    fund: str
    amount_fen: int
    subject: str
    """The budget subject code (政府收支分类科目) the orders are charged to."""
    documents: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """An award in a batch: what was outstanding on it when proposed."""

    entitlement_id: str
    uscc: str
    name: str
    city_code: str
    kind: str
    clause: str
    policy_id: str
    amount_fen: int

    def as_dict(self) -> dict[str, Any]:
        """As `BatchProposed.items` stores it."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Objection:
    uscc: str
    reason: str
    received_on: date
    hold_document: str
    removed: list[str]
    removed_fen: int
    actor: str


@dataclass(slots=True)
class Batch:
    """A payment batch and where it stands."""

    batch_id: str
    fiscal_year: int
    city: str | None
    fund: str
    items: dict[str, BatchItem]
    proposed_on: date
    proposed_by: str
    status: str = "proposed"
    approved_on: date | None = None
    approved_by: str | None = None
    notice_from: date | None = None
    notice_to: date | None = None
    working_days: int | None = None
    objections_to: str | None = None
    published_by: str | None = None
    objections: list[Objection] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    """Awards an objection took out."""
    released_on: date | None = None
    released_by: str | None = None
    released: dict[str, int] = field(default_factory=dict)
    """Entitlement id -> the amount released (outstanding at release)."""
    withheld: dict[str, str] = field(default_factory=dict)
    """Entitlement id -> why it was not released (a hold in force, paid meanwhile, revoked)."""

    def left(self) -> list[BatchItem]:
        """The awards still in the batch (not taken out by an objection)."""
        return [i for eid, i in self.items.items() if eid not in self.removed]

    @property
    def total_fen(self) -> int:
        return sum(i.amount_fen for i in self.left())

    @property
    def proposed_fen(self) -> int:
        return sum(i.amount_fen for i in self.items.values())


class PaymentBook(Aggregate):
    """Appropriations and payment batches."""

    class Opened(Aggregate.Created):
        actor: str

    class AppropriationSet(Aggregate.Event):
        """The year's appropriation to a fund (资金预算), under `document`."""

        fiscal_year: int
        fund: str
        amount_fen: int
        subject: str
        document: str
        actor: str

        def apply(self, book: Any) -> None:
            book.appropriations[(self.fiscal_year, self.fund)] = Appropriation(
                self.fiscal_year, self.fund, self.amount_fen, self.subject, [self.document]
            )

    class AppropriationAdjusted(Aggregate.Event):
        """A signed change of a fund's appropriation (追加 / 调减), under `document`."""

        fiscal_year: int
        fund: str
        change_fen: int
        document: str
        actor: str

        def apply(self, book: Any) -> None:
            a = book.appropriations[(self.fiscal_year, self.fund)]
            a.amount_fen += self.change_fen
            a.documents.append(self.document)

    class BatchProposed(Aggregate.Event):
        batch_id: str
        fiscal_year: int
        city: str | None
        fund: str
        items: list[dict[str, Any]]
        proposed_on: date
        actor: str

        def apply(self, book: Any) -> None:
            items = {i["entitlement_id"]: BatchItem(**i) for i in self.items}
            book.batches[self.batch_id] = Batch(
                self.batch_id,
                self.fiscal_year,
                self.city,
                self.fund,
                items,
                self.proposed_on,
                self.actor,
            )
            for eid in items:
                book.in_batch[eid] = self.batch_id

    class BatchApproved(Aggregate.Event):
        batch_id: str
        approved_on: date
        actor: str

        def apply(self, book: Any) -> None:
            b = book.batches[self.batch_id]
            b.status, b.approved_on, b.approved_by = "approved", self.approved_on, self.actor

    class BatchPublished(Aggregate.Event):
        """The public notice (公示): from `notice_from` to `notice_to`, both included,
        `working_days` working days by the official calendar."""

        batch_id: str
        notice_from: date
        notice_to: date
        working_days: int
        objections_to: str
        actor: str

        def apply(self, book: Any) -> None:
            b = book.batches[self.batch_id]
            b.status = "published"
            b.notice_from, b.notice_to = self.notice_from, self.notice_to
            b.working_days, b.objections_to = self.working_days, self.objections_to
            b.published_by = self.actor

    class ObjectionHeard(Aggregate.Event):
        """An objection received during the notice: the firm's awards leave the batch and an
        `objection` hold (`hold_document`) is placed on the firm in the same transaction."""

        batch_id: str
        uscc: str
        reason: str
        received_on: date
        hold_document: str
        removed: list[str]
        actor: str

        def apply(self, book: Any) -> None:
            b = book.batches[self.batch_id]
            removed_fen = sum(b.items[eid].amount_fen for eid in self.removed)
            b.objections.append(
                Objection(
                    self.uscc,
                    self.reason,
                    self.received_on,
                    self.hold_document,
                    list(self.removed),
                    removed_fen,
                    self.actor,
                )
            )
            b.removed.update(self.removed)
            for eid in self.removed:
                book.in_batch.pop(eid, None)

    class BatchReleased(Aggregate.Event):
        """The notice ended: the awards left are payable, each up to `released` (what was
        outstanding on the release day); `withheld` says why the others were not released."""

        batch_id: str
        released_on: date
        released: dict[str, int]
        withheld: dict[str, str]
        actor: str

        def apply(self, book: Any) -> None:
            b = book.batches[self.batch_id]
            b.status, b.released_on, b.released_by = "released", self.released_on, self.actor
            b.released, b.withheld = dict(self.released), dict(self.withheld)

    def __init__(self, actor: str) -> None:
        self.appropriations: dict[tuple[int, str], Appropriation] = {}
        self.batches: dict[str, Batch] = {}
        self.in_batch: dict[str, str] = {}
        """Entitlement id -> the batch it is in (open, or released: a released batch is closed
        and its awards are never proposed again); objections take awards out."""

    def funds(self, fiscal_year: int) -> list[str]:
        return sorted(f for y, f in self.appropriations if y == fiscal_year)

    def committed_fen(self, fiscal_year: int, fund: str) -> int:
        """What the approved batches of the year and fund draw, less what objections took out."""
        return sum(
            b.total_fen
            for b in self.batches.values()
            if (b.fiscal_year, b.fund) == (fiscal_year, fund) and b.status != "proposed"
        )

    def next_batch_id(self, fiscal_year: int, city: str | None) -> str:
        scope = city or "140000"
        n = 1 + sum(
            1 for b in self.batches.values() if (b.fiscal_year, b.city) == (fiscal_year, city)
        )
        return f"B{fiscal_year}-{scope}-{n:02d}"
