"""An import completes while payments are recorded, without a retry: payments that land while the
year is being checked move their firms on, and the import carries on from them under the log's
lock. Each payment is recorded once; the views equal a fresh derivation of the log."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest
from support.ledgers import import_file, row, uscc, write_rows

from adapters.bootstrap import log_of, open_ledger
from domain.command_results import ImportResult
from projections.drift import compare, derive
from projections.runner import LedgerViews

FIRMS, ENTRANTS, RATE = 30_000, 400, 20.0  # payments per second; a year long enough that
# payments land while it is checked (on SQLite they wait out its write phase)


@pytest.mark.slow
def test_a_year_imports_while_payments_are_recorded_at_twenty_a_second(
    db_url: str, tmp_path: Path
) -> None:
    on_2020 = [row(i) for i in range(FIRMS)]
    on_2021 = on_2020 + [row(FIRMS + i) for i in range(ENTRANTS)]
    with open_ledger(db_url, create=True) as ledger:
        import_file(ledger, write_rows(tmp_path / "2020.csv", on_2020), 2020, baseline=True)
        import_file(ledger, write_rows(tmp_path / "2021.csv", on_2021), 2021)
        year = write_rows(tmp_path / "2022.csv", on_2021[:-10])
    awards = [f"{uscc(FIRMS + i)}/first_entry/2021" for i in range(ENTRANTS)]
    paid: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def pay() -> None:
        with open_ledger(db_url) as finance:
            n = 0
            while not stop.is_set() and n < len(awards):
                t0 = time.monotonic()
                try:
                    ref = f"GK-{n}"
                    finance.record_payment(awards[n], ref, 1, date(2022, 3, 1), actor="财政")
                    paid.append(ref)
                except BaseException as e:
                    errors.append(e)
                n += 1
                stop.wait(max(0.0, 1 / RATE - (time.monotonic() - t0)))

    payer = threading.Thread(target=pay)
    with open_ledger(db_url) as statistics:
        payer.start()
        time.sleep(0.5)  # the payments are flowing
        before = len(paid)
        result = import_file(statistics, year, 2022)
        during = len(paid) - before
        stop.set()
        payer.join()
        assert isinstance(result, ImportResult) and not result.replay
        assert result.counts["left"] == 10 and result.counts["retained"] == FIRMS + ENTRANTS - 10
        assert errors == []
        assert during >= 10, during  # payments really landed during the import
        recorded = {p.ref for p in statistics.payments()}
        assert recorded == set(paid)  # each once: refs are unique in the log
        head = statistics.catch_up()
        views = statistics.views
        assert isinstance(views, LedgerViews)
        with views.read() as tx:
            drift = compare(tx, derive(statistics, head), lambda oid: None)
        assert [d.table for d in drift if d.drifted] == []
        assert log_of(statistics).verify_chain().intact
