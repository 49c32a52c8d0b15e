"""End to end through the real CLI (`adapters.main.main`, in-process) on SQLite and PostgreSQL.

The ledger below is built by hand: a 2020 baseline and the registers of 2021-2023. Every count,
award, total and window expected here is worked out from the issue and DOMAIN.md (literal reading
of (五), payment in the fiscal year after the decision, baseline default 5), not from the code.

    firm  2020 (baseline)      2021       2022       2023          what it is
    A     on                   on         on         on            baseline, first entry unknown
    B     on, entered 2019     on         on         on            earns 5万/2021, 10万/2022
    C     on, entered 2020     on         on         on            earns 5万/2022, 10万/2023
    G     on                   -          -          -             leaves in 2021
    B2    on, entered 2019     on         -          on            5万/2021, then left: no 10万
    D     -                    on (2018)  on         on            re-entrant: nothing
    E     -                    new        on         on, moved     30万/2021, 5万/2023 (in Datong)
    F     -                    new        -          on            30万/2021 only; re-enters 2023
    H     -                    -          new(2022)  on            30万/2022
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.helpers import HASH_38, Cli, Firm, ref_uscc, write_register

A, B, C, G, B2, D, E, F, H = (ref_uscc(n) for n in range(101, 110))
FE, R2, R3 = 30_000_000, 5_000_000, 10_000_000
TAIYUAN, DATONG, CHANGZHI, JINZHONG, LULIANG = "140100", "140200", "140400", "140700", "141100"

E_NAME_2023 = "大同新荣测试装备有限公司"

# The registers, year by year.
REGISTERS: dict[int, list[Firm]] = {
    2020: [
        Firm(A, "太原甲钢铁有限公司", "140105", "C3110", "large"),
        Firm(B, "太原乙机械有限公司", "140106", "C3411", "small", "", "2019"),
        Firm(C, "长治丙化工有限公司", "140404", "C2614", "micro", "", "2020"),
        Firm(G, "榆社丁煤业有限公司", "140721", "B0610", "medium"),
        Firm(B2, "襄垣戊电力有限公司", "140423", "D4411", "small", "", "2019"),
    ],
    2021: [
        Firm(A, "太原甲钢铁有限公司", "140105", "C3110", "large"),
        Firm(B, "太原乙机械有限公司", "140106", "C3411", "small", "", "2019"),
        Firm(C, "长治丙化工有限公司", "140404", "C2614", "micro", "", "2020"),
        Firm(B2, "襄垣戊电力有限公司", "140423", "D4411", "small", "", "2019"),
        Firm(D, "太原己食品有限公司", "140105", "C1311", "small", "", "2018"),
        Firm(E, "太原庚装备有限公司", "140105", "C3511", "small"),
        Firm(F, "综改区辛材料有限公司", "140171", "C3091", "medium", "new_build"),
    ],
    2022: [
        Firm(A, "太原甲钢铁有限公司", "140105", "C3110", "large"),
        Firm(B, "太原乙机械有限公司", "140106", "C3411", "small", "", "2019"),
        Firm(C, "长治丙化工有限公司", "140404", "C2614", "micro", "", "2020"),
        Firm(D, "太原己食品有限公司", "140105", "C1311", "small", "", "2018"),
        Firm(E, "太原庚装备有限公司", "140105", "C3511", "small"),
        Firm(H, "汾阳壬酒业有限公司", "141182", "C1512", "", "", "2022"),
    ],
    2023: [
        Firm(A, "太原甲钢铁有限公司", "140105", "C3110", "large"),
        Firm(B, "太原乙机械有限公司", "140106", "C3411", "small", "", "2019"),
        Firm(C, "长治丙化工有限公司", "140404", "C2614", "micro", "", "2020"),
        Firm(D, "太原己食品有限公司", "140105", "C1311", "small"),
        Firm(E, E_NAME_2023, "140212", "C3511", "small"),
        Firm(F, "综改区辛材料有限公司", "140171", "C3091", "medium"),
        Firm(H, "汾阳壬酒业有限公司", "141182", "C1512", ""),
        Firm(B2, "襄垣戊电力有限公司", "140423", "D4411", "small", "", "2019"),
    ],
}

# (entitlement id) -> (kind, clause, amount, decided, due, city in the decided year)
EXPECTED_AWARDS: dict[str, tuple[str, str, int, int, int, str]] = {
    f"{B}/retention_2y/2021": ("retention_2y", "(五)", R2, 2021, 2022, TAIYUAN),
    f"{B}/retention_3y/2022": ("retention_3y", "(五)", R3, 2022, 2023, TAIYUAN),
    f"{C}/retention_2y/2022": ("retention_2y", "(五)", R2, 2022, 2023, CHANGZHI),
    f"{C}/retention_3y/2023": ("retention_3y", "(五)", R3, 2023, 2024, CHANGZHI),
    f"{B2}/retention_2y/2021": ("retention_2y", "(五)", R2, 2021, 2022, CHANGZHI),
    f"{E}/first_entry/2021": ("first_entry", "(四)", FE, 2021, 2022, TAIYUAN),
    f"{E}/retention_2y/2023": ("retention_2y", "(五)", R2, 2023, 2024, DATONG),
    f"{F}/first_entry/2021": ("first_entry", "(四)", FE, 2021, 2022, TAIYUAN),
    f"{H}/first_entry/2022": ("first_entry", "(四)", FE, 2022, 2023, LULIANG),
}

AWARD_KEYS = {
    "earned",
    "entitlement_id",
    "uscc",
    "name",
    "city_code",
    "kind",
    "clause",
    "policy",
    "amount_fen",
    "decided_year",
    "due_fiscal_year",
    "paid_fen",
    "recovered_fen",
    "status",
    "policy_hash",
    "base_fen",
    "bonuses",
    "hold",
}


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def write_year(tmp_path: Path, year: int, rows: list[Any] | None = None, tag: str = "") -> Path:
    return write_register(tmp_path / f"register-{year}{tag}.csv", rows or REGISTERS[year])


def import_ok(cli: Cli, path: Path, year: int, *, baseline: bool = False) -> dict[str, Any]:
    result = cli.import_year(path, year, baseline=baseline)
    assert result.code == 0, result.err
    doc: dict[str, Any] = result.json()
    return doc


def build_ledger(cli: Cli, tmp_path: Path, last: int = 2023) -> dict[int, dict[str, Any]]:
    docs = {2020: import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)}
    for year in range(2021, last + 1):
        docs[year] = import_ok(cli, write_year(tmp_path, year), year)
    return docs


def bad_lines(stderr: str, path: Path) -> set[tuple[int, str]]:
    """(line, field) of each `FILE:LINE: FIELD: reason` line about `path`."""
    found = set()
    for line in stderr.splitlines():
        m = re.match(rf"^{re.escape(str(path))}:(\d+): (\w+): .+$", line)
        if m:
            found.add((int(m.group(1)), m.group(2)))
    return found


def snapshot(cli: Cli) -> tuple[Any, Any]:
    return cli.listing("awards"), cli.listing("register")


def shanghai_today() -> Any:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def pay(cli: Cli, entitlement: str, ref: str, amount: int, paid_on: str) -> Any:
    return cli.run(
        "record-payment",
        entitlement,
        "--ref",
        ref,
        f"--amount-fen={amount}",
        "--paid-on",
        paid_on,
        "--json",
    )


# Order of imports --------------------------------------------------------------------------------


def test_the_first_import_must_be_the_baseline(cli: Cli, tmp_path: Path) -> None:
    result = cli.import_year(write_year(tmp_path, 2020), 2020)
    assert result.code == 2
    assert "import-register --baseline" in result.err
    assert cli.run("register").code == 2  # still no ledger: nothing was made
    # ... and nothing stands in the way of the baseline afterwards.
    import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)


def test_a_year_needs_the_year_before_it_imported(cli: Cli, tmp_path: Path) -> None:
    import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)
    before = snapshot(cli)
    result = cli.import_year(write_year(tmp_path, 2022), 2022)
    assert result.code == 2
    assert "2021" in result.err
    assert snapshot(cli) == before


def test_a_year_before_the_baseline_is_refused(cli: Cli, tmp_path: Path) -> None:
    import_ok(cli, write_year(tmp_path, 2021), 2021, baseline=True)
    before = snapshot(cli)
    assert cli.import_year(write_year(tmp_path, 2020), 2020).code == 2
    assert snapshot(cli) == before


def test_a_second_baseline_is_refused(cli: Cli, tmp_path: Path) -> None:
    import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)
    before = snapshot(cli)
    assert cli.import_year(write_year(tmp_path, 2021), 2021, baseline=True).code == 2
    assert snapshot(cli) == before


def test_an_identical_re_import_is_a_replay(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path, last=2021)
    before = snapshot(cli)
    again = cli.import_year(write_year(tmp_path, 2021, tag="-copy"), 2021)
    assert again.code == 0, again.err
    assert again.json()["replay"] is True
    base_again = cli.import_year(write_year(tmp_path, 2020, tag="-copy"), 2020, baseline=True)
    assert base_again.code == 0, base_again.err
    assert base_again.json()["replay"] is True
    assert snapshot(cli) == before


def test_a_different_file_for_an_imported_year_is_refused(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path, last=2021)
    before = snapshot(cli)
    changed = [*REGISTERS[2021], Firm(H, "新晋企业有限公司", "140105", "C1311")]
    result = cli.import_year(write_year(tmp_path, 2021, changed, tag="-v2"), 2021)
    assert result.code == 2
    assert snapshot(cli) == before
    assert H not in {a["uscc"] for a in cli.awards()}


# All or nothing ----------------------------------------------------------------------------------


def test_a_file_with_bad_lines_lists_every_one_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)
    before = snapshot(cli)
    rows = [
        *REGISTERS[2021],  # lines 2-8 are good
        Firm(ref_uscc(201)[:17] + ("0" if ref_uscc(201)[17] != "0" else "1")),  # 9 check char
        Firm(ref_uscc(202), region_code="149999"),  # 10 unknown region
        Firm(ref_uscc(203), industry_code="F5111"),  # 11 non-industrial
        Firm(ref_uscc(204), route="spin_off"),  # 12 unknown route
        Firm(ref_uscc(205), size_class="tiny"),  # 13 unknown size class
        Firm(ref_uscc(206), name=""),  # 14 missing field
        Firm(ref_uscc(207), first_entry_year="2022"),  # 15 after the register year
        f"{ref_uscc(208)},少一列,140105,C1311,small,",  # 16 wrong field count
    ]
    path = write_year(tmp_path, 2021, rows, tag="-bad")
    result = cli.import_year(path, 2021)
    assert result.code == 2
    assert bad_lines(result.err, path) == {
        (9, "uscc"),
        (10, "region_code"),
        (11, "industry_code"),
        (12, "route"),
        (13, "size_class"),
        (14, "name"),
        (15, "first_entry_year"),
        (16, "row"),
    }
    assert snapshot(cli) == before
    assert cli.listing("totals") == []
    # The fixed file then imports as if nothing had happened.
    doc = import_ok(cli, write_year(tmp_path, 2021), 2021)
    assert (doc["entered"], doc["re_entered"], doc["retained"], doc["left"]) == (2, 1, 4, 1)


def test_a_bad_baseline_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    path = write_year(tmp_path, 2020, [*REGISTERS[2020], Firm(ref_uscc(301), "x", "140100")])
    result = cli.import_year(path, 2020, baseline=True)
    assert result.code == 2
    assert bad_lines(result.err, path) == {(7, "region_code")}
    assert_no_ledger(cli)
    import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)


def test_a_duplicate_uscc_in_a_file_rejects_it(cli: Cli, tmp_path: Path) -> None:
    import_ok(cli, write_year(tmp_path, 2020), 2020, baseline=True)
    before = snapshot(cli)
    rows = [*REGISTERS[2021], Firm(E, "重复的庚装备有限公司", "140106", "C3511")]
    path = write_year(tmp_path, 2021, rows, tag="-dup")
    result = cli.import_year(path, 2021)
    assert result.code == 2
    assert (9, "uscc") in bad_lines(result.err, path)
    assert snapshot(cli) == before


def test_a_gb18030_register_imports_with_its_encoding(cli: Cli, tmp_path: Path) -> None:
    path = write_register(tmp_path / "gb.csv", REGISTERS[2020], encoding="gb18030")
    as_utf8 = cli.import_year(path, 2020, baseline=True)
    assert as_utf8.code == 2
    # One line says what the file is and what to do; the other lines are counted, not repeated.
    assert bad_lines(as_utf8.err, path) == {(2, "encoding")}
    (first,) = [line for line in as_utf8.err.splitlines() if line.startswith(f"{path}:2:")]
    assert "not valid utf-8: byte 0x" in first and "pass --encoding gb18030" in first
    assert f"... and {len(REGISTERS[2020]) - 1} more line(s) with encoding" in as_utf8.err
    assert_no_ledger(cli)
    result = cli.import_year(path, 2020, baseline=True, encoding="gb18030")
    assert result.code == 0, result.err
    assert cli.ok_json("enterprise", B)["name"] == "太原乙机械有限公司"


def test_a_missing_register_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    result = cli.import_year(tmp_path / "no-such-file.csv", 2020, baseline=True)
    assert result.code == 2
    assert "no-such-file.csv" in result.err
    assert_no_ledger(cli)


def assert_no_ledger(cli: Cli) -> None:
    """A refused baseline makes no ledger: a read afterwards finds none (and makes none)."""
    for _ in range(2):
        result = cli.run("register")
        assert result.code == 2 and "no ledger at" in result.err, result.err


# The diff ----------------------------------------------------------------------------------------


def test_the_diff_counts_entered_re_entered_retained_and_left(cli: Cli, tmp_path: Path) -> None:
    docs = build_ledger(cli, tmp_path)
    assert docs[2020]["rows"] == 5
    counts = {
        y: (d["entered"], d["re_entered"], d["retained"], d["left"])
        for y, d in docs.items()
        if y > 2020
    }
    assert counts == {
        2021: (2, 1, 4, 1),  # E, F new; D back (entered 2018); A, B, C, B2 stay; G leaves
        2022: (1, 0, 5, 2),  # H new; A, B, C, D, E stay; B2 and F leave
        2023: (0, 2, 6, 0),  # F and B2 back; A, B, C, D, E, H stay
    }
    assert all(d["replay"] is False for d in docs.values())


def test_the_register_view_counts_firms_first_entries_and_re_entries_by_city(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    sizes = {(r["year"], r["city_code"]): r for r in cli.listing("register")}
    assert {k: v["size"] for k, v in sizes.items() if k[0] == 2021} == {
        (2021, TAIYUAN): 5,  # A, B, D, E, F (a zone of Taiyuan)
        (2021, CHANGZHI): 2,  # C, B2
    }
    assert sizes[(2021, TAIYUAN)]["first_entries"] == 2
    assert sizes[(2021, TAIYUAN)]["re_entries"] == 1
    assert {k: v["size"] for k, v in sizes.items() if k[0] == 2023} == {
        (2023, TAIYUAN): 4,  # A, B, D, F
        (2023, DATONG): 1,  # E moved
        (2023, CHANGZHI): 2,
        (2023, LULIANG): 1,
    }
    assert sizes[(2023, TAIYUAN)]["re_entries"] == 1  # F
    assert sizes[(2023, CHANGZHI)]["re_entries"] == 1  # B2
    assert sizes[(2022, LULIANG)]["first_entries"] == 1  # H
    assert sum(r["size"] for r in sizes.values() if r["year"] == 2020) == 5
    assert sizes[(2020, JINZHONG)]["size"] == 1  # G, before it left


def test_a_baseline_firm_with_a_first_entry_year_earns_retention_but_not_the_entry_award(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    mine = {a["entitlement_id"] for a in cli.awards() if a["uscc"] in (B, C)}
    assert mine == {
        f"{B}/retention_2y/2021",
        f"{B}/retention_3y/2022",
        f"{C}/retention_2y/2022",
        f"{C}/retention_3y/2023",
    }


def test_a_firm_absent_from_the_baseline_with_an_earlier_first_entry_is_a_re_entrant(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    assert [a for a in cli.awards() if a["uscc"] == D] == []
    doc = cli.ok_json("enterprise", D)
    assert doc["entitlements"] == []
    assert doc["re_entry_years"] == [2021]
    assert doc["windows"] == []


def test_a_firm_that_leaves_and_re_enters_earns_no_more_retention_awards(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    ids = {a["entitlement_id"] for a in cli.awards() if a["uscc"] in (B2, F)}
    assert ids == {f"{B2}/retention_2y/2021", f"{F}/first_entry/2021"}
    doc = cli.ok_json("enterprise", F)
    assert (doc["register_years"], doc["exit_years"], doc["re_entry_years"]) == (
        [2021, 2023],
        [2022],
        [2023],
    )


def test_a_firm_that_leaves_earns_nothing_on_the_ledger(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    assert [a for a in cli.awards() if a["uscc"] in (A, G)] == []
    assert cli.ok_json("enterprise", G)["exit_years"] == [2021]


def test_attribute_changes_are_reflected_in_the_enterprise(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    doc = cli.ok_json("enterprise", E)
    assert doc["name"] == E_NAME_2023
    assert (doc["region_code"], doc["city_code"]) == ("140212", DATONG)
    assert doc["register_years"] == [2021, 2022, 2023]
    assert doc["first_entry_year"] == 2021
    assert {e["entitlement_id"] for e in doc["entitlements"]} == {
        f"{E}/first_entry/2021",
        f"{E}/retention_2y/2023",
    }


# Awards ------------------------------------------------------------------------------------------


def test_awards_lists_every_entitlement_with_its_fields(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    rows = cli.awards()
    assert all(set(r) == AWARD_KEYS for r in rows)
    got = {
        r["entitlement_id"]: (
            r["kind"],
            r["clause"],
            r["amount_fen"],
            r["decided_year"],
            r["due_fiscal_year"],
            r["city_code"],
        )
        for r in rows
    }
    assert got == EXPECTED_AWARDS
    assert len(rows) == len(EXPECTED_AWARDS)  # no duplicates
    for r in rows:
        assert r["entitlement_id"].split("/") == [r["uscc"], r["kind"], str(r["decided_year"])]
        assert r["policy"] == "jinbanfa-2020-38"
        assert r["policy_hash"] == HASH_38
        assert (r["base_fen"], r["bonuses"]) == (r["amount_fen"], [])  # 38号 has no bonus
        assert (r["paid_fen"], r["status"]) == (0, "due")
    names = {r["uscc"]: r["name"] for r in rows}
    assert names[B] == "太原乙机械有限公司"
    assert names[H] == "汾阳壬酒业有限公司"


def test_an_award_is_in_the_city_of_the_firm_in_its_decided_year(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    by_id = cli.awards_by_id()
    assert by_id[f"{E}/first_entry/2021"]["city_code"] == TAIYUAN
    assert by_id[f"{E}/retention_2y/2023"]["city_code"] == DATONG


def test_awards_filter_by_fiscal_year(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    for year in (2022, 2023, 2024):
        expected = {k for k, v in EXPECTED_AWARDS.items() if v[4] == year}
        assert set(cli.awards_by_id("--fiscal-year", str(year))) == expected
    assert cli.awards("--fiscal-year", "2021") == []


def test_awards_filter_by_city(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    assert set(cli.awards_by_id("--city", DATONG)) == {f"{E}/retention_2y/2023"}
    assert set(cli.awards_by_id("--city", TAIYUAN)) == {
        f"{B}/retention_2y/2021",
        f"{B}/retention_3y/2022",
        f"{E}/first_entry/2021",
        f"{F}/first_entry/2021",
    }
    assert set(cli.awards_by_id("--city", CHANGZHI, "--fiscal-year", "2022")) == {
        f"{B2}/retention_2y/2021"
    }


def test_awards_refuse_a_county_as_a_city(cli: Cli, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run("awards", "--city", "140105", "--json")
    assert exc.value.code == 2


def test_awards_filter_by_status(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    assert pay(cli, f"{E}/first_entry/2021", "V-1", 10_000_000, "2022-03-01").code == 0
    assert pay(cli, f"{F}/first_entry/2021", "V-2", FE, "2022-03-02").code == 0
    assert set(cli.awards_by_id("--status", "paid")) == {f"{F}/first_entry/2021"}
    assert set(cli.awards_by_id("--status", "partially_paid")) == {f"{E}/first_entry/2021"}
    due = set(EXPECTED_AWARDS) - {f"{E}/first_entry/2021", f"{F}/first_entry/2021"}
    assert set(cli.awards_by_id("--status", "due")) == due
    assert len(cli.awards("--status", "all")) == len(EXPECTED_AWARDS)


# Payments ----------------------------------------------------------------------------------------


@pytest.fixture
def small_ledger(cli: Cli, tmp_path: Path) -> Cli:
    """Baseline 2020 and 2021: E and F are first entrants of 2021 (30万 each, due 2022)."""
    build_ledger(cli, tmp_path, last=2021)
    return cli


E_FE = f"{E}/first_entry/2021"
F_FE = f"{F}/first_entry/2021"


def test_a_payment_may_be_made_in_instalments(small_ledger: Cli) -> None:
    cli = small_ledger
    first = pay(cli, E_FE, "TR-2022-0001", 10_000_000, "2022-03-01")
    assert first.code == 0, first.err
    assert (first.json()["paid_fen"], first.json()["replay"]) == (10_000_000, False)
    award = cli.awards_by_id()[E_FE]
    assert (award["paid_fen"], award["status"]) == (10_000_000, "partially_paid")
    second = pay(cli, E_FE, "TR-2022-0002", 20_000_000, "2022-06-01")
    assert second.code == 0, second.err
    award = cli.awards_by_id()[E_FE]
    assert (award["paid_fen"], award["status"]) == (FE, "paid")
    payments = cli.ok_json("enterprise", E)["payments"]
    assert [(p["payment_ref"], p["amount_fen"]) for p in payments] == [
        ("TR-2022-0001", 10_000_000),
        ("TR-2022-0002", 20_000_000),
    ]


def test_an_overpayment_is_refused(small_ledger: Cli) -> None:
    cli = small_ledger
    assert pay(cli, E_FE, "TR-1", 10_000_000, "2022-03-01").code == 0
    assert pay(cli, E_FE, "TR-2", 20_000_001, "2022-03-02").code == 2
    assert pay(cli, F_FE, "TR-3", FE + 1, "2022-03-02").code == 2
    awards = cli.awards_by_id()
    assert awards[E_FE]["paid_fen"] == 10_000_000
    assert awards[F_FE]["paid_fen"] == 0
    # The ref of a refused payment was not claimed: it can carry the right amount.
    assert pay(cli, E_FE, "TR-2", 20_000_000, "2022-03-02").code == 0
    assert cli.awards_by_id()[E_FE]["status"] == "paid"


def test_a_non_positive_amount_is_refused(small_ledger: Cli) -> None:
    cli = small_ledger
    for amount in (0, -1, -30_000_000):
        assert pay(cli, E_FE, "TR-9", amount, "2022-03-01").code == 2, amount
    assert cli.ok_json("enterprise", E)["payments"] == []
    assert cli.awards_by_id()[E_FE]["paid_fen"] == 0


def test_a_payment_dated_after_today_in_shanghai_is_refused(small_ledger: Cli) -> None:
    cli = small_ledger
    tomorrow = (shanghai_today() + timedelta(days=1)).isoformat()
    assert pay(cli, E_FE, "TR-F", 1_000, tomorrow).code == 2
    assert cli.ok_json("enterprise", E)["payments"] == []


def test_a_payment_dated_today_in_shanghai_is_accepted(small_ledger: Cli) -> None:
    cli = small_ledger
    result = pay(cli, E_FE, "TR-T", 1_000, shanghai_today().isoformat())
    assert result.code == 0, result.err
    assert cli.awards_by_id()[E_FE]["paid_fen"] == 1_000


def test_a_payment_against_an_unknown_entitlement_is_refused(small_ledger: Cli) -> None:
    cli = small_ledger
    for entitlement in (
        f"{E}/retention_2y/2023",  # not (yet) earned
        f"{A}/first_entry/2020",  # a baseline firm with no first entry
        f"{E}/first_entry/2022",  # the wrong year
        f"{E}/retention_5y/2021",  # no such kind
        f"{ref_uscc(999)}/first_entry/2021",  # no such firm
        "not-an-entitlement",
    ):
        assert pay(cli, entitlement, "TR-U", 1_000, "2022-03-01").code == 2, entitlement
    assert all(a["paid_fen"] == 0 for a in cli.awards())
    # The ref was never claimed by the refused attempts.
    assert pay(cli, E_FE, "TR-U", 1_000, "2022-03-01").json()["replay"] is False


def test_the_same_ref_with_other_details_is_refused(small_ledger: Cli) -> None:
    cli = small_ledger
    assert pay(cli, E_FE, "TR-R", 10_000_000, "2022-03-01").code == 0
    for entitlement, amount, paid_on in (
        (E_FE, 10_000_001, "2022-03-01"),  # other amount
        (E_FE, 10_000_000, "2022-03-02"),  # other date
        (F_FE, 10_000_000, "2022-03-01"),  # other entitlement: a ref is unique ledger-wide
    ):
        assert pay(cli, entitlement, "TR-R", amount, paid_on).code == 2, (entitlement, amount)
    awards = cli.awards_by_id()
    assert (awards[E_FE]["paid_fen"], awards[F_FE]["paid_fen"]) == (10_000_000, 0)
    assert len(cli.ok_json("enterprise", E)["payments"]) == 1


def test_the_same_ref_with_the_same_details_is_a_replay(small_ledger: Cli) -> None:
    cli = small_ledger
    assert pay(cli, E_FE, "TR-P", 10_000_000, "2022-03-01").code == 0
    again = pay(cli, E_FE, "TR-P", 10_000_000, "2022-03-01")
    assert again.code == 0, again.err
    assert again.json()["replay"] is True
    assert again.json()["paid_fen"] == 10_000_000
    said = cli.run(
        "record-payment",
        E_FE,
        "--ref",
        "TR-P",
        "--amount-fen",
        "10000000",
        "--paid-on",
        "2022-03-01",
    )
    assert said.code == 0
    assert "replay" in said.out.lower()
    assert cli.awards_by_id()[E_FE]["paid_fen"] == 10_000_000
    assert len(cli.ok_json("enterprise", E)["payments"]) == 1
    assert sum(r["paid_fen"] for r in cli.listing("totals", "--basis", "cash")) == 10_000_000


def test_payments_survive_later_imports_and_a_rebuild(small_ledger: Cli, tmp_path: Path) -> None:
    cli = small_ledger
    assert pay(cli, E_FE, "TR-S1", FE, "2022-03-01").code == 0
    assert pay(cli, F_FE, "TR-S2", 1_000_000, "2022-03-01").code == 0
    import_ok(cli, write_year(tmp_path, 2022), 2022)
    import_ok(cli, write_year(tmp_path, 2023), 2023)
    awards = cli.awards_by_id()
    assert (awards[E_FE]["paid_fen"], awards[E_FE]["status"]) == (FE, "paid")
    assert (awards[F_FE]["paid_fen"], awards[F_FE]["status"]) == (1_000_000, "partially_paid")
    assert awards[f"{E}/retention_2y/2023"]["status"] == "due"
    before = cli.awards()
    assert cli.run("rebuild-projections", "--json").code == 0
    assert cli.awards() == before


def test_a_policy_variant_without_new_builds_pays_them_nothing(cli: Cli, tmp_path: Path) -> None:
    from importlib import resources

    text = (
        resources.files("domain").joinpath("policies", "jinbanfa-2020-38.toml").read_text("utf-8")
    )
    text = text.replace('id = "jinbanfa-2020-38"', 'id = "no-new-builds"')
    lines = [
        'eligible_routes = ["growth", "sector_conversion", "merger", "individual_conversion"]'
        if line.startswith("eligible_routes")
        else line
        for line in text.splitlines()
    ]
    policy = tmp_path / "no-new-builds.toml"
    policy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = cli.run(
        "import-register",
        "--year",
        "2020",
        str(write_year(tmp_path, 2020)),
        "--baseline",
        "--policy",
        str(policy),
        "--json",
    )
    assert base.code == 0, base.err
    import_ok(cli, write_year(tmp_path, 2021), 2021)
    by_id = cli.awards_by_id()
    assert F_FE not in by_id  # F entered as a new build
    assert by_id[E_FE]["policy"] == "no-new-builds"


# Totals ------------------------------------------------------------------------------------------


def test_totals_by_kind_on_the_due_basis(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    rows = cli.listing("totals", "--by", "kind", "--basis", "due")
    got = {(r["fiscal_year"], r["kind"]): (r["count"], r["entitled_fen"]) for r in rows}
    assert got == {
        (2022, "first_entry"): (2, 2 * FE),  # E, F
        (2022, "retention_2y"): (2, 2 * R2),  # B, B2
        (2023, "first_entry"): (1, FE),  # H
        (2023, "retention_2y"): (1, R2),  # C
        (2023, "retention_3y"): (1, R3),  # B
        (2024, "retention_2y"): (1, R2),  # E
        (2024, "retention_3y"): (1, R3),  # C
    }
    assert all(r["paid_fen"] == 0 and r["outstanding_fen"] == r["entitled_fen"] for r in rows)
    keys = {"fiscal_year", "kind", "count", "entitled_fen", "paid_fen", "outstanding_fen"}
    keys.add("recovery_due_fen")  # nothing revoked here
    assert all(r["recovery_due_fen"] == 0 for r in rows)
    assert all(set(r) == keys for r in rows)


def test_totals_by_city_on_the_due_basis(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    rows = cli.listing("totals", "--by", "city")
    got = {(r["fiscal_year"], r["city_code"]): (r["count"], r["entitled_fen"]) for r in rows}
    assert got == {
        (2022, TAIYUAN): (3, 2 * FE + R2),  # E, F first entry; B 5万
        (2022, CHANGZHI): (1, R2),  # B2
        (2023, TAIYUAN): (1, R3),  # B
        (2023, CHANGZHI): (1, R2),  # C
        (2023, LULIANG): (1, FE),  # H
        (2024, DATONG): (1, R2),  # E, after its move
        (2024, CHANGZHI): (1, R3),  # C
    }


def test_totals_filter_by_fiscal_year(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    rows = cli.listing("totals", "--fiscal-year", "2023")
    assert {r["fiscal_year"] for r in rows} == {2023}
    assert sum(r["entitled_fen"] for r in rows) == FE + R2 + R3


def test_totals_equal_the_sum_of_the_awards_rows(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    assert pay(cli, f"{E}/first_entry/2021", "V-1", 12_345_678, "2023-01-15").code == 0
    assert pay(cli, f"{B}/retention_2y/2021", "V-2", R2, "2022-05-01").code == 0
    assert pay(cli, f"{C}/retention_3y/2023", "V-3", 1, "2024-05-01").code == 0
    awards = cli.awards()
    for by, key in (("kind", "kind"), ("city", "city_code")):
        expected: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
        for a in awards:
            group = expected[(a["due_fiscal_year"], a[key])]
            group["count"] += 1
            group["entitled_fen"] += a["amount_fen"]
            group["paid_fen"] += a["paid_fen"]
            group["outstanding_fen"] += a["amount_fen"] - a["paid_fen"]
        rows = cli.listing("totals", "--by", by)
        got = {
            (r["fiscal_year"], r[key]): Counter(
                {k: r[k] for k in ("count", "entitled_fen", "paid_fen", "outstanding_fen")}
            )
            for r in rows
        }
        assert got == dict(expected)


def test_cash_totals_group_payments_by_the_fiscal_year_of_their_date(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    assert pay(cli, f"{E}/first_entry/2021", "C-1", 10_000_000, "2023-03-01").code == 0
    assert pay(cli, f"{E}/first_entry/2021", "C-2", 20_000_000, "2024-02-01").code == 0
    assert pay(cli, f"{F}/first_entry/2021", "C-3", FE, "2024-05-05").code == 0
    assert pay(cli, f"{B}/retention_2y/2021", "C-4", R2, "2023-12-31").code == 0
    by_kind = cli.listing("totals", "--basis", "cash", "--by", "kind")
    assert {(r["fiscal_year"], r["kind"]): r["paid_fen"] for r in by_kind} == {
        (2023, "first_entry"): 10_000_000,
        (2023, "retention_2y"): R2,
        (2024, "first_entry"): 20_000_000 + FE,
    }
    by_city = cli.listing("totals", "--basis", "cash", "--by", "city")
    assert {(r["fiscal_year"], r["city_code"]): r["paid_fen"] for r in by_city} == {
        (2023, TAIYUAN): 10_000_000 + R2,
        (2024, TAIYUAN): 20_000_000 + FE,
    }
    only_2024 = cli.listing("totals", "--basis", "cash", "--fiscal-year", "2024")
    assert sum(r["paid_fen"] for r in only_2024) == 20_000_000 + FE


# Windows -----------------------------------------------------------------------------------------


def _windows(cli: Cli, *args: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(w["uscc"], w["window"]): w for w in cli.listing("windows", *args)}


def test_windows_list_first_entrants_only(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    windows = _windows(cli)
    assert {u for u, _ in windows} == {B, C, B2, E, F, H}  # not A, G (unknown entry) or D


def test_a_small_first_entrant_has_a_guarantee_and_an_energy_window(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    windows = _windows(cli, "--uscc", E)
    assert set(windows) == {(E, "guarantee"), (E, "energy")}
    g, e = windows[(E, "guarantee")], windows[(E, "energy")]
    assert (g["starts_on"], g["ends_on"], g["fee_cap_bp"], g["size_class"]) == (
        "2021-01-01",
        "2023-12-31",
        100,
        "small",
    )
    assert "closed_on" not in g
    assert (e["starts_on"], e["ends_on"], e["closed_on"]) == ("2021-01-01", "2023-12-31", None)
    assert "fee_cap_bp" not in e


def test_a_medium_first_entrant_has_no_guarantee_and_its_energy_window_closes_when_it_leaves(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    windows = _windows(cli, "--uscc", F)
    assert list(windows) == [(F, "energy")]
    assert windows[(F, "energy")]["closed_on"] == "2022-01-01"


def test_a_first_entrant_of_unknown_size_has_a_guarantee_window_with_size_class_null(
    cli: Cli, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    g = _windows(cli, "--uscc", H)[(H, "guarantee")]
    assert (g["starts_on"], g["ends_on"], g["size_class"]) == ("2022-01-01", "2024-12-31", None)


def test_windows_active_on_a_date(cli: Cli, tmp_path: Path) -> None:
    build_ledger(cli, tmp_path)
    # 2022-06-01: B and B2 (2019-2021) are over, F's energy window closed on 2022-01-01.
    assert set(_windows(cli, "--active-on", "2022-06-01")) == {
        (C, "guarantee"),
        (C, "energy"),
        (E, "guarantee"),
        (E, "energy"),
        (H, "guarantee"),
        (H, "energy"),
    }
    assert set(_windows(cli, "--uscc", F, "--active-on", "2021-12-31")) == {(F, "energy")}
    assert set(_windows(cli, "--uscc", F, "--active-on", "2022-01-01")) == set()
    assert set(_windows(cli, "--uscc", E, "--active-on", "2024-01-01")) == set()


# Operational failures and bad settings ----------------------------------------------------------


@pytest.mark.slow
def test_an_unreachable_database_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli("postgresql://postgres@127.0.0.1:1/nope?connect_timeout=2", capsys)
    result = cli.run("awards", "--json")
    assert result.code == 3
    assert result.out == ""


def test_a_missing_or_foreign_sqlite_file_is_no_ledger_and_nothing_is_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("no/such/dir/ledger.db", "demo-ledgr.db"):
        cli = Cli(f"sqlite:///{tmp_path}/{name}", capsys)
        result = cli.run("awards", "--json")
        assert result.code == 2 and result.out == ""
        assert "no ledger at" in result.err and "import-register --baseline" in result.err
        assert not (tmp_path / name).exists()
    (tmp_path / "notes.txt").write_text("not a database " * 100)
    result = Cli(f"sqlite:///{tmp_path}/notes.txt", capsys).run("awards")
    assert result.code == 2 and "not a SQLite database" in result.err


def test_a_bare_command_in_an_empty_folder_makes_no_ledger_db(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEDGER_DATABASE_URL", raising=False)
    assert main(["awards"]) == 2
    assert "no ledger at sqlite:///ledger.db" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_told_apart_from_a_server_down_at_once(
    capsys: pytest.CaptureFixture[str], postgres_server: Any
) -> None:
    import time

    base = postgres_server.admin_url.rsplit("/", 1)[0]
    t0 = time.monotonic()
    missing = Cli(f"{base}/ledger_tpyo", capsys).run("awards")
    assert missing.code == 2 and "database 'ledger_tpyo' does not exist" in missing.err
    assert time.monotonic() - t0 < 2
    down = Cli("postgresql://postgres@127.0.0.1:1/ledger?connect_timeout=2", capsys).run("awards")
    assert down.code == 3 and "does not answer" in down.err


@pytest.mark.parametrize("url", ["mysql://root@localhost/ledger", "ledger.db", "sqlite://"])
def test_a_bad_database_url_is_exit_2(capsys: pytest.CaptureFixture[str], url: str) -> None:
    result = Cli(url, capsys).run("awards", "--json")
    assert result.code == 2
    assert result.err


def test_the_same_file_with_the_baseline_flag_changed_is_refused_and_says_why(
    cli: Cli, tmp_path: Path
) -> None:
    path = write_year(tmp_path, 2020)
    import_ok(cli, path, 2020, baseline=True)
    again = cli.import_year(path, 2020)
    assert again.code == 2
    assert "--baseline: " in again.err and "repeat the import as the baseline" in again.err
    assert cli.import_year(path, 2020, baseline=True).json()["replay"] is True
