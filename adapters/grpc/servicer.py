"""The gRPC service (`subsidy_ledger.v1.LedgerService`): each method authenticates and authorises
the caller, asks the application, and maps its answer (or its refusal) to the wire.

Every method names the permission it needs (`domain.roles`); a city-scoped user sees and pays only
its city's firms. The user's name is the actor of every event a call causes. Errors map to status
codes a client can act on; a stack trace never reaches the client.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import psycopg
from eventsourcing.persistence import PersistenceError

from adapters.bootstrap import log_of
from adapters.files.csv_records import CsvFileError
from adapters.files.tokens import User
from adapters.grpc import messages
from adapters.grpc.auth import CallError, Users, authorise, caller, city_filter
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.persistence import LedgerRecorder
from adapters.persistence.chain import parse_anchor
from adapters.persistence.group_commit import CALL_DEADLINE
from domain.application import Ledger
from domain.batches import DEFAULT_SUBJECT, MIN_WORKING_DAYS
from domain.designations import designation_kind
from domain.errors import (
    ConcurrentWriteError,
    ConflictError,
    DamagedLogError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    NotPermittedError,
    OutOfScopeError,
    RejectedFileError,
)
from domain.holds import HoldRow, hold_reason
from domain.ledger_base import checked_uscc
from domain.register import EARLIEST_YEAR
from domain.results import Point, jsonable
from domain.rules import AWARD_STATUSES, is_kind
from domain.text import checked_text

log = logging.getLogger("subsidy_ledger.grpc")
SERVICE = pb.DESCRIPTOR.services_by_name["LedgerService"].full_name
POINT_FIELDS = {"known_at": "point.known_at", "as_of": "point.as_of"}

Result = TypeVar("Result")


def status_of(error: Exception, fields: dict[str, str]) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for an error (never a trace); `fields` names
    the request's field for an argument of the application where the two differ."""
    if isinstance(error, LedgerError) and error.field is not None:
        message = f"{fields.get(error.field, error.field)}: {error}"
    else:
        message = str(error)
    match error:
        case CallError():
            return error.code, message
        case RejectedFileError():
            return grpc.StatusCode.INVALID_ARGUMENT, "\n".join([message, *error.lines()])
        case InvalidInputError() | CsvFileError():
            return grpc.StatusCode.INVALID_ARGUMENT, message
        case NotFoundError():
            return grpc.StatusCode.NOT_FOUND, message
        case OutOfScopeError() | NotPermittedError():
            return grpc.StatusCode.PERMISSION_DENIED, message
        case ConflictError():
            return grpc.StatusCode.ALREADY_EXISTS, message
        case LedgerError():
            return grpc.StatusCode.FAILED_PRECONDITION, message
        case ConcurrentWriteError():
            return grpc.StatusCode.ABORTED, message
        case DamagedLogError():
            return grpc.StatusCode.DATA_LOSS, message
        case PersistenceError() | OSError() | psycopg.OperationalError() | psycopg.InterfaceError():
            return grpc.StatusCode.UNAVAILABLE, f"the ledger's database is unavailable: {error}"
    return (
        grpc.StatusCode.INTERNAL,
        f"unexpected failure ({type(error).__name__}); see the server log",
    )


