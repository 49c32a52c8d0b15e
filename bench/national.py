"""Benchmark: a synthetic China on one PostgreSQL primary (issue 15's national simulation).

For each size of the curve (default 10,000, 100,000 and 500,000 distinct firms; the province
generator at the scale that gives them: six register years 2020-2025, ~8% entries and 3-8%
exits a year), in a throwaway database of its own:

1. every register year imported through `Ledger.import_register` (2020 the baseline);
2. payments for every award owed, appended in bulk as bench/reconcile.py appends them (the
   events `record_payment` writes), and the views caught up;
3. a correction of 2022 (0.5% of its firms dropped by the bureau's re-issue);
4. the audit benchmark's queries: `enterprise --as-of --known-at` for random firms, days and
   positions (p50, p99), `register --year 2021 --known-at` early and now, `awards` early;
5. `verify` over the whole chain, and one nightly `reconcile` (the first night: no anchor), each
   as the command in a process of its own (wall seconds, its own peak RSS).

Each step prints its seconds and the peak RSS of the process that ran it; then the growth table:
seconds per 1,000 firms at each size (a step is linear if that stays flat).

Usage: python bench/national.py [--firms N | --curve 10000,100000,500000] [--samples 200]
       [--pg URL]
The full curve took 16 minutes on this 2-core machine; `--firms 20000` takes under a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from reconcile import (
    FIRMS_AT_SCALE_1,
    NIGHTS,
    build_registers,
    count_events,
    pay,
    write_planted_treasury,
)
from throwaway_db import throwaway_database

from adapters.bootstrap import open_ledger
from adapters.demo.synthetic import generate
from adapters.files.register_csv import CsvRegister, write_register
from domain.command_results import CorrectionResult
from domain.errors import NotFoundError

SEED = 38


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Size:
    firms: int
    events: int = 0
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    """step -> (seconds, peak MB of the process that ran it)."""


def step(size: Size, name: str, seconds: float, mb: float | None = None) -> None:
    size.steps[name] = (seconds, peak_mb() if mb is None else mb)
    print(f"  {name}: {seconds:.1f} s, peak RSS {size.steps[name][1]:.0f} MB", flush=True)


def command(args: list[str]) -> tuple[float, float, int, str]:
    """The CLI in a process of its own: wall seconds, its own peak RSS (VmHWM, read while it
    runs: exec starts the count afresh, which wait4's figure does not, since it counts the pages
    the fork shared with this process), exit status, stdout."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.main", *args], stdout=out, stderr=subprocess.DEVNULL
        )
        high = 0
        while proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                status = Path(f"/proc/{proc.pid}/status").read_text()
                line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
                high = max(high, int(line.split()[1]))
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode()
    return seconds, high / 1024, proc.returncode, text


