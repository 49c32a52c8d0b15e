"""Catch-up in many small batches (the writer thread commits one batch while the next is folded)
gives the same views as one big batch (concurrent catch-ups: test_ledger_core.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.ledgers import import_history, view_tables

from adapters.bootstrap import open_ledger
from projections import runner

# Firms 0..11 on and off the register over four years, moves and sizes varied: each firm's events
# then span several batches of 7, so batches fold firms the batch before has not committed yet.
HISTORY = [
    ([True, True, False, True], "2018", "140212", "small"),
    ([True, False, True, True], "", "141102", ""),
    ([False, True, True, True], "", "140105", "micro"),
    ([True, True, True, True], "2020", "140212", "medium"),
    ([False, True, False, True], "", "141102", "small"),
    ([True, True, True, False], "2019", "140105", ""),
    ([False, False, True, True], "", "140212", "small"),
    ([True, False, False, True], "2017", "141102", "micro"),
    ([False, True, True, False], "", "140105", "small"),
    ([True, True, False, False], "", "140212", ""),
    ([False, False, False, True], "", "141102", "small"),
    ([True, True, True, True], "", "140105", "small"),
]


def test_small_batches_build_the_views_one_big_batch_rebuilds(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_ledger(db_url, create=True) as ledger:
        monkeypatch.setattr(runner, "BATCH", 7)
        import_history(ledger, tmp_path, HISTORY)
        small = view_tables(ledger)
        monkeypatch.setattr(runner, "BATCH", 10000)
        ledger.rebuild_views()
        assert view_tables(ledger) == small
        monkeypatch.setattr(runner, "BATCH", 3)
        ledger.rebuild_views()
        assert view_tables(ledger) == small
