"""The gRPC methods of the money's path: compliance holds, appropriations and the release
workflow, payment batches and their orders, the budget forecast (the service's other methods are
in `adapters.grpc.servicer`).

Every method names the permission it needs (`domain.roles`); a city-scoped user sees and pays only
its city's firms. The user's name is the actor of every event a call causes. Errors map to status
codes a client can act on; a stack trace never reaches the client.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from adapters.files.tokens import User
from adapters.grpc import messages
from adapters.grpc.auth import city_filter
from adapters.grpc.calls import Calls, import_header, province_wide
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from domain.appropriations import DEFAULT_SUBJECT
from domain.batches import MIN_WORKING_DAYS
from domain.holds import HoldRow, hold_reason
from domain.ledger_base import checked_uscc
from domain.text import checked_text


class PaymentMethods(Calls):
    """Holds, budget, batches, forecast."""

    # Compliance holds ---------------------------------------------------------------------------

    def PlaceHold(
        self, request: pb.PlaceHoldRequest, context: grpc.ServicerContext
    ) -> pb.HoldsRecorded:
        def place(user: User) -> pb.HoldsRecorded:
            if user.city is not None:
                self.ledger.get_enterprise(request.uscc, city=user.city)
            row = HoldRow(
                0,
                checked_uscc(request.uscc),
                hold_reason(request.reason),
                request.authority,
                request.document,
                messages.required_day(request.valid_from, "valid_from"),
                messages.optional_day(request.valid_to, "valid_to"),
            )
            return messages.holds_recorded(self.ledger.place_hold(row, actor=user.user))

        fields = {"from": "valid_from", "to": "valid_to"}
        return self._call(context, "PlaceHold", "hold", place, fields)

    def LiftHold(
        self, request: pb.LiftHoldRequest, context: grpc.ServicerContext
    ) -> pb.HoldsRecorded:
        def lift(user: User) -> pb.HoldsRecorded:
            if user.city is not None:
                self.ledger.get_enterprise(request.uscc, city=user.city)
            r = self.ledger.lift_hold(
                request.uscc,
                request.document,
                messages.required_day(request.lifted_on, "lifted_on"),
                request.reason,
                actor=user.user,
            )
            return messages.holds_recorded(r)

        return self._call(context, "LiftHold", "hold", lift, {"on": "lifted_on"})

    def ImportHolds(
        self, request_iterator: Iterator[pb.ImportHoldsRequest], context: grpc.ServicerContext
    ) -> pb.HoldsRecorded:
        def load(user: User) -> pb.HoldsRecorded:
            first = import_header(user, request_iterator, "a list of holds is province-wide")
            source = checked_text(first.header.source or "holds", "source")
            sha256, rows, errors = messages.hold_rows(request_iterator)
            r = self.ledger.import_holds(source, sha256, rows, actor=user.user, unreadable=errors)
            return messages.holds_recorded(r)

        return self._call(context, "ImportHolds", "hold", load, {"source": "header.source"})

    # Appropriations and the workflow --------------------------------------------------------------

    def SetAppropriation(
        self, request: pb.SetAppropriationRequest, context: grpc.ServicerContext
    ) -> pb.BookRecorded:
        def set_(user: User) -> pb.BookRecorded:
            province_wide(user, "an appropriation is the province's")
            r = self.ledger.set_appropriation(
                request.fiscal_year,
                request.fund,
                request.amount_fen,
                request.document,
                subject=request.subject or DEFAULT_SUBJECT,
                actor=user.user,
            )
            return messages.book_recorded(r)

        return self._call(context, "SetAppropriation", "budget", set_, {})

    def AdjustAppropriation(
        self, request: pb.AdjustAppropriationRequest, context: grpc.ServicerContext
    ) -> pb.BookRecorded:
        def adjust(user: User) -> pb.BookRecorded:
            province_wide(user, "an appropriation is the province's")
            r = self.ledger.adjust_appropriation(
                request.fiscal_year,
                request.fund,
                request.change_fen,
                request.document,
                actor=user.user,
            )
            return messages.book_recorded(r)

        return self._call(
            context, "AdjustAppropriation", "budget", adjust, {"amount_fen": "change_fen"}
        )

    def GetBudget(self, request: pb.GetBudgetRequest, context: grpc.ServicerContext) -> pb.Budget:
        def get(user: User) -> pb.Budget:
            return messages.budget(self.ledger.budget(request.fiscal_year or None))

        return self._call(context, "GetBudget", "read", get, {})

    def RequireRelease(
        self, request: pb.RequireReleaseRequest, context: grpc.ServicerContext
    ) -> pb.BookRecorded:
        def switch(user: User) -> pb.BookRecorded:
            province_wide(user, "the workflow is the province's")
            r = self.ledger.require_release(
                request.from_fiscal_year,
                request.reason or "review, public notice and approval before payment",
                actor=user.user,
            )
            return messages.book_recorded(r)

        return self._call(context, "RequireRelease", "budget", switch, {})

    # Payment batches ------------------------------------------------------------------------------

    def ProposeBatch(
        self, request: pb.ProposeBatchRequest, context: grpc.ServicerContext
    ) -> pb.Batch:
        def propose(user: User) -> pb.Batch:
            view = self.ledger.propose_batch(
                request.fiscal_year,
                city=city_filter(user, request.city_code),
                fund=request.fund or None,
                actor=user.user,
            )
            return messages.batch(view)

        return self._call(context, "ProposeBatch", "batch", propose, {"city": "city_code"})

    def ApproveBatch(self, request: pb.BatchRequest, context: grpc.ServicerContext) -> pb.Batch:
        def approve(user: User) -> pb.Batch:
            view = self.ledger.approve_batch(request.batch_id, actor=user.user, city=user.city)
            return messages.batch(view)

        return self._call(context, "ApproveBatch", "batch", approve, {})

    def PublishBatch(
        self, request: pb.PublishBatchRequest, context: grpc.ServicerContext
    ) -> pb.Batch:
        def publish(user: User) -> pb.Batch:
            view = self.ledger.publish_batch(
                request.batch_id,
                messages.required_day(request.notice_from, "notice_from"),
                working_days=request.working_days or MIN_WORKING_DAYS,
                objections_to=request.objections_to,
                actor=user.user,
                city=user.city,
            )
            return messages.batch(view)

        return self._call(context, "PublishBatch", "batch", publish, {"from": "notice_from"})

    def ObjectToBatch(
        self, request: pb.ObjectToBatchRequest, context: grpc.ServicerContext
    ) -> pb.Batch:
        def object_(user: User) -> pb.Batch:
            view = self.ledger.object_to_batch(
                request.batch_id,
                request.uscc,
                request.reason,
                messages.required_day(request.received_on, "received_on"),
                actor=user.user,
                city=user.city,
            )
            return messages.batch(view)

        return self._call(context, "ObjectToBatch", "batch", object_, {})

    def ReleaseBatch(self, request: pb.BatchRequest, context: grpc.ServicerContext) -> pb.Batch:
        def release(user: User) -> pb.Batch:
            view = self.ledger.release_batch(request.batch_id, actor=user.user, city=user.city)
            return messages.batch(view)

        return self._call(context, "ReleaseBatch", "batch", release, {})

    def GetBatch(self, request: pb.BatchRequest, context: grpc.ServicerContext) -> pb.Batch:
        def get(user: User) -> pb.Batch:
            return messages.batch(self.ledger.batch(request.batch_id, city=user.city))

        return self._call(context, "GetBatch", "read", get, {})

    def ListBatches(
        self, request: pb.ListBatchesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Batch]:
        def rows(user: User) -> list[pb.Batch]:
            found = self.ledger.batches(
                fiscal_year=request.fiscal_year or None,
                status=request.status or None,
                city=user.city,
            )
            return [messages.batch(b) for b in found]

        yield from self._call(context, "ListBatches", "read", rows, {})

    def ListBatchOrders(
        self, request: pb.BatchRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.PaymentOrder]:
        def rows(user: User) -> list[pb.PaymentOrder]:
            orders = self.ledger.batch_orders(request.batch_id, city=user.city)
            return [messages.order(o) for o in orders]

        yield from self._call(context, "ListBatchOrders", "read", rows, {})

    def GetForecast(
        self, request: pb.GetForecastRequest, context: grpc.ServicerContext
    ) -> pb.Forecast:
        def get(user: User) -> pb.Forecast:
            r = self.ledger.forecast(
                request.first_fiscal_year,
                request.last_fiscal_year or request.first_fiscal_year,
                city=city_filter(user, request.city_code),
                known_at=request.known_at or None,
            )
            return messages.forecast(r)

        fields = {"fiscal_years": "first_fiscal_year", "city": "city_code"}
        return self._call(context, "GetForecast", "read", get, fields)
