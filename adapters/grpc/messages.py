"""The wire and the application's results, both ways: typed results as protobuf messages, and a
client's fields (dates, the rows of an import) as the application's arguments."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from adapters.files.designations_csv import designation_row, designations_csv
from adapters.files.holds_csv import hold_row, holds_csv
from adapters.files.register_csv import RowsRegister
from adapters.grpc.auth import CallError
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from domain.command_results import (
    CorrectionResult,
    DesignationResult,
    HoldResult,
    ImportResult,
    MoneyResult,
)
from domain.designations import DesignationRow
from domain.errors import RowError
from domain.holds import HoldRow
from domain.payment_results import BatchView, BookResult, BudgetRow, ForecastResult, PaymentOrder
from domain.register import COLUMNS, FieldError
from domain.results import (
    AwardRow,
    EnergyWindow,
    EnterpriseView,
    FirmWindow,
    HoldView,
    Point,
    PolicyVersion,
    RegisterEntry,
    TotalRow,
    TrailEvent,
    WindowRow,
    jsonable,
)


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def optional_day(value: str, field: str) -> date | None:
    return required_day(value, field) if value else None


def required_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CallError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {value!r} is not a date YYYY-MM-DD"
        ) from None


def answered(point: Point) -> pb.AnsweredAt:
    return pb.AnsweredAt(
        as_of=point.as_of.isoformat(),
        position=point.position,
        recorded_at=timestamp(point.recorded_at),
    )


def award(a: AwardRow, at: pb.AnsweredAt) -> pb.Award:
    return pb.Award(
        entitlement_id=a.entitlement_id,
        uscc=a.uscc,
        name=a.name,
        city_code=a.city_code,
        kind=a.kind,
        clause=a.clause,
        policy=a.policy,
        amount_fen=a.amount_fen,
        decided_year=a.decided_year,
        due_fiscal_year=a.due_fiscal_year,
        paid_fen=a.paid_fen,
        recovered_fen=a.recovered_fen,
        status=a.status,
        answered_at=at,
        policy_hash=a.policy_hash,
        base_fen=a.base_fen,
        bonuses=[pb.Bonus(designation=b.designation, percent=b.percent) for b in a.bonuses],
        hold=(
            pb.Hold(
                reason=a.hold.reason,
                authority=a.hold.authority,
                document=a.hold.document,
                valid_from=a.hold.since.isoformat(),
                in_force=True,
            )
            if a.hold
            else None
        ),
    )


def total(t: TotalRow) -> pb.FiscalTotal:
    return pb.FiscalTotal(
        fiscal_year=t.fiscal_year,
        group=t.group,
        count=t.count,
        entitled_fen=t.entitled_fen,
        paid_fen=t.paid_fen,
        outstanding_fen=t.outstanding_fen,
        recovery_due_fen=t.recovery_due_fen or 0,
        recovered_fen=t.recovered_fen or 0,
    )


def window(w: WindowRow | FirmWindow, at: pb.AnsweredAt | None, uscc: str = "") -> pb.Window:
    closed = w.closed_on if isinstance(w, EnergyWindow | FirmWindow) else None
    fee_cap = None if isinstance(w, EnergyWindow) else w.fee_cap_bp
    return pb.Window(
        uscc=getattr(w, "uscc", uscc),
        window=w.window,
        clause=w.clause,
        starts_on=w.starts_on.isoformat(),
        ends_on=w.ends_on.isoformat(),
        closed_on=closed.isoformat() if closed else "",
        fee_cap_bp=fee_cap or 0,
        size_class=w.size_class or "",
        answered_at=at,
    )


def register_entry(r: RegisterEntry, at: pb.AnsweredAt) -> pb.RegisterEntry:
    return pb.RegisterEntry(
        uscc=r.uscc,
        name=r.name,
        kind=r.kind,
        first_entry=r.first_entry,
        region_code=r.region_code,
        city_code=r.city_code,
        industry_code=r.industry_code,
        size_class=r.size_class or "",
        answered_at=at,
    )


def enterprise(v: EnterpriseView) -> pb.Enterprise:
    return pb.Enterprise(
        answered_at=pb.AnsweredAt(
            as_of=v.as_of.isoformat(),
            position=v.known_at.position,
            recorded_at=timestamp(v.known_at.recorded_at),
        ),
        uscc=v.uscc,
        name=v.name,
        region_code=v.region_code,
        region_name=v.region_name,
        city_code=v.city_code,
        city_name=v.city_name,
        industry_code=v.industry_code,
        size_class=v.size_class or "",
        register_years=v.register_years,
        exit_years=v.exit_years,
        re_entry_years=v.re_entry_years,
        on_baseline=v.on_baseline,
        first_entry_year=v.first_entry_year or 0,
        first_entry_route=v.first_entry_route or "",
        entry_size_class=v.entry_size_class or "",
        version=v.version,
        entitlements=[
            pb.Entitlement(
                entitlement_id=e.entitlement_id,
                kind=e.kind,
                clause=e.clause,
                policy=e.policy,
                amount_fen=e.amount_fen,
                decided_year=e.decided_year,
                due_fiscal_year=e.due_fiscal_year,
                basis_years=e.basis_years,
                paid_fen=e.paid_fen,
                recovered_fen=e.recovered_fen,
                status=e.status,
                policy_hash=e.policy_hash,
                base_fen=e.base_fen,
                bonuses=[
                    pb.Bonus(designation=b.designation, percent=b.percent, documents=b.documents)
                    for b in e.bonuses
                ],
            )
            for e in v.entitlements
        ],
        payments=[
            pb.Payment(
                payment_ref=p.payment_ref,
                entitlement_id=p.entitlement_id,
                amount_fen=p.amount_fen,
                paid_on=p.paid_on.isoformat(),
            )
            for p in v.payments
        ],
        recoveries=[
            pb.Recovery(
                recovery_ref=r.recovery_ref,
                entitlement_id=r.entitlement_id,
                amount_fen=r.amount_fen,
                received_on=r.received_on.isoformat(),
            )
            for r in v.recoveries
        ],
        windows=[window(w, None) for w in v.windows],
        designations=[
            pb.Designation(
                kind=d.kind,
                document=d.document,
                valid_from=d.valid_from.isoformat(),
                valid_to=d.valid_to.isoformat() if d.valid_to else "",
                valid=bool(d.valid),
                position=d.position,
            )
            for d in v.designations
        ],
        holds=[hold(h) for h in v.holds],
    )


def hold(h: HoldView) -> pb.Hold:
    return pb.Hold(
        reason=h.reason,
        authority=h.authority,
        document=h.document,
        valid_from=h.valid_from.isoformat(),
        valid_to=h.valid_to.isoformat() if h.valid_to else "",
        lifted_on=h.lifted_on.isoformat() if h.lifted_on else "",
        lift_reason=h.lift_reason or "",
        in_force=bool(h.in_force),
        position=h.position,
    )


def trail_event(e: TrailEvent) -> pb.TrailEvent:
    return pb.TrailEvent(
        position=e.position,
        recorded_at=timestamp(e.recorded_at),
        version=e.version,
        type=e.type,
        actor=e.actor or "",
        valid_from=e.valid_from.isoformat(),
        payload_json=json.dumps(jsonable(e.payload), ensure_ascii=False),
    )


def money(r: MoneyResult) -> pb.MoneyRecorded:
    """A payment or a recovery as recorded (the recovery's totals are what came back of what
    was paid)."""
    return pb.MoneyRecorded(
        entitlement_id=r.entitlement_id,
        ref=r.ref,
        amount_fen=r.amount_fen,
        date=r.on.isoformat(),
        replay=r.replay,
        total_fen=r.total_fen,
        limit_fen=r.limit_fen,
        position=r.position or 0,
    )


def import_result(r: ImportResult | CorrectionResult) -> pb.ImportResult:
    if isinstance(r, CorrectionResult):
        counts = {
            "firms": len(r.firms),
            "arrears": len(r.arrears),
            "revoked": len(r.revoked),
            "recovery_due": len(r.recovery_due),
        }
    else:
        counts = r.counts
    return pb.ImportResult(
        year=r.year,
        sha256=r.sha256,
        rows=r.rows,
        replay=r.replay,
        position=r.position or 0,
        counts_json=json.dumps(counts),
    )


def register_rows(messages: Iterator[pb.ImportRegisterRequest], year: int) -> RowsRegister:
    """The rows a client streamed after the header, as a register source (row N is the Nth)."""
    return RowsRegister(
        ([getattr(m.row, c) for c in COLUMNS] for m in messages if m.WhichOneof("item") == "row"),
        year,
    )


def policy_version(v: PolicyVersion, *, content: bool) -> pb.PolicyVersion:
    """An adopted policy version; its full content only when asked (`GetPolicy`)."""
    return pb.PolicyVersion(
        id=v.id,
        content_hash=v.content_hash,
        title=v.title,
        issued_on=v.issued_on.isoformat(),
        applies_from=v.applies_from,
        position=v.position,
        recorded_at=timestamp(v.recorded_at),
        actor=v.actor,
        reason=v.reason or "",
        content_json=json.dumps(v.content, ensure_ascii=False, sort_keys=True) if content else "",
    )


def designation_rows(
    messages: Iterator[pb.ImportDesignationsRequest], source: str
) -> tuple[str, list[DesignationRow], list[RowError]]:
    """The rows a client streamed after the header, checked as a file's rows are (row N is on
    "line" N + 1, after the file's header), with the hash of the file they would make."""
    values = [
        [m.row.uscc, m.row.valid_from, m.row.valid_to, m.row.document]
        for m in messages
        if m.WhichOneof("item") == "row"
    ]
    return checked_rows(values, designation_row, designations_csv)


