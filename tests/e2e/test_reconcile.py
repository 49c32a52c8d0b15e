"""The nightly reconciliation, end to end through the CLI, on both stores.

A clean ledger, worked by hand from the policy (晋办发〔2020〕38号 (四)/(五); DOMAIN.md's reading:
retention years counted after the entry year, paid the fiscal year after the decision):

    baseline 2020: A (an old firm: no awards)
    B, E enter 2021, on 2022-2024 -> first_entry/2021 (FY2022), retention_2y/2023 (FY2024),
                                     retention_3y/2024 (FY2025)
    D enters 2022, on 2023-2024    -> first_entry/2022 (FY2023), retention_2y/2024 (FY2025)
    K enters 2023, on 2024         -> first_entry/2023 (FY2024)
    J enters 2024                  -> first_entry/2024 (FY2025)

Every award is paid in full in its fiscal year, B's first-entry award in two instalments, and the
treasury file lists exactly those payments: a reconciliation finds nothing. Each test below
plants one problem in that ledger (or in its treasury file) and expects exactly one finding, of
its kind, about its subject.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.browser import assert_bars_painted, chromium_binary, run_chromium
from support.helpers import ROOT, Cli, Firm, ref_uscc, write_register
from support.helpers import correct as correct_year
from support.helpers import pay as pay_award

from adapters.bootstrap import open_ledger, open_store, today_in_shanghai
from domain.enterprise import PaymentRef, payment_ref_id

A, B, D, E, J, K = (ref_uscc(n) for n in (501, 502, 504, 505, 506, 507))
NAMES = {
    A: "太原老厂",
    B: "山西乙制造",
    D: "山西丁制造",
    E: "山西戊制造",
    J: "山西己制造",
    K: "山西庚制造",
}
FE, R2, R3 = 30_000_000, 5_000_000, 10_000_000  # fen: 300,000 / 50,000 / 100,000 yuan

REGISTERS = {
    2020: [A],
    2021: [A, B, E],
    2022: [A, B, D, E],
    2023: [A, B, D, E, K],
    2024: [A, B, D, E, K, J],
}


@dataclass(frozen=True)
class Paid:
    ref: str
    entitlement_id: str
    uscc: str
    amount_fen: int
    paid_on: str


PAYMENTS = [
    Paid("GK2022-0001", f"{B}/first_entry/2021", B, 10_000_000, "2022-03-15"),
    Paid("GK2022-0002", f"{B}/first_entry/2021", B, 20_000_000, "2022-06-15"),
    Paid("GK2022-0003", f"{E}/first_entry/2021", E, FE, "2022-04-01"),
    Paid("GK2023-0001", f"{D}/first_entry/2022", D, FE, "2023-04-01"),
    Paid("GK2024-0001", f"{B}/retention_2y/2023", B, R2, "2024-05-10"),
    Paid("GK2024-0002", f"{E}/retention_2y/2023", E, R2, "2024-05-10"),
    Paid("GK2024-0003", f"{K}/first_entry/2023", K, FE, "2024-05-20"),
    Paid("GK2025-0001", f"{B}/retention_3y/2024", B, R3, "2025-05-10"),
    Paid("GK2025-0002", f"{E}/retention_3y/2024", E, R3, "2025-05-10"),
    Paid("GK2025-0003", f"{D}/retention_2y/2024", D, R2, "2025-05-10"),
    Paid("GK2025-0004", f"{J}/first_entry/2024", J, FE, "2025-06-01"),
]
ENTITLED_BY_FY = {2022: 2 * FE, 2023: FE, 2024: 2 * R2 + FE, 2025: 2 * R3 + R2 + FE}

TREASURY_HEADER = "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose"


def treasury_line(p: Paid) -> str:
    return (
        f"{p.ref},{p.uscc},{NAMES[p.uscc]},{p.amount_fen // 100}.{p.amount_fen % 100:02d},"
        f"{p.paid_on},小升规奖励 {p.entitlement_id}"
    )


def write_treasury(path: Path, payments: list[Paid], extra: tuple[str, ...] = ()) -> Path:
    lines = [TREASURY_HEADER, *(treasury_line(p) for p in payments), *extra]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pay(cli: Cli, p: Paid) -> None:
    pay_award(cli, p.entitlement_id, p.ref, p.amount_fen, p.paid_on)


def build(cli: Cli, folder: Path, payments: list[Paid] = PAYMENTS) -> None:
    for year, firms in REGISTERS.items():
        path = write_register(
            folder / f"register-{year}.csv", [Firm(u, name=NAMES[u]) for u in firms]
        )
        result = cli.import_year(path, year, baseline=year == 2020)
        assert result.code == 0, result.err
    for p in payments:
        pay(cli, p)


@dataclass
class Run:
    code: int
    err: str
    summary: dict[str, Any] | None
    report: dict[str, Any] | None

    def findings(self, code: str | None = None) -> list[dict[str, Any]]:
        assert self.report is not None, self.err
        return [f for f in self.report["findings"] if code is None or f["code"] == code]

    def only(self, code: str) -> dict[str, Any]:
        """The one finding of the run, which must be of this code."""
        assert self.code == 1, self.err
        found = self.findings()
        assert [f["code"] for f in found] == [code], json.dumps(found, ensure_ascii=False)[:3000]
        return found[0]


class Reconciler:
    def __init__(self, cli: Cli, folder: Path):
        self.cli = cli
        self.folder = folder
        self.out = folder / "reports"

    def run(self, treasury: Path, *args: str, day: date | None = None) -> Run:
        day = day or today_in_shanghai()
        result = self.cli.run(
            "reconcile",
            "--treasury",
            str(treasury),
            "--date",
            day.isoformat(),
            "--out",
            str(self.out),
            "--json",
            *args,
        )
        summary = json.loads(result.out) if result.out.strip() else None
        report = None
        if summary is not None:
            report = json.loads(Path(summary["report"]).read_text(encoding="utf-8"))
        return Run(result.code, result.err, summary, report)


@pytest.fixture
def ledger(db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Reconciler:
    cli = Cli(db_url, capsys)
    build(cli, tmp_path)
    return Reconciler(cli, tmp_path)


def test_a_clean_ledger_reconciles_clean_with_the_totals_worked_by_hand(
    ledger: Reconciler, tmp_path: Path
) -> None:
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", PAYMENTS))
    assert run.code == 0, run.err
    assert run.findings() == []
    report = run.report
    assert report is not None
    # instalments are two vouchers of one award, not duplicates
    assert report["matching"]["matched"] == len(PAYMENTS) == report["matching"]["refs"]
    assert report["outcome"] == {"exit_status": 0, "findings": 0, "by_code": {}}
    by_fy = {r["fiscal_year"]: r for r in report["totals"]["by_fiscal_year"]}
    assert {fy: r["entitled_fen"] for fy, r in by_fy.items()} == ENTITLED_BY_FY
    assert all(r["paid_fen"] == r["entitled_fen"] for r in by_fy.values())
    assert all(r["outstanding_fen"] == 0 == r["to_recover_fen"] for r in by_fy.values())
    assert report["totals"]["all"]["entitled_fen"] == sum(ENTITLED_BY_FY.values()) == 185_000_000
    assert [(c["city_code"], c["city_name"]) for c in report["totals"]["by_city"]] == [
        ("140100", "太原市")
    ]
    assert report["integrity"]["chain"]["intact"] is True
    assert report["integrity"]["projections"]["drifted"] == 0
    assert report["integrity"]["projections"]["rows"] > 0
    folder = ledger.out / report["date"]
    assert (
        (folder / "report.html").read_text(encoding="utf-8").lower().startswith("<!doctype html>")
    )
    anchors = (ledger.out / "anchors.txt").read_text().splitlines()
    assert anchors == [f"{report['log']['anchor']} {report['date']} {run.summary['report_sha256']}"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("plant", "code", "subject"),
    [
        ("duplicate", "duplicate_in_treasury", "GK2024-0003"),
        ("extra", "missing_in_ledger", "GK2025-9999"),
        ("dropped", "missing_in_treasury", "GK2024-0003"),
        ("payee", "payee_mismatch", "GK2024-0003"),
        ("amount", "amount_mismatch", "GK2024-0003"),
        ("day", "paid_on_mismatch", "GK2024-0003"),
    ],
)
def test_each_treasury_discrepancy_is_found_once_and_nothing_else(
    ledger: Reconciler, tmp_path: Path, plant: str, code: str, subject: str
) -> None:
    rows = list(PAYMENTS)
    i = next(n for n, p in enumerate(rows) if p.ref == "GK2024-0003")
    extra: tuple[str, ...] = ()
    if plant == "duplicate":
        extra = (treasury_line(rows[i]),)
    elif plant == "extra":
        extra = (
            f"GK2025-9999,{B},{NAMES[B]},300000.00,2025-07-01,首次小升规 {B}/first_entry/2021",
        )
    elif plant == "dropped":
        del rows[i]
    elif plant == "payee":
        rows[i] = replace(rows[i], uscc=A)
    elif plant == "amount":
        rows[i] = replace(rows[i], amount_fen=rows[i].amount_fen + 1)
    elif plant == "day":
        rows[i] = replace(rows[i], paid_on="2024-05-21")
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", rows, extra))
    finding = run.only(code)
    assert finding["subject"] == subject
    assert finding["category"] == "treasury"
    matching = run.report["matching"]  # type: ignore[index]
    assert matching[code] == 1
    assert sum(matching[c] for c in matching if c != "refs") == matching["refs"]
    if plant == "amount":
        assert finding["amount_fen"] == 1
        assert finding["evidence"]["treasury"][0]["amount_fen"] == FE + 1
        assert finding["evidence"]["ledger"]["amount_fen"] == FE
    if plant == "extra":
        assert finding["evidence"]["purpose_entitlements"] == [
            {"entitlement_id": f"{B}/first_entry/2021", "known_to_ledger": True}
        ]
    if plant == "payee":
        assert finding["uscc"] == K and finding["evidence"]["treasury"][0]["payee_uscc"] == A


def test_a_payment_above_its_entitlement_is_found(ledger: Reconciler, tmp_path: Path) -> None:
    # The ledger refuses an overpayment; one written past it (an older version, a bug, a hand
    # edit through the application) must still be caught.
    with open_ledger(ledger.cli.db_url, create=True) as app:
        eid = f"{B}/retention_2y/2023"
        firm, _entitlement = app.get_entitlement(eid)
        firm.record_payment(eid, "GK2024-0099", 1, date(2024, 6, 1), "legacy")
        ref = PaymentRef._create(
            PaymentRef.Claimed,
            id=payment_ref_id("GK2024-0099"),
            ref="GK2024-0099",
            uscc=B,
            entitlement_id=eid,
            amount_fen=1,
            paid_on=date(2024, 6, 1),
            actor="legacy",
        )
        app.save(firm, ref)
    extra = Paid("GK2024-0099", eid, B, 1, "2024-06-01")
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", [*PAYMENTS, extra]))
    finding = run.only("paid_above_entitlement")
    assert finding["subject"] == eid and finding["amount_fen"] == 1
    assert [p["ref"] for p in finding["evidence"]["payments"]] == ["GK2024-0001", "GK2024-0099"]


def test_a_payment_dated_before_the_register_year_it_rewards_is_found(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    early = [replace(p, paid_on="2023-12-20") if p.ref == "GK2025-0004" else p for p in PAYMENTS]
    cli = Cli(db_url, capsys)
    build(cli, tmp_path, early)
    run = Reconciler(cli, tmp_path).run(write_treasury(tmp_path / "treasury.csv", early))
    finding = run.only("paid_before_register_year")
    assert finding["subject"] == "GK2025-0004"
    assert finding["entitlement_id"] == f"{J}/first_entry/2024"


def test_an_award_unpaid_after_its_fiscal_year_and_the_grace_is_overdue(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    unpaid = [p for p in PAYMENTS if p.ref != "GK2025-0003"]  # D's retention_2y/2024, FY2025
    cli = Cli(db_url, capsys)
    build(cli, tmp_path, unpaid)
    reconciler = Reconciler(cli, tmp_path)
    treasury = write_treasury(tmp_path / "treasury.csv", unpaid)
    finding = reconciler.run(treasury).only("award_overdue")
    assert finding["subject"] == f"{D}/retention_2y/2024" and finding["amount_fen"] == R2
    # Within the grace (2025-12-31 + 90 days = 2026-03-31) it is not overdue yet.
    assert reconciler.run(treasury, day=date(2026, 3, 31)).code == 0
    assert reconciler.run(treasury, day=date(2026, 4, 1)).only("award_overdue")
    many = reconciler.run(treasury, "--overdue-grace-days", "100000")
    assert many.code == 0, many.findings()


def correct(cli: Cli, folder: Path, year: int, firms: list[str]) -> None:
    path = write_register(
        folder / f"register-{year}-fixed.csv", [Firm(u, name=NAMES[u]) for u in firms]
    )
    result = correct_year(cli, path, year)
    assert result.code == 0, result.err


def test_money_to_recover_after_the_grace_is_found_and_not_before(
    ledger: Reconciler, tmp_path: Path
) -> None:
    # The bureau re-issues 2024 without J: J's first-entry award, paid in full, is revoked.
    correct(ledger.cli, tmp_path, 2024, [A, B, D, E, K])
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    assert ledger.run(treasury).code == 0  # within the default 90 days' grace
    finding = ledger.run(treasury, "--recovery-grace-days", "0").only("recovery_overdue")
    assert finding["subject"] == f"{J}/first_entry/2024" and finding["amount_fen"] == FE
    assert finding["evidence"]["award"]["revoked_on"] == today_in_shanghai().isoformat()
    by_fy = {r["fiscal_year"]: r for r in ledger.run(treasury).report["totals"]["by_fiscal_year"]}  # type: ignore[index]
    assert by_fy[2025]["to_recover_fen"] == FE
    back = ledger.cli.run(
        "record-recovery",
        f"{J}/first_entry/2024",
        "--ref",
        "ZH2026-0001",
        "--amount-fen",
        str(FE),
        "--received-on",
        today_in_shanghai().isoformat(),
    )
    assert back.code == 0, back.err
    assert ledger.run(treasury, "--recovery-grace-days", "0").code == 0


def test_a_firm_holding_two_first_entry_awards_is_found(ledger: Reconciler, tmp_path: Path) -> None:
    # The bureau re-issues 2023 without K: K now enters in 2024, its 2023 award (paid) is revoked
    # and the 2024 one is owed; finance pays it before the 2023 money is back.
    correct(ledger.cli, tmp_path, 2023, [A, B, D, E])
    again = Paid("GK2025-0005", f"{K}/first_entry/2024", K, FE, "2025-06-01")
    pay(ledger.cli, again)
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", [*PAYMENTS, again]))
    finding = run.only("first_entry_paid_twice")
    assert finding["subject"] == K and finding["amount_fen"] == 2 * FE
    assert [a["entitlement_id"] for a in finding["evidence"]["awards"]] == [
        f"{K}/first_entry/2023",
        f"{K}/first_entry/2024",
    ]


def sql(url: str, statement: str) -> None:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]


def test_a_broken_hash_chain_is_found(ledger: Reconciler, tmp_path: Path) -> None:
    sql(
        ledger.cli.db_url,
        "UPDATE ledger_chain SET link = (SELECT link FROM ledger_chain WHERE position = 3) "
        "WHERE position = 7",
    )
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", PAYMENTS))
    finding = run.only("chain_broken")
    assert finding["subject"] == "position 7"
    assert run.report["integrity"]["chain"]["intact"] is False  # type: ignore[index]


def test_a_stored_event_changed_to_another_type_or_unreadable_is_a_finding_and_no_anchor(
    ledger: Reconciler, tmp_path: Path
) -> None:
    # The README's tampering example on SQLite: replace() turns the state BLOB into TEXT. On
    # PostgreSQL the column stays bytea: bytes that are no JSON at all.
    url = ledger.cli.db_url
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    kept = ledger.run(treasury, day=today_in_shanghai() - timedelta(days=1))
    assert kept.code == 0 and kept.summary and kept.summary["anchor"]
    if url.startswith("sqlite:///"):
        sql(
            url,
            "UPDATE stored_events SET state = replace(state, '\"actor\"', '\"actor \"') WHERE rowid = 9",
        )
    else:
        sql(url, "UPDATE ledger_events SET state = '\\x00ff'::bytea WHERE notification_id = 9")
    anchors = (ledger.out / "anchors.txt").read_text("ascii")
    run = ledger.run(treasury)  # the nightly job must not crash on it
    assert run.code == 1, run.err
    codes = {f["code"] for f in run.report["findings"] if f["category"] == "integrity"}  # type: ignore[index]
    assert {"chain_broken", "unreadable_event"} <= codes
    assert run.report["log"]["anchor"] is None  # type: ignore[index]
    assert run.summary is not None and run.summary["anchor"] is None
    assert (ledger.out / "anchors.txt").read_text("ascii") == anchors  # nothing kept from it
    unreadable = run.report["integrity"]["projections"]["unreadable"]  # type: ignore[index]
    assert unreadable[0] == 9 and unreadable == sorted(unreadable)  # the firm's later events too


def test_a_view_changed_behind_the_log_is_drift(ledger: Reconciler, tmp_path: Path) -> None:
    sql(
        ledger.cli.db_url,
        f"UPDATE lv_windows SET fee_cap_bp = 200 WHERE uscc = '{B}' AND window_kind = 'guarantee'",
    )
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", PAYMENTS))
    finding = run.only("projection_drift")
    assert finding["subject"] == "lv_windows"
    assert finding["evidence"]["differing"] == 1
    example = finding["evidence"]["examples"][0]
    assert example["key"][0] == B and example["view"][6] == 200 and example["derived"][6] == 100


def test_a_re_run_reproduces_the_report_byte_for_byte(ledger: Reconciler, tmp_path: Path) -> None:
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS[:-1])  # one finding
    first = ledger.run(treasury)
    folder = ledger.out / first.report["date"]  # type: ignore[index]
    before = {n: (folder / n).read_bytes() for n in ("report.json", "report.html")}
    second = ledger.run(treasury)
    assert second.code == first.code == 1
    assert {n: (folder / n).read_bytes() for n in before} == before
    assert second.summary["run_position"] > first.summary["run_position"]  # type: ignore[index]
    lines = (ledger.out / "anchors.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    trail = ledger.cli.ok_json("audit-trail", B)  # the runs are recorded, but not on a firm
    assert all(e["type"] != "RunRecorded" for e in trail)


def test_runs_are_recorded_in_the_log(ledger: Reconciler, tmp_path: Path) -> None:
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    clean = ledger.run(treasury)
    short = ledger.run(write_treasury(tmp_path / "short.csv", PAYMENTS[:-1]))
    runs = ledger.cli.ok_json("reconciliations")
    assert [r["exit_status"] for r in runs] == [0, 1]
    assert [r["report_sha256"] for r in runs] == [
        clean.summary["report_sha256"],  # type: ignore[index]
        short.summary["report_sha256"],  # type: ignore[index]
    ]
    first = runs[0]
    assert first["date"] == today_in_shanghai().isoformat()
    assert first["log_position"] == clean.report["log"]["position"]  # type: ignore[index]
    assert first["anchor"] == clean.report["log"]["anchor"]  # type: ignore[index]
    assert first["position"] == clean.summary["run_position"]  # type: ignore[index]
    assert first["treasury_rows"] == len(PAYMENTS) and first["findings"] == 0
    assert first["counts"]["matched"] == len(PAYMENTS)
    assert runs[1]["counts"]["missing_in_treasury"] == 1
    assert runs[1]["treasury_sha256"] != first["treasury_sha256"]
    # The second run reports at the same position: the first run's record is not a fact of it.
    assert runs[1]["log_position"] == first["log_position"] < first["position"]


def test_the_next_night_verifies_the_chain_from_the_last_night_s_anchor(
    ledger: Reconciler, tmp_path: Path
) -> None:
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    today = today_in_shanghai()
    first = ledger.run(treasury, day=date.fromordinal(today.toordinal() - 1))
    second = ledger.run(treasury, day=today)
    chain = second.report["integrity"]["chain"]  # type: ignore[index]
    assert chain["verified_from"] == first.report["log"]["anchor"]  # type: ignore[index]
    assert chain["intact"] and chain["events"] == 0  # nothing but a run's record since
    # A kept anchor that the log no longer has is a finding.
    anchors = ledger.out / "anchors.txt"
    line = anchors.read_text().splitlines()[0]
    position = line.split(":")[0]
    anchors.write_text(f"{position}:{'ab' * 32} {line.split()[1]} x\n")
    found = ledger.run(treasury, day=today).only("chain_broken")
    assert found["evidence"]["problem"] == "anchor_mismatch"


def test_a_malformed_treasury_file_is_refused_whole_and_nothing_is_written(
    ledger: Reconciler, tmp_path: Path
) -> None:
    bad = write_treasury(
        tmp_path / "treasury.csv",
        PAYMENTS,
        (
            f"GK-X1,{B},{NAMES[B]},300000.0,2025-07-01,",  # one decimal
            f"GK-X2,{B},{NAMES[B]},3e5,2025-07-01,",  # not yuan with two decimals
            f"GK-X3,{B[:-1]}0,{NAMES[B]},1.00,2025-07-01,",  # bad check character
        ),
    )
    with open_ledger(ledger.cli.db_url, create=True) as app:
        head = app.recorder.max_notification_id()
    run = ledger.run(bad)
    assert run.code == 2 and run.summary is None
    n = len(PAYMENTS) + 2
    for line in (n, n + 1, n + 2):
        assert f"treasury.csv:{line}:" in run.err
    assert not ledger.out.exists()
    with open_ledger(ledger.cli.db_url, create=True) as app:
        assert app.recorder.max_notification_id() == head


def test_a_date_in_the_future_is_refused(ledger: Reconciler, tmp_path: Path) -> None:
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    run = ledger.run(treasury, day=date.fromordinal(today_in_shanghai().toordinal() + 2))
    assert run.code == 2 and "after today" in run.err
    assert not ledger.out.exists()


def test_a_run_while_another_holds_the_lock_exits_3_and_does_nothing(
    ledger: Reconciler, tmp_path: Path
) -> None:
    from adapters.reconciliation.job import run_lock

    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    app, settings = open_store(ledger.cli.db_url, create=True)
    with app, run_lock(app, settings):
        run = ledger.run(treasury)
    assert run.code == 3 and "another reconciliation" in run.err
    assert not ledger.out.exists()
    assert ledger.run(treasury).code == 0  # the lock is released with the run that held it


@pytest.mark.slow
def test_two_runs_at_once_one_proceeds(ledger: Reconciler, tmp_path: Path) -> None:
    import subprocess
    import sys

    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    start = threading.Barrier(2)
    results: list[subprocess.CompletedProcess[str]] = []

    def one() -> None:
        start.wait()
        results.append(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "adapters.main",
                    "reconcile",
                    "--db",
                    ledger.cli.db_url,
                    "--treasury",
                    str(treasury),
                    "--date",
                    today_in_shanghai().isoformat(),
                    "--out",
                    str(ledger.out),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        )

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results)
    assert codes in ([0, 0], [0, 3]), [(r.returncode, r.stderr) for r in results]
    if codes == [0, 3]:
        assert "another reconciliation" in next(r.stderr for r in results if r.returncode == 3)
    lines = (ledger.out / "anchors.txt").read_text().splitlines()
    assert len(lines) == codes.count(0)


@pytest.mark.slow
def test_a_real_report_renders_its_chart_and_findings_in_chromium(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    binary = chromium_binary()
    cli = Cli(sqlite_url, capsys)
    build(cli, tmp_path, [p for p in PAYMENTS if p.ref != "GK2025-0003"])  # one award overdue
    run = Reconciler(cli, tmp_path).run(
        write_treasury(tmp_path / "treasury.csv", PAYMENTS[:-1], (treasury_line(PAYMENTS[0]),))
    )
    assert run.code == 1 and run.report is not None
    page = Path(run.summary["html"])  # type: ignore[index]
    shot = ROOT / "test-artifacts" / "reconcile-run-report.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", page.as_uri())
    print(f"screenshot of a real reconciliation report: {shot}")
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert '<svg id="chart-fiscal-year" class="chart"' in dom
    assert dom.count('<rect class="bar bar-entitled"') == len(
        run.report["totals"]["by_fiscal_year"]
    ) + len(run.report["totals"]["by_city"])
    assert dom.count('<tr class="finding"') == len(run.findings()) == 4
    for finding in run.findings():
        assert finding["subject"] in dom
    # entitled and paid: every year and city has both
    assert_bars_painted(shot, page.read_text(encoding="utf-8"), ["entitled", "paid"])


def test_a_treasury_file_changed_during_the_run_is_refused_and_nothing_is_written(
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import adapters.reconciliation.job

    cli = Cli(sqlite_url, capsys)
    build(cli, tmp_path)
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    real = adapters.reconciliation.job.derive

    def derive_while_the_export_grows(*args: Any) -> Any:
        write_treasury(treasury, PAYMENTS, (treasury_line(PAYMENTS[0]),))
        return real(*args)

    monkeypatch.setattr(adapters.reconciliation.job, "derive", derive_while_the_export_grows)
    reconciler = Reconciler(cli, tmp_path)
    run = reconciler.run(treasury)
    assert run.code == 2 and "changed during the run" in run.err
    assert not reconciler.out.exists()


def test_a_gb18030_treasury_file_reconciles_with_its_encoding_named(
    ledger: Reconciler, tmp_path: Path
) -> None:
    text = "\n".join([TREASURY_HEADER, *(treasury_line(p) for p in PAYMENTS)]) + "\n"
    treasury = tmp_path / "treasury-gbk.csv"
    treasury.write_bytes(text.encode("gb18030"))
    assert ledger.run(treasury).code == 2  # read as UTF-8 the Chinese names are not valid
    run = ledger.run(treasury, "--encoding", "gb18030")
    assert run.code == 0, run.err
    assert run.report["inputs"]["treasury"]["encoding"] == "gb18030"  # type: ignore[index]


def test_a_deleted_link_at_the_position_is_found_and_no_anchor_is_kept(
    ledger: Reconciler, tmp_path: Path
) -> None:
    sql(
        ledger.cli.db_url,
        "DELETE FROM ledger_chain WHERE position = (SELECT max(position) FROM ledger_chain)",
    )
    run = ledger.run(write_treasury(tmp_path / "treasury.csv", PAYMENTS))
    finding = run.only("chain_broken")
    assert finding["evidence"]["problem"] == "unlinked"
    assert run.report["log"]["anchor"] is None  # type: ignore[index]
    assert not (ledger.out / "anchors.txt").exists()


def test_drift_in_many_rows_quotes_the_same_examples_on_a_re_run(
    ledger: Reconciler, tmp_path: Path
) -> None:
    sql(ledger.cli.db_url, "UPDATE lv_register SET name = name || '（改）'")
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    first = ledger.run(treasury)
    finding = first.only("projection_drift")
    rows = sum(len(firms) for firms in REGISTERS.values())
    assert finding["subject"] == "lv_register" and finding["evidence"]["differing"] == rows
    keys = [e["key"] for e in finding["evidence"]["examples"]]
    assert len(keys) == 10 and keys == sorted(keys, key=repr)
    report = ledger.out / first.report["date"] / "report.json"  # type: ignore[index]
    before = report.read_bytes()
    assert ledger.run(treasury).code == 1
    assert report.read_bytes() == before


def test_a_payment_on_a_day_a_hold_learnt_later_was_in_force_is_found(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli = Cli(db_url, capsys)
    build(cli, tmp_path, PAYMENTS)
    reconciler = Reconciler(cli, tmp_path)
    treasury = write_treasury(tmp_path / "treasury.csv", PAYMENTS)
    # The work-safety list published late: D on it from 2025-05-01, so its payment of
    # 2025-05-10 (GK2025-0003) was made while the hold stood; lifted from 2025-05-10 it was not.
    place = ["hold", "place", D, "--reason", "work_safety", "--authority", "山西省应急管理厅"]
    assert cli.run(*place, "--document", "晋应急〔2025〕9号", "--from", "2025-05-01").code == 0
    finding = reconciler.run(treasury).only("paid_while_on_hold")
    assert finding["subject"] == "GK2025-0003" and finding["amount_fen"] == R2
    assert finding["evidence"]["holds"][0]["document"] == "晋应急〔2025〕9号"
    lift = ["--on", "2025-05-10", "--reason", "列入名单有误，撤销"]
    assert cli.run("hold", "lift", D, "--document", "晋应急〔2025〕9号", *lift).code == 0
    assert reconciler.run(treasury).code == 0


def test_the_money_path_findings_each_planted_once(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Fiscal 2024 has K's first-entry award unpaid, fiscal 2025 J's paid directly and B's, D's
    and E's unpaid. Planted: K paid while the notice of its batch ran (paid_before_notice_ended);
    the release workflow switched on from 2025 after J was paid (paid_without_release); fiscal
    2025's fund cut below what its approved batch commits (appropriation_exceeded)."""
    k_paid = Paid("GK2026-0001", f"{K}/first_entry/2023", K, FE, "2026-10-09")
    unpaid = {"GK2024-0003", "GK2025-0001", "GK2025-0002", "GK2025-0003"}
    payments = [p for p in PAYMENTS if p.ref not in unpaid]
    cli = Cli(db_url, capsys)
    build(cli, tmp_path, payments)
    reconciler = Reconciler(cli, tmp_path)
    quiet = ("--overdue-grace-days", "100000")  # B's, D's and E's 2025 awards are not yet paid

    def ok(*args: str) -> Any:
        return cli.ok_json(*args)

    for fy, fund, fen in ((2024, "F24", FE), (2025, "F25", 2 * R3 + R2)):
        ok(
            "budget",
            "set",
            "--fiscal-year",
            str(fy),
            "--fund",
            fund,
            "--amount-fen",
            str(fen),
            "--document",
            f"晋财预〔{fy}〕1号",
        )
    k_batch = ok("batch", "propose", "--fiscal-year", "2024", "--actor", "maker")["batch_id"]
    ok("batch", "approve", k_batch, "--actor", "checker")
    notices = str(tmp_path / "notices")
    ok("batch", "publish", k_batch, "--from", "2026-09-30", "--out", notices)
    batch25 = ok("batch", "propose", "--fiscal-year", "2025", "--actor", "maker")
    assert batch25["total_fen"] == 2 * R3 + R2  # J's award is paid: not in it
    ok("batch", "approve", batch25["batch_id"], "--actor", "checker")
    clean = reconciler.run(write_treasury(tmp_path / "before.csv", payments), *quiet)
    assert clean.code == 0, clean.findings()

    pay(cli, k_paid)  # fiscal 2024 is not under the workflow: accepted, while the notice ran
    treasury = write_treasury(tmp_path / "treasury.csv", [*payments, k_paid])

    ok("workflow", "require-release", "--from-fiscal-year", "2025")
    cut = ok(
        "budget",
        "adjust",
        "--fiscal-year",
        "2025",
        "--fund",
        "F25",
        "--amount-fen",
        str(-R2),
        "--document",
        "晋财预〔2025〕30号",
    )
    assert "appropriation_exceeded" in cut["message"]
    run = reconciler.run(treasury, *quiet)
    found = {f["code"]: f for f in run.findings()}
    assert sorted(found) == [
        "appropriation_exceeded",
        "paid_before_notice_ended",
        "paid_without_release",
    ], run.findings()
    assert len(run.findings()) == 3
    assert found["paid_before_notice_ended"]["subject"] == "GK2026-0001"
    assert found["paid_before_notice_ended"]["evidence"]["notice_to"] == "2026-10-12"
    assert found["paid_without_release"]["subject"] == "GK2025-0004"
    assert found["paid_without_release"]["evidence"]["release"] is None
    exceeded = found["appropriation_exceeded"]
    assert (exceeded["subject"], exceeded["amount_fen"]) == ("2025/F25", R2)
