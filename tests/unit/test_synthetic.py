"""The demo's synthetic province alone: valid rows, consistent entries and exits, a realistic Shanxi."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from adapters.demo.synthetic import SyntheticProvince, generate
from adapters.files.register_csv import CsvRegister, write_register
from domain.codes import cities, divisions, normalize_industry, resolve_region, validate_uscc
from domain.policy import Route
from domain.register import COLUMNS, RegisterRow, parse_row

SEED = 7
FIRST, LAST = 2020, 2025
HEADER = "uscc,name,region_code,industry_code,size_class,route,first_entry_year"


@pytest.fixture(scope="module")
def small() -> SyntheticProvince:
    return generate(SEED, 0.05)


@pytest.fixture(scope="module")
def full() -> SyntheticProvince:
    return generate(38, 1.0)


def test_rows_are_valid_register_rows(small: SyntheticProvince) -> None:
    for year, rows in small.registers.items():
        assert rows
        assert len(set(rows)) == len(rows)
        usccs = [r[0] for r in rows]
        assert len(set(usccs)) == len(usccs), f"duplicate USCC in {year}"
        for row in rows:
            assert len(row) == len(COLUMNS)
            assert all(isinstance(v, str) for v in row)
            assert validate_uscc(row[0]) == row[0]
            assert row[0].startswith("91")
            assert divisions()[row[0][2:8]]  # the division of first registration is Shanxi's
            assert resolve_region(row[2]).level in ("county", "zone")
            assert 6 <= int(normalize_industry(row[3])[:2]) <= 46
            assert re.fullmatch(r"(山西|\w+市)\w+(股份)?有限公司", row[1])
            assert row[6] == "" or int(row[6]) <= year
            assert isinstance(parse_row(list(row), year), RegisterRow), row


def test_usccs_are_unique_across_firms(small: SyntheticProvince) -> None:
    seen = {r[0] for rows in small.registers.values() for r in rows}
    assert seen == set(small.firms)


def test_first_entrants_re_entrants_and_leavers_are_consistent(small: SyntheticProvince) -> None:
    on = {y: {r[0] for r in rows} for y, rows in small.registers.items()}
    ever: set[str] = set(on[FIRST])
    for year in range(FIRST + 1, LAST + 1):
        first, back, left = (
            set(small.first_entrants[year]),
            set(small.re_entrants[year]),
            set(small.leavers[year]),
        )
        assert first <= on[year] and not first & ever
        assert back <= on[year] and not back & on[year - 1]
        assert left <= on[year - 1] and not left & on[year]
        assert on[year] - on[year - 1] == first | back
        assert on[year - 1] - on[year] == left
        for uscc in first:
            assert small.firms[uscc].first_entry_year == year
            assert small.firms[uscc].route in set(Route)
        for uscc in back:
            # A re-entrant is never a first entrant (DOMAIN.md terms).
            f = small.firms[uscc]
            assert f.first_entry_year is None or f.first_entry_year < year
        ever |= on[year]


def test_written_registers_read_back_through_the_importers_reader(
    small: SyntheticProvince, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    assert write_register(path, small.registers[2021]) == len(small.registers[2021])
    assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER
    records = list(CsvRegister(path, 2021).records())
    assert [r for _, r in records if isinstance(r, list)] == []
    assert [r.uscc for _, r in records] == [r[0] for r in small.registers[2021]]


def test_the_generator_is_deterministic(small: SyntheticProvince) -> None:
    again = generate(SEED, 0.05)
    assert again.registers == small.registers
    assert again.first_entrants == small.first_entrants
    assert generate(SEED + 1, 0.05).registers != small.registers


def test_scale_one_is_a_realistic_shanxi(full: SyntheticProvince) -> None:
    """DOMAIN.md "Scale": ~5,450 at end-2020, 1,547 new in 2021, ~1,000-1,500 a year, 3-8% leaving,
    and a register near the 10,000 goal by 2025."""
    sizes = full.sizes()
    assert 5_300 <= sizes[2020] <= 5_600
    assert 6_500 <= sizes[2021] <= 7_000
    assert 9_000 <= sizes[2025] <= 10_500
    assert len(full.first_entrants[2021]) == 1_547
    for year in range(2021, 2026):
        assert 1_100 <= len(full.first_entrants[year]) <= 1_600
        assert 0.03 <= len(full.leavers[year]) / sizes[year - 1] <= 0.08
        assert 0 < len(full.re_entrants[year]) < 200
    recent = [f for f in full.firms.values() if f.first_entry_year in (2018, 2019, 2020)]
    assert 1_000 <= sum(1 for f in recent if 2020 in f.years) <= 1_400
    routes = Counter(full.firms[u].route for y in range(2021, 2026) for u in full.first_entrants[y])
    assert 0.7 <= routes["growth"] / sum(routes.values()) <= 0.8
    assert set(routes) == set(Route)
    rows = full.registers[2025]
    sizes_2025 = Counter(r[4] for r in rows)
    assert 0.6 <= sizes_2025["small"] / len(rows) <= 0.8
    assert sizes_2025["large"] < sizes_2025["medium"] < sizes_2025["small"]
    assert 0 < sizes_2025[""] < 0.05 * len(rows)
    # Industrial weight: the larger cities outnumber the smaller ones every year.
    for year in full.years:
        city = Counter(divisions()[r[2][:6]].city_code for r in full.registers[year])
        assert set(city) == set(cities())
        assert min(city[c] for c in ("140100", "140400", "140800")) > max(
            city[c] for c in ("140300", "140600")
        )
    # Industry codes with and without the section letter; both mining and utilities present.
    codes = {r[3] for r in rows}
    assert any(c[0].isalpha() for c in codes) and any(c[0].isdigit() for c in codes)
    divisions_seen = {int(normalize_industry(c)[:2]) for c in codes}
    assert 6 in divisions_seen and 44 in divisions_seen


def test_some_firms_change_name_or_move(full: SyntheticProvince) -> None:
    names: dict[str, set[str]] = defaultdict(set)
    regions: dict[str, set[str]] = defaultdict(set)
    for rows in full.registers.values():
        for r in rows:
            names[r[0]].add(r[1])
            regions[r[0]].add(r[2][:6])
    renamed = sum(1 for v in names.values() if len(v) > 1)
    moved = [u for u, v in regions.items() if len(v) > 1]
    assert 50 <= renamed <= 1_000
    assert 30 <= len(moved) <= 1_000
    between_cities = [u for u in moved if len({divisions()[c].city_code for c in regions[u]}) > 1]
    assert between_cities