class Servicer(pb_grpc.LedgerServiceServicer):
    """Each method: authenticate and authorise (`_call`), then ask the application."""

    def __init__(
        self, ledger: Ledger, users: Users, available: threading.Event, *, call_seconds: float
    ):
        self.ledger = ledger
        self.users = users
        self.available = available
        """Set while the ledger's database answers (adapters.grpc.server.DatabaseWatch)."""
        self.call_seconds = call_seconds
        """The longest a call may take (its own deadline, when shorter, wins): a write that
        cannot commit by then is not made."""

    def _call(
        self,
        context: grpc.ServicerContext,
        method: str,
        permission: str,
        body: Callable[[User], Result],
        fields: dict[str, str] = POINT_FIELDS,
    ) -> Result:
        """Authenticate, authorise, run, map errors to status codes, and log one line."""
        started = time.perf_counter()
        user: User | None = None
        code = grpc.StatusCode.OK
        remaining = context.time_remaining()
        bound = self.call_seconds if remaining is None else min(remaining, self.call_seconds)
        deadline = CALL_DEADLINE.set(time.monotonic() + bound)
        try:
            user = caller(context, self.users)
            authorise(user, permission)
            if not self.available.is_set():
                raise CallError(
                    grpc.StatusCode.UNAVAILABLE,
                    "the ledger's database does not answer; nothing was done: retry later",
                )
            return body(user)
        except Exception as error:
            code, message = status_of(error, fields)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("unexpected failure in %s", method)
            context.abort(code, message)
            raise AssertionError("abort raises") from error
        finally:
            CALL_DEADLINE.reset(deadline)
            log.info(
                json.dumps(
                    {
                        "method": method,
                        "user": user.user if user else None,
                        "status": code.name,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                )
            )

    def _point(self, point: pb.Point) -> Point:
        return self.ledger.point(
            point.known_at or None, messages.optional_day(point.as_of, "point.as_of")
        )

    # Queries ----------------------------------------------------------------------------------

    def GetEnterprise(
        self, request: pb.GetEnterpriseRequest, context: grpc.ServicerContext
    ) -> pb.Enterprise:
        def get(user: User) -> pb.Enterprise:
            view = self.ledger.enterprise(
                request.uscc,
                as_of=messages.optional_day(request.point.as_of, "point.as_of"),
                known_at=request.point.known_at or None,
                city=user.city,
            )
            return messages.enterprise(view)

        return self._call(context, "GetEnterprise", "read", get)

    def ListAwards(
        self, request: pb.ListAwardsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Award]:
        def rows(user: User) -> list[pb.Award]:
            if request.status and request.status not in AWARD_STATUSES:
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"status: {request.status!r} is not one of {', '.join(AWARD_STATUSES)}",
                )
            if request.kind and not is_kind(request.kind):
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"kind: {request.kind!r} is not an award kind (lower-case letters, digits, _)",
                )
            at = self._point(request.point)
            answered = messages.answered(at)
            return [
                messages.award(a, answered)
                for a in self.ledger.awards(
                    at,
                    fiscal_year=request.fiscal_year or None,
                    city=city_filter(user, request.city_code),
                    status=request.status or None,
                    held=HELD.get(request.held),
                )
                if not request.kind or a.kind == request.kind
            ]

        yield from self._call(
            context, "ListAwards", "read", rows, {**POINT_FIELDS, "city": "city_code"}
        )

    def GetFiscalTotals(
        self, request: pb.GetFiscalTotalsRequest, context: grpc.ServicerContext
    ) -> pb.FiscalTotals:
        def totals(user: User) -> pb.FiscalTotals:
            at = self._point(request.point)
            by = "city" if request.group_by == pb.GetFiscalTotalsRequest.GROUP_BY_CITY else "kind"
            basis = "cash" if request.basis == pb.GetFiscalTotalsRequest.BASIS_CASH else "due"
            rows = self.ledger.totals(
                at,
                fiscal_year=request.fiscal_year or None,
                by=by,
                basis=basis,
                city=city_filter(user, ""),
            )
            return pb.FiscalTotals(
                answered_at=messages.answered(at), totals=[messages.total(r) for r in rows]
            )

        return self._call(context, "GetFiscalTotals", "read", totals)

    def ListWindows(
        self, request: pb.ListWindowsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Window]:
        def rows(user: User) -> list[pb.Window]:
            if request.uscc:
                self.ledger.get_enterprise(request.uscc, city=user.city)
            at = self._point(request.point)
            answered = messages.answered(at)
            found = self.ledger.windows(
                at,
                uscc=request.uscc or None,
                active_on=messages.optional_day(request.active_on, "active_on"),
                city=city_filter(user, ""),
            )
            return [messages.window(w, answered) for w in found]

        yield from self._call(context, "ListWindows", "read", rows)

    def ListRegister(
        self, request: pb.ListRegisterRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RegisterEntry]:
        def rows(user: User) -> list[pb.RegisterEntry]:
            if not request.year:
                raise CallError(grpc.StatusCode.INVALID_ARGUMENT, "year: give a register year")
            at = self._point(request.point)
            answered = messages.answered(at)
            city = city_filter(user, "")
            return [
                messages.register_entry(r, answered)
                for r in self.ledger.register(request.year, at)
                if city is None or r.city_code == city
            ]

        yield from self._call(context, "ListRegister", "read", rows)

    def ExplainEntitlement(
        self, request: pb.ExplainEntitlementRequest, context: grpc.ServicerContext
    ) -> pb.Explanation:
        def explain(user: User) -> pb.Explanation:
            doc = self.ledger.explain(request.entitlement_id, city=user.city)
            return pb.Explanation(json=json.dumps(jsonable(doc), ensure_ascii=False))

        return self._call(context, "ExplainEntitlement", "read", explain)

    def GetAuditTrail(
        self, request: pb.GetAuditTrailRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TrailEvent]:
        def trail(user: User) -> list[pb.TrailEvent]:
            return [
                messages.trail_event(e)
                for e in self.ledger.audit_trail(request.uscc, city=user.city)
            ]

        yield from self._call(context, "GetAuditTrail", "audit", trail)

    def VerifyLog(
        self, request: pb.VerifyLogRequest, context: grpc.ServicerContext
    ) -> pb.Verification:
        def verify(user: User) -> pb.Verification:
            try:
                anchor = parse_anchor(request.anchor) if request.anchor else None
            except ValueError as e:
                raise CallError(grpc.StatusCode.INVALID_ARGUMENT, f"anchor: {e}") from None
            v = self.log.verify_chain(anchor)
            return pb.Verification(
                intact=v.intact,
                events=v.events,
                head=f"{v.position}:{v.link.hex()}" if v.intact else "",
                problem=v.broken.problem if v.broken else "",
                position=v.broken.position if v.broken else v.position,
                message=v.broken.message if v.broken else "",
                anchor_held=bool(v.anchor_held),
            )

        return self._call(context, "VerifyLog", "audit", verify)

    def GetAnchor(self, request: pb.GetAnchorRequest, context: grpc.ServicerContext) -> pb.Anchor:
        def anchor(user: User) -> pb.Anchor:
            head = self.log.chain_head()
            taken_at = datetime.now(UTC).replace(microsecond=0)
            return pb.Anchor(anchor=str(head), taken_at=messages.timestamp(taken_at))

        return self._call(context, "GetAnchor", "audit", anchor)

    def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.PolicyVersion]:
        def versions(user: User) -> list[pb.PolicyVersion]:
            return [
                messages.policy_version(v, content=False)
                for v in self.ledger.policy_versions(request.known_at or None)
            ]

        yield from self._call(context, "ListPolicies", "read", versions, {"known_at": "known_at"})

    def GetPolicy(
        self, request: pb.GetPolicyRequest, context: grpc.ServicerContext
    ) -> pb.PolicyVersion:
        def version(user: User) -> pb.PolicyVersion:
            found = self.ledger.policy_version(request.id, request.known_at or None)
            return messages.policy_version(found, content=True)

        return self._call(
            context, "GetPolicy", "read", version, {"id": "id", "known_at": "known_at"}
        )

    @property
    def log(self) -> LedgerRecorder:
        return log_of(self.ledger)

    # Commands ---------------------------------------------------------------------------------

    def RecordPayment(
        self, request: pb.RecordPaymentRequest, context: grpc.ServicerContext
    ) -> pb.MoneyRecorded:
        def pay(user: User) -> pb.MoneyRecorded:
            r = self.ledger.record_payment(
                request.entitlement_id,
                request.payment_ref,
                request.amount_fen,
                messages.required_day(request.paid_on, "paid_on"),
                actor=user.user,
                city=user.city,
            )
            return messages.money(r)

        return self._call(context, "RecordPayment", "pay", pay, {"ref": "payment_ref"})

    def RecordRecovery(
        self, request: pb.RecordRecoveryRequest, context: grpc.ServicerContext
    ) -> pb.MoneyRecorded:
        def recover(user: User) -> pb.MoneyRecorded:
            r = self.ledger.record_recovery(
                request.entitlement_id,
                request.recovery_ref,
                request.amount_fen,
                messages.required_day(request.received_on, "received_on"),
                actor=user.user,
                city=user.city,
            )
            return messages.money(r)

        return self._call(context, "RecordRecovery", "pay", recover, {"ref": "recovery_ref"})

    def ImportRegister(
        self, request_iterator: Iterator[pb.ImportRegisterRequest], context: grpc.ServicerContext
    ) -> pb.ImportResult:
        def load(user: User) -> pb.ImportResult:
            first = _header(user, request_iterator, "a register is province-wide")
            header = first.header
            if not EARLIEST_YEAR <= header.year <= 9999:
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"header.year: {header.year} is not a year"
                )
            r = self.ledger.import_register(
                header.year,
                messages.register_rows(request_iterator, header.year),
                actor=user.user,
                baseline=header.baseline,
                correction=header.correction,
                reason=header.reason or None,
            )
            return messages.import_result(r)

        fields = {"reason": "header.reason", "baseline": "header.baseline"}
        return self._call(context, "ImportRegister", "import", load, fields)

    def ImportDesignations(
        self,
        request_iterator: Iterator[pb.ImportDesignationsRequest],
        context: grpc.ServicerContext,
    ) -> pb.DesignationsImported:
        def load(user: User) -> pb.DesignationsImported:
            first = _header(user, request_iterator, "designations are province-wide")
            kind = designation_kind(first.header.kind)
            source = checked_text(first.header.source or "designations", "source")
            sha256, rows, errors = messages.designation_rows(request_iterator, source)
            r = self.ledger.import_designations(
                kind, source, sha256, rows, actor=user.user, unreadable=errors
            )
            return messages.designations_imported(r)

        fields = {"kind": "header.kind", "source": "header.source"}
        return self._call(context, "ImportDesignations", "designate", load, fields)

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
            first = _header(user, request_iterator, "a list of holds is province-wide")
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
            _province_wide(user, "an appropriation is the province's")
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
            _province_wide(user, "an appropriation is the province's")
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
            _province_wide(user, "the workflow is the province's")
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


def _province_wide(user: User, what: str) -> None:
    if user.city is not None:
        raise CallError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"user {user.user} is scoped to city {user.city}; {what}",
        )


def _header(user: User, messages: Iterator[Any], what: str) -> Any:
    """The first message of a province-wide import, which must be its header; a city-scoped user
    is refused (`what`: why the import is province-wide)."""
    _province_wide(user, what)
    first = next(messages, None)
    if first is None or first.WhichOneof("item") != "header":
        raise CallError(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the header")
    return first


HELD = {pb.ListAwardsRequest.HELD_ONLY: True, pb.ListAwardsRequest.HELD_NOT: False}
"""ListAwardsRequest.held -> the `held` filter (unspecified: every award)."""
