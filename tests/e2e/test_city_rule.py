"""One rule for the city an award belongs to: the city of the firm on the register of the award's
decided year. Listing, paying, totals, explanations and the reconciliation follow it; a firm a
scoped user may see is one that is in its city now or was on a register there.

A firm first on the 2021 register in Taiyuan moves to Datong in 2022 and stays: its first-entry
award (decided 2021) is Taiyuan's, its retention awards (decided 2023 and 2024) are Datong's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.grpc import auth, code_of, load
from support.helpers import Cli, Firm, ref_uscc, write_register

from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc

OLD = ref_uscc(900)
MOVER = ref_uscc(901)  # 小店区 Taiyuan in 2021, 新荣区 Datong from 2022
STAYER = ref_uscc(902, division="140212")
TAIYUAN_ROW = Firm(MOVER, name="山西迁移制造有限公司")
DATONG_ROW = Firm(MOVER, name="山西迁移制造有限公司", region_code="140212")
REGISTERS = {
    2020: [Firm(OLD)],
    2021: [Firm(OLD), TAIYUAN_ROW, Firm(STAYER, region_code="140212")],
    2022: [Firm(OLD), DATONG_ROW, Firm(STAYER, region_code="140212")],
    2023: [Firm(OLD), DATONG_ROW],
    2024: [Firm(OLD), DATONG_ROW],
}
FIRST, R2, R3 = (
    f"{MOVER}/{k}" for k in ("first_entry/2021", "retention_2y/2023", "retention_3y/2024")
)
OWNER = {FIRST: "140100", R2: "140200", R3: "140200"}


@pytest.fixture
def moved(stub: pb_grpc.LedgerServiceStub, tokens: dict[str, str]) -> pb_grpc.LedgerServiceStub:
    for year, firms in REGISTERS.items():
        load(stub, tokens["statistics"], year, *firms, baseline=year == 2020)
    return stub


def _pay(stub: pb_grpc.LedgerServiceStub, token: str, eid: str, ref: str) -> grpc.StatusCode:
    request = pb.RecordPaymentRequest(
        entitlement_id=eid, payment_ref=ref, amount_fen=1, paid_on="2025-03-01"
    )
    return code_of(lambda: stub.RecordPayment(request, metadata=auth(token)))


def test_every_call_agrees_on_the_city_of_each_award(
    moved: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    for city, user in (("140100", "taiyuan"), ("140200", "datong")):
        m = auth(tokens[user])
        mine = {eid for eid, owner in OWNER.items() if owner == city}
        listed = {a.entitlement_id for a in moved.ListAwards(pb.ListAwardsRequest(), metadata=m)}
        assert listed & set(OWNER) == mine, user
        assert all(
            a.city_code == city for a in moved.ListAwards(pb.ListAwardsRequest(), metadata=m)
        )
        for eid, owner in OWNER.items():
            expected = grpc.StatusCode.OK if owner == city else grpc.StatusCode.PERMISSION_DENIED
            assert _pay(moved, tokens[user], eid, f"{user}-{eid}") == expected, (user, eid)
            explain = pb.ExplainEntitlementRequest(entitlement_id=eid)
            assert (
                code_of(lambda e=explain, m=m: moved.ExplainEntitlement(e, metadata=m)) == expected
            )
        totals = moved.GetFiscalTotals(pb.GetFiscalTotalsRequest(), metadata=m).totals
        counted = sum(t.count for t in totals)
        assert counted == len(mine) + (1 if city == "140200" else 0)  # the stayer's own award
        # The firm itself: Datong has it now, Taiyuan had it on its 2021 register.
        request = pb.GetEnterpriseRequest(uscc=MOVER)
        assert moved.GetEnterprise(request, metadata=m).city_code == "140200"


def test_a_scoped_user_learns_nothing_of_firms_outside_its_city(
    moved: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    changzhi = auth(tokens["changzhi"])
    unknown = ref_uscc(999)
    for uscc in (MOVER, unknown):  # one exists, one does not: the same answer
        request = pb.GetEnterpriseRequest(uscc=uscc)
        assert (
            code_of(lambda r=request: moved.GetEnterprise(r, metadata=changzhi))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    assert _pay(moved, tokens["changzhi"], f"{unknown}/first_entry/2021", "CZ-1") == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    admin = auth(tokens["admin"])
    request = pb.GetEnterpriseRequest(uscc=unknown)
    assert (
        code_of(lambda: moved.GetEnterprise(request, metadata=admin)) == grpc.StatusCode.NOT_FOUND
    )


def test_the_command_line_and_the_reconciliation_count_awards_in_the_same_cities(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(db_url, capsys)
    for year, firms in REGISTERS.items():
        path = write_register(tmp_path / f"{year}.csv", firms)
        assert cli.import_year(path, year, baseline=year == 2020).code == 0
    by_city = {a["entitlement_id"]: a["city_code"] for a in cli.awards()}
    assert {eid: by_city[eid] for eid in OWNER} == OWNER
    assert {a["entitlement_id"] for a in cli.awards("--city", "140100")} == {FIRST}
    totals: dict[tuple[int, str], Any] = {
        (t["fiscal_year"], t["city_code"]): t["count"]
        for t in cli.listing("totals", "--by", "city")
    }
    assert totals == {
        (2022, "140100"): 1,
        (2022, "140200"): 1,
        (2024, "140200"): 1,
        (2025, "140200"): 1,
    }
    treasury = tmp_path / "treasury.csv"
    treasury.write_text("voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose\n", "utf-8")
    run = cli.run("reconcile", "--treasury", str(treasury), "--out", str(tmp_path / "r"), "--json")
    assert run.code in (0, 1), run.err
    (day,) = (tmp_path / "r").glob("20*")
    report = json.loads((day / "report.json").read_text("utf-8"))
    cities = {c["city_code"]: c["awards"] for c in report["totals"]["by_city"]}
    assert cities == {"140100": 1, "140200": 3}
