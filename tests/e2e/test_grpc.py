"""The gRPC service: a real server on 127.0.0.1:0 with the generated stubs, on both stores."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.grpc import DATONG, FE, TAIYUAN, auth, code_of, load, rows, serve_process
from support.helpers import HASH_38, ROOT, Firm, ref_uscc

from adapters.bootstrap import open_ledger
from adapters.files.tokens import add_user
from adapters.grpc.auth import users_from_file
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.grpc.server import build_server


def test_health_and_reflection_answer_without_a_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service="subsidy_ledger.v1.LedgerService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    (reply,) = list(
        reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    )
    names = {s.name for s in reply.list_services_response.service}
    assert "subsidy_ledger.v1.LedgerService" in names and "grpc.health.v1.Health" in names


def test_calls_without_a_valid_token_are_unauthenticated(ledger: pb_grpc.LedgerServiceStub) -> None:
    request = pb.GetEnterpriseRequest(uscc=TAIYUAN)
    assert code_of(lambda: ledger.GetEnterprise(request)) == grpc.StatusCode.UNAUTHENTICATED
    bad = auth("not-a-token")
    assert (
        code_of(lambda: ledger.GetEnterprise(request, metadata=bad))
        == grpc.StatusCode.UNAUTHENTICATED
    )


METHODS = {
    "GetEnterprise": (
        "read",
        lambda s, m: s.GetEnterprise(pb.GetEnterpriseRequest(uscc=TAIYUAN), metadata=m),
    ),
    "ListAwards": ("read", lambda s, m: s.ListAwards(pb.ListAwardsRequest(), metadata=m)),
    "GetFiscalTotals": (
        "read",
        lambda s, m: s.GetFiscalTotals(pb.GetFiscalTotalsRequest(), metadata=m),
    ),
    "ListWindows": ("read", lambda s, m: s.ListWindows(pb.ListWindowsRequest(), metadata=m)),
    "ListRegister": (
        "read",
        lambda s, m: s.ListRegister(pb.ListRegisterRequest(year=2021), metadata=m),
    ),
    "ExplainEntitlement": (
        "read",
        lambda s, m: s.ExplainEntitlement(
            pb.ExplainEntitlementRequest(entitlement_id=f"{TAIYUAN}/first_entry/2021"), metadata=m
        ),
    ),
    "GetAuditTrail": (
        "audit",
        lambda s, m: s.GetAuditTrail(pb.GetAuditTrailRequest(uscc=TAIYUAN), metadata=m),
    ),
    "VerifyLog": ("audit", lambda s, m: s.VerifyLog(pb.VerifyLogRequest(), metadata=m)),
    "GetAnchor": ("audit", lambda s, m: s.GetAnchor(pb.GetAnchorRequest(), metadata=m)),
    "ListPolicies": (
        "read",
        lambda s, m: list(s.ListPolicies(pb.ListPoliciesRequest(), metadata=m)),
    ),
    "GetPolicy": (
        "read",
        lambda s, m: s.GetPolicy(pb.GetPolicyRequest(id="jinbanfa-2020-38"), metadata=m),
    ),
    "RecordPayment": (
        "pay",
        lambda s, m: s.RecordPayment(
            pb.RecordPaymentRequest(
                entitlement_id=f"{TAIYUAN}/first_entry/2021",
                payment_ref="GK-ROLE",
                amount_fen=1,
                paid_on="2022-03-01",
            ),
            metadata=m,
        ),
    ),
    "RecordRecovery": (
        "pay",
        lambda s, m: s.RecordRecovery(
            pb.RecordRecoveryRequest(
                entitlement_id=f"{TAIYUAN}/first_entry/2021",
                recovery_ref="TH-ROLE",
                amount_fen=1,
                received_on="2022-03-01",
            ),
            metadata=m,
        ),
    ),
    "ImportRegister": (
        "import",
        lambda s, m: s.ImportRegister(
            iter(
                [pb.ImportRegisterRequest(header=pb.ImportHeader(year=2022)), *rows(Firm(TAIYUAN))]
            ),
            metadata=m,
        ),
    ),
    "ImportDesignations": (
        "designate",
        lambda s, m: s.ImportDesignations(
            iter(
                [
                    pb.ImportDesignationsRequest(
                        header=pb.DesignationsHeader(kind="strategic_emerging")
                    ),
                    pb.ImportDesignationsRequest(
                        row=pb.DesignationRow(uscc=TAIYUAN, valid_from="2021-01-01", document="R")
                    ),
                ]
            ),
            metadata=m,
        ),
    ),
    "PlaceHold": (
        "hold",
        lambda s, m: s.PlaceHold(
            pb.PlaceHoldRequest(
                uscc=TAIYUAN,
                reason="other",
                authority="A",
                document="ROLE",
                valid_from="2030-01-01",
            ),
            metadata=m,
        ),
    ),
    "LiftHold": (
        "hold",
        lambda s, m: s.LiftHold(
            pb.LiftHoldRequest(uscc=TAIYUAN, document="NONE", lifted_on="2030-01-01", reason="r"),
            metadata=m,
        ),
    ),
    "ImportHolds": (
        "hold",
        lambda s, m: s.ImportHolds(
            iter([pb.ImportHoldsRequest(header=pb.HoldsHeader(source="list"))]), metadata=m
        ),
    ),
    "SetAppropriation": (
        "budget",
        lambda s, m: s.SetAppropriation(
            pb.SetAppropriationRequest(fiscal_year=2099, fund="", amount_fen=1, document="D"),
            metadata=m,
        ),
    ),
    "AdjustAppropriation": (
        "budget",
        lambda s, m: s.AdjustAppropriation(
            pb.AdjustAppropriationRequest(fiscal_year=2099, fund="F", change_fen=1, document="D"),
            metadata=m,
        ),
    ),
    "GetBudget": ("read", lambda s, m: s.GetBudget(pb.GetBudgetRequest(), metadata=m)),
    "RequireRelease": (
        "budget",
        lambda s, m: s.RequireRelease(pb.RequireReleaseRequest(from_fiscal_year=1), metadata=m),
    ),
    "ProposeBatch": (
        "batch",
        lambda s, m: s.ProposeBatch(pb.ProposeBatchRequest(fiscal_year=2099), metadata=m),
    ),
    **{
        name: (
            "batch",
            lambda s, m, name=name: getattr(s, name)(pb.BatchRequest(batch_id="NONE"), metadata=m),
        )
        for name in ("ApproveBatch", "ReleaseBatch")
    },
    "PublishBatch": (
        "batch",
        lambda s, m: s.PublishBatch(
            pb.PublishBatchRequest(batch_id="NONE", notice_from="2026-01-05"), metadata=m
        ),
    ),
    "ObjectToBatch": (
        "batch",
        lambda s, m: s.ObjectToBatch(
            pb.ObjectToBatchRequest(
                batch_id="NONE", uscc=TAIYUAN, reason="r", received_on="2026-01-05"
            ),
            metadata=m,
        ),
    ),
    "GetBatch": ("read", lambda s, m: s.GetBatch(pb.BatchRequest(batch_id="NONE"), metadata=m)),
    "ListBatches": ("read", lambda s, m: s.ListBatches(pb.ListBatchesRequest(), metadata=m)),
    "GetForecast": (
        "read",
        lambda s, m: s.GetForecast(pb.GetForecastRequest(first_fiscal_year=2022), metadata=m),
    ),
    "ListBatchOrders": (
        "read",
        lambda s, m: s.ListBatchOrders(pb.BatchRequest(batch_id="NONE"), metadata=m),
    ),
    "ImportBelowScale": (
        "import",
        lambda s, m: s.ImportBelowScale(
            iter(
                [
                    pb.ImportBelowScaleRequest(
                        header=pb.BelowScaleHeader(period="2021-12", source="role")
                    )
                ]
            ),
            metadata=m,
        ),
    ),
    "GetPipeline": (
        "read",
        lambda s, m: s.GetPipeline(pb.GetPipelineRequest(on="2021-12-31"), metadata=m),
    ),
    "GetConversion": (
        "read",
        lambda s, m: s.GetConversion(pb.GetConversionRequest(year=2021), metadata=m),
    ),
    "GetProgress": (
        "read",
        lambda s, m: s.GetProgress(pb.GetProgressRequest(year=2021), metadata=m),
    ),
    "ImportHires": (
        "hires",
        lambda s, m: s.ImportHires(
            iter([pb.ImportHiresRequest(header=pb.HiresHeader(source="role"))]), metadata=m
        ),
    ),
    "ImportContributions": (
        "hires",
        lambda s, m: s.ImportContributions(
            iter(
                [
                    pb.ImportContributionsRequest(
                        header=pb.ContributionsHeader(month="2021-06", source="role")
                    )
                ]
            ),
            metadata=m,
        ),
    ),
    "ListClaims": ("read", lambda s, m: s.ListClaims(pb.ListClaimsRequest(), metadata=m)),
    "RecordSubsidyPayment": (
        "pay",
        lambda s, m: s.RecordSubsidyPayment(
            pb.RecordSubsidyPaymentRequest(
                uscc=TAIYUAN,
                person="x",
                month="2021-06",
                payment_ref="SI-ROLE",
                amount_fen=1,
                paid_on="2022-03-01",
            ),
            metadata=m,
        ),
    ),
}
ALLOWED = {
    "finance": {"read", "pay", "budget"},
    "statistics": {"read", "import"},
    "auditor": {"read", "audit"},
    "certification": {"read", "designate"},
    "review": {"read", "hold", "batch"},
    "human_resources": {"read", "hires", "persons"},
    "admin": {
        "read",
        "pay",
        "import",
        "designate",
        "audit",
        "hold",
        "batch",
        "budget",
        "hires",
        "persons",
    },
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_may_call_exactly_its_methods(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str], role: str
) -> None:
    for method, (permission, call) in METHODS.items():
        code = code_of(lambda call=call: call(ledger, auth(tokens[role])))  # type: ignore[misc]
        if permission in ALLOWED[role]:
            # Allowed: the call reaches the ledger (which may still refuse it on its merits).
            assert code not in (
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED,
            ), (role, method)
            assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
                role,
                method,
                code,
            )
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, (role, method, code)


def test_finance_pays_and_the_ledger_records_the_user_as_actor(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    finance = auth(tokens["finance"])
    awards = {
        a.entitlement_id: a for a in ledger.ListAwards(pb.ListAwardsRequest(), metadata=finance)
    }
    assert set(awards) == {f"{TAIYUAN}/first_entry/2021", f"{DATONG}/first_entry/2021"}
    award = awards[f"{TAIYUAN}/first_entry/2021"]
    assert (award.amount_fen, award.status, award.due_fiscal_year) == (FE, "due", 2022)
    assert award.answered_at.position > 0 and award.answered_at.recorded_at.seconds > 0
    request = pb.RecordPaymentRequest(
        entitlement_id=award.entitlement_id, payment_ref="GK-1", amount_fen=FE, paid_on="2022-03-01"
    )
    first = ledger.RecordPayment(request, metadata=finance)
    again = ledger.RecordPayment(request, metadata=finance)
    assert (first.replay, again.replay, again.total_fen) == (False, True, FE)
    trail = list(
        ledger.GetAuditTrail(
            pb.GetAuditTrailRequest(uscc=TAIYUAN), metadata=auth(tokens["auditor"])
        )
    )
    assert [(e.type, e.actor) for e in trail][-1] == ("PaymentRecorded", "财政厅-张")
    assert json.loads(trail[-1].payload_json)["payment_ref"] == "GK-1"

    def pay(ref: str, fen: int, day: str, eid: str = award.entitlement_id) -> grpc.StatusCode:
        r = pb.RecordPaymentRequest(
            entitlement_id=eid, payment_ref=ref, amount_fen=fen, paid_on=day
        )
        return code_of(lambda: ledger.RecordPayment(r, metadata=finance))

    assert pay("GK-1", FE - 1, "2022-03-01") == grpc.StatusCode.ALREADY_EXISTS
    assert pay("GK-2", 1, "2022-03-02") == grpc.StatusCode.FAILED_PRECONDITION  # overpayment
    assert pay("GK-3", 0, "2022-03-02") == grpc.StatusCode.INVALID_ARGUMENT
    assert pay("GK-4", 1, "2022-13-02") == grpc.StatusCode.INVALID_ARGUMENT
    assert pay("GK-5", 1, "2022-03-02", f"{TAIYUAN}/first_entry/2019") == grpc.StatusCode.NOT_FOUND
    enterprise = ledger.GetEnterprise(pb.GetEnterpriseRequest(uscc=TAIYUAN), metadata=finance)
    assert [(e.entitlement_id, e.status) for e in enterprise.entitlements] == [
        (award.entitlement_id, "paid")
    ]
    then = ledger.GetEnterprise(
        pb.GetEnterpriseRequest(uscc=TAIYUAN, point=pb.Point(as_of="2022-02-28")), metadata=finance
    )
    assert [e.status for e in then.entitlements] == ["due"]  # paid on 1 March


def test_a_city_bureau_sees_and_pays_only_its_city(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    datong = auth(tokens["datong"])
    assert [a.uscc for a in ledger.ListAwards(pb.ListAwardsRequest(), metadata=datong)] == [DATONG]
    assert [
        r.uscc for r in ledger.ListRegister(pb.ListRegisterRequest(year=2021), metadata=datong)
    ] == [DATONG]
    totals = ledger.GetFiscalTotals(pb.GetFiscalTotalsRequest(), metadata=datong)
    assert [(t.fiscal_year, t.count, t.entitled_fen) for t in totals.totals] == [(2022, 1, FE)]
    outside = pb.GetEnterpriseRequest(uscc=TAIYUAN)
    assert (
        code_of(lambda: ledger.GetEnterprise(outside, metadata=datong))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    elsewhere = pb.ListAwardsRequest(city_code="140100")
    assert (
        code_of(lambda: ledger.ListAwards(elsewhere, metadata=datong))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    pay = pb.RecordPaymentRequest(
        entitlement_id=f"{TAIYUAN}/first_entry/2021",
        payment_ref="DT-1",
        amount_fen=1,
        paid_on="2022-03-01",
    )
    assert (
        code_of(lambda: ledger.RecordPayment(pay, metadata=datong))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    own = pb.RecordPaymentRequest(
        entitlement_id=f"{DATONG}/first_entry/2021",
        payment_ref="DT-2",
        amount_fen=1,
        paid_on="2022-03-01",
    )
    assert ledger.RecordPayment(own, metadata=datong).total_fen == 1


def test_an_import_with_bad_rows_names_every_row_and_writes_nothing(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    statistics = tokens["statistics"]
    with pytest.raises(grpc.RpcError) as error:
        load(
            ledger,
            statistics,
            2022,
            Firm(TAIYUAN),
            Firm("NOT-A-USCC"),
            Firm(ref_uscc(9), region_code="999999"),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.value.details()
    assert "row:2: uscc:" in details and "row:3: region_code:" in details
    register = ledger.ListRegister(pb.ListRegisterRequest(year=2022), metadata=auth(statistics))
    assert list(register) == []
    out_of_order = code_of(lambda: load(ledger, statistics, 2024, Firm(TAIYUAN)))
    assert out_of_order == grpc.StatusCode.FAILED_PRECONDITION
    done = load(ledger, statistics, 2022, Firm(TAIYUAN))
    assert (done.rows, json.loads(done.counts_json)["left"]) == (1, 2)


def test_verify_and_anchor_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    auditor = auth(tokens["auditor"])
    anchor = ledger.GetAnchor(pb.GetAnchorRequest(), metadata=auditor).anchor
    verified = ledger.VerifyLog(pb.VerifyLogRequest(anchor=anchor), metadata=auditor)
    assert (verified.intact, verified.head, verified.anchor_held) == (True, anchor, True)
    bad = pb.VerifyLogRequest(anchor="12:xyz")
    assert (
        code_of(lambda: ledger.VerifyLog(bad, metadata=auditor)) == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_policy_versions_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    finance = auth(tokens["finance"])
    (version,) = ledger.ListPolicies(pb.ListPoliciesRequest(), metadata=finance)
    assert (version.id, version.content_hash) == ("jinbanfa-2020-38", HASH_38)
    assert not version.HasField("applies_from") and version.content_json == ""
    assert version.reason == "" and version.position > 0
    shown = ledger.GetPolicy(pb.GetPolicyRequest(id="jinbanfa-2020-38"), metadata=finance)
    assert json.loads(shown.content_json)["first_entry"]["amount_fen"] == 30_000_000
    early = pb.ListPoliciesRequest(known_at=f"@{version.position - 1}")
    assert list(ledger.ListPolicies(early, metadata=finance)) == []
    missing = pb.GetPolicyRequest(id="no-such-version")
    assert code_of(lambda: ledger.GetPolicy(missing, metadata=finance)) == grpc.StatusCode.NOT_FOUND
    bad = pb.ListPoliciesRequest(known_at="yesterday")
    assert (
        code_of(lambda: list(ledger.ListPolicies(bad, metadata=finance)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_designations_and_the_deciding_version_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    """The certification role imports designations (all or none, every bad row named); the
    awards, the enterprise and the explanation carry the deciding version and the bonus."""
    certify, finance = auth(tokens["certification"]), auth(tokens["finance"])

    def designate(*rows: pb.DesignationRow, kind: str = "strategic_emerging") -> Any:
        header = pb.ImportDesignationsRequest(header=pb.DesignationsHeader(kind=kind))
        messages = [header, *(pb.ImportDesignationsRequest(row=r) for r in rows)]
        return ledger.ImportDesignations(iter(messages), metadata=certify)

    good = pb.DesignationRow(uscc=TAIYUAN, valid_from="2021-01-01", document="晋发改〔2021〕1号")
    with pytest.raises(grpc.RpcError) as refused:
        designate(good, pb.DesignationRow(uscc=DATONG, valid_from="2021-02-30", document="D"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "designations:3: valid_from: 2021-02-30 is not a real date" in (
        refused.value.details() or ""
    )
    with pytest.raises(grpc.RpcError) as bad_kind:
        designate(good, kind="gazelle")
    assert bad_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.kind" in (bad_kind.value.details() or "")
    done = designate(good)
    assert (done.granted, done.replay, list(done.identified)) == (1, False, [])
    again = designate(good)
    assert again.replay and again.sha256 == done.sha256 and again.held == 1
    # 38号 governs the 2021 entrant: no bonus, and the award says which version decided it.
    (award,) = [
        a
        for a in ledger.ListAwards(pb.ListAwardsRequest(), metadata=finance)
        if a.entitlement_id == f"{TAIYUAN}/first_entry/2021"
    ]
    assert (award.policy, award.policy_hash, award.base_fen) == ("jinbanfa-2020-38", HASH_38, FE)
    assert list(award.bonuses) == []
    firm = ledger.GetEnterprise(pb.GetEnterpriseRequest(uscc=TAIYUAN), metadata=finance)
    (held,) = firm.designations
    assert (held.kind, held.document, held.valid_from, held.valid_to, held.valid) == (
        "strategic_emerging",
        "晋发改〔2021〕1号",
        "2021-01-01",
        "",
        True,
    )
    assert firm.entitlements[0].policy_hash == HASH_38
    explained = json.loads(
        ledger.ExplainEntitlement(
            pb.ExplainEntitlementRequest(entitlement_id=f"{TAIYUAN}/first_entry/2021"),
            metadata=finance,
        ).json
    )
    assert explained["policy"]["content_hash"] == HASH_38 and explained["bonuses"] == []


def test_holds_over_grpc_stop_payments_while_in_force(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    """The review role places a hold from a list and by hand; finance's payment on a day it is in
    force is FAILED_PRECONDITION naming the document; lifted, the payment goes through. A city
    user lists its city's held awards only; a bad list names every bad row and writes nothing."""
    review, finance = auth(tokens["review"]), auth(tokens["finance"])
    award = f"{TAIYUAN}/first_entry/2021"

    def listed(*rows: pb.HoldRow) -> pb.HoldsRecorded:
        header = pb.ImportHoldsRequest(header=pb.HoldsHeader(source="信用中国.csv"))
        items = [header, *(pb.ImportHoldsRequest(row=r) for r in rows)]
        result: pb.HoldsRecorded = ledger.ImportHolds(iter(items), metadata=review)
        return result

    bad = pb.HoldRow(uscc=DATONG, reason="nope", authority="", document="D", valid_from="x")
    with pytest.raises(grpc.RpcError) as refused:
        listed(
            pb.HoldRow(
                uscc=TAIYUAN,
                reason="credit_default",
                authority="信用中国",
                document="L-1",
                valid_from="2022-01-01",
            ),
            bad,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for field in ("3: reason", "3: authority", "3: from"):
        assert f"信用中国.csv:{field}" in (refused.value.details() or ""), field
    placed = listed(
        pb.HoldRow(
            uscc=TAIYUAN,
            reason="credit_default",
            authority="信用中国",
            document="L-1",
            valid_from="2022-01-01",
            valid_to="2022-06-30",
        )
    )
    assert placed.placed == 1 and placed.position > 0
    assert listed(
        pb.HoldRow(
            uscc=TAIYUAN,
            reason="credit_default",
            authority="信用中国",
            document="L-1",
            valid_from="2022-01-01",
            valid_to="2022-06-30",
        )
    ).replay

    def pay(ref: str, day: str) -> grpc.StatusCode:
        request = pb.RecordPaymentRequest(
            entitlement_id=award, payment_ref=ref, amount_fen=FE // 2, paid_on=day
        )
        return code_of(lambda: ledger.RecordPayment(request, metadata=finance))

    with pytest.raises(grpc.RpcError) as held:
        ledger.RecordPayment(
            pb.RecordPaymentRequest(
                entitlement_id=award, payment_ref="GK-H1", amount_fen=1, paid_on="2022-03-01"
            ),
            metadata=finance,
        )
    assert held.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "L-1" in (held.value.details() or "")
    assert pay("GK-H2", "2022-07-01") == grpc.StatusCode.OK

    by_hand = pb.PlaceHoldRequest(
        uscc=DATONG,
        reason="deregistered",
        authority="大同市市场监管局",
        document="注销-7",
        valid_from="2022-02-01",
    )
    assert ledger.PlaceHold(by_hand, metadata=review).placed == 1
    point = pb.Point(as_of="2022-03-01")
    only = pb.ListAwardsRequest(point=point, held=pb.ListAwardsRequest.HELD_ONLY)
    awards = {a.entitlement_id: a for a in ledger.ListAwards(only, metadata=finance)}
    assert set(awards) == {award, f"{DATONG}/first_entry/2021"}
    assert awards[award].hold.document == "L-1" and awards[award].hold.valid_from == "2022-01-01"
    datong = auth(tokens["datong"])
    assert [a.entitlement_id for a in ledger.ListAwards(only, metadata=datong)] == [
        f"{DATONG}/first_entry/2021"
    ]
    free = pb.ListAwardsRequest(point=point, held=pb.ListAwardsRequest.HELD_NOT)
    assert list(ledger.ListAwards(free, metadata=finance)) == []
    lift = pb.LiftHoldRequest(
        uscc=DATONG, document="注销-7", lifted_on="2022-04-01", reason="撤销注销"
    )
    assert ledger.LiftHold(lift, metadata=review).lifted == 1
    firm = ledger.GetEnterprise(
        pb.GetEnterpriseRequest(uscc=DATONG, point=pb.Point(as_of="2022-03-01")), metadata=finance
    )
    (hold,) = firm.holds
    assert (hold.document, hold.in_force, hold.lifted_on) == ("注销-7", True, "2022-04-01")
    bad_day = pb.PlaceHoldRequest(
        uscc=DATONG, reason="other", authority="a", document="d", valid_from="2022-13-01"
    )
    assert code_of(lambda: ledger.PlaceHold(bad_day, metadata=review)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_a_batch_through_the_workflow_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    """Finance appropriates and switches the workflow on; a review user proposes, another
    approves (the proposer is PERMISSION_DENIED), the notice (ended before today) is published,
    an objection takes Datong's award out, the batch is released and its orders listed; the
    released award is paid, the objected one refused. Datong's city user sees no province-wide
    batch."""
    from adapters.bootstrap import today_in_shanghai

    finance, review, review2 = (auth(tokens[r]) for r in ("finance", "review", "review2"))
    datong = auth(tokens["datong"])
    set_ = pb.SetAppropriationRequest(
        fiscal_year=2022, fund="F22", amount_fen=FE, document="晋财预〔2022〕1号"
    )
    assert ledger.SetAppropriation(set_, metadata=finance).position > 0
    proposed = ledger.ProposeBatch(pb.ProposeBatchRequest(fiscal_year=2022), metadata=review)
    assert (proposed.batch_id, proposed.awards_count) == ("B2022-140000-01", 2)
    request = pb.BatchRequest(batch_id=proposed.batch_id)
    assert code_of(lambda: ledger.ApproveBatch(request, metadata=review)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    with pytest.raises(grpc.RpcError) as over:
        ledger.ApproveBatch(request, metadata=review2)
    assert over.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "by 300,000.00 yuan" in (over.value.details() or "")
    adjust = pb.AdjustAppropriationRequest(
        fiscal_year=2022, fund="F22", change_fen=FE, document="晋财预〔2022〕5号"
    )
    ledger.AdjustAppropriation(adjust, metadata=finance)
    assert ledger.ApproveBatch(request, metadata=review2).approved_by == "省中小企业局-赵"
    start = today_in_shanghai() - timedelta(days=30)
    published = ledger.PublishBatch(
        pb.PublishBatchRequest(
            batch_id=proposed.batch_id, notice_from=start.isoformat(), objections_to="省中小企业局"
        ),
        metadata=review,
    )
    assert published.notice_from == start.isoformat() and published.notice_to > start.isoformat()
    assert list(ledger.ListBatches(pb.ListBatchesRequest(), metadata=datong)) == []
    assert code_of(lambda: ledger.GetBatch(request, metadata=datong)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    objection = pb.ObjectToBatchRequest(
        batch_id=proposed.batch_id, uscc=DATONG, reason="举报", received_on=start.isoformat()
    )
    assert ledger.ObjectToBatch(objection, metadata=review).awards_count == 1
    released = ledger.ReleaseBatch(request, metadata=review2)
    assert (released.status, released.awards_count) == ("released", 1)
    (order,) = ledger.ListBatchOrders(request, metadata=finance)
    assert (order.payee_uscc, order.amount_fen, order.fund_code) == (TAIYUAN, FE, "F22")
    ledger.RequireRelease(pb.RequireReleaseRequest(from_fiscal_year=2022), metadata=finance)
    today = today_in_shanghai().isoformat()

    def pay(eid: str, ref: str) -> grpc.StatusCode:
        r = pb.RecordPaymentRequest(
            entitlement_id=eid, payment_ref=ref, amount_fen=FE, paid_on=today
        )
        return code_of(lambda: ledger.RecordPayment(r, metadata=finance))

    assert pay(f"{TAIYUAN}/first_entry/2021", "GK-W1") == grpc.StatusCode.OK
    assert pay(f"{DATONG}/first_entry/2021", "GK-W2") == grpc.StatusCode.FAILED_PRECONDITION
    (line,) = ledger.GetBudget(pb.GetBudgetRequest(fiscal_year=2022), metadata=finance).lines
    assert (line.appropriated_fen, line.committed_fen, line.released_fen, line.paid_fen) == (
        2 * FE,
        FE,
        FE,
        FE,
    )
    forecast = ledger.GetForecast(
        pb.GetForecastRequest(first_fiscal_year=2022, last_fiscal_year=2023), metadata=datong
    )
    assert [y.fiscal_year for y in forecast.years] == [2022, 2023]
    assert forecast.years[0].decided_fen == FE  # Datong's award: objected, unpaid
    shown = ledger.GetBatch(request, metadata=finance)
    assert {a.entitlement_id: a.status for a in shown.awards} == {
        f"{TAIYUAN}/first_entry/2021": "released",
        f"{DATONG}/first_entry/2021": "objected",
    }


def test_without_tls_only_loopback_is_bound(sqlite_url: str, tmp_path: Path) -> None:
    with (
        open_ledger(sqlite_url, create=True) as ledger,
        pytest.raises(ValueError, match="loopback"),
    ):
        build_server(ledger, users_from_file(tmp_path / "tokens"), "0.0.0.0:0")


def test_token_commands_add_list_and_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.main import main

    path = str(tmp_path / "tokens")
    assert (
        main(
            [
                "token",
                "add",
                "--user",
                "阳泉财政局",
                "--role",
                "finance",
                "--city",
                "140300",
                "--tokens",
                path,
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40 and token not in Path(path).read_text("utf-8")  # only its hash is kept
    assert main(["token", "list", "--tokens", path, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["user"], u["role"], u["city"]) for u in listed] == [
        ("阳泉财政局", "finance", "140300")
    ]
    assert main(["token", "revoke", "--user", "阳泉财政局", "--tokens", path]) == 0
    capsys.readouterr()
    assert main(["token", "list", "--tokens", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["token", "revoke", "--user", "nobody", "--tokens", path]) == 2


def test_tls_with_a_certificate_made_for_the_test(sqlite_url: str, tmp_path: Path) -> None:
    key, cert = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    path = tmp_path / "tokens"
    token = add_user(path, "审计", "auditor", None)
    with open_ledger(sqlite_url, create=True) as ledger:
        tls = (key.read_bytes(), cert.read_bytes())
        server, port = build_server(ledger, users_from_file(path), "127.0.0.1:0", tls=tls)
        server.start()
        try:
            credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
            with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
                stub = pb_grpc.LedgerServiceStub(channel)
                assert stub.VerifyLog(pb.VerifyLogRequest(), metadata=auth(token)).intact
            with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
                call = pb_grpc.LedgerServiceStub(plain).VerifyLog
                assert code_of(
                    lambda: call(pb.VerifyLogRequest(), metadata=auth(token), timeout=5)
                ) == (grpc.StatusCode.UNAVAILABLE)
        finally:
            server.stop(None)


def test_one_payment_replayed_from_twenty_threads_is_recorded_once(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    request = pb.RecordPaymentRequest(
        entitlement_id=f"{TAIYUAN}/first_entry/2021",
        payment_ref="GK-20",
        amount_fen=FE,
        paid_on="2022-03-01",
    )
    replies: list[pb.MoneyRecorded] = []

    def pay() -> None:
        replies.append(ledger.RecordPayment(request, metadata=auth(tokens["finance"])))

    threads = [threading.Thread(target=pay) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.replay for r in replies) == [False] + [True] * 19
    trail = ledger.GetAuditTrail(
        pb.GetAuditTrailRequest(uscc=TAIYUAN), metadata=auth(tokens["auditor"])
    )
    assert [e.type for e in trail].count("PaymentRecorded") == 1


@pytest.mark.slow
def test_the_example_client_lists_what_is_due(
    channel: grpc.Channel,
    ledger: pb_grpc.LedgerServiceStub,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("grpc_client", ROOT / "docs/grpc_client.py")
    assert spec is not None and spec.loader is not None
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    monkeypatch.setenv("LEDGER_TOKEN", tokens["finance"])
    target = channel._channel.target().decode()  # type: ignore[attr-defined]
    assert client.main([target, "2022"]) == 0
    out = capsys.readouterr()
    assert sorted(line.split("\t")[0] for line in out.out.splitlines()) == sorted(
        [f"{TAIYUAN}/first_entry/2021", f"{DATONG}/first_entry/2021"]
    )
    assert f"due in 2022: {2 * FE} fen" in out.err
    # Without a token, or with a forged one: a sentence and exit 2, never a traceback.
    monkeypatch.delenv("LEDGER_TOKEN")
    assert client.main([target, "2022"]) == 2
    assert "set LEDGER_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("LEDGER_TOKEN", "forged")
    assert client.main([target, "2022"]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err


@pytest.mark.slow
def test_ten_thousand_awards_stream_in_order(
    stub: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    statistics = tokens["statistics"]
    load(stub, statistics, 2020, Firm(ref_uscc(1)), baseline=True)
    entrants = [Firm(ref_uscc(10_000 + i)) for i in range(10_000)]
    assert load(stub, statistics, 2021, *entrants).rows == 10_000
    streamed = stub.ListAwards(
        pb.ListAwardsRequest(fiscal_year=2022), metadata=auth(tokens["finance"])
    )
    ids = [a.entitlement_id for a in streamed]
    assert len(ids) == 10_000 and ids == sorted(ids)
    assert set(ids) == {f"{f.uscc}/first_entry/2021" for f in entrants}


def test_concurrent_instalments_committed_together_never_overpay(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    codes: list[grpc.StatusCode] = []
    eids = [f"{TAIYUAN}/first_entry/2021", f"{DATONG}/first_entry/2021"]

    def pay(n: int) -> None:
        request = pb.RecordPaymentRequest(
            entitlement_id=eids[n % 2],
            payment_ref=f"GK-I{n}",
            amount_fen=2_000_000,
            paid_on="2022-03-01",
        )
        codes.append(
            code_of(lambda: ledger.RecordPayment(request, metadata=auth(tokens["finance"])))
        )

    # 16 instalments of 20,000 yuan on each 300,000-yuan award: 15 fit, the 16th is refused.
    threads = [threading.Thread(target=pay, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes, key=str) == sorted(
        [grpc.StatusCode.OK] * 30 + [grpc.StatusCode.FAILED_PRECONDITION] * 2, key=str
    )
    awards = ledger.ListAwards(pb.ListAwardsRequest(), metadata=auth(tokens["finance"]))
    assert {(a.entitlement_id, a.paid_fen, a.status) for a in awards} == {
        (e, FE, "paid") for e in eids
    }
    assert ledger.VerifyLog(pb.VerifyLogRequest(), metadata=auth(tokens["auditor"])).intact


def test_windows_explanations_totals_and_recoveries_answer_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    finance = auth(tokens["finance"])
    windows = ledger.ListWindows(pb.ListWindowsRequest(uscc=TAIYUAN), metadata=finance)
    assert {(w.window, w.starts_on, w.ends_on) for w in windows} == {
        ("guarantee", "2021-01-01", "2023-12-31"),
        ("energy", "2021-01-01", "2023-12-31"),
    }
    explained = ledger.ExplainEntitlement(
        pb.ExplainEntitlementRequest(entitlement_id=f"{TAIYUAN}/first_entry/2021"), metadata=finance
    )
    doc = json.loads(explained.json)
    assert (doc["clause"], doc["amount_fen"], doc["status"]) == ("(四)", FE, "due")
    totals = ledger.GetFiscalTotals(
        pb.GetFiscalTotalsRequest(group_by=pb.GetFiscalTotalsRequest.GROUP_BY_CITY),
        metadata=finance,
    )
    assert {(t.fiscal_year, t.group, t.count) for t in totals.totals} == {
        (2022, "140100", 1),
        (2022, "140200", 1),
    }
    recover = pb.RecordRecoveryRequest(
        entitlement_id=f"{TAIYUAN}/first_entry/2021",
        recovery_ref="TH-1",
        amount_fen=1,
        received_on="2022-03-01",
    )
    assert (
        code_of(lambda: ledger.RecordRecovery(recover, metadata=finance))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    bad_status = pb.ListAwardsRequest(status="owed")
    assert (
        code_of(lambda: ledger.ListAwards(bad_status, metadata=finance))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    statistics = tokens["statistics"]
    assert (
        code_of(lambda: load(ledger, statistics, 0, Firm(TAIYUAN)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    old = pb.ListAwardsRequest(point=pb.Point(known_at="2020-01-01T00:00:00+08:00"))
    assert list(ledger.ListAwards(old, metadata=finance)) == []  # nothing was known then
    naive = pb.ListAwardsRequest(point=pb.Point(known_at="2024-01-01T00:00:00"))
    assert (
        code_of(lambda: ledger.ListAwards(naive, metadata=finance))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


@pytest.mark.postgres
def test_a_database_gone_is_unavailable_not_internal(
    pg_database_url: str, tmp_path: Path, postgres_server: Any
) -> None:
    import psycopg

    path = tmp_path / "tokens"
    token = add_user(path, "财政", "finance", None)
    with open_ledger(pg_database_url, create=True) as ledger:
        server, port = build_server(ledger, users_from_file(path), "127.0.0.1:0")
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.LedgerServiceStub(channel)
                assert list(stub.ListAwards(pb.ListAwardsRequest(), metadata=auth(token))) == []
                name = pg_database_url.rsplit("/", 1)[1]
                with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                code = code_of(
                    lambda: stub.ListAwards(
                        pb.ListAwardsRequest(), metadata=auth(token), timeout=60
                    )
                )
                assert code == grpc.StatusCode.UNAVAILABLE
        finally:
            server.stop(None)


SCOPED = {
    # method: (call on a Taiyuan firm, as the Datong bureau), every one refused
    "GetEnterprise": lambda s, m: s.GetEnterprise(
        pb.GetEnterpriseRequest(uscc=TAIYUAN), metadata=m
    ),
    "ListWindows": lambda s, m: s.ListWindows(pb.ListWindowsRequest(uscc=TAIYUAN), metadata=m),
    "ListAwards": lambda s, m: s.ListAwards(pb.ListAwardsRequest(city_code="140100"), metadata=m),
    "ExplainEntitlement": lambda s, m: s.ExplainEntitlement(
        pb.ExplainEntitlementRequest(entitlement_id=f"{TAIYUAN}/first_entry/2021"), metadata=m
    ),
    "RecordPayment": lambda s, m: s.RecordPayment(
        pb.RecordPaymentRequest(
            entitlement_id=f"{TAIYUAN}/first_entry/2021",
            payment_ref="X",
            amount_fen=1,
            paid_on="2022-03-01",
        ),
        metadata=m,
    ),
    "RecordRecovery": lambda s, m: s.RecordRecovery(
        pb.RecordRecoveryRequest(
            entitlement_id=f"{TAIYUAN}/first_entry/2021",
            recovery_ref="Y",
            amount_fen=1,
            received_on="2022-03-01",
        ),
        metadata=m,
    ),
}


def test_a_city_scoped_user_is_refused_every_method_on_another_citys_firm(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str], tmp_path: Path
) -> None:
    datong = auth(tokens["datong"])
    for method, call in SCOPED.items():
        code = code_of(lambda call=call: call(ledger, datong))  # type: ignore[misc]
        assert code == grpc.StatusCode.PERMISSION_DENIED, (method, code)
    # A scoped statistics user may not import a province-wide register either.
    scoped = add_user(tmp_path / "tokens", "大同统计局", "statistics", "140200")
    code = code_of(lambda: load(ledger, scoped, 2022, Firm(DATONG, region_code="140212")))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def ready_stub(channel: grpc.Channel) -> pb_grpc.LedgerServiceStub:
    grpc.channel_ready_future(channel).result(timeout=20)
    return pb_grpc.LedgerServiceStub(channel)


@pytest.mark.slow
def test_serve_answers_logs_one_line_per_call_and_stops_on_sigterm(tmp_path: Path) -> None:
    token = add_user(tmp_path / "tokens", "运维", "admin", None)
    with serve_process(tmp_path) as (proc, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ready_stub(channel)
            request = pb.GetEnterpriseRequest(uscc=TAIYUAN)
            code = code_of(lambda: stub.GetEnterprise(request, metadata=auth(token)))
            assert code == grpc.StatusCode.NOT_FOUND
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        log = proc.stderr.read() if proc.stderr else ""
    calls = [json.loads(line) for line in log.splitlines() if line.startswith('{"method"')]
    assert calls == [
        {"method": "GetEnterprise", "user": "运维", "status": "NOT_FOUND", "ms": calls[0]["ms"]}
    ]
    assert token not in log


@pytest.mark.slow
def test_sigterm_during_a_call_lets_it_finish_then_exits_0(tmp_path: Path) -> None:
    token = add_user(tmp_path / "tokens", "统计局", "statistics", None)
    results: list[Any] = []
    with (
        serve_process(tmp_path) as (proc, port),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = ready_stub(channel)
        firms = [Firm(ref_uscc(30_000 + i)) for i in range(20_000)]

        def slow_import() -> None:
            try:
                results.append(load(stub, token, 2020, *firms, baseline=True))
            except grpc.RpcError as e:
                results.append(e.code())
            results.append(time.monotonic())

        caller = threading.Thread(target=slow_import)
        caller.start()
        time.sleep(1.0)  # the import is being written
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        caller.join(timeout=60)
        assert proc.wait(timeout=60) == 0
    result, finished = results
    assert finished > signalled  # the call was in flight when the signal came, and completed
    assert isinstance(result, pb.ImportResult) and result.rows == 20_000, result


@pytest.mark.slow
def test_several_worker_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    token = add_user(tmp_path / "tokens", "运维", "admin", None)
    with serve_process(tmp_path, LEDGER_WORKERS="2") as (proc, port):
        for _ in range(4):  # new connections, spread over the workers
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                stub = ready_stub(channel)
                assert stub.VerifyLog(pb.VerifyLogRequest(), metadata=auth(token)).intact
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log = proc.stderr.read() if proc.stderr else ""
    assert code == 0, log
    assert log.count('"event": "serving"') == 2 and log.count('"event": "stopped"') == 2, log
