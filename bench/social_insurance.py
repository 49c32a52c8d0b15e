"""Benchmark: the (九) social-insurance subsidy on PostgreSQL.

A throwaway ledger whose 2025 register has 1,000 first entrants (baseline 2024); 10,000 hires
(ten a firm, made-up identity numbers) imported from one file; then twelve months of
contributions for all 10,000 hires, each file timed end to end in the process (read and check
the CSV, a pseudonym a row, the employers' streams read, the events appended); the same month
again (a replay); `si-claims --fiscal-year 2025` over the 120,000 person-months; one erasure.

Usage: python bench/social_insurance.py [--pg URL] [--firms 1000] [--hires-per-firm 10]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from throwaway_db import throwaway_database

import adapters.bootstrap
from adapters.bootstrap import open_store
from adapters.files.hires_csv import contributions_csv, hires_csv, read_contributions, read_hires
from adapters.files.register_csv import CsvRegister, write_register
from domain.codes import make_uscc
from domain.persons import id_check_char

TODAY = date(2026, 12, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--firms", type=int, default=1000)
    parser.add_argument("--hires-per-firm", type=int, default=10)
    args = parser.parse_args()
    adapters.bootstrap.today_in_shanghai = lambda: TODAY
    rng = random.Random(9)
    firms = [make_uscc("140105", f"MC{n:06d}") for n in range(args.firms + 1)]
    people = []
    for n in range(args.firms * args.hires_per_firm):
        born = date(1970, 1, 1) + timedelta(days=n // 1000)
        first17 = f"140105{born:%Y%m%d}{n % 1000:03d}"
        people.append(first17 + id_check_char(first17))
    assert len(set(people)) == len(people)
    with tempfile.TemporaryDirectory() as folder, throwaway_database(args.pg) as url:
        d = Path(folder)
        secret = d / "person.secret"
        ledger, _ = open_store(url, create=True, person_secret=str(secret))
        with ledger:
            for year, usccs in ((2024, firms[:1]), (2025, firms)):
                rows = [
                    (u, f"山西{u[-6:]}制造有限公司", "140105", "C1311", "", "", "") for u in usccs
                ]
                write_register(d / f"{year}.csv", rows)
                ledger.import_register(
                    year, CsvRegister(d / f"{year}.csv", year), actor="bench", baseline=year == 2024
                )
            employer = {p: firms[1 + i // args.hires_per_firm] for i, p in enumerate(people)}
            hires = [[employer[p], p, "张三", "长期失业人员", "2025-01-01", ""] for p in people]
            (d / "hires.csv").write_bytes(hires_csv(hires))
            t0 = time.perf_counter()
            read = read_hires(d / "hires.csv")
            r = ledger.import_hires(read.name, read.sha256, read.rows, actor="bench")
            took = time.perf_counter() - t0
            assert r.recorded == len(people), r
            print(
                f"{len(people):,} hires of {args.firms:,} firms imported: {took:.2f} s, {len(people) / took:,.0f} rows/s"
            )
            rates = []
            for month in range(1, 13):
                m = f"2025-{month:02d}"
                path = d / f"contributions-{m}.csv"
                path.write_bytes(
                    contributions_csv(
                        [employer[p], p, rng.randrange(90_000, 170_000)] for p in people
                    )
                )
                t0 = time.perf_counter()
                c = read_contributions(path)
                r = ledger.import_contributions(m, c.name, c.sha256, c.rows, actor="bench")
                rates.append(len(people) / (time.perf_counter() - t0))
                assert r.recorded == len(people)
            print(
                f"  12 months of contributions, {len(people):,} rows each: median "
                f"{statistics.median(rates):,.0f} rows/s, slowest {min(rates):,.0f}, fastest "
                f"{max(rates):,.0f}"
            )
            t0 = time.perf_counter()
            c = read_contributions(path)
            again = ledger.import_contributions("2025-12", c.name, c.sha256, c.rows, actor="bench")
            assert again.replay
            print(f"  the same month again (a replay): {time.perf_counter() - t0:.2f} s")
            t0 = time.perf_counter()
            claims = ledger.si_claims(fiscal_year=2025)
            print(
                f"  si-claims --fiscal-year 2025: {len(claims.claims):,} person-months in "
                f"{time.perf_counter() - t0:.2f} s"
            )
            t0 = time.perf_counter()
            ledger.erase_person(people[0], "bench-erasure", actor="bench")
            print(f"  person erase: {time.perf_counter() - t0:.3f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