def run_size(firms: int, pg: str, samples: int, folder: Path) -> Size:
    size = Size(firms)
    scale = firms / FIRMS_AT_SCALE_1
    rng = random.Random(f"bench-national-{firms}")
    print(f"\n{firms:,} firms (generator scale {scale:.2f})", flush=True)
    with throwaway_database(pg) as url:
        with open_ledger(url, create=True) as svc:
            t0 = time.perf_counter()
            built = build_registers(svc, folder, scale)
            step(size, "import six years", time.perf_counter() - t0)
            t0 = time.perf_counter()
            paid, _overdue = pay(svc, 3 * built, rng)
            step(size, f"payments ({len(paid):,}, bulk, views caught up)", time.perf_counter() - t0)
            early = next(y.position for y in svc.imported_years() if y.year == 2021)
            province = generate(SEED, scale)
            rows = province.registers[2022]
            dropped = set(rng.sample(range(len(rows)), max(1, len(rows) // 200)))
            fixed = folder / "2022-fixed.csv"
            write_register(fixed, [r for i, r in enumerate(rows) if i not in dropped])
            t0 = time.perf_counter()
            c = svc.import_register(
                2022, CsvRegister(fixed, 2022), actor="bench", correction=True, reason="bench"
            )
            assert isinstance(c, CorrectionResult)
            step(
                size,
                f"correction of 2022 ({len(dropped):,} firms dropped)",
                time.perf_counter() - t0,
            )
            usccs = sorted({r[0] for y in province.years for r in province.registers[y]})
            head = svc.catch_up()
            timings = []
            t0 = time.perf_counter()
            for _ in range(samples):
                day = date(2020, 1, 1) + timedelta(days=rng.randrange(7 * 365))
                t1 = time.perf_counter()
                with contextlib.suppress(NotFoundError):
                    svc.enterprise(
                        rng.choice(usccs), as_of=day, known_at=f"@{rng.randrange(early, head + 1)}"
                    )
                timings.append(time.perf_counter() - t1)
            q = statistics.quantiles(timings, n=100)
            print(
                f"    enterprise --as-of --known-at ({samples}): p50 {q[49] * 1000:.1f} ms, "
                f"p99 {q[98] * 1000:.1f} ms",
                flush=True,
            )
            for label, known_at in (("early", f"@{early}"), ("now", None)):
                t1 = time.perf_counter()
                svc.register(2021, svc.point(known_at))
                print(f"    register --year 2021 ({label}): {time.perf_counter() - t1:.2f} s")
            t1 = time.perf_counter()
            svc.awards(svc.point(f"@{early}"))
            print(f"    awards --known-at @{early}: {time.perf_counter() - t1:.2f} s")
            step(size, "audit queries", time.perf_counter() - t0)
        size.events = count_events(url)
        seconds, mb, code, _out = command(["verify", "--db", url, "--json"])
        assert code == 0, f"verify exited {code}"
        step(size, f"verify ({size.events:,} events)", seconds, mb)
        treasury = folder / "treasury.csv"
        write_planted_treasury(treasury, paid, rng)
        out = folder / f"reports-{firms}"
        seconds, mb, code, text = command(
            ["reconcile", "--db", url, "--treasury", str(treasury), "--date",
             NIGHTS[0].isoformat(), "--out", str(out), "--json"]
        )  # fmt: skip
        assert code in (0, 1), f"reconcile exited {code}"
        findings = json.loads(text)["findings"]
        step(size, f"reconcile, first night ({findings} findings)", seconds, mb)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, help="one size only")
    parser.add_argument("--curve", default="10000,100000,500000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    sizes = [args.firms] if args.firms else [int(n) for n in args.curve.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for firms in sizes:
            # Each size in its own process: one size's peak RSS is not the next one's floor.
            if len(sizes) > 1:
                text = command_self(firms, args.samples, args.pg)
                print(text, end="", flush=True)
                results.append(json.loads(text.rsplit("\nRESULT ", 1)[1]))
            else:
                size = run_size(firms, args.pg, args.samples, Path(folder))
                results.append({"firms": size.firms, "events": size.events, "steps": size.steps})
                print("\nRESULT " + json.dumps(results[-1]))
    if len(results) > 1:
        print("\ngrowth: seconds per 1,000 firms (flat = linear), and peak RSS")
        names = list(results[0]["steps"])
        head = f"{'step':46}" + "".join(f"{r['firms']:>18,}" for r in results)
        print(head)
        for i, name in enumerate(names):
            cells = ""
            for r in results:
                seconds, mb = list(r["steps"].values())[i]
                cells += f"{seconds / r['firms'] * 1000:9.3f} {mb:6.0f} MB"
            print(f"{name.split(' (')[0]:46}{cells}")


def command_self(firms: int, samples: int, pg: str) -> str:
    """One size in a process of its own: what it printed."""
    proc = subprocess.run(
        [sys.executable, __file__, "--firms", str(firms), "--samples", str(samples), "--pg", pg],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the {firms:,}-firm run failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


if __name__ == "__main__":
    main()
