"""Benchmark: a province-wide payment batch through the workflow on PostgreSQL.

Imports the demo's synthetic Shanxi (about 12,000 firms, registers 2020-2025) into a throwaway
database, appropriates fiscal 2026 (the awards decided on the 2025 register: about 3,000), and
times each step as the commands run it: `batch propose` (every award due, not paid, not held,
in no batch), `batch approve` (another user), `batch publish` (the period by the official
calendar, the notice page and CSV written), `batch release` (every firm's release recorded on
its stream) and `batch orders` (the orders file written); then records payments against the
released awards through `record_payment` (the workflow's check on the firm's stream) and prints
their rate and percentiles; then times `forecast` of the three fiscal years after, from the
log now and from the log as it was at the 2022 import (replayed in memory).

`--direct` records the same payments against the same awards with no workflow and no batch (what
`record-payment` did before the workflow existed; it runs on earlier commits too), for the
comparison.

Usage: python bench/payment_batch.py [--pg URL] [--scale 1.0] [--payments 500] [--direct]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from throwaway_db import throwaway_database

import adapters.bootstrap
from adapters.bootstrap import open_ledger
from adapters.demo.synthetic import generate
from adapters.files.register_csv import CsvRegister, write_register

FISCAL_YEAR = 2026
TODAY = date(2026, 12, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--direct", action="store_true", help="no workflow: payments only")
    args = parser.parse_args()
    adapters.bootstrap.today_in_shanghai = lambda: TODAY  # the same dates on every run
    province = generate(38, args.scale)
    with (
        tempfile.TemporaryDirectory() as folder,
        throwaway_database(args.pg) as url,
        open_ledger(url, create=True) as ledger,
    ):
        for year in province.years:
            write_register(Path(folder) / f"{year}.csv", province.registers[year])
            ledger.import_register(
                year,
                CsvRegister(Path(folder) / f"{year}.csv", year),
                actor="bench",
                baseline=year == province.first_year,
            )
        if args.direct:
            due = sorted(
                (a.entitlement_id, a.amount_fen)
                for a in ledger.awards(fiscal_year=FISCAL_YEAR)
                if a.earned and getattr(a, "hold", None) is None  # no holds before them
            )
            record(ledger, due[: args.payments], "payments, no workflow")
            return
        from adapters.files.notice import write_notice, write_orders

        ledger.set_appropriation(FISCAL_YEAR, "F", 10**12, "bench", actor="bench")
        ledger.require_release(FISCAL_YEAR, "bench", actor="bench")
        steps: list[tuple[str, float]] = []

        def step(name: str, run: object) -> object:
            t0 = time.perf_counter()
            result = run()  # type: ignore[operator]
            steps.append((name, time.perf_counter() - t0))
            return result

        batch = step("propose", lambda: ledger.propose_batch(FISCAL_YEAR, actor="maker"))
        bid = batch.batch_id  # type: ignore[attr-defined]
        step("approve", lambda: ledger.approve_batch(bid, actor="checker"))
        step(
            "publish",
            lambda: write_notice(
                ledger.publish_batch(bid, date(2026, 11, 2), objections_to="bench", actor="maker"),
                Path(folder) / "notices",
            ),
        )
        released = step("release", lambda: ledger.release_batch(bid, actor="maker"))
        step(
            "orders",
            lambda: write_orders(ledger.batch_orders(bid), Path(folder) / "orders.csv"),
        )
        total = sum(s for _, s in steps)
        print(
            f"batch {bid}: {released.awards_count:,} awards released "  # type: ignore[attr-defined]
            f"({len(province.registers[province.last_year]):,} firms on the "
            f"{province.last_year} register)"
        )
        print("  " + ", ".join(f"{name} {s:.2f} s" for name, s in steps) + f"; total {total:.2f} s")
        awards = [a for a in released.awards if a.status == "released"]  # type: ignore[attr-defined]
        chosen = sorted((a.entitlement_id, a.amount_fen) for a in awards)[: args.payments]
        record(ledger, chosen, "payments against released awards")
        for label, known_at in (("now", None), ("from the 2022 import", "@2022")):
            if known_at is not None:
                known_at = f"@{next(y.position for y in ledger.imported_years() if y.year == 2022)}"
            t0 = time.perf_counter()
            r = ledger.forecast(FISCAL_YEAR + 1, FISCAL_YEAR + 3, known_at=known_at)
            print(
                f"  forecast {FISCAL_YEAR + 1}-{FISCAL_YEAR + 3} {label} (position {r.known_at}): "
                f"{time.perf_counter() - t0:.2f} s"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory {peak:.0f} MB")


def record(ledger: Any, awards: list[tuple[str, int]], what: str) -> None:
    """`record_payment` of each award's amount, timed one by one."""
    times = []
    for n, (eid, fen) in enumerate(awards):
        t0 = time.perf_counter()
        ledger.record_payment(eid, f"B{n:06d}", fen, TODAY, actor="finance")
        times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=100)
    print(
        f"  {len(times)} {what}: {len(times) / sum(times):.0f}/s, p50 {q[49] * 1000:.1f} ms, "
        f"p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
