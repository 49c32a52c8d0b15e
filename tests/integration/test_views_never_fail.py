"""The views never fail on a committed event: one the store cannot hold (a NUL, written by a ledger
before the boundary checks) or one changed so that it cannot be read. The answers go on; the
drift check and the chain say what is wrong."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
from support.ledgers import import_file, row, uscc, write_rows

from adapters.bootstrap import log_of, open_ledger
from adapters.persistence.settings import database_settings
from domain.enterprise import Enterprise
from projections.drift import compare, derive
from projections.runner import LedgerViews


def _legacy_name_change(url: str, tmp_path: Path, name: str) -> None:
    """A ledger whose firm 1 was renamed by an older version, which let a NUL through."""
    with open_ledger(url, create=True) as ledger:
        import_file(
            ledger, write_rows(tmp_path / "2020.csv", [row(1), row(2)]), 2020, baseline=True
        )
        firm = ledger.get_enterprise(uscc(1))
        firm.trigger_event(
            Enterprise.NameChanged, name=name, year=2020, actor="legacy", source_sha256=None
        )
        ledger.save(firm)  # the application's own save: no boundary check runs here


def test_a_nul_in_a_committed_event_is_answered_and_is_drift_where_the_store_cannot_hold_it(
    db_url: str, tmp_path: Path
) -> None:
    _legacy_name_change(db_url, tmp_path, "坏\x00名")
    with open_ledger(db_url, create=True) as ledger:
        head = ledger.catch_up()  # would fail for good without the replacement
        (named,) = [r for r in ledger.register(2020) if r.uscc == uscc(1)]
        assert ledger.enterprise(uscc(1)).name == "坏\x00名"  # the log keeps what was written
        assert ledger.rebuild_views() == head
        views = ledger.views
        assert isinstance(views, LedgerViews)
        with views.read() as tx:
            drift = {d.table: d for d in compare(tx, derive(ledger, head), lambda oid: None)}
        held = database_settings(db_url).kind == "sqlite"
        # SQLite's text holds a NUL: the view is the log's. PostgreSQL's cannot: the firm's row
        # holds U+FFFD there, and the drift check names the table and the row.
        assert drift["lv_firms"].drifted == (0 if held else 1)
        if not held:
            (example,) = drift["lv_firms"].examples
            assert example["derived"][3] == "坏\x00名" and example["view"][3] == "坏\ufffd名"
        assert named.name == "山西测试1有限公司"  # the 2020 row was the register's own
        assert sum(d.drifted for t, d in drift.items() if t != "lv_firms") == 0


def _damage_last_event(url: str) -> int:
    settings = database_settings(url)
    if settings.kind == "sqlite":
        with sqlite3.connect(settings.env["SQLITE_DBNAME"]) as conn:
            (last,) = conn.execute("SELECT max(rowid) FROM stored_events").fetchone()
            # replace() on a BLOB gives TEXT: another SQL type in the column
            conn.execute(
                "UPDATE stored_events SET state = replace(state, 'legacy', 'mallory') WHERE rowid = ?",
                (last,),
            )
            return int(last)
    with psycopg.connect(url, autocommit=True) as conn:
        (last,) = conn.execute("SELECT max(notification_id) FROM ledger_events").fetchone()
        conn.execute(
            "UPDATE ledger_events SET state = '\\x00ff'::bytea WHERE notification_id = %s", (last,)
        )
        return int(last)


def test_an_event_that_cannot_be_read_is_left_out_of_the_views_and_named(
    db_url: str, tmp_path: Path
) -> None:
    _legacy_name_change(db_url, tmp_path, "改名")
    damaged = _damage_last_event(db_url)
    with open_ledger(db_url, create=True) as ledger:
        assert ledger.catch_up() == damaged  # the catch-up goes past it
        assert ledger.rebuild_views() == damaged
        assert {r.uscc for r in ledger.register(2020)} == {uscc(1), uscc(2)}
        derived = derive(ledger, damaged)
        assert [p for p, _why in derived.batch.unreadable] == [damaged]
        assert log_of(ledger).verify_chain().broken.position == damaged  # type: ignore[union-attr]
