"""A correction leaves the ledger (its views, their versions, and the drift check's derivation) as
if the corrected year had been imported in the first place: a property test over random firms."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.helpers import Firm, ref_uscc, write_register
from support.ledgers import import_file, view_tables

from adapters.bootstrap import open_ledger
from projections.drift import compare, derive
from projections.runner import LedgerViews

# A correction equals having imported the corrected year in the first place -----------------------

YEARS = range(2020, 2024)
REGIONS = ["140105", "140212", "140403"]
firm_years = st.tuples(
    st.lists(st.booleans(), min_size=4, max_size=4),  # on the register 2020..2023?
    st.sampled_from(["", "2017", "2019", "2020"]),  # first_entry_year given on the baseline
    st.sampled_from(["", "merger", "new_build"]),  # route (the same in every year's row)
    st.lists(st.sampled_from(REGIONS), min_size=4, max_size=4),
    st.lists(st.sampled_from(["small", "micro", "medium"]), min_size=4, max_size=4),
)
corrections = st.tuples(
    st.sampled_from(list(YEARS)),
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(REGIONS), st.sampled_from(["small", "large"])),
        min_size=8,
        max_size=8,
    ),
)


def _rows(firms: list[Any], year: int, fix: tuple[int, list[Any]] | None = None) -> list[Firm]:
    k = year - YEARS[0]
    filler = ref_uscc(999)  # on every register: a register is never empty
    rows = [Firm(filler, f"企业{filler[-4:]}", first_entry_year="2010" if k == 0 else "")]
    for i, (present, first, route, regions, sizes) in enumerate(firms):
        on, region, size = present[k], regions[k], sizes[k]
        if fix is not None and fix[0] == year:
            on, region, size = fix[1][i]
        if on:
            given = first if k == 0 and first else ""
            # The bureau gives an entrant's route in every row. The ledger records it with the
            # entry only, so when a correction takes away a firm's first year the later row's
            # route is unknown and growth is taken: firms first seen on the baseline (which
            # have no recorded route) are given growth here, so both ledgers agree.
            row_route = "" if present[0] else route
            uscc = ref_uscc(200 + i)
            rows.append(Firm(uscc, f"企业{uscc[-4:]}", region, "C1311", size, row_route, given))
    return rows


def _state(url: str) -> dict[str, Any]:
    with open_ledger(url, create=True) as ledger:
        ledger.catch_up()
        views = ledger.views
        assert isinstance(views, LedgerViews)
        with views.read() as tx:
            # A firm the correction took off its only register year stays known to the ledger,
            # with no register years; an import of the corrected year never saw it.
            return {
                "firms": tx.rows(
                    "SELECT uscc, years, exit_years, re_entry_years, first_entry_year, route, "
                    "entry_size_class, baseline_year FROM lv_firms WHERE years <> '' ORDER BY uscc"
                ),
                "register": tx.rows(
                    "SELECT year, uscc, kind, first_entry, region_code, city_code, size_class "
                    "FROM lv_register WHERE known_to IS NULL ORDER BY year, uscc"
                ),
                "awards": tx.rows(
                    "SELECT entitlement_id, amount_fen, due_fiscal_year, city_code FROM lv_awards "
                    "WHERE known_to IS NULL AND earned ORDER BY entitlement_id"
                ),
                "windows": tx.rows(
                    "SELECT uscc, window_kind, starts_on, ends_on, closed_on, size_class "
                    "FROM lv_windows WHERE known_to IS NULL ORDER BY uscc, window_kind"
                ),
            }


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(firms=st.lists(firm_years, min_size=1, max_size=8), fix=corrections)
def test_a_correction_leaves_the_ledger_as_if_the_corrected_year_had_been_imported(
    tmp_path_factory: pytest.TempPathFactory, firms: list[Any], fix: tuple[int, list[Any]]
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    corrected_url, direct_url = f"sqlite:///{folder}/a.db", f"sqlite:///{folder}/b.db"
    with open_ledger(corrected_url, create=True) as a, open_ledger(direct_url, create=True) as b:
        for year in YEARS:
            original = write_register(folder / f"{year}.csv", _rows(firms, year))
            import_file(a, original, year, baseline=year == YEARS[0])
            fixed = write_register(folder / f"{year}-fixed.csv", _rows(firms, year, fix))
            import_file(b, fixed, year, baseline=year == YEARS[0])
        import_file(a, folder / f"{fix[0]}-fixed.csv", fix[0], correction=True, reason="re-issued")
        # Every version, as built batch by batch, is what a replay of the whole log builds.
        incremental = view_tables(a)
        a.rebuild_views()
        assert view_tables(a) == incremental
        # And what the reconciliation's in-memory derivation builds (projections/drift.py).
        derived = derive(a, a.catch_up())
        views = a.views
        assert isinstance(views, LedgerViews)
        with views.read() as tx:
            drift = compare(tx, derived, lambda oid: None)
        assert [d.table for d in drift if d.drifted] == [], [d.examples for d in drift]
    assert _state(corrected_url) == _state(direct_url)
