"""`?schema=NAME` isolates a ledger completely: its log, views, chain, commits and locks. Two
ledgers in one PostgreSQL database never see each other."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from support.ledgers import import_file, row, uscc, write_rows

from adapters.bootstrap import log_of, open_ledger, open_store
from adapters.reconciliation.job import run_lock
from projections.runner import LedgerViews

pytestmark = pytest.mark.postgres


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


def test_two_ledgers_in_one_database_never_see_each_other(
    pg_database_url: str, tmp_path: Path
) -> None:
    alpha, beta = f"{pg_database_url}?schema=alpha", f"{pg_database_url}?schema=beta"
    with open_ledger(alpha, create=True) as a, open_ledger(beta, create=True) as b:
        import_file(a, write_rows(tmp_path / "a2020.csv", [row(1), row(2)]), 2020, baseline=True)
        import_file(a, write_rows(tmp_path / "a2021.csv", [row(1), row(2), row(3)]), 2021)
        import_file(b, write_rows(tmp_path / "b2020.csv", [row(7)]), 2020, baseline=True)
        assert {r.uscc for r in a.register(2021)} == {uscc(1), uscc(2), uscc(3)}
        assert b.imported_years()[0].rows == 1 and [y.year for y in b.imported_years()] == [2020]
        assert [x.entitlement_id for x in a.awards()] == [f"{uscc(3)}/first_entry/2021"]
        assert b.awards() == []
        # A rebuild of one leaves the other's views alone.
        b.rebuild_views()
        assert [x.entitlement_id for x in a.awards()] == [f"{uscc(3)}/first_entry/2021"]
        assert log_of(a).verify_chain().intact and log_of(b).verify_chain().intact
        assert log_of(a).chain_head().position != log_of(b).chain_head().position
    for schema in ("alpha", "beta"):
        assert {"ledger_events", "ledger_chain", "ledger_commits", "lv_firms", "lv_awards"} <= (
            _tables(pg_database_url, schema)
        )
    assert not {t for t in _tables(pg_database_url, "public") if t.startswith(("lv_", "ledger_"))}


def test_each_ledger_has_its_own_locks(pg_database_url: str, tmp_path: Path) -> None:
    urls = [f"{pg_database_url}?schema=alpha", f"{pg_database_url}?schema=beta"]
    for url in urls:
        with open_ledger(url, create=True) as ledger:
            import_file(ledger, write_rows(tmp_path / "2020.csv", [row(1)]), 2020, baseline=True)
    (a, a_settings), (b, b_settings) = (open_store(u, create=True) for u in urls)
    with a, b, run_lock(a, a_settings), run_lock(b, b_settings):
        # One reconciliation per ledger at once; a catch-up of one while the other holds its
        # views' lock in a transaction.
        views = b.views
        assert isinstance(views, LedgerViews)
        with views._write():
            assert a.catch_up() >= 1
