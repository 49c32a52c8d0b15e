"""The (九) social-insurance subsidy through the command line, on both stores, worked by hand:

- A, B and H first enter the register in 2022 (baseline 2021): hires whose first contract starts
  in 2022-2024 are in the window (the default reading: the entry year and the two after it);
- P1 is hired by A from 2022-03-15 to 2025-03-14, renewed from 2025-03-15 open-ended. Month 1 is
  2022-03 (10 months in 2022, 12 in 2023, 12 in 2024: 34), so month 36 is 2025-02: A's
  contributions of 1,500 yuan in 2025-01 and 2025-02 are subsidised, 2025-03 (1,500 yuan) and
  2025-04 (1,600 yuan) are accepted but not (past the 3 years);
- P2 is hired by A from 2025-01-01: outside the window, 900 yuan in 2025-01 not subsidised;
  fiscal 2025 for A: employer paid 7,000 yuan, subsidy 3,000 yuan;
- P3 is hired by H, which is held from 2025-06-01 to 2025-06-30: a payment on 2025-06-15 is
  refused, one on 2025-07-01 accepted;
- refusals: a contract under a year, a wrong check character, a firm not a first entrant, an
  unknown hire, amounts that are not positive whole fen or differ from a month reported; each
  listed by line and field, nothing written, no identity number shown whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register
from support.persons import (
    CONTRIBUTIONS_HEADER,
    HIRES_HEADER,
    Database,
    ref_person_id,
    write_lines,
    wrong_check,
)

BASE, A, B, H = (ref_uscc(n) for n in (1, 501, 502, 503))
P1 = ref_person_id("140105", "19900101", "123")
P2 = ref_person_id("140102", "19850615", "002")
P3 = ref_person_id("140212", "19780320", "045")
HOLD = "信用中国（山西）2025-严重失信-077"


@pytest.fixture
def cli(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Cli:
    monkeypatch.setenv("LEDGER_PERSON_SECRET_FILE", str(tmp_path / "person.secret"))
    return Cli(db_url, capsys)


def ledger(cli: Cli, tmp_path: Path) -> None:
    for year, firms in ((2021, [BASE]), (2022, [BASE, A, B, H])):
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        assert cli.import_year(path, year, baseline=year == 2021).code == 0


def hires(tmp_path: Path) -> Path:
    return write_lines(
        tmp_path / "hires.csv",
        HIRES_HEADER,
        f"{A},{P1},张三,长期失业人员,2022-03-15,2025-03-14",
        f"{A},{P1},张三,长期失业人员,2025-03-15,",
        f"{A},{P2},李四,残疾人,2025-01-01,2026-12-31",
        f"{H},{P3},王五,零就业家庭成员,2023-01-01,2024-12-31",
    )


def contributions(cli: Cli, tmp_path: Path, month: str, *lines: str) -> Any:
    path = write_lines(tmp_path / f"c-{month}.csv", CONTRIBUTIONS_HEADER, *lines)
    return cli.run("import-contributions", "--month", month, str(path), "--json")


def recorded(cli: Cli, tmp_path: Path) -> int:
    """The ledger with the hires and five months of contributions; the hires' position."""
    ledger(cli, tmp_path)
    imported = cli.ok_json("import-hires", str(hires(tmp_path)))
    assert imported["recorded"] == 4
    for month, lines in (
        ("2025-01", [f"{A},{P1},150000", f"{A},{P2},90000"]),
        ("2025-02", [f"{A},{P1},150000"]),
        ("2025-03", [f"{A},{P1},150000"]),
        ("2025-04", [f"{A},{P1},160000"]),
        ("2024-06", [f"{H},{P3},80000"]),
    ):
        assert contributions(cli, tmp_path, month, *lines).code == 0
    position: int = imported["position"]
    return position


