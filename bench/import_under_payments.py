"""Benchmark: a register year of N firms imported while payments are recorded at R a second.

The ledger holds the registers of 2020 and 2021 (N firms each, bench/import_register.py's files);
a payer thread (its own ledger, as finance's would be) records 1-fen payments against the 2021
first-entry awards at R a second while the 2022 register (the 2021 firms, 5% gone) is imported.
Prints the import's time and rows/s, whether it needed a retry (it must not), the payments made
during it and their latency (p50, p99, max: the longest a payment waited for the import's write
phase), for SQLite and PostgreSQL.
Usage: python bench/import_under_payments.py [--firms 100000] [--rate 20] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from import_register import write_registers
from throwaway_db import throwaway_database

from adapters.bootstrap import open_ledger
from adapters.files.register_csv import CsvRegister, write_register
from domain.command_results import ImportResult


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url: str, folder: Path, base: Path, nxt: Path, rate: float, label: str) -> None:
    with open_ledger(url, create=True) as ledger:
        for path, year, baseline in ((base, 2020, True), (nxt, 2021, False)):
            ledger.import_register(year, CsvRegister(path, year), actor="bench", baseline=baseline)
        awards = [a.entitlement_id for a in ledger.awards() if a.kind == "first_entry"]
    with nxt.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    third = folder / "2022.csv"
    write_register(third, [r for i, r in enumerate(rows) if i % 20])
    latencies: list[tuple[float, float]] = []  # (started, seconds)
    stop = threading.Event()

    def pay() -> None:
        with open_ledger(url) as finance:
            for n, award in enumerate(awards):
                if stop.is_set():
                    return
                t0 = time.monotonic()
                finance.record_payment(award, f"B{n}", 1, date(2022, 3, 1), actor="bench")
                latencies.append((t0, time.monotonic() - t0))
                stop.wait(max(0.0, 1 / rate - (time.monotonic() - t0)))

    payer = threading.Thread(target=pay)
    payer.start()
    time.sleep(1.0)
    with open_ledger(url) as importer:
        t0 = time.monotonic()
        result = importer.import_register(2022, CsvRegister(third, 2022), actor="bench")
        t1 = time.monotonic()
    stop.set()
    payer.join()
    assert isinstance(result, ImportResult) and not result.replay
    during = [s for started, s in latencies if t0 <= started <= t1]
    print(
        f"{label:9} 2022 {result.rows:>7} rows in {t1 - t0:6.2f} s ({result.rows / (t1 - t0):,.0f}"
        f" rows/s), no retry; {len(during)} payments during it "
        f"({len(during) / (t1 - t0):.1f}/s): latency p50 {statistics.median(during) * 1000:.0f} ms, "
        f"p99 {percentile(during, 0.99) * 1000:.0f} ms, max {max(during) * 1000:.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=20.0, help="payments a second")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where the benchmark may create and drop a database",
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    try:
        base, nxt = write_registers(folder, args.firms)
        if "sqlite" in args.stores:
            run(f"sqlite:///{folder}/bench.db", folder, base, nxt, args.rate, "sqlite")
        if "postgres" in args.stores:
            with throwaway_database(args.pg) as url:
                run(url, folder, base, nxt, args.rate, "postgres")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
