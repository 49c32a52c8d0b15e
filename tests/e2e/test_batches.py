"""A fiscal year through the payment workflow, on both stores, worked by hand:

    registers 2023-2025: BASE on each; A, B and C first enter in 2025 -> each a first-entry
    award of 300,000 yuan (38号 (四)), due in fiscal year 2026.

- the fund FUND-2026 is appropriated 600,000 yuan; the ledger requires release from fiscal 2026,
  so a payment against A's award before any batch is refused;
- the batch B2026-140000-01 (3 awards, 900,000 yuan) is proposed by `maker`; `maker` cannot
  approve it (maker-checker); `checker`'s approval exceeds the appropriation by 300,000 yuan and
  is refused; after an adjustment of +300,000 yuan it is approved;
- published from Wednesday 2026-09-30 for 5 working days by the State Council's calendar for 2026
  (国办发明电〔2025〕7号: 10-01 to 10-07 off for National Day and Mid-Autumn, Saturday 10-10
  worked): 09-30 (1), 10-08 (2), 10-09 (3), 10-10 (4), 10-12 (5), so the notice ends on Monday
  2026-10-12 and release is allowed from 2026-10-13;
- an objection to B received on Saturday 2026-10-10 takes B's award out and holds B; one received
  on 2026-10-13 is refused; release on 10-12 is refused, on 10-13 it releases A's and C's awards;
- the orders list A and C at 300000.00 yuan with the entitlement and batch in the purpose; A is
  paid on 10-13 (10-12 refused: before the release), B is refused (held, not released);
- the budget: appropriated 900,000, committed 600,000 (the objection took 300,000 out),
  released 600,000, paid 300,000, remaining 300,000 yuan.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

import adapters.bootstrap

BASE, A, B, C = (ref_uscc(n) for n in (1, 401, 402, 403))
FUND = "FUND-2026"
BATCH = "B2026-140000-01"
YUAN = 100


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def on(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    """Today, in Asia/Shanghai, for the commands that follow."""
    monkeypatch.setattr(adapters.bootstrap, "today_in_shanghai", lambda: date.fromisoformat(day))


def award(uscc: str) -> str:
    return f"{uscc}/first_entry/2025"


def pay(cli: Cli, uscc: str, ref: str, day: str) -> object:
    return cli.run(
        "record-payment",
        award(uscc),
        "--ref",
        ref,
        "--amount-fen",
        str(300_000 * YUAN),
        "--paid-on",
        day,
    )


def test_a_fiscal_year_through_review_notice_objection_release_and_orders(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on(monkeypatch, "2026-09-01")
    for year, firms in ((2023, [BASE]), (2024, [BASE]), (2025, [BASE, A, B, C])):
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        assert cli.import_year(path, year, baseline=year == 2023).code == 0
    budget = [
        "budget",
        "set",
        "--fiscal-year",
        "2026",
        "--fund",
        FUND,
        "--document",
        "晋财预〔2026〕1号",
    ]
    assert cli.run(*budget, "--amount-fen", str(600_000 * YUAN)).code == 0
    assert cli.ok_json(*budget, "--amount-fen", str(600_000 * YUAN))["replay"] is True
    switched = cli.ok_json("workflow", "require-release", "--from-fiscal-year", "2026")
    assert switched["replay"] is False
    refused = pay(cli, A, "GK-0", "2026-09-01")
    assert refused.code == 2 and "no released batch" in refused.err  # type: ignore[attr-defined]

    proposed = cli.ok_json("batch", "propose", "--fiscal-year", "2026", "--actor", "maker")
    assert (proposed["batch_id"], proposed["awards_count"], proposed["total_fen"]) == (
        BATCH,
        3,
        900_000 * YUAN,
    )
    assert {a["entitlement_id"] for a in proposed["awards"]} == {award(A), award(B), award(C)}
    again = cli.run("batch", "propose", "--fiscal-year", "2026", "--actor", "maker")
    assert again.code == 2 and "in a batch already" in again.err

    same = cli.run("batch", "approve", BATCH, "--actor", "maker")
    assert same.code == 2 and "maker-checker" in same.err
    over = cli.run("batch", "approve", BATCH, "--actor", "checker")
    assert over.code == 2 and "by 300,000.00 yuan" in over.err
    adjust = ["budget", "adjust", "--fiscal-year", "2026", "--fund", FUND]
    assert (
        cli.run(*adjust, "--amount-fen", "+30000000", "--document", "晋财预〔2026〕9号").code == 0
    )
    approved = cli.ok_json("batch", "approve", BATCH, "--actor", "checker")
    assert (approved["status"], approved["approved_by"]) == ("approved", "checker")

    notices = tmp_path / "notices"
    published = cli.ok_json(
        "batch", "publish", BATCH, "--from", "2026-09-30", "--out", str(notices), "--actor", "maker"
    )
    assert (published["notice_from"], published["notice_to"]) == ("2026-09-30", "2026-10-12")
    lines = list(csv.DictReader((notices / f"{BATCH}.csv").open(encoding="utf-8")))
    assert [r["uscc"] for r in lines] == sorted([A, B, C])
    assert {r["amount_yuan"] for r in lines} == {"300000.00"}
    assert lines[0]["notice_period"] == "2026-09-30 至 2026-10-12"
    page = (notices / f"{BATCH}.html").read_text("utf-8")
    assert "2026-09-30 至 2026-10-12" in page and A in page
    seven = cli.run("batch", "publish", BATCH, "--from", "2026-09-30", "--working-days", "7")
    assert seven.code == 2  # published already, with another period

    on(monkeypatch, "2026-10-10")
    objection = ["batch", "object", BATCH, B, "--reason", "实名举报: 统计数据存疑"]
    heard = cli.ok_json(*objection, "--received-on", "2026-10-10")
    assert heard["awards_count"] == 2 and heard["total_fen"] == 600_000 * YUAN
    assert cli.ok_json(*objection, "--received-on", "2026-10-10")["replay"] is True
    held = cli.awards("--as-of", "2026-10-10", "--held")
    assert [a["entitlement_id"] for a in held] == [award(B)]
    assert held[0]["hold"]["reason"] == "objection"
    on(monkeypatch, "2026-10-13")
    late = cli.run("batch", "object", BATCH, C, "--reason", "r", "--received-on", "2026-10-13")
    assert late.code == 2 and "outside the notice" in late.err

    on(monkeypatch, "2026-10-12")
    early = cli.run("batch", "release", BATCH)
    assert early.code == 2 and "release it from 2026-10-13" in early.err
    on(monkeypatch, "2026-10-13")
    released = cli.ok_json("batch", "release", BATCH, "--actor", "publisher")
    assert (released["status"], released["released_on"], released["awards_count"]) == (
        "released",
        "2026-10-13",
        2,
    )

    orders = tmp_path / "orders.csv"
    assert cli.ok_json("batch", "orders", BATCH, "--out", str(orders))["orders"] == 2
    rows = list(csv.DictReader(orders.open(encoding="utf-8")))
    assert [(r["payee_uscc"], r["amount_yuan"], r["fund_code"]) for r in rows] == [
        (A, "300000.00", FUND),
        (C, "300000.00", FUND),
    ]
    assert award(A) in rows[0]["purpose"] and BATCH in rows[0]["purpose"]
    assert rows[0]["budget_subject"] == "2150805" and rows[0]["order_no"] == f"{BATCH}-00001"
    gb = tmp_path / "orders-gb.csv"
    assert cli.run("batch", "orders", BATCH, "--out", str(gb), "--encoding", "gb18030").code == 0
    assert gb.read_bytes().decode("gb18030") == orders.read_text("utf-8")

    before = pay(cli, A, "GK-1", "2026-10-12")
    assert before.code == 2 and "on or after" in before.err  # type: ignore[attr-defined]
    assert pay(cli, A, "GK-2", "2026-10-13").code == 0  # type: ignore[attr-defined]
    objected = pay(cli, B, "GK-3", "2026-10-13")
    assert objected.code == 2 and "objection" in objected.err  # type: ignore[attr-defined]

    (row,) = cli.ok_json("budget", "--fiscal-year", "2026")["budget"]
    assert {k: v for k, v in row.items() if k.endswith("_fen")} == {
        "appropriated_fen": 900_000 * YUAN,
        "committed_fen": 600_000 * YUAN,
        "released_fen": 600_000 * YUAN,
        "paid_fen": 300_000 * YUAN,
        "remaining_fen": 300_000 * YUAN,
    }
    shown = cli.ok_json("batch", "show", BATCH)
    statuses = {a["entitlement_id"]: (a["status"], a["paid_fen"]) for a in shown["awards"]}
    assert statuses == {
        award(A): ("released", 300_000 * YUAN),
        award(B): ("objected", 0),
        award(C): ("released", 0),
    }
    trail = cli.ok_json("audit-trail", A)
    (release,) = [e for e in trail if e["type"] == "AwardsReleased"]
    assert (release["actor"], release["valid_from"]) == ("publisher", "2026-10-13")
    assert cli.ok_json("explain", award(A))["paid_fen"] == 300_000 * YUAN
    listed = cli.ok_json("batches", "--status", "released")["batches"]
    assert [b["batch_id"] for b in listed] == [BATCH]
    again = cli.run("batch", "propose", "--fiscal-year", "2026", "--actor", "maker")
    assert again.code == 2  # A and C are in a released batch, B is held: nothing is left
