"""Ledgers the tests build through the application: numbered firms, register files of them, a
snapshot of every view, and a history of imports and payments to build from."""

from __future__ import annotations

import sqlite3
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from adapters.files.register_csv import CsvRegister, write_register
from adapters.persistence.settings import database_settings
from domain.application import Ledger
from domain.codes import make_uscc
from domain.command_results import CorrectionResult, ImportResult
from projections.runner import LedgerViews
from projections.tables import TABLES

CLI = [sys.executable, "-m", "adapters.main"]
"""`subsidy-ledger` as a process."""
REGIONS = ["140105", "140212", "140403", "140802", "141102"]

History = list[tuple[list[bool], str, str, str]]
"""Per firm: on the register 2020..2023?, first_entry_year given on the baseline, region in 2022
and after (a move), size class."""


def uscc(i: int) -> str:
    return make_uscc(REGIONS[i % len(REGIONS)], f"{i:08d}")


def row(
    i: int, *, region: str | None = None, first_entry_year: str = "", size: str = "small"
) -> list[str]:
    return [
        uscc(i),
        f"山西测试{i}有限公司",
        region or REGIONS[i % len(REGIONS)],
        "C1311",
        size,
        "",
        first_entry_year,
    ]


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    write_register(path, rows)
    return path


def import_file(
    ledger: Ledger,
    path: Path,
    year: int,
    *,
    baseline: bool = False,
    actor: str = "t",
    **options: Any,
) -> ImportResult | CorrectionResult:
    """A register file imported as `import-register` does."""
    encoding = options.pop("encoding", "utf-8")
    return ledger.import_register(
        year, CsvRegister(path, year, encoding), actor=actor, baseline=baseline, **options
    )


def event_count(url: str) -> int:
    settings = database_settings(url)
    if settings.kind == "sqlite":
        with sqlite3.connect(settings.env["SQLITE_DBNAME"]) as conn:
            return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0])


def view_tables(ledger: Ledger) -> dict[str, list[tuple[object, ...]]]:
    """Every view's rows, each value as text, in primary key order."""
    ledger.catch_up()
    views = ledger.views
    assert isinstance(views, LedgerViews)
    with views.read() as tx:
        return {
            t.name: [
                tuple(str(v) for v in r)
                for r in tx.rows(f"SELECT * FROM {t.name} ORDER BY {', '.join(t.primary_key)}")
            ]
            for t in TABLES
        }


def import_history(ledger: Ledger, folder: Path, history: History) -> None:
    """Registers 2020-2023 of the history's firms imported one by one, each award due paid half."""
    for k, year in enumerate(range(2020, 2024)):
        rows = []
        for i, (present, first, moved_to, size) in enumerate(history):
            if present[k] or (k == 0 and not any(present)):
                region = moved_to if year >= 2022 else REGIONS[i % len(REGIONS)]
                fey = first if (k == 0 and first and int(first) <= year) else ""
                rows.append(row(i, region=region, first_entry_year=fey, size=size))
        if not rows:
            rows = [row(999)]
        import_file(ledger, write_rows(folder / f"{year}.csv", rows), year, baseline=(k == 0))
        # Pay every award due so far, half now and half later, to exercise paid/partially paid.
        for a in ledger.awards(status="due"):
            ledger.record_payment(
                a.entitlement_id,
                f"V-{a.entitlement_id}-1",
                a.amount_fen // 2,
                date(2024, 1, 2),
                actor="prop",
            )
