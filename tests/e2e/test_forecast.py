"""The budget forecast worked by hand on a small ledger, on both stores (38号: 300,000 yuan on
entry, 50,000 after two years on the register after the entry year, 100,000 after three, each
due the fiscal year after its decision):

    2020 baseline: BASE
    2021: ten firms E0-E9 enter           2022: E0-E7 stay, F0-F4 enter
    2023: E0-E5, F0-F3 stay, G0-G3 enter

Life table (registers to 2023): at 0 years after entry, 15 at risk (E, F), 12 stayed (8 + 4):
0.8; at 1 year, 8 at risk (E on 2022), 6 stayed: 0.75; beyond, 0.75.

Fiscal 2024-2026:
- decided and unpaid: 2023's decisions, G's entry awards (4 x 300,000) and E0-E5's two-year
  awards (6 x 50,000): 1,500,000 in 2024;
- staying: E0-E5's three-year award decided 2024 (6 x 100,000 x 0.75 = 450,000) and F0-F3's
  two-year award decided 2024 (4 x 50,000 x 0.75 = 150,000), in 2025; F0-F3's three-year award
  decided 2025 (4 x 100,000 x 0.75 x 0.75 = 225,000) and G0-G3's two-year award decided 2025
  (4 x 50,000 x 0.8 x 0.75 = 120,000), in 2026;
- new entries: the three cohorts entered 10, 5 and 4 (mean 19/3), each at the 2023 cohort's
  300,000: 1,900,000 a year from 2025 (low 4, high 10 entrants: 1,200,000 to 3,000,000).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

BASE = ref_uscc(1)
E = [ref_uscc(100 + n) for n in range(10)]
F = [ref_uscc(200 + n) for n in range(5)]
G = [ref_uscc(300 + n) for n in range(4)]
YUAN = 100


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def test_the_forecast_worked_by_hand(cli: Cli, tmp_path: Path) -> None:
    registers = {
        2020: [BASE],
        2021: [BASE, *E],
        2022: [BASE, *E[:8], *F],
        2023: [BASE, *E[:6], *F[:4], *G],
    }
    positions = {}
    for year, firms in registers.items():
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        result = cli.import_year(path, year, baseline=year == 2020)
        assert result.code == 0, result.err
        positions[year] = result.json()["position"]
    page = tmp_path / "forecast.html"
    doc = cli.ok_json("forecast", "--fiscal-years", "2024-2026", "--html", str(page))
    assert doc["last_register_year"] == 2023
    assert [(r["age"], r["at_risk"], r["stayed"], r["rate"]) for r in doc["life_table"]] == [
        (0, 15, 12, 0.8),
        (1, 8, 6, 0.75),
    ]
    got = {
        y["fiscal_year"]: (
            y["decided_fen"],
            y["staying_fen"],
            y["new_entries_fen"],
            y["low_fen"],
            y["high_fen"],
        )
        for y in doc["years"]
    }
    assert got == {
        2024: (1_500_000 * YUAN, 0, 0, 1_500_000 * YUAN, 1_500_000 * YUAN),
        2025: (0, 600_000 * YUAN, 1_900_000 * YUAN, 1_800_000 * YUAN, 3_600_000 * YUAN),
        2026: (0, 345_000 * YUAN, 1_900_000 * YUAN, 1_545_000 * YUAN, 3_345_000 * YUAN),
    }
    assert 'id="forecast-chart"' in page.read_text("utf-8")
    # Known at the 2022 import: one cohort observed a year, 8 of 10 stayed.
    then = cli.ok_json(
        "forecast", "--fiscal-years", "2024-2024", "--known-at", f"@{positions[2022]}"
    )
    assert then["last_register_year"] == 2022
    assert [(r["at_risk"], r["stayed"]) for r in then["life_table"]] == [(10, 8)]
    with pytest.raises(SystemExit) as bad:  # the parser refuses it, exit 2
        cli.run("forecast", "--fiscal-years", "2026-2024")
    assert bad.value.code == 2
    assert "ends before it begins" in cli.capsys.readouterr().err
