"""Designations in a ledger, on both stores, worked by hand from 晋财规建〔2025〕1号 (300,000 yuan
on first entry, 30% more for strategic emerging industries) and 38号 (300,000 / 50,000 /
100,000 yuan, no bonus):

- four firms, a 2024 and a 2025 first entrant each strategic emerging (SE) and not, through 2027,
  under 38号 and with the 2025 version adopted before and after their years are imported;
- a designation added late (arrears of the bonus) and revoked after payment (the excess to
  recover, then recovered), and `--known-at` before each giving the old answer;
- a firm designated before it is on any register; the validity period against the entry year;
- the refusals: bad lines listed, other dates under a granted document, several designations
  without `--of`; and the priority lists of (六) and (七).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support.helpers import ROOT, Cli, Firm, pay, recover, ref_uscc, write_register

from adapters.files.treasury_csv import write_treasury

BASE = ref_uscc(1)
SE24 = ref_uscc(241)  # 2024 entrant, strategic emerging
NO24 = ref_uscc(242)  # 2024 entrant, not
SE25 = ref_uscc(251)  # 2025 entrant, strategic emerging
NO25 = ref_uscc(252)  # 2025 entrant, not
P2025 = ROOT / "domain" / "policies" / "jincaiguijian-2025-1.toml"
YUAN = 100
SE = "strategic_emerging"
HEADER = "uscc,valid_from,valid_to,document"


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def registers(tmp_path: Path) -> dict[int, Path]:
    rows = {
        2023: [BASE],
        2024: [BASE, SE24, NO24],
        2025: [BASE, SE24, NO24, SE25, NO25],
        2026: [BASE, SE24, NO24, SE25, NO25],
        2027: [BASE, SE24, NO24, SE25, NO25],
    }
    return {y: write_register(tmp_path / f"{y}.csv", [Firm(u) for u in r]) for y, r in rows.items()}


def import_years(cli: Cli, files: dict[int, Path], years: range) -> None:
    for year in years:
        result = cli.import_year(files[year], year, baseline=year == 2023)
        assert result.code == 0, result.err


def designations(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def se_file(tmp_path: Path) -> Path:
    """SE24 certified from 2024, SE25 from March 2025 (open-ended)."""
    return designations(
        tmp_path,
        "se.csv",
        f"{SE24},2024-01-01,2026-12-31,晋发改高技〔2024〕12号",
        f"{SE25},2025-03-01,,晋发改高技〔2025〕7号",
    )


def revoke(cli: Cli, uscc: str, *args: str, kind: str = SE) -> Any:
    """`designation revoke` with the revoking document X and a reason, and `args` after."""
    return cli.run(
        "designation", "revoke", uscc, "--kind", kind, "--document", "X", "--reason", "r", *args
    )


def designate(cli: Cli, path: Path, kind: str = SE) -> Any:
    return cli.ok_json("import-designations", "--kind", kind, str(path))


def adopt(cli: Cli) -> Any:
    return cli.ok_json("policy", "adopt", str(P2025), "--reason", "晋财规建〔2025〕1号施行")


def amounts(cli: Cli, *args: str) -> dict[str, tuple[int, str, str]]:
    """entitlement id -> (amount in yuan, deciding version, status) as of the end of 2027."""
    return {
        a["entitlement_id"]: (a["amount_fen"] // YUAN, a["policy"], a["status"])
        for a in cli.awards("--as-of", "2027-12-31", *args)
    }


V38, V25 = "jinbanfa-2020-38", "jincaiguijian-2025-1"
UNDER_38 = {
    f"{SE24}/first_entry/2024": (300_000, V38, "due"),
    f"{SE24}/retention_2y/2026": (50_000, V38, "due"),
    f"{SE24}/retention_3y/2027": (100_000, V38, "due"),
    f"{NO24}/first_entry/2024": (300_000, V38, "due"),
    f"{NO24}/retention_2y/2026": (50_000, V38, "due"),
    f"{NO24}/retention_3y/2027": (100_000, V38, "due"),
    f"{SE25}/first_entry/2025": (300_000, V38, "due"),
    f"{SE25}/retention_2y/2027": (50_000, V38, "due"),
    f"{NO25}/first_entry/2025": (300_000, V38, "due"),
    f"{NO25}/retention_2y/2027": (50_000, V38, "due"),
}
"""38号 for every cohort: no bonus, whatever the designations."""
WITH_2025 = {
    **UNDER_38,
    # The 2025 cohort under the 2025 version: 300,000 x 1.3 = 390,000 for the SE firm; the
    # retention awards (kept by default, no bonus on them) under the 2025 version too.
    f"{SE25}/first_entry/2025": (390_000, V25, "due"),
    f"{SE25}/retention_2y/2027": (50_000, V25, "due"),
    f"{NO25}/first_entry/2025": (300_000, V25, "due"),
    f"{NO25}/retention_2y/2027": (50_000, V25, "due"),
}
"""The 2024 cohort keeps 38号 (no bonus for SE24)."""


def first_entry_totals(cli: Cli, fiscal_year: int) -> dict[str, Any]:
    """The `totals` row of the first-entry awards due in a fiscal year."""
    (row,) = [
        t
        for t in cli.listing("totals", "--fiscal-year", str(fiscal_year), "--as-of", "2027-12-31")
        if t["kind"] == "first_entry"
    ]
    return row


def audit_findings(cli: Cli, tmp_path: Path) -> list[dict[str, Any]]:
    """The `paid_above_entitlement` findings of a reconciliation on 2026-11-30, against a treasury
    file that holds exactly the ledger's payments."""
    payments = [
        (p["payment_ref"], p["entitlement_id"], p["amount_fen"], p["paid_on"])
        for p in cli.ok_json("enterprise", SE25, "--as-of", "2026-11-30")["payments"]
    ]
    treasury = tmp_path / "treasury.csv"
    write_treasury(
        treasury,
        [
            (ref, SE25, "山西测试制造有限公司", fen, date.fromisoformat(day), f"小升规奖励 {eid}")
            for ref, eid, fen, day in payments
        ],
    )
    out = tmp_path / "reports"
    done = cli.run(
        "reconcile", "--treasury", str(treasury), "--date", "2026-11-30", "--out", str(out),
        "--json",
    )  # fmt: skip
    assert done.code in (0, 1), done.err
    report = json.loads(Path(done.json()["report"]).read_text(encoding="utf-8"))
    return [f for f in report["findings"] if f["code"] == "paid_above_entitlement"]


