"""The (九) subsidy over gRPC, on both stores: the human-resources bureau streams hires and a
month's contributions (bad rows named with the identity number masked, nothing written; the
statistics bureau refused), finance lists the claims (a city bureau its city's only) and pays a
month's subsidy (above the subsidy refused), and no answer carries an identity number."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from support.grpc import DATONG, TAIYUAN, auth, code_of
from support.persons import ref_person_id

from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc

P1 = ref_person_id("140105", "19900101", "123")  # hired by TAIYUAN (first entered 2021)
P2 = ref_person_id("140212", "19850615", "002")  # hired by DATONG


@pytest.fixture(autouse=True)
def person_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_PERSON_SECRET_FILE", str(tmp_path / "person.secret"))


def hires(*rows: pb.HireRow) -> list[pb.ImportHiresRequest]:
    header = pb.ImportHiresRequest(header=pb.HiresHeader(source="人社厅-就业困难人员.csv"))
    return [header, *(pb.ImportHiresRequest(row=r) for r in rows)]


def contributions(month: str, *rows: pb.ContributionRow) -> list[pb.ImportContributionsRequest]:
    header = pb.ImportContributionsRequest(
        header=pb.ContributionsHeader(month=month, source="社保缴费.csv")
    )
    return [header, *(pb.ImportContributionsRequest(row=r) for r in rows)]


def test_hires_claims_and_a_payment_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    hr, finance = auth(tokens["human_resources"]), auth(tokens["finance"])
    p1 = pb.HireRow(
        uscc=TAIYUAN,
        person_id=P1,
        person_name="张三",
        category="长期失业人员",
        contract_start="2021-03-01",
        contract_end="2023-02-28",
    )
    short = pb.HireRow(
        uscc=DATONG,
        person_id=P2,
        person_name="李四",
        category="残疾人",
        contract_start="2021-05-01",
        contract_end="2022-04-29",  # a day short of a year
    )
    with pytest.raises(grpc.RpcError) as refused:
        ledger.ImportHires(iter(hires(p1, short)), metadata=hr)
    details = refused.value.details() or ""
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "人社厅-就业困难人员.csv:3: contract_end" in details and P2 not in details
    assert code_of(
        lambda: ledger.ImportHires(iter(hires(p1)), metadata=auth(tokens["statistics"]))
    ) == (grpc.StatusCode.PERMISSION_DENIED)
    p2 = pb.HireRow(
        uscc=DATONG,
        person_id=P2,
        person_name="李四",
        category="残疾人",
        contract_start="2021-05-01",
        contract_end="",
    )
    recorded = ledger.ImportHires(iter(hires(p1, p2)), metadata=hr)
    assert recorded.recorded == 2 and recorded.position > 0
    assert ledger.ImportHires(iter(hires(p1, p2)), metadata=hr).replay

    month = contributions(
        "2021-06",
        pb.ContributionRow(uscc=TAIYUAN, person_id=P1, employer_paid_fen=150_000),
        pb.ContributionRow(uscc=DATONG, person_id=P2, employer_paid_fen=90_000),
    )
    assert ledger.ImportContributions(iter(month), metadata=hr).recorded == 2
    bad = contributions(
        "2021-07", pb.ContributionRow(uscc=TAIYUAN, person_id=P1, employer_paid_fen=-1)
    )
    assert code_of(lambda: ledger.ImportContributions(iter(bad), metadata=hr)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )

    claims = ledger.ListClaims(pb.ListClaimsRequest(month="2021-06"), metadata=finance)
    by_firm = {c.uscc: c for c in claims.claims}
    assert set(by_firm) == {TAIYUAN, DATONG}
    taiyuan = by_firm[TAIYUAN]
    assert (taiyuan.eligible, taiyuan.subsidy_fen, taiyuan.outstanding_fen) == (
        True,
        150_000,
        150_000,
    )
    assert taiyuan.person not in (P1, "") and P1 not in str(claims)
    (total,) = claims.totals
    assert (total.fund, total.subsidy_fen) == ("employment", 240_000)
    datong_only = ledger.ListClaims(pb.ListClaimsRequest(), metadata=auth(tokens["datong"]))
    assert [c.uscc for c in datong_only.claims] == [DATONG]
    assert datong_only.totals[0].subsidy_fen == 90_000

    def pay(ref: str, fen: int) -> pb.RecordSubsidyPaymentRequest:
        return pb.RecordSubsidyPaymentRequest(
            uscc=TAIYUAN,
            person=taiyuan.person,
            month="2021-06",
            payment_ref=ref,
            amount_fen=fen,
            paid_on="2021-08-01",
        )

    assert code_of(lambda: ledger.RecordSubsidyPayment(pay("SI-1", 150_001), metadata=finance)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert code_of(lambda: ledger.RecordSubsidyPayment(pay("SI-1", 1), metadata=hr)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    paid = ledger.RecordSubsidyPayment(pay("SI-1", 150_000), metadata=finance)
    assert (paid.paid_fen, paid.fund, paid.replay) == (150_000, "employment", False)
    assert ledger.RecordSubsidyPayment(pay("SI-1", 150_000), metadata=finance).replay
    assert (
        code_of(
            lambda: ledger.RecordSubsidyPayment(pay("SI-2", 1), metadata=auth(tokens["datong"]))
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    after = ledger.ListClaims(pb.ListClaimsRequest(uscc=TAIYUAN), metadata=finance)
    assert [(c.paid_fen, c.outstanding_fen) for c in after.claims] == [(150_000, 0)]
