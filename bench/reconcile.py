"""Benchmark: the nightly reconciliation (`subsidy-ledger reconcile`) on PostgreSQL.

Target: 100,000 firms over six register years (2020-2025) and 300,000 treasury rows reconciled
in under 60 s with a peak RSS under 1 GB. This script prints the figures; it asserts no timing.

1. Builds the ledger: the synthetic province of adapters/synthetic.py at the scale that gives
   --firms distinct firms over the six years, each year imported through
   `Ledger.import_register` (2020 the baseline).
2. Pays the awards owed in 2-4 instalments each, dated inside the award's due fiscal year, so the
   ledger holds about 3 payments per firm. They are appended in bulk, not through
   `record_payment`: one payment at a time (load the firm, check, save two aggregates) runs at
   about 500/s, ten minutes of setup for 300,000. Instead the script builds the very events
   `Ledger.record_payment` would (`Enterprise.PaymentRecorded` at the firm's next versions,
   read from lv_firms, and a `PaymentRef.Claimed` under `payment_ref_id(ref)` per voucher),
   encodes them with the application's mapper and appends them through the recorder's
   `insert_event_stream`, as imports do (never one huge `app.save`: it hangs on PostgreSQL,
   ../shared/eventsourcing-notes.md). Same events, same hash chain, same views after the
   catch-up; the paid totals of the views are checked against what was appended.
3. Writes the treasury's cumulative payment file from those payments, with planted
   discrepancies (PLANTED of each kind: duplicated row, voucher the ledger lacks, dropped
   voucher, payee changed to another firm, amount +0.01, date +1 day) and PLANTED awards left
   partly unpaid past their grace, so the run has findings of every treasury class and the
   audit's `award_overdue`.
4. Times the real command in a subprocess, three nights in a row on the same file and report
   folder: the first has no kept anchor and verifies the hash chain from the first event; the
   next ones start from the previous night's anchor. Wall seconds and the child's own peak RSS
   (wait4) per run, and the findings by code from its JSON summary (exit status 1 is expected).
5. `--profile`: one more run in-process, under cProfile, into a fresh report folder (no anchor:
   the full chain verification), and the top entries by cumulative time.

Usage: python bench/reconcile.py [--firms 100000 | --scale S] [--payments N] [--pg URL] [--profile]
PostgreSQL: the database in LEDGER_BENCH_DATABASE_URL (it must be empty: the build imports a
baseline), or else a throwaway database created on --pg and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import psycopg
from eventsourcing.persistence import StoredEvent
from throwaway_db import throwaway_database

from adapters.bootstrap import log_of, open_ledger
from adapters.demo.synthetic import generate
from adapters.files.register_csv import CsvRegister, write_register
from adapters.files.treasury_csv import write_treasury
from domain.application import Ledger
from domain.command_results import ImportResult
from domain.enterprise import Enterprise, PaymentRef, payment_ref_id
from domain.money import yuan
from domain.reconciliation import MATCH_CLASSES
from domain.results import AwardRow
from projections.runner import LedgerViews

SEED = 38
FIRMS_AT_SCALE_1 = 11_917
"""Distinct firms over 2020-2025 of `generate(SEED, 1.0)` (the demo's province); firms scale
linearly with `scale`."""
ACTOR = "bench"
STREAM_EVENTS = 50_000
"""Events per `insert_event_stream` call (one transaction each)."""
NIGHTS = (date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26))
LAST_PAID_ON = date(2026, 11, 20)
"""No payment (nor a planted date +1 day) is after the first night, nor after today."""
PLANTED = 5
KIND_LABELS = {
    "first_entry": "首次小升规奖励",
    "retention_2y": "升规后连续在库两年奖励",
    "retention_3y": "升规后连续在库三年奖励",
}
TARGET_SECONDS, TARGET_MB = 60, 1024


@dataclass(frozen=True)
class Paid:
    """One payment appended to the ledger (and, as a rule, written to the treasury file)."""

    ref: str
    entitlement_id: str
    uscc: str
    name: str
    kind: str
    amount_fen: int
    paid_on: date


@dataclass
class Run:
    day: date
    seconds: float
    peak_mb: float
    exit_status: int
    summary: dict[str, Any]
    chain: dict[str, Any]


def split(rng: random.Random, amount: int, parts: int) -> list[int]:
    """`amount` fen in `parts` positive instalments summing to it."""
    cuts = sorted(rng.sample(range(1, amount), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, amount], strict=True)]


def days_in(rng: random.Random, fiscal_year: int, count: int) -> list[date]:
    """`count` payment days in the working months of a fiscal year, in order, none after
    LAST_PAID_ON."""
    first = date(fiscal_year, 3, 1)
    last = min(date(fiscal_year, 11, 30), LAST_PAID_ON)
    span = (last - first).days + 1
    return sorted(first + timedelta(days=rng.randrange(span)) for _ in range(count))


# 1. The ledger ------------------------------------------------------------------------------


def build_registers(svc: Ledger, folder: Path, scale: float) -> int:
    """Import the six register years; return the number of distinct firms."""
    t0 = time.perf_counter()
    province = generate(SEED, scale)
    firms = len({r[0] for year in province.years for r in province.registers[year]})
    sizes = ", ".join(f"{y}: {n:,}" for y, n in province.sizes().items())
    print(
        f"generated scale {scale:.3f}: {firms:,} firms over {province.first_year}-"
        f"{province.last_year} ({sizes}) in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    for year in province.years:
        path = folder / f"register-{year}.csv"
        write_register(path, province.registers[year])
        t0 = time.perf_counter()
        result = svc.import_register(
            year, CsvRegister(path, year), actor=ACTOR, baseline=year == province.first_year
        )
        assert isinstance(result, ImportResult)
        seconds = time.perf_counter() - t0
        print(
            f"  import {year}{' (baseline)' if result.baseline else '           '} "
            f"{result.rows:>7,} rows {seconds:6.1f} s {result.rows / seconds:7,.0f} rows/s",
            flush=True,
        )
    return firms


# 2. Payments --------------------------------------------------------------------------------


def plan_payments(
    awards: list[AwardRow], target: int, rng: random.Random
) -> tuple[list[Paid], list[str]]:
    """Instalments for every award owed: 2-4 each, as many as give about `target` payments.

    PLANTED awards due in fiscal years long over keep their last instalment unpaid (the audit
    finds them overdue); returns the payments (voucher numbers by date, per year) and those ids.
    """
    owed = [
        a
        for a in awards
        if a.status in ("due", "partially_paid") and a.due_fiscal_year <= LAST_PAID_ON.year
    ]
    if not owed:
        raise SystemExit("the ledger owes no awards: nothing to pay")
    parts = [2] * len(owed)
    extra = max(0, min(target - 2 * len(owed), 2 * len(owed)))
    for i in rng.sample(range(len(owed)), min(extra, len(owed))):
        parts[i] += 1
    for i in rng.sample(range(len(owed)), extra - min(extra, len(owed))):
        parts[i] += 1
    past = [i for i, a in enumerate(owed) if a.due_fiscal_year <= NIGHTS[0].year - 2]
    short = set(rng.sample(past, min(PLANTED, len(past))))
    planned: list[tuple[date, str, str, str, str, int]] = []
    for i, a in enumerate(owed):
        amounts = split(rng, a.amount_fen - a.paid_fen, parts[i])
        days = days_in(rng, a.due_fiscal_year, parts[i])
        if i in short:
            amounts, days = amounts[:-1], days[:-1]
        for fen, day in zip(amounts, days, strict=True):
            planned.append((day, a.entitlement_id, a.uscc, a.name, a.kind, fen))
    planned.sort()
    vouchers: dict[int, int] = defaultdict(int)
    paid = []
    for day, eid, uscc, name, kind, fen in planned:
        vouchers[day.year] += 1
        paid.append(Paid(f"GK{day.year}{vouchers[day.year]:06d}", eid, uscc, name, kind, fen, day))
    return paid, sorted(owed[i].entitlement_id for i in short)


def payment_events(paid: list[Paid], versions: dict[str, tuple[uuid.UUID, int]]) -> Iterator[Any]:
    """The events `Ledger.record_payment` appends, firm by firm: each payment at the firm's next
    version, and the voucher's claim (a new PaymentRef, version 1)."""
    # The event classes' fields are annotations the library turns into a dataclass: mypy does not
    # see them as constructor arguments.
    recorded: Any = Enterprise.PaymentRecorded
    by_firm: dict[str, list[Paid]] = defaultdict(list)
    for p in paid:
        by_firm[p.uscc].append(p)
    for uscc, payments in by_firm.items():
        oid, version = versions[uscc]
        for p in payments:
            version += 1
            yield recorded(
                originator_id=oid,
                originator_version=version,
                timestamp=recorded.create_timestamp(),
                actor=ACTOR,
                source_sha256=None,
                entitlement_id=p.entitlement_id,
                payment_ref=p.ref,
                amount_fen=p.amount_fen,
                paid_on=p.paid_on,
            )
            claim = PaymentRef._create(
                PaymentRef.Claimed,
                id=payment_ref_id(p.ref),
                ref=p.ref,
                uscc=p.uscc,
                entitlement_id=p.entitlement_id,
                amount_fen=p.amount_fen,
                paid_on=p.paid_on,
                actor=ACTOR,
            )
            yield from claim.collect_events()


def streams(app: Ledger, events: Iterator[Any]) -> Iterator[Iterator[list[StoredEvent]]]:
    """The stored events in streams of STREAM_EVENTS, each in chunks as imports hand them over
    (`Ledger._chunks`). Each stream must be consumed before the next is taken."""
    while (first := next(events, None)) is not None:
        yield app._chunks(itertools.chain([first], itertools.islice(events, STREAM_EVENTS - 1)))


def pay(svc: Ledger, target: int, rng: random.Random) -> tuple[list[Paid], list[str]]:
    """Plan and append the payments; check the views' paid totals against them."""
    t0 = time.perf_counter()
    awards = svc.awards()
    paid, short = plan_payments(awards, target, rng)
    views = cast(LedgerViews, svc.views)
    with views.read() as tx:
        versions = {
            uscc: (uuid.UUID(oid), int(version))
            for oid, uscc, version in tx.rows("SELECT originator_id, uscc, version FROM lv_firms")
        }
    recorder = log_of(svc)
    events = payment_events(paid, versions)
    for chunks in streams(svc, events):
        recorder.insert_event_stream(chunks)
    appended = time.perf_counter() - t0
    head = svc.catch_up()
    seconds = time.perf_counter() - t0
    print(
        f"appended {len(paid):,} payments against {len(awards):,} awards ({2 * len(paid):,} "
        f"events) in {appended:.1f} s; views caught up at position {head:,} after {seconds:.1f} s",
        flush=True,
    )
    in_views = sum(t.paid_fen for t in svc.totals())
    with views.read() as tx:
        rows = tx.rows("SELECT count(*), coalesce(sum(amount_fen), 0) FROM lv_payments")
    count, fen = int(rows[0][0]), int(rows[0][1])
    want = sum(p.amount_fen for p in paid)
    if (in_views, count, fen) != (want, len(paid), want):
        raise SystemExit(
            f"the views disagree with what was appended: totals paid {in_views} fen, lv_payments "
            f"{count} rows / {fen} fen; appended {len(paid)} payments / {want} fen"
        )
    print(f"checked: totals paid {yuan(want)} yuan = the appended payments", flush=True)
    return paid, short


# 3. The treasury file -----------------------------------------------------------------------


def write_planted_treasury(
    path: Path, paid: list[Paid], rng: random.Random
) -> tuple[int, Counter[str]]:
    """The cumulative payment file with PLANTED discrepancies of each kind; returns its number
    of rows and the findings planted, by code."""
    picks = rng.sample(range(len(paid)), 5 * PLANTED)
    duplicated, dropped, payee, amount, day = (
        set(picks[k * PLANTED : (k + 1) * PLANTED]) for k in range(5)
    )
    names = {p.uscc: p.name for p in paid}
    usccs = sorted(names)
    rows: list[Paid] = []
    for i, p in enumerate(paid):
        if i in dropped:
            continue
        if i in payee:
            other = rng.choice([u for u in rng.sample(usccs, 2) if u != p.uscc])
            p = replace(p, uscc=other, name=names[other])
        elif i in amount:
            p = replace(p, amount_fen=p.amount_fen + 1)
        elif i in day:
            p = replace(p, paid_on=p.paid_on + timedelta(days=1))
        rows.append(p)
        if i in duplicated:
            rows.append(p)
    for n, template in enumerate(rng.sample(paid, PLANTED), start=1):
        # A voucher the treasury paid and the ledger never recorded, for a real award.
        rows.append(replace(template, ref=f"GX{template.paid_on.year}{n:06d}", amount_fen=100_000))
    write_treasury(
        path,
        (
            (
                p.ref,
                p.uscc,
                p.name,
                p.amount_fen,
                p.paid_on,
                f"{KIND_LABELS.get(p.kind, p.kind)} {p.entitlement_id}",
            )
            for p in rows
        ),
    )
    # Every matching class but `matched`, PLANTED of each.
    planted = Counter(dict.fromkeys(MATCH_CLASSES[:-1], PLANTED))
    return len(rows), planted


# 4. The timed runs --------------------------------------------------------------------------


def command(url: str, treasury: Path, day: date, out: Path) -> list[str]:
    return [
        "reconcile",
        "--db",
        url,
        "--treasury",
        str(treasury),
        "--date",
        day.isoformat(),
        "--out",
        str(out),
        "--json",
    ]


def timed_run(url: str, treasury: Path, day: date, out: Path, scratch: Path) -> Run:
    """The CLI in a subprocess: wall seconds, its own peak RSS, its JSON summary."""
    argv = [sys.executable, "-m", "adapters.main", *command(url, treasury, day, out)]
    stdout_path, stderr_path = scratch / f"{day}.stdout", scratch / f"{day}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
        # wait4, not wait: it gives this child's own resource usage, its peak RSS included
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    out_text = stdout_path.read_text(encoding="utf-8")
    if code not in (0, 1):
        print(f"reconcile --date {day} failed with exit status {code}:", file=sys.stderr)
        print(stderr_path.read_text(encoding="utf-8") + out_text, file=sys.stderr)
        raise SystemExit(1)
    summary = json.loads(out_text)
    report = json.loads(Path(summary["report"]).read_text(encoding="utf-8"))
    return Run(day, seconds, usage.ru_maxrss / 1024, code, summary, report["integrity"]["chain"])


def profile_run(url: str, treasury: Path, day: date, out: Path, top: int) -> None:
    """One run in this process under cProfile (fresh folder: the chain verified from the start)."""
    from adapters.main import main

    profiler = cProfile.Profile()
    captured = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(captured):
        code = profiler.runcall(main, command(url, treasury, day, out))
    seconds = time.perf_counter() - t0
    print()
    print(
        f"profile: in-process reconcile --date {day} (no kept anchor), exit {code}, "
        f"{seconds:.1f} s under cProfile; top {top} by cumulative time:"
    )
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    print(text.getvalue().rstrip())


# 5. Summary ---------------------------------------------------------------------------------


def count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    return int(row[0]) if row else 0


def print_summary(
    firms: int, events: int, payments: int, rows: int, planted: Counter[str], runs: list[Run]
) -> None:
    print()
    print(
        f"firms {firms:,}   events in the log {events:,}   ledger payments {payments:,}   "
        f"treasury rows {rows:,}"
    )
    print(f"target per run: under {TARGET_SECONDS} s and {TARGET_MB:,} MB peak RSS")
    header = f"{'night':10}  {'chain verified from':>24}  {'verified':>9}  {'seconds':>7}  {'peak RSS':>9}  exit"
    print(header)
    print("-" * len(header))
    for r in runs:
        start = r.chain["verified_from"].split(":")[0]
        verdict = "" if r.seconds < TARGET_SECONDS and r.peak_mb < TARGET_MB else "  (over target)"
        print(
            f"{r.day.isoformat():10}  {'position ' + start:>24}  {r.chain['events']:>9,}  "
            f"{r.seconds:7.1f}  {r.peak_mb:6.0f} MB  {r.exit_status}{verdict}"
        )
    codes = sorted({c for r in runs for c in r.summary["by_code"]} | set(planted))
    print()
    print(f"findings by code ({PLANTED} of each treasury class and award_overdue planted)")
    width = max(len(c) for c in codes)
    print(f"{'code':{width}}  {'planted':>7}  " + "  ".join(f"{r.day}" for r in runs))
    for code in codes:
        print(
            f"{code:{width}}  {planted.get(code, 0):>7}  "
            + "  ".join(f"{r.summary['by_code'].get(code, 0):>10}" for r in runs)
        )
    matching = runs[-1].summary["matching"]
    print(
        f"matching ({runs[-1].day}): {matching['matched']:,} of {matching['refs']:,} vouchers "
        "matched"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--firms", type=int, default=100_000, help="distinct firms over the six years"
    )
    parser.add_argument("--scale", type=float, help="generate()'s scale (instead of --firms)")
    parser.add_argument(
        "--payments", type=int, help="payments to append (default: 3 per firm, 2-4 per award)"
    )
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where the benchmark may create and drop a database",
    )
    parser.add_argument(
        "--profile", action="store_true", help="one more run in-process under cProfile"
    )
    parser.add_argument("--top", type=int, default=25, help="profile entries shown")
    args = parser.parse_args()
    scale = args.scale or args.firms / FIRMS_AT_SCALE_1
    rng = random.Random(f"bench-reconcile-{SEED}")
    folder = Path(tempfile.mkdtemp(prefix="ledger-reconcile-bench-"))
    given = os.environ.get("LEDGER_BENCH_DATABASE_URL")
    try:
        with nullcontext(given) if given else throwaway_database(args.pg) as url:
            t0 = time.perf_counter()
            with open_ledger(url, create=True) as svc:
                firms = build_registers(svc, folder, scale)
                print(f"imported in {time.perf_counter() - t0:.1f} s", flush=True)
                paid, short = pay(svc, args.payments or 3 * firms, rng)
            events = count_events(url)
            print(
                f"built the ledger in {time.perf_counter() - t0:.1f} s: {events:,} events",
                flush=True,
            )
            treasury = folder / "treasury.csv"
            rows, planted = write_planted_treasury(treasury, paid, rng)
            planted["award_overdue"] = len(short)
            print(
                f"wrote {treasury.name}: {rows:,} rows, {treasury.stat().st_size / 2**20:.1f} MB",
                flush=True,
            )
            out = folder / "reports"
            shown = " ".join(command("URL", treasury, NIGHTS[0], out)).replace(str(folder), "DIR")
            print(
                f"timed: {Path(sys.executable).name} -m adapters.main {shown} (and the next nights)"
            )
            runs = []
            for day in NIGHTS:
                run = timed_run(url, treasury, day, out, folder)
                print(
                    f"  {day}: {run.seconds:.1f} s, peak RSS {run.peak_mb:.0f} MB, exit "
                    f"{run.exit_status}, {run.summary['findings']} findings, chain "
                    f"{run.chain['events']:,} events from {run.chain['verified_from'].split(':')[0]}",
                    flush=True,
                )
                runs.append(run)
            print_summary(firms, events, len(paid), rows, planted, runs)
            if args.profile:
                profile_run(url, treasury, NIGHTS[-1], folder / "profiled", args.top)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