def claims(cli: Cli, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = cli.ok_json("si-claims", *args)
    assert set(doc) == {"as_of", "known_at", "claims", "totals"}
    return doc


def test_a_hire_spanning_the_3_year_limit_is_subsidised_36_months_only(
    cli: Cli, tmp_path: Path
) -> None:
    hired_at = recorded(cli, tmp_path)
    doc = claims(cli, "--fiscal-year", "2025", "--uscc", A)
    rows = [
        (r["month"], r["employer_paid_fen"], r["eligible"], r["subsidy_fen"], r["paid_fen"])
        for r in doc["claims"]
    ]
    p1 = {r["person"] for r in doc["claims"] if r["employer_paid_fen"] == 160000}
    assert len(p1) == 1
    by_person = {
        (r["person"] in p1, r["month"]): (r["eligible"], r["subsidy_fen"]) for r in doc["claims"]
    }
    assert by_person == {
        (True, "2025-01"): (True, 150000),
        (True, "2025-02"): (True, 150000),
        (True, "2025-03"): (False, 0),
        (True, "2025-04"): (False, 0),
        (False, "2025-01"): (False, 0),  # P2: hired in 2025, outside the window 2022-2024
    }
    assert len(rows) == 5
    assert doc["totals"] == [
        {
            "fund": "employment",
            "months": 5,
            "employer_paid_fen": 700000,
            "subsidy_fen": 300000,
            "paid_fen": 0,
            "outstanding_fen": 300000,
        }
    ]
    why = {r["month"]: r["why_not"] for r in doc["claims"] if r["person"] in p1}
    assert "36 months" in why["2025-03"] and why["2025-02"] is None
    p2 = next(r for r in doc["claims"] if r["person"] not in p1)
    assert "outside the first-entry window 2022-2024" in p2["why_not"]
    # No identity number, no name in any answer: the pseudonym only.
    for text in (P1, P2, "张三", "李四"):
        assert text not in cli.run("si-claims").out
    assert len(p2["person"]) == 32 and P2 not in str(doc)
    # The award totals are the provincial fund's alone.
    assert all(t["kind"] != "employment" for t in cli.listing("totals"))
    # Known when the hires were recorded, before any contribution: no claim yet; a position later
    # (2025-01's file), its two months.
    before = cli.ok_json("si-claims", "--known-at", f"@{hired_at}")
    assert before["claims"] == [] and before["totals"][0]["subsidy_fen"] == 0
    first = cli.ok_json("si-claims", "--known-at", f"@{hired_at + 3}")
    assert [r["month"] for r in first["claims"]] == ["2025-01", "2025-01"]


def test_payments_refused_above_outstanding_and_while_held(cli: Cli, tmp_path: Path) -> None:
    recorded(cli, tmp_path)
    rows = claims(cli, "--month", "2025-01", "--uscc", A)["claims"]
    p1 = next(r["person"] for r in rows if r["eligible"])

    def pay(uscc: str, person: str, month: str, ref: str, fen: int, day: str) -> Any:
        return cli.run(
            "si-pay", uscc, "--person", person, "--month", month, "--ref", ref,
            "--amount-fen", str(fen), "--paid-on", day, "--json",
        )  # fmt: skip

    over = pay(A, p1, "2025-01", "SI-2025-001", 150001, "2025-03-01")
    assert over.code == 2 and "at most 150000 fen" in over.err
    paid = pay(A, p1, "2025-01", "SI-2025-001", 150000, "2025-03-01")
    assert paid.code == 0 and paid.json()["paid_fen"] == 150000, paid.err
    again = pay(A, p1, "2025-01", "SI-2025-001", 150000, "2025-03-01")
    assert again.code == 0 and again.json()["replay"] is True
    other = pay(A, p1, "2025-02", "SI-2025-001", 150000, "2025-03-01")
    assert other.code == 2 and "used once" in other.err
    # A voucher number is used once ledger-wide: an award payment cannot take it, nor the reverse.
    award = cli.run(
        "record-payment", f"{A}/first_entry/2022", "--ref", "SI-2025-001",
        "--amount-fen", "100", "--paid-on", "2025-03-01",
    )  # fmt: skip
    assert award.code == 2 and "used once" in award.err
    assert pay(A, p1, "2025-03", "SI-2025-002", 1, "2025-04-01").code == 2  # past the 3 years
    assert claims(cli, "--uscc", A)["totals"][0]["paid_fen"] == 150000

    held = cli.run(
        "hold", "place", H, "--reason", "credit_default", "--authority", "信用中国（山西）",
        "--document", HOLD, "--from", "2025-06-01", "--to", "2025-06-30",
    )  # fmt: skip
    assert held.code == 0, held.err
    p3 = claims(cli, "--uscc", H)["claims"][0]["person"]
    refused = pay(H, p3, "2024-06", "SI-2025-010", 80000, "2025-06-15")
    assert refused.code == 2 and HOLD in refused.err
    assert pay(H, p3, "2024-06", "SI-2025-011", 80000, "2025-07-01").code == 0
    assert claims(cli, "--uscc", H)["totals"][0]["outstanding_fen"] == 0


def test_bad_hires_are_refused_line_by_line_and_nothing_is_written(
    cli: Cli, tmp_path: Path
) -> None:
    ledger(cli, tmp_path)
    db = Database(cli.db_url)
    before = db.events()
    path = write_lines(
        tmp_path / "bad-hires.csv",
        HIRES_HEADER,
        f"{A},{P1},张三,长期失业人员,2023-01-01,2023-12-30",  # a day short of a year
        f"{A},{wrong_check(P2)},李四,残疾人,2023-01-01,2024-12-31",
        f"{BASE},{P3},王五,残疾人,2023-01-01,2024-12-31",  # on the baseline: not a first entrant
        f"{B},{P3},王五,残疾人,2023-01-01,2023-12-31",  # exactly a year: fine
    )
    result = cli.run("import-hires", str(path))
    assert result.code == 2
    lines = result.err.splitlines()
    assert lines[0].startswith(f"{path}:2: contract_end: a contract from 2023-01-01 to 2023-12-30")
    assert lines[1].startswith(f"{path}:3: person_id: ") and "check character" in lines[1]
    assert lines[2].startswith(f"{path}:4: uscc: {BASE} is not known to the ledger as a first")
    assert "nothing was recorded" in lines[-1] and len(lines) == 4
    for number in (P1, P2, wrong_check(P2), P3):
        assert number not in result.err
    assert db.events() == before and db.vault() == []
    # The good line alone is taken; the same file again changes nothing.
    good = write_lines(
        tmp_path / "good.csv", HIRES_HEADER, f"{B},{P3},王五,残疾人,2023-01-01,2023-12-31"
    )
    assert cli.ok_json("import-hires", str(good))["recorded"] == 1
    after = db.events()
    replay = cli.ok_json("import-hires", str(good))
    assert (replay["replay"], replay["already"], replay["position"]) == (True, 1, None)
    assert db.events() == after


def test_contributions_beyond_what_the_hires_allow_are_refused(cli: Cli, tmp_path: Path) -> None:
    recorded(cli, tmp_path)
    db = Database(cli.db_url)
    before = db.events()
    result = contributions(
        cli,
        tmp_path,
        "2025-01",
        f"{A},{P1},150001",  # 2025-01 was reported at 150000
        f"{A},{P2},-100",
        f"{A},{P2},12.50",
        f"{B},{P1},1000",  # P1 is not B's hire
        f"{H},{P3},1000",  # P3's contract with H ended 2024-12-31
        f"{A},{P2},0",
    )
    assert result.code == 2
    lines = result.err.splitlines()
    assert [
        line.split(": ")[0].rsplit(":", 1)[1] + ":" + line.split(": ")[1] for line in lines[:6]
    ] == [
        "2:employer_paid_fen",
        "3:employer_paid_fen",
        "4:employer_paid_fen",
        "5:person_id",
        "6:person_id",
        "7:employer_paid_fen",
    ]
    assert "reported at 150000 fen already, not 150001" in lines[0]
    assert "not a hire of" in lines[3] and "no contract" in lines[4]
    for number in (P1, P2, P3):
        assert number not in result.err
    assert db.events() == before
    # The same month's file again is a replay.
    again = contributions(cli, tmp_path, "2025-01", f"{A},{P1},150000", f"{A},{P2},90000")
    assert again.code == 0 and again.json()["replay"] is True and db.events() == before
    future = contributions(cli, tmp_path, "2099-01", f"{A},{P1},150000")
    assert future.code == 2 and "--month" in future.err
