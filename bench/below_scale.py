"""Benchmark: the below-scale database (十七), its pipeline and the city progress report (十四) on
PostgreSQL.

Imports the demo's synthetic Shanxi (registers 2020-2026, 10,746 firms on the last) into a
throwaway database, then the demo's year of monthly below-scale files
(30,000 firms each, 2025-12 to 2026-11), each timed end to end in the process (read and check
the CSV, append the period, catch the views up) and once through the command
(`subsidy-ledger import-below-scale`, a new process); a re-issued month (a correction); then
`pipeline` on 2026-11-30 (the twelve months read: every file) and `progress --year 2026`, each run several
times, in the process and as the command.

Usage: python bench/below_scale.py [--pg URL] [--scale 1.0] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from throwaway_db import throwaway_database

import adapters.bootstrap
from adapters.bootstrap import open_ledger
from adapters.demo.below_scale import below_scale_months, write_months
from adapters.demo.synthetic import generate
from adapters.files.below_scale_csv import read_below_scale, write_below_scale
from adapters.files.register_csv import CsvRegister, write_register
from domain.below_scale import Period

TODAY = date(2026, 12, 3)
SEED = 38


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    adapters.bootstrap.today_in_shanghai = lambda: TODAY  # the same months on every run
    province = generate(SEED, args.scale, 2020, 2026)
    months = below_scale_months(province, SEED, Period.of(TODAY))
    command = [sys.executable, "-m", "adapters.main"]
    with (
        tempfile.TemporaryDirectory() as folder,
        throwaway_database(args.pg) as url,
        open_ledger(url, create=True) as ledger,
    ):
        d = Path(folder)
        for year in province.years:
            write_register(d / f"{year}.csv", province.registers[year])
            ledger.import_register(
                year,
                CsvRegister(d / f"{year}.csv", year),
                actor="bench",
                baseline=year == province.first_year,
            )
        paths = write_months(months, d)
        last = max(paths)
        rates = []
        for period, path in sorted(paths.items()):
            if period == last:
                continue  # imported by the command below
            t0 = time.perf_counter()
            read = read_below_scale(path)
            r = ledger.import_below_scale(
                str(period), read.name, read.sha256, read.rows, actor="bench"
            )
            assert r.position is not None and r.views_error is None
            rates.append(len(read.rows) / (time.perf_counter() - t0))
        rows = len(months[last])
        print(
            f"{len(rates)} monthly files of {rows:,} firms, in the process (read, check, append, "
            f"views): median {statistics.median(rates):,.0f} rows/s, slowest {min(rates):,.0f}, "
            f"fastest {max(rates):,.0f}"
        )
        env = {**os.environ, "LEDGER_DATABASE_URL": url, "PYTHONPATH": str(Path.cwd())}
        t0 = time.perf_counter()
        subprocess.run(
            [*command, "import-below-scale", "--period", str(last), str(paths[last])],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        took = time.perf_counter() - t0
        print(f"  the command (a new process) for {last}: {took:.2f} s, {rows / took:,.0f} rows/s")
        reissued = d / "reissued.csv"
        changed = [r._replace(revenue_ytd_fen=r.revenue_ytd_fen + 1) for r in months[last][:300]]
        write_below_scale(reissued, changed + months[last][300:])
        t0 = time.perf_counter()
        read = read_below_scale(reissued)
        r = ledger.import_below_scale(str(last), read.name, read.sha256, read.rows, actor="bench")
        took = time.perf_counter() - t0
        assert r.corrected and r.counts["changed"] == 300
        print(f"  {last} re-issued (300 firms changed): {took:.2f} s, {rows / took:,.0f} rows/s")

        on = date(province.last_year, 11, 30)  # the twelve months to it: every file
        timed(f"pipeline on {on}", args.runs, lambda: ledger.pipeline(on))
        pipe = ledger.pipeline(on)
        print(
            f"    {len(pipe.periods)} months read, reached {len(pipe.reached):,}, pool "
            f"{len(pipe.pool):,}, left out (on the register) {pipe.on_register:,}"
        )
        timed(
            f"pipeline --year {province.last_year} --conversion",
            args.runs,
            lambda: ledger.conversion(province.last_year),
        )
        timed(
            f"progress --year {province.last_year}",
            args.runs,
            lambda: ledger.progress(province.last_year),
        )
        for what in (
            ["pipeline", "--on", on.isoformat(), "--json"],
            ["progress", "--year", str(province.last_year), "--json"],
        ):
            t0 = time.perf_counter()
            subprocess.run([*command, *what], check=True, env=env, stdout=subprocess.DEVNULL)
            print(
                f"  the command `{' '.join(what)}` (a new process): {time.perf_counter() - t0:.2f} s"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory {peak:.0f} MB (this process)")


def timed(what: str, runs: int, call: object) -> None:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    print(
        f"  {what}, in the process, {runs} runs: median {statistics.median(times):.2f} s, "
        f"slowest {max(times):.2f} s"
    )


if __name__ == "__main__":
    main()
