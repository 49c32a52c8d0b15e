"""`enterprise --as-of DATE --known-at WHEN`: what was true on a date, as the ledger knew it then."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

FIRM = ref_uscc(41)


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def test_known_at_a_past_position_answers_what_the_ledger_knew_then(
    cli: Cli, tmp_path: Path
) -> None:
    years = {2020: [Firm(ref_uscc(1))], 2021: [Firm(ref_uscc(1)), Firm(FIRM)]}
    for year, rows in years.items():
        assert (
            cli.import_year(
                write_register(tmp_path / f"{year}.csv", rows), year, baseline=year == 2020
            ).code
            == 0
        )
    before = cli.ok_json("enterprise", FIRM)
    later = write_register(
        tmp_path / "2022.csv", [Firm(ref_uscc(1)), Firm(FIRM, name="改名后有限公司")]
    )
    assert cli.import_year(later, 2022).code == 0
    paid = cli.run(
        "record-payment",
        f"{FIRM}/first_entry/2021",
        "--ref",
        "GK9",
        "--amount-fen",
        "30000000",
        "--paid-on",
        "2022-06-01",
    )
    assert paid.code == 0, paid.err
    now = cli.ok_json("enterprise", FIRM)
    assert (now["name"], now["register_years"], len(now["payments"])) == (
        "改名后有限公司",
        [2021, 2022],
        1,
    )
    assert now["known_at"]["position"] > before["known_at"]["position"]

    # By position and by instant: the answer given before 2022 was imported, exactly.
    by_position = cli.ok_json(
        "enterprise", FIRM, "--known-at", f"@{before['known_at']['position']}"
    )
    by_instant = cli.ok_json("enterprise", FIRM, "--known-at", before["known_at"]["recorded_at"])
    for then in (by_position, by_instant):
        assert {k: v for k, v in then.items() if k != "known_at"} == {
            k: v for k, v in before.items() if k != "known_at"
        }
    assert by_instant["known_at"] == before["known_at"]


def test_as_of_a_date_keeps_only_the_facts_valid_then(cli: Cli, tmp_path: Path) -> None:
    rows = {
        2020: [Firm(ref_uscc(1))],
        2021: [Firm(ref_uscc(1)), Firm(FIRM, size_class="small")],
        2022: [Firm(ref_uscc(1)), Firm(FIRM, region_code="140212")],
    }
    for year, firms in rows.items():
        assert (
            cli.import_year(
                write_register(tmp_path / f"{year}.csv", firms), year, baseline=year == 2020
            ).code
            == 0
        )
    assert (
        cli.run(
            "record-payment",
            f"{FIRM}/first_entry/2021",
            "--ref",
            "GK1",
            "--amount-fen",
            "100",
            "--paid-on",
            "2022-03-01",
        ).code
        == 0
    )
    mid_2021 = cli.ok_json("enterprise", FIRM, "--as-of", "2021-06-30")
    assert (mid_2021["register_years"], mid_2021["region_code"], mid_2021["payments"]) == (
        [2021],
        "140105",
        [],
    )
    assert [e["entitlement_id"] for e in mid_2021["entitlements"]] == [f"{FIRM}/first_entry/2021"]
    feb_2022 = cli.ok_json("enterprise", FIRM, "--as-of", "2022-02-28")
    assert (feb_2022["region_code"], feb_2022["payments"]) == ("140212", [])
    assert len(cli.ok_json("enterprise", FIRM, "--as-of", "2022-03-01")["payments"]) == 1
    # Before its first register year the firm is not in the ledger's world.
    assert cli.run("enterprise", FIRM, "--as-of", "2020-12-31", "--json").code == 2


@pytest.mark.parametrize("when", ["2024-01-01T00:00:00", "yesterday", "@x"])
def test_a_naive_or_malformed_known_at_is_refused(cli: Cli, tmp_path: Path, when: str) -> None:
    cli.import_year(write_register(tmp_path / "2020.csv", [Firm(FIRM)]), 2020, baseline=True)
    result = cli.run("enterprise", FIRM, "--known-at", when, "--json")
    assert result.code == 2
    assert "--known-at" in result.err
