"""Benchmark: import a register year of N enterprises, end to end (parse, validate, diff, append, project).

Prints rows/s and peak memory (RSS high-water mark of this process) for SQLite and PostgreSQL.
Usage: python bench/import_register.py [--firms 100000] [--pg URL] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from throwaway_db import throwaway_database

from adapters.bootstrap import open_ledger
from adapters.files.register_csv import CsvRegister, write_register
from domain.codes import divisions, make_uscc
from domain.command_results import ImportResult

INDUSTRIES = ["0610", "C1311", "2511", "3110", "3011", "D4411", "1711", "2614", "3130", "3360"]
SIZES = ["small", "small", "small", "micro", "medium", "large", ""]


def write_registers(folder: Path, firms: int, seed: int = 7) -> tuple[Path, Path]:
    """Baseline year 2020 with `firms` rows, and 2021 with ~5% leaving and ~8% new firms."""
    rng = random.Random(seed)
    counties = [d.code for d in divisions().values() if d.level != "city"]
    rows = []
    for i in range(firms):
        region = rng.choice(counties)
        rows.append(
            [
                make_uscc(region, f"{i:08d}"),
                f"山西测试{i}有限公司",
                region,
                rng.choice(INDUSTRIES),
                rng.choice(SIZES),
                "",
                str(rng.choice([2018, 2019, 2020])) if rng.random() < 0.2 else "",
            ]
        )
    base = folder / "2020.csv"
    write_register(base, rows)
    year2 = [[*r[:6], ""] for r in rows if rng.random() > 0.05]
    for j in range(firms, firms + firms * 8 // 100):
        region = rng.choice(counties)
        year2.append(
            [
                make_uscc(region, f"{j:08d}"),
                f"山西新建{j}有限公司",
                region,
                rng.choice(INDUSTRIES),
                "small",
                "growth",
                "",
            ]
        )
    rng.shuffle(year2)
    # exactly `firms` rows in the measured year
    year2 = year2[:firms]
    nxt = folder / "2021.csv"
    write_register(nxt, year2)
    return base, nxt


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(url: str, base: Path, nxt: Path, label: str) -> None:
    with open_ledger(url, create=True) as ledger:
        for path, year, baseline in ((base, 2020, True), (nxt, 2021, False)):
            t0 = time.perf_counter()
            result = ledger.import_register(
                year, CsvRegister(path, year), actor="bench", baseline=baseline
            )
            assert isinstance(result, ImportResult)
            seconds = time.perf_counter() - t0
            print(
                f"{label:9} {year} {'baseline' if baseline else 'diffed  '} {result.rows:>7} rows "
                f"{seconds:6.2f} s  {result.rows / seconds:8,.0f} rows/s  "
                f"({result.counts})  peak RSS {peak_rss_mb():.0f} MB",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where the benchmark may create and drop a database",
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    try:
        t0 = time.perf_counter()
        base, nxt = write_registers(folder, args.firms)
        print(
            f"generated 2 register files of {args.firms:,} firms in {time.perf_counter() - t0:.1f} s"
        )
        if "sqlite" in args.stores:
            run(f"sqlite:///{folder}/bench.db", base, nxt, "sqlite")
        if "postgres" in args.stores:
            with throwaway_database(args.pg) as url:
                run(url, base, nxt, "postgres")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