def test_four_firms_under_38_then_the_2025_version_adopted_after_their_years(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2028))
    designate(cli, se_file(tmp_path))
    assert amounts(cli) == UNDER_38
    before = cli.ok_json("awards")["known_at"]["position"]
    report = adopt(cli)
    assert [
        (c["entitlement_id"], c["old_amount_fen"], c["new_amount_fen"])
        for c in report["amount_changed"]
    ] == [(f"{SE25}/first_entry/2025", 300_000 * YUAN, 390_000 * YUAN)]
    assert {c["entitlement_id"] for c in report["version_changed"]} == {
        f"{SE25}/retention_2y/2027",
        f"{NO25}/first_entry/2025",
        f"{NO25}/retention_2y/2027",
    }
    assert amounts(cli) == WITH_2025
    assert amounts(cli, "--known-at", f"@{before}") == UNDER_38
    # The award traces to the version, its clause, its base and the designation behind it.
    explained = cli.ok_json("explain", f"{SE25}/first_entry/2025")
    assert explained["policy"] == {"id": V25, "content_hash": report["content_hash"]}
    assert explained["base_fen"] == 300_000 * YUAN
    assert explained["bonuses"] == [
        {"designation": SE, "percent": 30, "documents": ["晋发改高技〔2025〕7号"]}
    ]
    assert [d["document"] for d in explained["designations"]] == ["晋发改高技〔2025〕7号"]
    (award,) = [
        a
        for a in cli.awards("--as-of", "2027-12-31")
        if a["entitlement_id"] == f"{SE25}/first_entry/2025"
    ]
    assert award["policy_hash"] == report["content_hash"]
    assert award["base_fen"] == 300_000 * YUAN
    assert award["bonuses"] == [{"designation": SE, "percent": 30}]


def test_the_2025_version_adopted_before_the_2025_register_decides_with_the_bonus(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2025))
    assert adopt(cli)["firms"] == []
    designate(cli, se_file(tmp_path))
    import_years(cli, files, range(2025, 2028))
    assert amounts(cli) == WITH_2025


