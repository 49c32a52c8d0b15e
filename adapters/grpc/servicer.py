"""The gRPC service (`subsidy_ledger.v1.LedgerService`): each method authenticates and authorises
the caller, asks the application, and maps its answer (or its refusal) to the wire.

Every method names the permission it needs (`domain.roles`); a city-scoped user sees and pays only
its city's firms. The user's name is the actor of every event a call causes. Errors map to status
codes a client can act on; a stack trace never reaches the client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc

from adapters.bootstrap import log_of
from adapters.files.tokens import User
from adapters.grpc import messages
from adapters.grpc.auth import CallError, city_filter
from adapters.grpc.calls import POINT_FIELDS, import_header
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.grpc.payment_methods import PaymentMethods
from adapters.grpc.pipeline_methods import PipelineMethods
from adapters.grpc.subsidy_methods import SubsidyMethods
from adapters.persistence import LedgerRecorder
from adapters.persistence.chain import parse_anchor
from domain.designations import designation_kind
from domain.register import EARLIEST_YEAR
from domain.results import jsonable
from domain.rules import AWARD_STATUSES, is_kind
from domain.text import checked_text

SERVICE = pb.DESCRIPTOR.services_by_name["LedgerService"].full_name


class Servicer(PaymentMethods, PipelineMethods, SubsidyMethods, pb_grpc.LedgerServiceServicer):
    """Each method: authenticate and authorise (`_call`), then ask the application."""

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
            first = import_header(user, request_iterator, "a register is province-wide")
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
            first = import_header(user, request_iterator, "designations are province-wide")
            kind = designation_kind(first.header.kind)
            source = checked_text(first.header.source or "designations", "source")
            sha256, rows, errors = messages.designation_rows(request_iterator, source)
            r = self.ledger.import_designations(
                kind, source, sha256, rows, actor=user.user, unreadable=errors
            )
            return messages.designations_imported(r)

        fields = {"kind": "header.kind", "source": "header.source"}
        return self._call(context, "ImportDesignations", "designate", load, fields)


HELD = {pb.ListAwardsRequest.HELD_ONLY: True, pb.ListAwardsRequest.HELD_NOT: False}
"""ListAwardsRequest.held -> the `held` filter (unspecified: every award)."""
