"""Benchmark: adopting a retroactive policy version over the synthetic province on PostgreSQL.

Imports the demo's synthetic Shanxi (about 12,000 firms over six register years 2020-2025) into
a throwaway database, then times `adopt_policy` (what `policy adopt` runs: the version recorded,
every firm it now governs re-derived in one transaction, the views caught up after it) for:
- the shipped 2025 version (晋财规建〔2025〕1号, applies_from 2025: the 2025 cohort);
- in a second ledger, a version applying from 2021 (every cohort after the 2020 baseline), 20%
  lower, so that every award of those cohorts changes amount.

Usage: python bench/adopt_policy.py [--pg URL] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from throwaway_db import throwaway_database

from adapters.bootstrap import open_ledger
from adapters.demo.synthetic import generate
from adapters.files.register_csv import CsvRegister, write_register
from domain.policy import Policy, load_policy

PACKAGED = Path(__file__).resolve().parent.parent / "domain" / "policies"


def versions() -> list[tuple[str, Policy]]:
    shipped = load_policy(PACKAGED / "jincaiguijian-2025-1.toml")
    data = shipped.model_dump(mode="json")
    data["id"] = "bench-from-2021"
    data["applies_from"] = 2021
    data["first_entry"]["amount_fen"] = 24_000_000
    for award in data["retention"]["awards"]:
        award["amount_fen"] = award["amount_fen"] * 4 // 5
    return [
        ("2025 version (applies_from 2025)", shipped),
        ("a version applying from 2021", Policy.model_validate(data)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    province = generate(38, args.scale)
    with tempfile.TemporaryDirectory() as folder:
        for year in province.years:
            write_register(Path(folder) / f"{year}.csv", province.registers[year])
        for title, policy in versions():
            with throwaway_database(args.pg) as url, open_ledger(url, create=True) as ledger:
                for year in province.years:
                    ledger.import_register(
                        year,
                        CsvRegister(Path(folder) / f"{year}.csv", year),
                        actor="bench",
                        baseline=year == province.first_year,
                    )
                firms = len(province.registers[province.last_year])
                t0 = time.perf_counter()
                r = ledger.adopt_policy(policy, actor="bench", reason="bench")
                seconds = time.perf_counter() - t0
                print(
                    f"{title}: {len(r.firms):,} firms re-derived ({firms:,} on the "
                    f"{province.last_year} register), {len(r.amount_changed):,} amounts and "
                    f"{len(r.version_changed):,} versions changed, {len(r.arrears):,} arrears, "
                    f"{len(r.revoked) + len(r.recovery_due):,} taken away: {seconds:.2f} s"
                )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