def test_a_designation_added_late_is_arrears_and_revoked_after_payment_is_recovered(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2026))
    adopt(cli)
    eid = f"{SE25}/first_entry/2025"
    pay(cli, eid, "GK2026-001", 300_000 * YUAN, "2026-03-02")
    assert amounts(cli)[eid] == (300_000, V25, "paid")
    before = cli.ok_json("awards")["known_at"]["position"]
    # Certified late: the bonus is owed on top of what was paid (arrears of 90,000 yuan).
    late = designate(cli, se_file(tmp_path))
    assert late["granted"] == 2 and late["identified"] == []
    assert [
        (c["entitlement_id"], c["old_amount_fen"], c["new_amount_fen"], c["recover_fen"])
        for c in late["amount_changed"]
    ] == [(eid, 300_000 * YUAN, 390_000 * YUAN, 0)]
    assert amounts(cli)[eid] == (390_000, V25, "partially_paid")
    fy2026 = first_entry_totals(cli, 2026)
    # NO25's 300,000 (unpaid) and SE25's bonus, both due in fiscal 2026.
    assert fy2026["outstanding_fen"] == (300_000 + 90_000) * YUAN
    assert amounts(cli, "--known-at", f"@{before}")[eid] == (300_000, V25, "paid")
    pay(cli, eid, "GK2026-002", 90_000 * YUAN, "2026-06-01")
    assert amounts(cli)[eid] == (390_000, V25, "paid")
    paid = cli.ok_json("awards")["known_at"]["position"]
    # The certification is revoked: 300,000 is owed, 90,000 paid above it is to come back.
    revoked = cli.ok_json(
        "designation",
        "revoke",
        SE25,
        "--kind",
        SE,
        "--document",
        "晋发改撤〔2026〕1号",
        "--reason",
        "申报材料不实",
    )
    assert [
        (c["entitlement_id"], c["new_amount_fen"], c["paid_fen"], c["recover_fen"])
        for c in revoked["amount_changed"]
    ] == [(eid, 300_000 * YUAN, 390_000 * YUAN, 90_000 * YUAN)]
    assert amounts(cli)[eid] == (300_000, V25, "recovery_due")
    fy2026 = first_entry_totals(cli, 2026)
    # NO25's 300,000 still owed; SE25's excess to recover, not netted against it.
    assert fy2026["outstanding_fen"] == 300_000 * YUAN
    assert fy2026["recovery_due_fen"] == 90_000 * YUAN
    assert amounts(cli, "--known-at", f"@{paid}")[eid] == (390_000, V25, "paid")
    # The nightly reconciliation names the excess until it is back.
    assert [(f["subject"], f["amount_fen"]) for f in audit_findings(cli, tmp_path)] == [
        (eid, 90_000 * YUAN)
    ]
    # The same revocation again changes nothing; no more is paid; the excess comes back.
    again = cli.ok_json(
        "designation",
        "revoke",
        SE25,
        "--kind",
        SE,
        "--document",
        "晋发改撤〔2026〕1号",
        "--reason",
        "申报材料不实",
    )
    assert again["replay"] is True and again["position"] is None
    assert recover(cli, eid, "ZH-1", 90_000 * YUAN + 1, "2026-11-01").code == 2
    assert recover(cli, eid, "ZH-1", 90_000 * YUAN, "2026-11-01").code == 0
    assert amounts(cli)[eid] == (300_000, V25, "paid")
    assert audit_findings(cli, tmp_path) == []
    # The enterprise no longer holds it; the trail keeps both the grant and the revocation.
    view = cli.ok_json("enterprise", SE25, "--as-of", "2026-12-31")
    assert view["designations"] == []
    types = [e["type"] for e in cli.ok_json("audit-trail", SE25)]
    assert types.count("DesignationGranted") == 1 and types.count("DesignationRevoked") == 1
    # Importing the same file again does not grant the revoked designation again.
    replay = designate(cli, se_file(tmp_path))
    assert replay["replay"] is True and replay["revoked_earlier"] == 1 and replay["held"] == 1
    assert amounts(cli)[eid] == (300_000, V25, "paid")


def test_a_firm_designated_before_any_register_and_the_validity_against_the_entry_year(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2025))
    adopt(cli)
    ended, last_day = ref_uscc(253), ref_uscc(254)
    result = designate(
        cli,
        designations(
            tmp_path,
            "early.csv",
            f"{SE25},2025-03-01,,晋发改高技〔2025〕7号",
            # valid only until the year before its entry: no bonus
            f"{ended},2022-01-01,2024-12-31,晋发改高技〔2022〕3号",
            # valid from the entry year's last day: valid on a day of it, so the bonus
            f"{last_day},2025-12-31,2028-12-30,晋发改高技〔2025〕99号",
        ),
    )
    assert result["identified"] == sorted([SE25, ended, last_day])
    view = cli.ok_json("enterprise", SE25, "--as-of", "2025-01-15")
    assert view["register_years"] == [] and view["region_code"] == ""
    assert [(d["document"], d["valid"]) for d in view["designations"]] == [
        ("晋发改高技〔2025〕7号", False)
    ]
    assert [e["type"] for e in cli.ok_json("audit-trail", SE25)] == [
        "Identified",
        "DesignationGranted",
    ]
    rows = [SE24, NO24, SE25, ended, last_day, BASE]
    write_register(tmp_path / "2025b.csv", [Firm(u) for u in rows])
    assert cli.import_year(tmp_path / "2025b.csv", 2025).code == 0
    got = amounts(cli)
    assert got[f"{SE25}/first_entry/2025"] == (390_000, V25, "due")
    assert got[f"{ended}/first_entry/2025"] == (300_000, V25, "due")
    assert got[f"{last_day}/first_entry/2025"] == (390_000, V25, "due")
    view = cli.ok_json("enterprise", SE25, "--as-of", "2025-06-01")
    assert view["name"] == "山西测试制造有限公司" and view["region_code"] == "140105"
    assert view["first_entry_year"] == 2025
    assert [d["valid"] for d in view["designations"]] == [True]