_Row = TypeVar("_Row")


def checked_rows(
    values: list[list[str]],
    parse: Callable[[int, list[str]], _Row | list[FieldError]],
    as_csv: Callable[[list[list[str]]], bytes],
) -> tuple[str, list[_Row], list[RowError]]:
    """Streamed rows checked one by one as a file's (row N on "line" N + 1, after the file's
    header), with the hash of the file they would make."""
    rows: list[_Row] = []
    errors: list[RowError] = []
    for line, row in enumerate(values, start=2):
        checked = parse(line, row)
        if isinstance(checked, list):
            errors.extend(RowError(line, e.field, e.reason) for e in checked)
        else:
            rows.append(checked)
    return hashlib.sha256(as_csv(values)).hexdigest(), rows, errors


def designations_imported(r: DesignationResult) -> pb.DesignationsImported:
    return pb.DesignationsImported(
        kind=r.kind,
        sha256=r.sha256 or "",
        replay=r.replay,
        granted=r.granted,
        held=r.held,
        revoked_earlier=r.revoked_earlier,
        identified=r.identified,
        position=r.position or 0,
        amount_changed_json=json.dumps(jsonable(r.amount_changed), ensure_ascii=False),
    )


def hold_rows(
    messages: Iterator[pb.ImportHoldsRequest],
) -> tuple[str, list[HoldRow], list[RowError]]:
    """The holds a client streamed after the header, checked as a file's rows are (row N is on
    "line" N + 1), with the hash of the file they would make."""
    values = [
        [
            m.row.uscc,
            m.row.reason,
            m.row.authority,
            m.row.document,
            m.row.valid_from,
            m.row.valid_to,
        ]
        for m in messages
        if m.WhichOneof("item") == "row"
    ]
    return checked_rows(values, hold_row, holds_csv)


