"""Corrections: the bureau re-issues an imported year; the ledger appends, re-derives and reports.

The scenario below is worked by hand from the policy (晋办发〔2020〕38号 (四)/(五), DOMAIN.md default
reading: retention years counted after the entry year; paid the fiscal year after the decision).

Baseline 2020. Original registers:
    A  2020-2024 (an old firm: no awards)
    B  enters 2021, on 2022-2024   -> first_entry/2021, retention_2y/2023, retention_3y/2024
    D  enters 2022, on 2023-2024   -> first_entry/2022, retention_2y/2024
    E  enters 2021, on 2022-2024   -> first_entry/2021, retention_2y/2023, retention_3y/2024
    G  enters 2021 in 小店区 (Taiyuan 140100), on 2022-2024 in the same place
Paid before the correction: B first_entry/2021 in full, E first_entry/2021 in full (300,000 yuan),
D first_entry/2022 100,000 yuan of 300,000.

The bureau re-issues 2021: D was on it (growth), E was not, G was in 新荣区 (Datong 140200).
    D now enters 2021: first_entry/2021, retention_2y/2023, retention_3y/2024 are newly owed
      (arrears); first_entry/2022 is no longer earned and 100,000 yuan was paid against it
      (recovery due 100,000); retention_2y/2024 is no longer earned, unpaid (revoked).
    E now enters 2022: first_entry/2022 and retention_2y/2024 are newly owed; first_entry/2021
      was paid in full (recovery due 300,000); retention_2y/2023 and retention_3y/2024 revoked.
    G keeps its awards; its 2021 award now counts for Datong.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, correct, pay, recover, ref_uscc, write_register

A, B, D, E, G = (ref_uscc(n) for n in (101, 102, 104, 105, 107))
FE, R2, R3 = 30_000_000, 5_000_000, 10_000_000  # fen: 300,000 / 50,000 / 100,000 yuan


def originals() -> dict[int, list[Firm]]:
    return {
        2020: [Firm(A)],
        2021: [Firm(A), Firm(B), Firm(E), Firm(G)],
        2022: [Firm(A), Firm(B), Firm(D), Firm(E), Firm(G)],
        2023: [Firm(A), Firm(B), Firm(D), Firm(E), Firm(G)],
        2024: [Firm(A), Firm(B), Firm(D), Firm(E), Firm(G)],
    }


CORRECTED_2021 = [Firm(A), Firm(B), Firm(D), Firm(G, region_code="140212")]


@pytest.fixture
def ledger(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(db_url, capsys)
    for year, rows in originals().items():
        result = cli.import_year(
            write_register(tmp_path / f"{year}.csv", rows), year, baseline=year == 2020
        )
        assert result.code == 0, result.err
    pay(cli, f"{B}/first_entry/2021", "GK-B1", FE, "2022-03-01")
    pay(cli, f"{E}/first_entry/2021", "GK-E1", FE, "2022-03-01")
    pay(cli, f"{D}/first_entry/2022", "GK-D1", 10_000_000, "2023-04-01")
    return cli


def awards(cli: Cli, *args: str) -> dict[str, tuple[int, int, str]]:
    return {
        a["entitlement_id"]: (a["amount_fen"], a["paid_fen"], a["status"])
        for a in cli.awards(*args)
    }


BEFORE = {
    f"{B}/first_entry/2021": (FE, FE, "paid"),
    f"{B}/retention_2y/2023": (R2, 0, "due"),
    f"{B}/retention_3y/2024": (R3, 0, "due"),
    f"{D}/first_entry/2022": (FE, 10_000_000, "partially_paid"),
    f"{D}/retention_2y/2024": (R2, 0, "due"),
    f"{E}/first_entry/2021": (FE, FE, "paid"),
    f"{E}/retention_2y/2023": (R2, 0, "due"),
    f"{E}/retention_3y/2024": (R3, 0, "due"),
    f"{G}/first_entry/2021": (FE, 0, "due"),
    f"{G}/retention_2y/2023": (R2, 0, "due"),
    f"{G}/retention_3y/2024": (R3, 0, "due"),
}
AFTER = {
    **{k: v for k, v in BEFORE.items() if not k.startswith((D, E))},
    f"{D}/first_entry/2021": (FE, 0, "due"),
    f"{D}/retention_2y/2023": (R2, 0, "due"),
    f"{D}/retention_3y/2024": (R3, 0, "due"),
    f"{D}/first_entry/2022": (FE, 10_000_000, "recovery_due"),
    f"{D}/retention_2y/2024": (R2, 0, "revoked"),
    f"{E}/first_entry/2022": (FE, 0, "due"),
    f"{E}/retention_2y/2024": (R2, 0, "due"),
    f"{E}/first_entry/2021": (FE, FE, "recovery_due"),
    f"{E}/retention_2y/2023": (R2, 0, "revoked"),
    f"{E}/retention_3y/2024": (R3, 0, "revoked"),
}


def test_a_correction_reports_arrears_revocations_and_recoveries_worked_by_hand(
    ledger: Cli, tmp_path: Path
) -> None:
    assert awards(ledger) == BEFORE
    before = ledger.ok_json("awards")["known_at"]
    result = correct(ledger, write_register(tmp_path / "2021-c.csv", CORRECTED_2021), 2021)
    assert result.code == 0, result.err
    report = result.json()
    assert (report["replay"], sorted(report["firms"])) == (False, sorted([D, E, G]))
    assert {
        (c["entitlement_id"], c["amount_fen"], c["due_fiscal_year"]) for c in report["arrears"]
    } == {
        (f"{D}/first_entry/2021", FE, 2022),
        (f"{D}/retention_2y/2023", R2, 2024),
        (f"{D}/retention_3y/2024", R3, 2025),
        (f"{E}/first_entry/2022", FE, 2023),
        (f"{E}/retention_2y/2024", R2, 2025),
    }
    assert {c["entitlement_id"] for c in report["revoked"]} == {
        f"{D}/retention_2y/2024",
        f"{E}/retention_2y/2023",
        f"{E}/retention_3y/2024",
    }
    assert {
        (c["entitlement_id"], c["paid_fen"], c["recover_fen"]) for c in report["recovery_due"]
    } == {
        (f"{D}/first_entry/2022", 10_000_000, 10_000_000),
        (f"{E}/first_entry/2021", FE, FE),
    }
    assert awards(ledger) == AFTER
    # The past is not edited: asked as of the commit before the correction, the same answer.
    assert awards(ledger, "--known-at", f"@{before['position']}") == BEFORE
    assert awards(ledger, "--known-at", before["recorded_at"]) == BEFORE

    # G's first-entry award moved from Taiyuan to Datong, before and after.
    def cities(*args: str) -> dict[str, str]:
        return {a["entitlement_id"]: a["city_code"] for a in ledger.awards(*args)}

    assert cities("--known-at", f"@{before['position']}")[f"{G}/first_entry/2021"] == "140100"
    assert cities()[f"{G}/first_entry/2021"] == "140200"
    # Fiscal 2022 (awards decided on 2021) by city: B and now D in Taiyuan, G in Datong; E's
    # revoked award is no longer counted but its 300,000 yuan are due back.
    due_2022 = ledger.listing("totals", "--by", "city", "--fiscal-year", "2022")
    assert [
        (r["city_code"], r["count"], r["entitled_fen"], r["paid_fen"], r["recovery_due_fen"])
        for r in due_2022
    ] == [("140100", 2, 2 * FE, FE, FE), ("140200", 1, FE, 0, 0)]


def test_register_and_enterprise_known_before_and_after_the_correction(
    ledger: Cli, tmp_path: Path
) -> None:
    before = ledger.ok_json("register", "--year", "2021")["known_at"]["position"]
    assert correct(ledger, write_register(tmp_path / "2021-c.csv", CORRECTED_2021), 2021).code == 0

    def register(year: int, *args: str) -> dict[str, tuple[str, bool]]:
        return {
            r["uscc"]: (r["kind"], r["first_entry"])
            for r in ledger.listing("register", "--year", str(year), *args)
        }

    old = f"@{before}"
    assert register(2021, "--known-at", old) == {
        A: ("retained", False),
        B: ("entered", True),
        E: ("entered", True),
        G: ("entered", True),
    }
    assert register(2021) == {
        A: ("retained", False),
        B: ("entered", True),
        D: ("entered", True),
        G: ("entered", True),
    }
    # Later years re-derived: D's 2022 is now a retention, E's 2022 its first entry.
    assert (register(2022, "--known-at", old)[D], register(2022)[D]) == (
        ("entered", True),
        ("retained", False),
    )
    assert (register(2022, "--known-at", old)[E], register(2022)[E]) == (
        ("retained", False),
        ("entered", True),
    )

    # E's windows open with its first entry: 2021 as known then, 2022 now.
    def windows(*args: str) -> set[tuple[str, str]]:
        return {
            (w["window"], w["starts_on"]) for w in ledger.listing("windows", "--uscc", E, *args)
        }

    assert windows("--known-at", old) == {("guarantee", "2021-01-01"), ("energy", "2021-01-01")}
    assert windows() == {("guarantee", "2022-01-01"), ("energy", "2022-01-01")}
    assert windows("--as-of", "2021-12-31") == set()  # not begun yet, as known now
    # Valid time: nobody is on the 2021 register as of a day in 2020.
    assert register(2021, "--as-of", "2020-12-31") == {}

    then = ledger.ok_json("enterprise", E, "--known-at", old)
    now = ledger.ok_json("enterprise", E)
    assert (then["register_years"], then["first_entry_year"]) == ([2021, 2022, 2023, 2024], 2021)
    assert (now["register_years"], now["first_entry_year"]) == ([2022, 2023, 2024], 2022)
    statuses = {e["entitlement_id"]: e["status"] for e in now["entitlements"]}
    assert statuses == {k: v[2] for k, v in AFTER.items() if k.startswith(E)}
    # As of mid-2022 (valid time), as known now: only awards decided by 2022 exist.
    mid = ledger.ok_json("enterprise", E, "--as-of", "2022-06-30")
    assert {e["entitlement_id"] for e in mid["entitlements"]} == {
        f"{E}/first_entry/2021",
        f"{E}/first_entry/2022",
    }


def test_recovery_is_recorded_once_and_never_exceeds_what_was_paid(
    ledger: Cli, tmp_path: Path
) -> None:
    assert correct(ledger, write_register(tmp_path / "2021-c.csv", CORRECTED_2021), 2021).code == 0
    revoked = f"{E}/first_entry/2021"
    # Nothing more is paid against a revoked award.
    refused = ledger.run(
        "record-payment",
        f"{D}/first_entry/2022",
        "--ref",
        "GK-X",
        "--amount-fen",
        "1",
        "--paid-on",
        "2024-01-02",
    )
    assert refused.code == 2 and "revoked" in refused.err
    # Only a revoked award is recovered.
    assert recover(ledger, f"{B}/first_entry/2021", "TH-0", 100, "2024-01-02").code == 2

    first = recover(ledger, revoked, "TH-1", 20_000_000, "2024-02-01")
    assert first.code == 0, first.err
    assert (first.json()["recovered_fen"], first.json()["replay"]) == (20_000_000, False)
    assert awards(ledger)[revoked] == (FE, FE, "recovery_due")
    replay = recover(ledger, revoked, "TH-1", 20_000_000, "2024-02-01")
    assert (replay.code, replay.json()["replay"], replay.json()["recovered_fen"]) == (
        0,
        True,
        20_000_000,
    )
    reused = recover(ledger, revoked, "TH-1", 10_000_000, "2024-02-01")
    assert reused.code == 2 and "used once" in reused.err
    over = recover(ledger, revoked, "TH-2", 10_000_001, "2024-03-01")
    assert over.code == 2 and "at most 10000000" in over.err
    assert recover(ledger, revoked, "TH-2", 10_000_000, "2024-03-01").code == 0
    assert awards(ledger)[revoked] == (FE, FE, "recovered")
    # As of a day between the two recoveries, the money was still partly out.
    assert awards(ledger, "--as-of", "2024-02-15")[revoked] == (FE, FE, "recovery_due")
    cash = ledger.listing("totals", "--basis", "cash", "--fiscal-year", "2024")
    assert sum(r["recovered_fen"] for r in cash) == FE

    doc = ledger.ok_json("explain", revoked)
    assert (doc["status"], doc["paid_fen"], doc["recovered_fen"]) == ("recovered", FE, FE)
    assert [r["recovery_ref"] for r in doc["recoveries"]] == ["TH-1", "TH-2"]
    cause = doc["revoked_by"]
    assert (cause["year"], cause["reason"]) == (2021, "统计局复核")
    trail = {t["position"]: t for t in ledger.ok_json("audit-trail", E)}
    assert trail[cause["position"]]["type"] == "RegisterYearCorrected"
    assert ledger.ok_json("explain", f"{B}/first_entry/2021")["revoked_by"] is None


def test_an_identical_reissue_changes_nothing_and_bad_rows_change_nothing(
    ledger: Cli, tmp_path: Path
) -> None:
    head = ledger.ok_json("awards")["known_at"]["position"]
    same = correct(ledger, tmp_path / "2021.csv", 2021)  # the file already imported
    assert (same.code, same.json()["replay"]) == (0, True)
    reordered = write_register(tmp_path / "2021-r.csv", list(reversed(originals()[2021])))
    assert correct(ledger, reordered, 2021).json()["replay"] is True
    # An empty size class says nothing new, as on import: the same register.
    sized = [Firm(A), Firm(B, size_class="small"), Firm(E), Firm(G)]
    assert correct(ledger, write_register(tmp_path / "s.csv", sized), 2021).code == 0
    blank = write_register(tmp_path / "2021-blank.csv", [Firm(A), Firm(B), Firm(E), Firm(G)])
    assert correct(ledger, blank, 2021).json()["replay"] is True
    head = ledger.ok_json("awards")["known_at"]["position"]
    bad = write_register(tmp_path / "2021-b.csv", [*CORRECTED_2021, "not,a,row"])
    rejected = correct(ledger, bad, 2021)
    assert rejected.code == 2 and "2021-b.csv:6: row:" in rejected.err
    assert ledger.ok_json("awards")["known_at"]["position"] == head
    assert awards(ledger) == BEFORE
    missing = ledger.run(
        "import-register", "--year", "2021", str(tmp_path / "2021-c.csv"), "--correction", "--json"
    )
    assert missing.code == 2 and "--reason" in missing.err
    not_imported = correct(ledger, write_register(tmp_path / "2025.csv", [Firm(A)]), 2025)
    assert not_imported.code == 2 and "has not been imported" in not_imported.err


def test_a_second_correction_restoring_the_original_earns_the_awards_again(
    ledger: Cli, tmp_path: Path
) -> None:
    assert correct(ledger, write_register(tmp_path / "2021-c.csv", CORRECTED_2021), 2021).code == 0
    back = correct(ledger, tmp_path / "2021.csv", 2021, "复核撤回")
    assert back.code == 0, back.err
    assert {c["entitlement_id"] for c in back.json()["recovery_due"]} == set()
    # What the first correction took away is owed again (paid in part or in full before it);
    # what it added is revoked again, unpaid.
    restored = awards(ledger)
    assert {k: v for k, v in restored.items() if v[2] != "revoked"} == BEFORE
    assert {k for k, v in restored.items() if v[2] == "revoked"} == set(AFTER) - set(BEFORE)
    assert {c["entitlement_id"] for c in back.json()["arrears"]} == {
        f"{D}/first_entry/2022",
        f"{D}/retention_2y/2024",
        f"{E}/first_entry/2021",
        f"{E}/retention_2y/2023",
        f"{E}/retention_3y/2024",
    }
