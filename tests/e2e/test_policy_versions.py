"""Policy versions in a ledger, on both stores, worked by hand: a 2024 and a 2025 first entrant
through 2027 under 38号, the 2025 version adopted after or before their years are imported, a
retroactive version that lowers an award already paid (the excess recovered) and takes away
awards (revoked, or to recover if paid), `--known-at` before an adoption, and the refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.helpers import HASH_38, ROOT, Cli, Firm, pay, recover, ref_uscc, write_register

BASE = ref_uscc(1)
F2024 = ref_uscc(24)
F2025 = ref_uscc(25)
P2025 = ROOT / "domain" / "policies" / "jincaiguijian-2025-1.toml"
YUAN = 100


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def registers(tmp_path: Path) -> dict[int, Path]:
    """2023 (baseline) to 2027: the 2024 entrant from 2024 on, the 2025 entrant from 2025 on."""
    rows = {
        2023: [Firm(BASE)],
        2024: [Firm(BASE), Firm(F2024)],
        2025: [Firm(BASE), Firm(F2024), Firm(F2025)],
        2026: [Firm(BASE), Firm(F2024), Firm(F2025)],
        2027: [Firm(BASE), Firm(F2024), Firm(F2025)],
    }
    return {y: write_register(tmp_path / f"{y}.csv", r) for y, r in rows.items()}


def import_years(cli: Cli, files: dict[int, Path], years: range) -> None:
    for year in years:
        result = cli.import_year(files[year], year, baseline=year == 2023)
        assert result.code == 0, result.err


def lean(tmp_path: Path) -> Path:
    """A test version from 2025: 200,000 yuan on entry and no retention awards."""
    text = (
        P2025.read_text("utf-8")
        .replace('id = "jincaiguijian-2025-1"', 'id = "test-2025-lean"')
        .replace("amount_fen = 30_000_000", "amount_fen = 20_000_000")
    )
    head, _, _ = text.partition("[[retention.awards]]")
    rest = text.partition("[payment]")[2]
    path = tmp_path / "lean.toml"
    path.write_text(head.replace("[retention]", "[retention]\nawards = []") + "[payment]" + rest)
    return path


def amounts(cli: Cli, *args: str) -> dict[str, tuple[int, str, str]]:
    """entitlement id -> (amount in yuan, deciding version, status), as of the end of 2027 (the
    last register year: today's date would leave its awards out)."""
    return {
        a["entitlement_id"]: (a["amount_fen"] // YUAN, a["policy"], a["status"])
        for a in cli.awards("--as-of", "2027-12-31", *args)
    }


def adopt(cli: Cli, path: Path, reason: str = "省财政厅通知") -> Any:
    return cli.ok_json("policy", "adopt", str(path), "--reason", reason)


def test_the_2025_version_adopted_after_the_years_decides_the_2025_cohort_only(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2028))
    before = amounts(cli)
    assert before == {
        f"{F2024}/first_entry/2024": (300_000, "jinbanfa-2020-38", "due"),
        f"{F2024}/retention_2y/2026": (50_000, "jinbanfa-2020-38", "due"),
        f"{F2024}/retention_3y/2027": (100_000, "jinbanfa-2020-38", "due"),
        f"{F2025}/first_entry/2025": (300_000, "jinbanfa-2020-38", "due"),
        f"{F2025}/retention_2y/2027": (50_000, "jinbanfa-2020-38", "due"),
    }
    position_before = cli.ok_json("awards")["known_at"]["position"]
    report = adopt(cli, P2025)
    # Same amounts (no designation): the 2025 cohort's awards change deciding version only.
    assert report["firms"] == [F2025]
    assert report["amount_changed"] == []
    assert report["arrears"] == report["revoked"] == report["recovery_due"] == []
    assert [c["entitlement_id"] for c in report["version_changed"]] == [
        f"{F2025}/first_entry/2025",
        f"{F2025}/retention_2y/2027",
    ]
    after = amounts(cli)
    assert {k: v for k, v in after.items() if k.startswith(F2024)} == {
        k: v for k, v in before.items() if k.startswith(F2024)
    }
    assert after[f"{F2025}/first_entry/2025"] == (300_000, "jincaiguijian-2025-1", "due")
    # What the ledger said before the adoption, it still says at that position.
    assert amounts(cli, "--known-at", f"@{position_before}") == before
    explained = cli.ok_json("explain", f"{F2025}/first_entry/2025")
    assert explained["policy"]["id"] == "jincaiguijian-2025-1"
    assert explained["policy"]["content_hash"] == report["content_hash"]
    # The same content again: nothing changes.
    again = adopt(cli, P2025, "again")
    assert again["replay"] is True and again["position"] is None
    listed = cli.ok_json("policy", "list")["policies"]
    assert [(p["id"], p["applies_from"]) for p in listed] == [
        ("jinbanfa-2020-38", None),
        ("jincaiguijian-2025-1", 2025),
    ]
    assert listed[1]["reason"] == "省财政厅通知"
    assert cli.ok_json("policy", "list", "--known-at", f"@{position_before}")["policies"] == [
        listed[0]
    ]


def test_a_retroactive_version_lowers_a_paid_award_and_takes_away_others(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2028))
    pay(cli, f"{F2025}/first_entry/2025", "GK2026-001", 300_000 * YUAN, "2026-03-02")
    pay(cli, f"{F2025}/retention_2y/2027", "GK2026-002", 20_000 * YUAN, "2026-03-02")
    report = adopt(cli, lean(tmp_path), "调整奖励标准")
    # 300,000 -> 200,000 yuan, paid in full: 100,000 to come back; the 2027 retention award is
    # no longer given and 20,000 of it was paid: all of that to come back.
    assert report["amount_changed"] == [
        {
            "entitlement_id": f"{F2025}/first_entry/2025",
            "uscc": F2025,
            "kind": "first_entry",
            "due_fiscal_year": 2026,
            "old_amount_fen": 300_000 * YUAN,
            "new_amount_fen": 200_000 * YUAN,
            "old_policy": "jinbanfa-2020-38",
            "new_policy": "test-2025-lean",
            "paid_fen": 300_000 * YUAN,
            "recover_fen": 100_000 * YUAN,
        }
    ]
    assert [(c["entitlement_id"], c["recover_fen"]) for c in report["recovery_due"]] == [
        (f"{F2025}/retention_2y/2027", 20_000 * YUAN)
    ]
    assert report["revoked"] == report["arrears"] == []
    after = amounts(cli)
    assert after[f"{F2025}/first_entry/2025"] == (200_000, "test-2025-lean", "recovery_due")
    assert after[f"{F2025}/retention_2y/2027"][2] == "recovery_due"
    assert after[f"{F2024}/retention_3y/2027"] == (100_000, "jinbanfa-2020-38", "due")
    # The totals count the excess as to recover, not as owed.
    (fy2026,) = [
        t for t in cli.listing("totals", "--fiscal-year", "2026") if t["kind"] == "first_entry"
    ]
    # (F2024's first entry award is due in 2025: F2025's alone is due in 2026.)
    assert fy2026["entitled_fen"] == 200_000 * YUAN
    assert fy2026["outstanding_fen"] == 0  # paid above the amount: nothing owed, not -100,000
    assert fy2026["recovery_due_fen"] == 100_000 * YUAN
    # No more is paid against it; the excess comes back, not a fen more.
    refused = cli.run(
        "record-payment",
        f"{F2025}/first_entry/2025",
        "--ref",
        "GK2026-003",
        "--amount-fen",
        "1",
        "--paid-on",
        "2026-04-01",
    )
    assert refused.code == 2 and "overpayment" in refused.err
    too_much = recover(cli, f"{F2025}/first_entry/2025", "ZH-1", 100_000 * YUAN + 1, "2026-05-01")
    assert too_much.code == 2 and "at most 10000000 fen" in too_much.err
    assert recover(cli, f"{F2025}/first_entry/2025", "ZH-1", 100_000 * YUAN, "2026-05-01").code == 0
    assert amounts(cli)[f"{F2025}/first_entry/2025"] == (200_000, "test-2025-lean", "paid")
    (fy2026,) = [
        t for t in cli.listing("totals", "--fiscal-year", "2026") if t["kind"] == "first_entry"
    ]
    assert fy2026["recovery_due_fen"] == 0
    # The revoked award says what took it away.
    explained = cli.run("explain", f"{F2025}/retention_2y/2027")
    assert "revoked by the adoption of policy version test-2025-lean" in explained.out