def test_bad_files_and_refusals_change_nothing(cli: Cli, tmp_path: Path) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2025))
    designate(cli, se_file(tmp_path))
    head = cli.ok_json("verify")["head"]
    bad = designations(
        tmp_path,
        "bad.csv",
        f"{NO24},2024-02-30,,D1",
        f"{NO24[:-1]}X,2024-01-01,,D2",
        f"{NO24},2024-05-01,2024-04-01,D3",
        f"{NO24},2024-01-01,,",
        f"{NO24},2024-01-01,,D\x1b4",
        f"{SE24},2024-01-01,2027-12-31,晋发改高技〔2024〕12号",  # granted with other dates
        f"{NO24},2024-01-01,,D6",
        f"{NO24},2024-02-01,,D6",  # the same document twice in the file
    )
    result = cli.run("import-designations", "--kind", SE, str(bad))
    assert result.code == 2
    lines = result.err.splitlines()
    assert [line.split(": ")[0] for line in lines[:-1]] == [
        f"{bad}:2",
        f"{bad}:3",
        f"{bad}:4",
        f"{bad}:5",
        f"{bad}:6",
        f"{bad}:7",
        f"{bad}:9",
    ]
    assert f"{bad}:2: valid_from: 2024-02-30 is not a real date" in result.err
    assert f"{bad}:3: uscc:" in result.err
    assert f"{bad}:4: valid_to: 2024-04-01 is before valid_from 2024-05-01" in result.err
    assert f"{bad}:5: document: missing" in result.err
    assert f"{bad}:6: document: contains a control character (U+001B ESC)" in result.err
    assert f"{bad}:7: document:" in result.err and "revoke it" in result.err
    assert f"{bad}:9: document:" in result.err and "on line 8 already" in result.err
    assert "nothing was recorded" in lines[-1]
    assert cli.ok_json("verify")["head"] == head
    # The same file again: nothing recorded.
    assert designate(cli, se_file(tmp_path))["replay"] is True
    assert cli.ok_json("verify")["head"] == head
    # Two designations of a kind: the revocation names the one it voids.
    designate(cli, designations(tmp_path, "more.csv", f"{SE24},2026-01-01,,晋发改高技〔2026〕2号"))
    several = revoke(cli, SE24)
    assert several.code == 2 and "--of DOC" in several.err
    unknown = revoke(cli, SE24, "--of", "no-such")
    assert unknown.code == 2 and "no strategic_emerging designation under 'no-such'" in unknown.err
    no_kind = revoke(cli, SE24, kind="tech_sme")
    assert no_kind.code == 2 and "holds no tech_sme designation" in no_kind.err
    head = cli.ok_json("verify")["head"]
    done = revoke(cli, SE24, "--of", "晋发改高技〔2026〕2号", "--json")
    assert done.code == 0, done.err
    ok = done.json()
    assert ok["position"] is not None and ok["amount_changed"] == []
    assert cli.ok_json("verify")["head"] != head
    held = cli.ok_json("enterprise", SE24, "--as-of", "2025-01-01")["designations"]
    assert [d["document"] for d in held] == ["晋发改高技〔2024〕12号"]


