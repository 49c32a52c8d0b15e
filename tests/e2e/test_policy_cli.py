"""The policy file at the command line: a bad file is refused before anything is opened; another
reading of (五) adopted with the baseline changes the awards; a later import adopts no version."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import ROOT, Cli, Firm, ref_uscc, write_register

from domain.policy import load_policy

ENTRANT = ref_uscc(21)


def policy_file(tmp_path: Path, *, counting: str) -> Path:
    packaged = ROOT / "domain" / "policies" / "jinbanfa-2020-38.toml"
    text = packaged.read_text("utf-8").replace(
        'counting = "years_after_entry"', f'counting = "{counting}"'
    )
    if counting != "years_after_entry":
        text = text.replace('id = "jinbanfa-2020-38"', 'id = "jinbanfa-2020-38-entry-year-counts"')
    path = tmp_path / f"{counting}.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def registers(tmp_path: Path) -> list[Path]:
    """A firm first on the register in 2021 and on it through 2023 (DOMAIN.md's worked example)."""
    base = Firm(ref_uscc(1))
    years = {
        2020: [base],
        2021: [base, Firm(ENTRANT)],
        2022: [base, Firm(ENTRANT)],
        2023: [base, Firm(ENTRANT)],
    }
    return [write_register(tmp_path / f"{y}.csv", rows) for y, rows in years.items()]


def test_a_policy_file_with_a_float_amount_is_refused_naming_the_field_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.main import main

    bad = policy_file(tmp_path, counting="years_after_entry")
    bad.write_text(
        bad.read_text("utf-8").replace("amount_fen = 30_000_000", "amount_fen = 300000.0")
    )
    (register,) = registers(tmp_path)[:1]
    db = tmp_path / "never.db"
    code = main(
        [
            "import-register",
            "--year",
            "2020",
            "--baseline",
            str(register),
            "--policy",
            str(bad),
            "--db",
            f"sqlite:///{db}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "first_entry.amount_fen" in err
    assert not db.exists()


def test_the_entry_year_counts_reading_adopted_with_the_baseline_decides_retention_a_year_earlier(
    cli: Cli, tmp_path: Path
) -> None:
    files = registers(tmp_path)
    other = policy_file(tmp_path, counting="entry_year_counts")
    first = cli.run(
        "import-register", "--year", "2020", "--baseline", str(files[0]), "--policy", str(other)
    )
    assert first.code == 0, first.err
    for year, path in zip((2021, 2022, 2023), files[1:], strict=True):
        assert cli.import_year(path, year).code == 0
    awards = cli.awards_by_id()
    # Entry 2021, on the register 2021-2023: with the entry year counted as year 1, 5万 is decided
    # in 2022 and 10万 in 2023 (DOMAIN.md default 1, right-hand column).
    assert set(awards) == {
        f"{ENTRANT}/first_entry/2021",
        f"{ENTRANT}/retention_2y/2022",
        f"{ENTRANT}/retention_3y/2023",
    }
    assert {a["policy"] for a in awards.values()} == {"jinbanfa-2020-38-entry-year-counts"}
    assert awards[f"{ENTRANT}/retention_2y/2022"]["amount_fen"] == 5_000_000


def test_a_different_policy_with_a_later_import_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A later version is adopted by `policy adopt` alone, never by an import's --policy."""
    files = registers(tmp_path)
    assert cli.import_year(files[0], 2020, baseline=True).code == 0
    other = policy_file(tmp_path, counting="entry_year_counts")
    refused = cli.run("import-register", "--year", "2021", str(files[1]), "--policy", str(other))
    assert refused.code == 2
    assert "is not a version this ledger adopted" in refused.err
    assert "`policy adopt`" in refused.err
    assert cli.listing("register") == [r for r in cli.listing("register") if r["year"] == 2020]


def test_the_packaged_policy_is_the_default_reading() -> None:
    assert load_policy().retention.counting == "years_after_entry"
