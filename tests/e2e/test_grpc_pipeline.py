"""The below-scale database, the pipeline and the progress report over gRPC, on both stores: the
statistics bureau streams a month's rows (bad rows named, nothing written; the same rows a
replay), finance reads the pipeline (a city bureau its city's only), the conversion and the
progress report with a targets file."""

from __future__ import annotations

import json

import grpc
import pytest
from support.grpc import DATONG, TAIYUAN, auth, code_of, load
from support.helpers import Firm, ref_uscc

from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc

REACHED = ref_uscc(601)  # 太原, 2,000,000,000 fen in 2021: reached, first enters in 2022
POOL = ref_uscc(602, "140212")  # 大同, 1,600,000,000 fen: pool


def below_scale(
    *rows: pb.BelowScaleRow, period: str = "2021-12"
) -> list[pb.ImportBelowScaleRequest]:
    header = pb.ImportBelowScaleRequest(
        header=pb.BelowScaleHeader(period=period, source="税务局-2021-12.csv")
    )
    return [header, *(pb.ImportBelowScaleRequest(row=r) for r in rows)]


def firm(uscc: str, fen: int, region: str = "140105") -> pb.BelowScaleRow:
    return pb.BelowScaleRow(
        uscc=uscc,
        name="规下企业",
        region_code=region,
        industry_code="C1311",
        revenue_ytd_fen=fen,
        employees=30,
        source="tax",
    )


def test_the_pipeline_and_the_progress_report_over_grpc(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    statistics, finance = auth(tokens["statistics"]), auth(tokens["finance"])
    with pytest.raises(grpc.RpcError) as refused:
        ledger.ImportBelowScale(
            iter(below_scale(firm(REACHED, 2_000_000_000), firm(POOL, -1, "140212"))),
            metadata=statistics,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "税务局-2021-12.csv:3: revenue_ytd_fen" in (refused.value.details() or "")
    month = below_scale(firm(REACHED, 2_000_000_000), firm(POOL, 1_600_000_000, "140212"))
    imported = ledger.ImportBelowScale(iter(month), metadata=statistics)
    assert imported.counts["rows"] == 2 and imported.position > 0 and not imported.replay
    assert ledger.ImportBelowScale(iter(month), metadata=statistics).replay

    pipe = ledger.GetPipeline(pb.GetPipelineRequest(on="2021-12-31"), metadata=finance)
    assert [f.uscc for f in pipe.reached] == [REACHED] and [f.uscc for f in pipe.pool] == [POOL]
    assert pipe.threshold_fen == 2_000_000_000 and pipe.register_year == 2021
    assert pipe.reached[0].annualised_revenue_fen == 2_000_000_000
    assert pipe.at.position == imported.position
    datong = ledger.GetPipeline(
        pb.GetPipelineRequest(on="2021-12-31"), metadata=auth(tokens["datong"])
    )
    assert [f.uscc for f in datong.reached] == [] and [f.uscc for f in datong.pool] == [POOL]
    other = pb.GetPipelineRequest(on="2021-12-31", city_code="140100")
    assert code_of(lambda: ledger.GetPipeline(other, metadata=auth(tokens["datong"]))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )

    s = tokens["statistics"]
    load(
        ledger,
        s,
        2022,
        Firm(ref_uscc(500)),
        Firm(TAIYUAN),
        Firm(DATONG, region_code="140212"),
        Firm(REACHED),
    )
    conversion = ledger.GetConversion(pb.GetConversionRequest(year=2022), metadata=finance)
    taiyuan = next(c for c in conversion.cities if c.city_code == "140100")
    assert (taiyuan.pipeline, taiyuan.entered, taiyuan.first_entries) == (1, 1, 1)
    assert taiyuan.conversion == 1.0 and conversion.province.pipeline == 2
    scoped = ledger.GetConversion(
        pb.GetConversionRequest(year=2022), metadata=auth(tokens["datong"])
    )
    assert [c.city_code for c in scoped.cities] == ["140200"] and not scoped.HasField("province")

    targets = (
        "year = 2022\npraise_top = 1\ncriticise_bottom = 1\n[targets]\n140100 = 3\n140200 = 2\n"
    )
    report = ledger.GetProgress(
        pb.GetProgressRequest(year=2022, targets_toml=targets), metadata=finance
    )
    cities = {c.city_code: c for c in report.cities}
    assert (cities["140100"].register_size, cities["140100"].target) == (3, 3)
    assert (cities["140100"].rank, cities["140100"].mark) == (1, "praise")
    assert (cities["140200"].rank, cities["140200"].mark) == (2, "criticise")
    assert not cities["140300"].HasField("target") and cities["140300"].mark == ""
    assert report.province.register_size == 4 and report.province.target == 5
    assert json.loads(report.json)["cities"][0]["city_code"] == "140100"
    bad = pb.GetProgressRequest(year=2022, targets_toml="year = 2022\n[targets]\n149999 = 1\n")
    assert (
        code_of(lambda: ledger.GetProgress(bad, metadata=finance))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