def test_priority_lists_of_clauses_six_and_seven(cli: Cli, tmp_path: Path) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2028))
    # Tech SMEs: SE24 valid all along, NO25 until mid-2026, BASE (baseline, no first entry).
    designate(
        cli,
        designations(
            tmp_path,
            "tech.csv",
            f"{SE24},2024-01-01,,国科火字〔2024〕1号",
            f"{NO25},2025-01-01,2026-06-30,国科火字〔2025〕2号",
            f"{BASE},2023-01-01,,国科火字〔2023〕3号",
        ),
        "tech_sme",
    )

    def listed(which: str, day: str, *args: str) -> list[str]:
        doc = cli.ok_json("priority", which, "--on", day, *args)
        return [f["uscc"] for f in doc["firms"]]

    # (七): first entrants in the entry year and the two after it.
    assert listed("upgrade", "2026-05-01") == sorted([SE24, NO24, SE25, NO25])
    assert listed("upgrade", "2027-01-01") == sorted([SE25, NO25])
    assert listed("upgrade", "2026-05-01", "--city", "140200") == []
    # (六): and a tech_sme designation valid that day.
    assert listed("science", "2026-05-01") == sorted([SE24, NO25])
    assert listed("science", "2026-07-01") == [SE24]
    assert listed("science", "2027-01-01") == []
    doc = cli.ok_json("priority", "science", "--on", "2026-05-01")
    (first,) = [f for f in doc["firms"] if f["uscc"] == SE24]
    assert (first["window_from"], first["window_to"], first["clause"]) == (2024, 2026, "(六)")
    assert first["tech_sme_documents"] == ["国科火字〔2024〕1号"]


def test_priority_csv_in_gb18030(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'l.db'}"
    files = registers(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "adapters.main", *args, "--db", url],
            capture_output=True,
            cwd=ROOT,
            check=True,
        )

    run("import-register", "--year", "2023", str(files[2023]), "--baseline")
    run("import-register", "--year", "2024", str(files[2024]))
    out = run("priority", "upgrade", "--on", "2024-06-01", "--csv", "--encoding", "gb18030")
    lines = out.stdout.decode("gb18030").splitlines()
    assert lines[0].startswith("uscc,name,region_code,city_code,first_entry_year")
    assert [line.split(",")[:2] for line in lines[1:]] == [
        [uscc, "山西测试制造有限公司"] for uscc in sorted([SE24, NO24])
    ]


@pytest.mark.parametrize("after", [2023, 2024, 2025, 2027])
def test_designating_at_any_moment_equals_designating_first(
    after: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The certification imported after any register year gives the awards it gives imported
    before them all (exhaustively over the moments, on the embedded store)."""
    files = registers(tmp_path)
    first = Cli(f"sqlite:///{tmp_path / 'first.db'}", capsys)
    import_years(first, files, range(2023, 2024))
    adopt(first)
    designate(first, se_file(tmp_path))
    import_years(first, files, range(2024, 2028))
    expected = amounts(first)
    assert expected == WITH_2025
    later = Cli(f"sqlite:///{tmp_path / 'later.db'}", capsys)
    import_years(later, files, range(2023, 2024))
    adopt(later)
    import_years(later, files, range(2024, after + 1))
    designate(later, se_file(tmp_path))
    import_years(later, files, range(after + 1, 2028))
    assert amounts(later) == expected


def shaped(tmp_path: Path, pid: str, base_yuan: int, percent: int) -> Path:
    """The 2025 version reshaped as another province writes the award: `base_yuan` on first
    entry and `percent` more for a strategic emerging firm."""
    text = (
        P2025.read_text("utf-8")
        .replace('id = "jincaiguijian-2025-1"', f'id = "{pid}"')
        .replace("amount_fen = 30_000_000", f"amount_fen = {base_yuan * YUAN}")
        .replace("percent = 30", f"percent = {percent}")
    )
    path = tmp_path / f"{pid}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yunnans_shape_adopted_retroactively_pays_200000_or_300000(
    cli: Cli, tmp_path: Path
) -> None:
    """Yunnan: 200,000 yuan, 300,000 for strategic emerging industries (+50%)."""
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2028))
    designate(cli, se_file(tmp_path))
    report = cli.ok_json(
        "policy", "adopt", str(shaped(tmp_path, "yunnan-shape", 200_000, 50)), "--reason", "test"
    )
    # 300,000 x 1.5 = 300,000 for SE25: same amount under another version; NO25 loses 100,000.
    assert [
        (c["entitlement_id"], c["old_amount_fen"] // YUAN, c["new_amount_fen"] // YUAN)
        for c in report["amount_changed"]
    ] == [(f"{NO25}/first_entry/2025", 300_000, 200_000)]
    got = amounts(cli)
    assert got[f"{SE25}/first_entry/2025"] == (300_000, "yunnan-shape", "due")
    assert got[f"{NO25}/first_entry/2025"] == (200_000, "yunnan-shape", "due")
    assert got[f"{SE24}/first_entry/2024"] == (300_000, V38, "due")  # its cohort keeps 38号
    assert {c["entitlement_id"] for c in report["version_changed"]} == {
        f"{SE25}/first_entry/2025",
        f"{SE25}/retention_2y/2027",
        f"{NO25}/retention_2y/2027",
    }
