"""`explain`: why an entitlement is owed, traced to the policy, the register facts and payments."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

from domain.policy import load_policy

EARLY = ref_uscc(31)  # entered 2019, before the 2020 baseline
NEW = ref_uscc(32)  # first entry 2021


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(db_url, capsys)
    years = {
        2020: [Firm(EARLY, first_entry_year="2019")],
        2021: [Firm(EARLY), Firm(NEW)],
        2022: [Firm(EARLY), Firm(NEW)],
    }
    for year, rows in years.items():
        result = cli.import_year(
            write_register(tmp_path / f"{year}.csv", rows), year, baseline=year == 2020
        )
        assert result.code == 0, result.err
    return cli


def test_a_retention_award_of_a_pre_baseline_entrant_names_its_facts_and_the_assumed_year(
    cli: Cli,
) -> None:
    # Entered 2019; literal reading: on the register 2020 and 2021 -> 5万 decided 2021 (五).
    doc = cli.ok_json("explain", f"{EARLY}/retention_2y/2021")
    assert (doc["clause"], doc["amount_fen"], doc["due_fiscal_year"]) == ("(五)", 5_000_000, 2022)
    assert doc["policy"] == {"id": "jinbanfa-2020-38", "content_hash": load_policy().content_hash}
    assert doc["basis_years"] == [2019, 2020, 2021]
    assert doc["assumed_years"] == [2019]
    assert [(f["type"], f["year"]) for f in doc["derives_from"]] == [
        ("OnBaselineRegister", 2020),
        ("RetainedInRegister", 2021),
    ]
    trail = {e["position"]: e for e in cli.ok_json("audit-trail", EARLY)}
    assert all(trail[f["position"]]["type"] == f["type"] for f in doc["derives_from"])
    assert (doc["payments"], doc["paid_fen"], doc["status"]) == ([], 0, "due")


def test_payments_against_an_award_are_listed_with_their_positions(cli: Cli) -> None:
    award = f"{NEW}/first_entry/2021"
    for ref, fen, day in (("GK-A", "10000000", "2022-03-01"), ("GK-B", "20000000", "2022-09-01")):
        assert (
            cli.run(
                "record-payment", award, "--ref", ref, "--amount-fen", fen, "--paid-on", day
            ).code
            == 0
        )
    doc = cli.ok_json("explain", award)
    assert [(p["payment_ref"], p["amount_fen"], p["paid_on"]) for p in doc["payments"]] == [
        ("GK-A", 10_000_000, "2022-03-01"),
        ("GK-B", 20_000_000, "2022-09-01"),
    ]
    assert doc["payments"][0]["position"] < doc["payments"][1]["position"]
    assert (doc["paid_fen"], doc["status"], doc["assumed_years"]) == (30_000_000, "paid", [])
    assert [(f["type"], f["year"]) for f in doc["derives_from"]] == [("EnteredRegister", 2021)]


def test_an_award_the_rules_do_not_give_is_refused(cli: Cli) -> None:
    # The 2019 entrant's first-entry award was decided before the baseline: not the ledger's.
    result = cli.run("explain", f"{EARLY}/first_entry/2019")
    assert result.code == 2
    assert "no such award" in result.err
