"""The application on the library's in-memory store (POPO): imports, corrections, payments and
recoveries, with no database. The register the imports need is derived in memory by the views' own
fold (projections/memory.py); the queries that read the views need a store that has them."""

from __future__ import annotations

from datetime import date

import pytest
from support.helpers import ref_uscc

from adapters.files.register_csv import RowsRegister
from domain.application import Ledger
from domain.command_results import CorrectionResult, ImportResult
from domain.errors import (
    ConflictError,
    ImportRejectedError,
    InvalidInputError,
    NotFoundError,
    OutOfScopeError,
    PreconditionError,
)
from projections.memory import MemoryRegister

TODAY = date(2026, 6, 1)
A, B, C = ref_uscc(1), ref_uscc(2), ref_uscc(3, division="140212")
FE = 30_000_000


def firm(uscc: str, region: str = "140105", first_entry: str = "") -> list[str]:
    return [uscc, f"企业{uscc[-4:]}", region, "C1311", "small", "", first_entry]


@pytest.fixture
def ledger() -> Ledger:
    app = Ledger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        today=lambda: TODAY,
        known=lambda _app: MemoryRegister(),
    )
    for year, rows in {2020: [firm(A)], 2021: [firm(A), firm(B)]}.items():
        app.import_register(year, RowsRegister(rows, year), actor="t", baseline=year == 2020)
    return app


def test_a_year_is_diffed_against_the_one_before(ledger: Ledger) -> None:
    r = ledger.import_register(
        2022, RowsRegister([firm(B), firm(C, "140212")], 2022), actor="统计局"
    )
    assert isinstance(r, ImportResult) and not r.replay
    assert r.counts == {"on_baseline": 0, "entered": 1, "re_entered": 0, "retained": 1, "left": 1}
    again = ledger.import_register(
        2022, RowsRegister([firm(B), firm(C, "140212")], 2022), actor="t"
    )
    assert isinstance(again, ImportResult) and again.replay and again.position is None


def test_the_first_entrant_is_owed_its_award_and_paid_once(ledger: Ledger) -> None:
    award = f"{B}/first_entry/2021"
    paid = ledger.record_payment(award, "GK1", FE, date(2022, 3, 1), actor="财政")
    assert (paid.replay, paid.total_fen, paid.limit_fen) == (False, FE, FE)
    replay = ledger.record_payment(award, "GK1", FE, date(2022, 3, 1), actor="财政")
    assert (replay.replay, replay.total_fen) == (True, FE)
    firm_b, _ = ledger.get_entitlement(award)
    assert [p.ref for p in firm_b.state.payments.values()] == ["GK1"]


def test_money_refused_says_which_argument_was_wrong(ledger: Ledger) -> None:
    award = f"{B}/first_entry/2021"
    refusals = {
        "amount_fen": lambda: ledger.record_payment(award, "R1", 0, date(2022, 3, 1), actor="f"),
        "paid_on": lambda: ledger.record_payment(award, "R2", 1, date(2026, 6, 2), actor="f"),
        "ref": lambda: ledger.record_payment(award, " R3", 1, date(2022, 3, 1), actor="f"),
    }
    for field, call in refusals.items():
        with pytest.raises(InvalidInputError) as refused:
            call()
        assert refused.value.field == field
    ledger.record_payment(award, "R4", FE - 1, date(2022, 3, 1), actor="f")
    with pytest.raises(PreconditionError, match="overpayment") as over:
        ledger.record_payment(award, "R5", 2, date(2022, 3, 1), actor="f")
    assert over.value.field == "amount_fen"
    with pytest.raises(ConflictError) as reused:
        ledger.record_payment(award, "R4", 1, date(2022, 3, 1), actor="f")
    assert reused.value.field == "ref"
    with pytest.raises(NotFoundError):
        ledger.record_payment(f"{A}/first_entry/2021", "R6", 1, date(2022, 3, 1), actor="f")


def test_a_scoped_payment_is_refused_for_another_citys_firm(ledger: Ledger) -> None:
    with pytest.raises(OutOfScopeError):
        ledger.record_payment(
            f"{B}/first_entry/2021", "S1", 1, date(2022, 3, 1), actor="大同", city="140200"
        )
    ledger.record_payment(
        f"{B}/first_entry/2021", "S1", 1, date(2022, 3, 1), actor="太原", city="140100"
    )


def test_a_correction_revokes_and_the_money_comes_back_on_the_same_path(ledger: Ledger) -> None:
    award = f"{B}/first_entry/2021"
    ledger.record_payment(award, "GK1", FE, date(2022, 3, 1), actor="财政")
    with pytest.raises(InvalidInputError) as no_reason:
        ledger.import_register(2021, RowsRegister([firm(A)], 2021), actor="t", correction=True)
    assert no_reason.value.field == "reason"
    c = ledger.import_register(
        2021, RowsRegister([firm(A)], 2021), actor="统计局", correction=True, reason="复核"
    )
    assert isinstance(c, CorrectionResult)
    assert [(x.entitlement_id, x.recover_fen) for x in c.recovery_due] == [(award, FE)]
    with pytest.raises(PreconditionError, match="revoked"):
        ledger.record_payment(award, "GK2", 1, date(2022, 3, 1), actor="财政")
    back = ledger.record_recovery(award, "ZH1", FE - 1, date(2026, 5, 1), actor="财政")
    assert (back.total_fen, back.limit_fen) == (FE - 1, FE)
    with pytest.raises(PreconditionError, match="over-recovery"):
        ledger.record_recovery(award, "ZH2", 2, date(2026, 5, 1), actor="财政")


def test_a_plain_import_takes_no_reason_and_bad_rows_write_nothing(ledger: Ledger) -> None:
    head = ledger.recorder.max_notification_id()
    with pytest.raises(InvalidInputError) as reason:
        ledger.import_register(2022, RowsRegister([firm(B)], 2022), actor="t", reason="why")
    assert reason.value.field == "reason"
    with pytest.raises(ImportRejectedError) as rejected:
        ledger.import_register(2022, RowsRegister([firm(B), ["x"] * 7], 2022), actor="t")
    assert rejected.value.lines()[0].startswith("row:2: uscc:")
    assert ledger.recorder.max_notification_id() == head


def test_queries_need_a_store_with_views(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError, match="without views"):
        ledger.awards()