@pytest.mark.parametrize("adopted_after", [2024, 2025, 2026, 2027])
def test_adopting_a_version_then_importing_equals_importing_with_it_adopted_first(
    adopted_after: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every moment of adoption between the imports (exhaustively, on the embedded store): the
    awards at the end are the same as with the version adopted before any 2025 entrant."""
    files = registers(tmp_path)
    first = Cli(f"sqlite:///{tmp_path / 'first.db'}", capsys)
    import_years(first, files, range(2023, 2025))
    assert adopt(first, lean(tmp_path))["firms"] == []  # no 2025 entrant yet
    import_years(first, files, range(2025, 2028))
    expected = amounts(first)
    assert expected[f"{F2025}/first_entry/2025"] == (200_000, "test-2025-lean", "due")
    assert f"{F2025}/retention_2y/2027" not in expected

    later = Cli(f"sqlite:///{tmp_path / 'later.db'}", capsys)
    import_years(later, files, range(2023, adopted_after + 1))
    adopt(later, lean(tmp_path))
    import_years(later, files, range(adopted_after + 1, 2028))
    # An award the version took away stays listed as revoked (nothing was paid): the rest agree.
    got = amounts(later)
    assert {k: v for k, v in got.items() if v[2] != "revoked"} == expected
    revoked = {k for k, v in got.items() if v[2] == "revoked"}
    assert revoked == ({f"{F2025}/retention_2y/2027"} if adopted_after == 2027 else set())
    assert first.listing("windows") == later.listing("windows")


def test_bad_versions_are_refused_and_change_nothing(cli: Cli, tmp_path: Path) -> None:
    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2025))
    head = cli.ok_json("policy", "list")["policies"]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        P2025.read_text("utf-8")
        .replace("applies_from = 2025", 'applies_from = "2025"\nfrom_year = 1')
        .replace('designation = "strategic_emerging"', 'designation = "champion"')
    )
    result = cli.run("policy", "adopt", str(bad), "--reason", "x")
    assert result.code == 2
    for key in ("applies_from", "from_year", "first_entry.bonuses.0.designation"):
        assert f"{bad}: {key}" in result.err
    # Another content under the id of 38号; a second version applying from the beginning.
    changed = tmp_path / "changed-38.toml"
    changed.write_text(
        (ROOT / "domain" / "policies" / "jinbanfa-2020-38.toml")
        .read_text("utf-8")
        .replace("amount_fen = 30_000_000", "amount_fen = 31_000_000")
    )
    result = cli.run("policy", "adopt", str(changed), "--reason", "x")
    assert result.code == 2 and "another content" in result.err
    beginning = tmp_path / "beginning.toml"
    beginning.write_text(
        changed.read_text("utf-8").replace('id = "jinbanfa-2020-38"', 'id = "other-38"')
    )
    result = cli.run("policy", "adopt", str(beginning), "--reason", "x")
    assert result.code == 2 and "already applies from the beginning" in result.err
    adopt(cli, P2025)
    same_year = tmp_path / "same-year.toml"
    same_year.write_text(
        P2025.read_text("utf-8").replace('id = "jincaiguijian-2025-1"', 'id = "other-2025"')
    )
    result = cli.run("policy", "adopt", str(same_year), "--reason", "x")
    assert result.code == 2 and "already applies from 2025" in result.err
    blank = cli.run("policy", "adopt", str(P2025), "--reason", " ")
    assert blank.code == 2
    assert [p["id"] for p in cli.ok_json("policy", "list")["policies"]] == [
        head[0]["id"],
        "jincaiguijian-2025-1",
    ]
    # An import with --policy of another version is refused: versions are adopted on their own.
    result = cli.run(
        "import-register", "--year", "2025", str(files[2025]), "--policy", str(same_year)
    )
    assert result.code == 2 and "policy adopt" in result.err
    shown = cli.ok_json("policy", "show", "jincaiguijian-2025-1")
    assert shown["content"]["first_entry"]["bonuses"][0]["percent"] == 30
    missing = cli.run("policy", "show", "no-such-version")
    assert missing.code == 2 and "policy list" in missing.err


OLD = ROOT / "tests" / "data" / "ledger-before-versions"


def same_on_old_keys(old: Any, new: Any) -> bool:
    """Whether `new` says everything `old` said (new keys may have been added)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(
            k in new and same_on_old_keys(v, new[k]) for k, v in old.items()
        )
    if isinstance(old, list):
        return (
            isinstance(new, list)
            and len(old) == len(new)
            and all(same_on_old_keys(a, b) for a, b in zip(old, new, strict=True))
        )
    return bool(old == new)


def test_a_ledger_written_before_policy_versions_reads_verifies_and_adopts_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"
    shutil.copyfile(OLD / "ledger.db", db)
    db.chmod(0o600)
    cli = Cli(f"sqlite:///{db}", capsys)

    def old(name: str) -> Any:
        return json.loads((OLD / f"{name}.json").read_text("utf-8"))

    assert cli.ok_json("verify") == old("verify")
    (version,) = cli.ok_json("policy", "list")["policies"]
    assert (version["id"], version["content_hash"]) == ("jinbanfa-2020-38", HASH_38)
    assert version["reason"] is None  # adopted with the baseline, before reasons were recorded
    for command, name in (
        (["awards", "--as-of", "2025-12-31"], "awards"),
        (["enterprise", F2025, "--as-of", "2025-12-31"], "enterprise"),
        (["explain", f"{F2024}/first_entry/2024"], "explain"),
    ):
        assert same_on_old_keys(old(name), cli.ok_json(*command)), name
    assert cli.ok_json("explain", f"{F2024}/first_entry/2024")["policy"]["content_hash"] == HASH_38
    # The old log takes a new version: the 2025 cohort is re-derived, the old answers stay.
    report = adopt(cli, P2025)
    assert report["firms"] == [F2025]
    assert same_on_old_keys(
        old("awards"), cli.ok_json("awards", "--as-of", "2025-12-31", "--known-at", "@16")
    )
    assert cli.ok_json("verify")["intact"] is True


def test_firms_read_together_are_the_firms_read_one_by_one(cli: Cli, tmp_path: Path) -> None:
    """`get_enterprises` (one read for the thousands of firms an adoption re-derives) replays
    each firm exactly as `get_enterprise` does, payments included."""
    from adapters.bootstrap import open_ledger
    from domain.errors import NotFoundError

    files = registers(tmp_path)
    import_years(cli, files, range(2023, 2027))
    pay(cli, f"{F2024}/first_entry/2024", "GK-T-1", 1_000, "2025-03-01")
    with open_ledger(cli.db_url) as ledger:
        together = ledger.get_enterprises([F2025, BASE, F2024])
        assert [f.uscc for f in together] == [F2025, BASE, F2024]
        for firm in together:
            alone = ledger.get_enterprise(firm.uscc)
            assert firm.version == alone.version
            assert firm.state == alone.state
        assert together[2].state.paid_fen(f"{F2024}/first_entry/2024") == 1_000
        with pytest.raises(NotFoundError):
            ledger.get_enterprises([F2024, ref_uscc(99)])
