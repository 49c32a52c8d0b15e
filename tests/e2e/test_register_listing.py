"""`register --year Y`: who was on the register of a year, and how they came to be on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

STAYER, LEAVER, BASE_ENTRANT, NEWCOMER = (ref_uscc(n) for n in (1, 2, 3, 4))


def test_the_register_of_a_year_lists_its_firms_with_their_kind_of_presence(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(db_url, capsys)
    base = [Firm(STAYER), Firm(LEAVER), Firm(BASE_ENTRANT, first_entry_year="2020")]
    cli.import_year(write_register(tmp_path / "2020.csv", base), 2020, baseline=True)
    later = [
        Firm(STAYER, region_code="140212", size_class="medium"),
        Firm(BASE_ENTRANT),
        Firm(NEWCOMER),
    ]
    cli.import_year(write_register(tmp_path / "2021.csv", later), 2021)

    y2020 = {r["uscc"]: r for r in cli.listing("register", "--year", "2020")}
    y2021 = {r["uscc"]: r for r in cli.listing("register", "--year", "2021")}

    assert set(y2020) == {STAYER, LEAVER, BASE_ENTRANT}
    assert {u: (r["kind"], r["first_entry"]) for u, r in y2020.items()} == {
        STAYER: ("baseline", False),
        LEAVER: ("baseline", False),
        BASE_ENTRANT: ("baseline", True),
    }
    assert set(y2021) == {STAYER, BASE_ENTRANT, NEWCOMER}
    assert (y2021[NEWCOMER]["kind"], y2021[NEWCOMER]["first_entry"]) == ("entered", True)
    assert y2021[STAYER]["kind"] == "retained"
    # Each year keeps what that year's register said: the move shows in 2021 only.
    assert (y2020[STAYER]["city_code"], y2021[STAYER]["city_code"]) == ("140100", "140200")
    assert (y2020[STAYER]["size_class"], y2021[STAYER]["size_class"]) == (None, "medium")
    assert cli.listing("register", "--year", "2019") == []
