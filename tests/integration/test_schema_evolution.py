"""Events are kept for decades: an event stored in an older shape is upcast when read."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from support.helpers import Firm, ref_uscc, write_register
from support.ledgers import import_file

from adapters.bootstrap import open_ledger
from domain.register_book import REGISTER_BOOK_ID, RegisterBook
from projections.runner import LedgerViews
from projections.tables import SCHEMA_VERSION


def test_a_version_1_year_import_is_read_with_an_unknown_encoding(db_url: str) -> None:
    with open_ledger(db_url, create=True) as ledger:
        book = RegisterBook._create(RegisterBook.Opened, id=REGISTER_BOOK_ID, actor="old-ledger")
        book.trigger_event(
            RegisterBook.YearImported,
            year=2019,
            baseline=True,
            sha256="ab" * 32,
            rows=1,
            counts={"on_baseline": 1},
            actor="old-ledger",
            encoding="dropped below",
        )
        stored = [ledger.mapper.to_stored_event(e) for e in book.collect_events()]
        state = json.loads(stored[1].state)
        assert state.pop("class_version") == 2  # what the current version writes
        del state["encoding"]
        # As version 1 stored it: no class_version, no encoding.
        stored[1] = replace(stored[1], state=json.dumps(state, separators=(",", ":")).encode())
        ledger.recorder.insert_events(stored)

        year = ledger.get_book().years[2019]  # type: ignore[union-attr]
        assert (year.encoding, year.sha256, year.counts) == (None, "ab" * 32, {"on_baseline": 1})


def test_a_new_year_import_records_its_encoding_as_version_2(db_url: str, tmp_path: Path) -> None:
    path = write_register(tmp_path / "2020.csv", [Firm(ref_uscc(1))], encoding="gb18030")
    with open_ledger(db_url, create=True) as ledger:
        import_file(ledger, path, 2020, baseline=True, encoding="gbk")
        book = ledger.get_book()
        assert book is not None and book.years[2020].encoding == "gb18030"
        last = list(ledger.events.get(REGISTER_BOOK_ID))[-1]
        stored = json.loads(ledger.mapper.to_stored_event(last).state)
        assert (stored["class_version"], stored["encoding"]) == (2, "gb18030")


def test_views_of_an_older_shape_are_dropped_and_rebuilt_from_the_log(
    db_url: str, tmp_path: Path
) -> None:
    path = write_register(tmp_path / "2020.csv", [Firm(ref_uscc(1)), Firm(ref_uscc(2))])
    with open_ledger(db_url, create=True) as ledger:
        import_file(ledger, path, 2020, baseline=True)
        views = ledger.views
        assert isinstance(views, LedgerViews)
        with views._write() as tx:  # as views written before lv_schema existed
            tx.execute("DROP TABLE lv_schema")
            tx.execute("DROP TABLE lv_register")
            tx.execute("CREATE TABLE lv_register (year INTEGER, uscc TEXT)")
    with open_ledger(db_url, create=True) as ledger:
        assert [r.uscc for r in ledger.register(2020)] == [ref_uscc(1), ref_uscc(2)]
        views = ledger.views
        assert isinstance(views, LedgerViews)
        with views.read() as tx:
            assert tx.rows("SELECT version FROM lv_schema") == [(SCHEMA_VERSION,)]
