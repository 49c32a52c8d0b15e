"""The gRPC methods of the below-scale database (十七) and the city progress report (十四):
`ImportBelowScale` (`import`: the statistics bureau), `GetPipeline`, `GetConversion` and
`GetProgress` (`read`). A city-scoped user sees its own city's pipeline and conversion; the
progress report compares the cities, and (十四) has it reported to all of them: every reader
gets it whole."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import grpc

from adapters.files.below_scale_csv import below_scale_csv, below_scale_row
from adapters.files.targets_toml import parse_targets
from adapters.files.tokens import User
from adapters.grpc import messages
from adapters.grpc.auth import city_filter
from adapters.grpc.calls import Calls, import_header
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from domain.command_results import BelowScaleResult
from domain.pipeline_results import ConversionRow, PipelineRow
from domain.results import jsonable
from domain.text import checked_text


class PipelineMethods(Calls):
    """The below-scale database, the pipeline, the progress report."""

    def ImportBelowScale(
        self, request_iterator: Iterator[pb.ImportBelowScaleRequest], context: grpc.ServicerContext
    ) -> pb.BelowScaleImported:
        def load(user: User) -> pb.BelowScaleImported:
            first = import_header(
                user, request_iterator, "the below-scale database is province-wide"
            )
            header = first.header
            source = checked_text(header.source or "below-scale", "source")
            values = [
                [
                    m.row.uscc,
                    m.row.name,
                    m.row.region_code,
                    m.row.industry_code,
                    str(m.row.revenue_ytd_fen),
                    str(m.row.employees),
                    m.row.source,
                ]
                for m in request_iterator
                if m.WhichOneof("item") == "row"
            ]
            sha256, rows, errors = messages.checked_rows(values, below_scale_row, below_scale_csv)
            r = self.ledger.import_below_scale(
                header.period,
                source,
                sha256,
                rows,
                actor=user.user,
                unreadable=errors,
                reason=header.reason or None,
            )
            return _imported(r)

        fields = {"period": "header.period", "source": "header.source", "reason": "header.reason"}
        return self._call(context, "ImportBelowScale", "import", load, fields)

    def GetPipeline(
        self, request: pb.GetPipelineRequest, context: grpc.ServicerContext
    ) -> pb.Pipeline:
        def get(user: User) -> pb.Pipeline:
            r = self.ledger.pipeline(
                messages.optional_day(request.on, "on"),
                city=city_filter(user, request.city_code),
                known_at=request.known_at or None,
                pool_percent=request.pool_percent or None,
            )
            return pb.Pipeline(
                at=messages.answered(r.point),
                on=r.on,
                threshold_fen=r.threshold_fen,
                pool_from_fen=r.pool_from_fen,
                pool_percent=r.pool_percent,
                policy_id=r.policy_id,
                register_year=r.register_year or 0,
                reached=[_firm(f) for f in r.reached],
                pool=[_firm(f) for f in r.pool],
                on_register=r.on_register,
            )

        return self._call(context, "GetPipeline", "read", get, {"city": "city_code"})

    def GetConversion(
        self, request: pb.GetConversionRequest, context: grpc.ServicerContext
    ) -> pb.Conversion:
        def get(user: User) -> pb.Conversion:
            r = self.ledger.conversion(request.year, known_at=request.known_at or None)
            rows = [c for c in r.cities if user.city in (None, c.city_code)]
            return pb.Conversion(
                at=messages.answered(r.point),
                year=r.year,
                pipeline_on=r.pipeline_on,
                cities=[_conversion(c) for c in rows],
                province=_conversion(r.province) if user.city is None else None,
            )

        return self._call(context, "GetConversion", "read", get, {})

    def GetProgress(
        self, request: pb.GetProgressRequest, context: grpc.ServicerContext
    ) -> pb.ProgressReport:
        def get(user: User) -> pb.ProgressReport:
            targets = (
                parse_targets("targets_toml", request.targets_toml.encode("utf-8"))
                if request.targets_toml
                else None
            )
            r = self.ledger.progress(
                request.year, targets=targets, known_at=request.known_at or None
            )
            document = r.to_json()
            return pb.ProgressReport(
                at=messages.answered(r.point),
                year=r.year,
                province_goal=r.province_goal,
                goal_year=r.goal_year,
                targets_from=r.targets_from,
                praise_top=r.praise_top,
                criticise_bottom=r.criticise_bottom,
                cities=[_city(dataclasses.asdict(c)) for c in r.cities],
                province=_city({**r.province, "city_name": "山西省"}),
                json=json.dumps(jsonable(document), ensure_ascii=False),
            )

        return self._call(context, "GetProgress", "read", get, {"targets": "targets_toml"})


def _imported(r: BelowScaleResult) -> pb.BelowScaleImported:
    return pb.BelowScaleImported(
        period=r.period,
        sha256=r.sha256,
        replay=r.replay,
        corrected=r.corrected,
        counts=r.counts,
        position=r.position or 0,
    )


def _firm(f: PipelineRow) -> pb.PipelineFirm:
    return pb.PipelineFirm(**dataclasses.asdict(f))


def _conversion(c: ConversionRow) -> pb.ConversionCity:
    return pb.ConversionCity(**{k: v for k, v in dataclasses.asdict(c).items() if v is not None})


def _city(c: dict[str, Any]) -> pb.CityProgress:
    """A city's row (or the province's): unset where the report has no figure, `mark` empty."""
    fields = {f.name for f in pb.CityProgress.DESCRIPTOR.fields}
    values: dict[str, Any] = {k: v for k, v in c.items() if k in fields and v is not None}
    values["mark"] = c.get("mark") or ""
    return pb.CityProgress(**values)
