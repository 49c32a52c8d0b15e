"""Benchmark: the auditors' questions on PostgreSQL over a synthetic province.

Builds the demo's synthetic Shanxi (about 10,000 firms on the 2025 register, six register years
2020-2025, its payments), re-issues 2022 as a correction, then times:
- `enterprise --as-of --known-at` through the library API (LedgerService.enterprise) for random
  firms, days and log positions: p50/p95/p99/max;
- `register --year --known-at` at an early position (just after the 2021 import) and now;
- `awards --known-at` at the same early position.

Usage: python bench/audit_queries.py [--pg URL] [--samples 2000] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg

from adapters.bootstrap import open_ledger, today_in_shanghai
from adapters.demo.run import _pay
from adapters.demo.synthetic import generate
from adapters.files.register_csv import CsvRegister, write_register
from domain.command_results import CorrectionResult
from domain.errors import NotFoundError


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def build(url: str, folder: Path, scale: float) -> tuple[int, list[str]]:
    """The synthetic ledger; returns the position right after the 2021 import and the firms."""
    province = generate(38, scale)
    early = 0
    with open_ledger(url, create=True) as svc:
        for year in province.years:
            path = folder / f"{year}.csv"
            write_register(path, province.registers[year])
            result = svc.import_register(
                year, CsvRegister(path, year), actor="bench", baseline=year == province.first_year
            )
            if year == province.first_year + 1:
                early = result.position or 0
        t0 = time.perf_counter()
        paid = _pay(svc, 38, province.last_year, today_in_shanghai())
        print(f"recorded {paid['recorded']:,} payments in {time.perf_counter() - t0:.1f} s")
        # The bureau re-issues 2022: 40 firms dropped, their rows otherwise as before.
        rows = province.registers[province.first_year + 2]
        rng = random.Random(5)
        dropped = set(rng.sample(range(len(rows)), 40))
        fixed = folder / "2022-fixed.csv"
        write_register(fixed, [r for i, r in enumerate(rows) if i not in dropped])
        t0 = time.perf_counter()
        year = province.first_year + 2
        c = svc.import_register(
            year, CsvRegister(fixed, year), actor="bench", correction=True, reason="bench re-issue"
        )
        assert isinstance(c, CorrectionResult)
        print(
            f"correction of {province.first_year + 2}: {len(c.firms)} firms, "
            f"{len(c.arrears)} arrears, {len(c.revoked)} revoked, {len(c.recovery_due)} to recover, "
            f"{time.perf_counter() - t0:.2f} s"
        )
        firms = sorted({r[0] for year in province.years for r in province.registers[year]})
    return early, firms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where the benchmark may create and drop a database",
    )
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="ledger-audit-bench-"))
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    try:
        t0 = time.perf_counter()
        early, firms = build(url, folder, args.scale)
        print(f"built the ledger ({len(firms):,} firms) in {time.perf_counter() - t0:.1f} s")
        with open_ledger(url, create=True) as svc:
            head = svc.catch_up()
            print(f"log head at position {head:,}; early position {early:,}")
            rng = random.Random(11)
            timings = []
            for _ in range(args.samples):
                uscc = rng.choice(firms)
                day = date(2020, 1, 1) + timedelta(days=rng.randrange(7 * 365))
                position = rng.randrange(early, head + 1)
                t0 = time.perf_counter()
                # A firm not yet on any register then is answered all the same (refused).
                with contextlib.suppress(NotFoundError):
                    svc.enterprise(uscc, as_of=day, known_at=f"@{position}")
                timings.append(time.perf_counter() - t0)
            q = statistics.quantiles(timings, n=100)
            print(
                f"enterprise --as-of --known-at ({args.samples} random firms/days/positions): "
                f"p50 {ms(q[49])}  p95 {ms(q[94])}  p99 {ms(q[98])}  max {ms(max(timings))}"
            )
            for label, known_at in ((f"@{early} (after 2021)", f"@{early}"), ("now", None)):
                runs = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    at = svc.point(known_at)
                    rows = svc.register(2021, at)
                    runs.append(time.perf_counter() - t0)
                print(
                    f"register --year 2021 --known-at {label}: {len(rows):,} firms, "
                    f"median {ms(statistics.median(runs))}  max {ms(max(runs))}"
                )
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                awards = svc.awards(svc.point(f"@{early}"))
                runs.append(time.perf_counter() - t0)
            print(
                f"awards --known-at @{early}: {len(awards):,} awards, "
                f"median {ms(statistics.median(runs))}  max {ms(max(runs))}"
            )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {rss:.0f} MB")
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