def holds_recorded(r: HoldResult) -> pb.HoldsRecorded:
    return pb.HoldsRecorded(
        sha256=r.sha256 or "",
        replay=r.replay,
        placed=r.placed,
        lifted=r.lifted,
        held=r.held,
        identified=r.identified,
        position=r.position or 0,
    )


def book_recorded(r: BookResult) -> pb.BookRecorded:
    return pb.BookRecorded(replay=r.replay, position=r.position or 0, message=r.message)


def budget(rows: list[BudgetRow]) -> pb.Budget:
    # The wire's lines have the result's fields, name for name.
    return pb.Budget(lines=[pb.BudgetLine(**dataclasses.asdict(r)) for r in rows])


def _day_text(day: date | None) -> str:
    return day.isoformat() if day else ""


def batch(v: BatchView) -> pb.Batch:
    return pb.Batch(
        batch_id=v.batch_id,
        fiscal_year=v.fiscal_year,
        city_code=v.city or "",
        fund=v.fund,
        status=v.status,
        awards_count=v.awards_count,
        total_fen=v.total_fen,
        proposed_on=v.proposed_on.isoformat(),
        proposed_by=v.proposed_by,
        approved_on=_day_text(v.approved_on),
        approved_by=v.approved_by or "",
        notice_from=_day_text(v.notice_from),
        notice_to=_day_text(v.notice_to),
        working_days=v.working_days or 0,
        objections_to=v.objections_to or "",
        released_on=_day_text(v.released_on),
        released_by=v.released_by or "",
        awards=[
            pb.BatchAward(
                entitlement_id=a.entitlement_id,
                uscc=a.uscc,
                name=a.name,
                city_code=a.city_code,
                kind=a.kind,
                clause=a.clause,
                policy=a.policy_id,
                amount_fen=a.amount_fen,
                status=a.status,
                note=a.note or "",
                paid_fen=a.paid_fen,
            )
            for a in v.awards
        ],
        replay=v.replay,
        position=v.position or 0,
    )


def order(o: PaymentOrder) -> pb.PaymentOrder:
    return pb.PaymentOrder(
        order_no=o.order_no,
        payee_uscc=o.payee_uscc,
        payee_name=o.payee_name,
        amount_fen=o.amount_fen,
        budget_subject=o.subject,
        fund_code=o.fund,
        purpose=o.purpose,
        entitlement_id=o.entitlement_id,
        batch_id=o.batch_id,
    )


def forecast(r: ForecastResult) -> pb.Forecast:
    return pb.Forecast(
        known_at=r.known_at,
        last_register_year=r.last_register_year,
        life_table=[pb.LifeTableRow(**dataclasses.asdict(t)) for t in r.life_table],
        years=[pb.ForecastYear(**dataclasses.asdict(y)) for y in r.years],
    )
