"""The gRPC methods of the social-insurance subsidy (九): `ImportHires` and
`ImportContributions` (`hires`: the human-resources bureau, which holds the people's data; not
the statistics bureau), `ListClaims` (`read`; a city-scoped user: its city's employers) and
`RecordSubsidyPayment` (`pay`: finance). Identity numbers come in and never go out: claims and
payments name a hire by pseudonym."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from adapters.files.hires_csv import (
    contribution_row,
    contributions_csv,
    hire_row,
    hires_csv,
)
from adapters.files.tokens import User
from adapters.grpc import messages
from adapters.grpc.calls import Calls, import_header
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from domain.social_insurance import ClaimRow, fund_totals
from domain.subsidy_results import SubsidyImportResult, SubsidyPaymentResult
from domain.text import checked_text


class SubsidyMethods(Calls):
    """Hires, contributions, claims, subsidy payments."""

    def ImportHires(
        self, request_iterator: Iterator[pb.ImportHiresRequest], context: grpc.ServicerContext
    ) -> pb.SubsidyImported:
        def load(user: User) -> pb.SubsidyImported:
            first = import_header(user, request_iterator, "the hires file is province-wide")
            source = checked_text(first.header.source or "hires", "source")
            values = [
                [
                    m.row.uscc,
                    m.row.person_id,
                    m.row.person_name,
                    m.row.category,
                    m.row.contract_start,
                    m.row.contract_end,
                ]
                for m in request_iterator
                if m.WhichOneof("item") == "row"
            ]
            sha256, rows, errors = messages.checked_rows(values, hire_row, hires_csv)
            r = self.ledger.import_hires(source, sha256, rows, actor=user.user, unreadable=errors)
            return _imported(r)

        return self._call(context, "ImportHires", "hires", load, {"source": "header.source"})

    def ImportContributions(
        self,
        request_iterator: Iterator[pb.ImportContributionsRequest],
        context: grpc.ServicerContext,
    ) -> pb.SubsidyImported:
        def load(user: User) -> pb.SubsidyImported:
            first = import_header(user, request_iterator, "a contributions file is province-wide")
            header = first.header
            source = checked_text(header.source or "contributions", "source")
            values = [
                [m.row.uscc, m.row.person_id, str(m.row.employer_paid_fen)]
                for m in request_iterator
                if m.WhichOneof("item") == "row"
            ]
            sha256, rows, errors = messages.checked_rows(
                values, contribution_row, contributions_csv
            )
            r = self.ledger.import_contributions(
                header.month, source, sha256, rows, actor=user.user, unreadable=errors
            )
            return _imported(r)

        fields = {"month": "header.month", "source": "header.source"}
        return self._call(context, "ImportContributions", "hires", load, fields)

    def ListClaims(self, request: pb.ListClaimsRequest, context: grpc.ServicerContext) -> pb.Claims:
        def get(user: User) -> pb.Claims:
            if user.city is not None and request.uscc:
                self.ledger.get_enterprise(request.uscc, city=user.city)
            found = self.ledger.si_claims(
                month=request.month or None,
                fiscal_year=request.fiscal_year or None,
                uscc=request.uscc or None,
                known_at=request.known_at or None,
            )
            claims = found.claims
            if user.city is not None:
                firms = self.ledger.find_enterprises(sorted({c.uscc for c in claims}))
                mine = {
                    u for u, f in firms.items() if f is not None and f.state.belongs_to(user.city)
                }
                claims = [c for c in claims if c.uscc in mine]
            totals = found.totals if user.city is None else fund_totals(claims)
            return pb.Claims(
                at=messages.answered(found.point),
                claims=[_claim(c) for c in claims],
                totals=[
                    pb.SubsidyFundTotal(
                        fund=t.fund,
                        months=t.months,
                        employer_paid_fen=t.employer_paid_fen,
                        subsidy_fen=t.subsidy_fen,
                        paid_fen=t.paid_fen,
                        outstanding_fen=t.outstanding_fen,
                    )
                    for t in totals
                ],
            )

        return self._call(context, "ListClaims", "read", get, {})

    def RecordSubsidyPayment(
        self, request: pb.RecordSubsidyPaymentRequest, context: grpc.ServicerContext
    ) -> pb.SubsidyPayment:
        def pay(user: User) -> pb.SubsidyPayment:
            if user.city is not None:
                self.ledger.get_enterprise(request.uscc, city=user.city)
            r = self.ledger.record_si_payment(
                request.uscc,
                request.person,
                request.month,
                request.payment_ref,
                request.amount_fen,
                messages.required_day(request.paid_on, "paid_on"),
                actor=user.user,
            )
            return _payment(r)

        fields = {"ref": "payment_ref"}
        return self._call(context, "RecordSubsidyPayment", "pay", pay, fields)


def _imported(r: SubsidyImportResult) -> pb.SubsidyImported:
    return pb.SubsidyImported(
        sha256=r.sha256,
        month=r.month or "",
        replay=r.replay,
        rows=r.rows,
        recorded=r.recorded,
        already=r.already,
        people=r.people,
        firms=r.firms,
        position=r.position or 0,
    )


def _claim(c: ClaimRow) -> pb.Claim:
    return pb.Claim(
        claim_id=c.claim_id,
        uscc=c.uscc,
        person=c.person,
        month=c.month,
        employer_paid_fen=c.employer_paid_fen,
        eligible=c.eligible,
        subsidy_fen=c.subsidy_fen,
        paid_fen=c.paid_fen,
        outstanding_fen=c.outstanding_fen,
        hire_start=c.hire_start.isoformat(),
        last_eligible_month=c.last_eligible_month,
        why_not=c.why_not or "",
        fund=c.fund,
    )


def _payment(r: SubsidyPaymentResult) -> pb.SubsidyPayment:
    return pb.SubsidyPayment(
        claim_id=r.claim_id,
        uscc=r.uscc,
        person=r.person,
        month=r.month,
        payment_ref=r.ref,
        amount_fen=r.amount_fen,
        paid_on=r.paid_on.isoformat(),
        replay=r.replay,
        paid_fen=r.paid_fen,
        subsidy_fen=r.subsidy_fen,
        fund=r.fund,
    )
