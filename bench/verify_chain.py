"""Benchmark: `subsidy-ledger verify` over a log of a million events.

The log is built the way imports build it: streams of 100,000 stored events (a register year's
worth) appended through the recorder's `insert_event_stream`, which extends the hash chain as it
goes. The events have the topics and the state sizes of real ones (230-380 bytes of JSON); verify
hashes states and never decodes them, so their content does not matter. Then the real CLI runs
`verify --json` in a subprocess, timed, with its peak RSS.

Usage: python bench/verify_chain.py [--events 1000000] [--stores postgres,sqlite] [--pg URL]
PostgreSQL: the database in LEDGER_BENCH_DATABASE_URL (events are appended to it), or else a
throwaway database created on --pg and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

from eventsourcing.persistence import StoredEvent
from throwaway_db import throwaway_database

from adapters.bootstrap import log_of, open_ledger

STREAM_EVENTS = 100_000
CHUNK = 1000
TOPICS = (
    ("domain.enterprise:Enterprise.Registered", 150),
    ("domain.enterprise:Enterprise.OnBaselineRegister", 0),
    ("domain.enterprise:Enterprise.RetainedInRegister", 0),
)


def chunks(count: int) -> Iterator[Sequence[StoredEvent]]:
    """`count` events of new firms, in chunks, shaped like an import's."""
    chunk: list[StoredEvent] = []
    for n in range(count):
        topic, extra = TOPICS[n % len(TOPICS)]
        state = {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-27T08:42:15.209742+00:00"},
            "year": 2020 + n % 6,
            "uscc": f"91140105MA{n:08d}",
            "source_sha256": uuid.uuid4().hex * 2,
            "actor": "bench",
            "name": "山西测试制造有限公司" * (extra // 30),
        }
        chunk.append(
            StoredEvent(
                originator_id=uuid.uuid4(),
                originator_version=1,
                topic=topic,
                state=json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode(),
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(url: str, label: str, events: int) -> None:
    with open_ledger(url, create=True) as ledger:
        recorder = log_of(ledger)
        done = 0
        t0 = time.perf_counter()
        while done < events:
            size = min(STREAM_EVENTS, events - done)
            recorder.insert_event_stream(chunks(size))
            done += size
        seconds = time.perf_counter() - t0
        print(
            f"{label:9} appended {done:,} events in streams of {STREAM_EVENTS:,} (chain included): "
            f"{seconds:.1f} s, {done / seconds:,.0f} events/s",
            flush=True,
        )


def verify(url: str, label: str, runs: int) -> None:
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.main", "verify", "--db", url, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()  # verify writes little to stderr
        # wait4, not wait: it gives this child's own resource usage, its peak RSS included
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode != 0:
            raise SystemExit(f"verify failed ({proc.returncode}): {out}{err}")
        doc = json.loads(out)
        print(
            f"{label:9} verify {doc['events']:>9,} events {seconds:6.1f} s "
            f"{doc['events'] / seconds:9,.0f} events/s  head {doc['head']['position']}  "
            f"peak RSS {usage.ru_maxrss / 1024:.0f} MB",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stores", default="postgres")
    parser.add_argument("--runs", type=int, default=3, help="verify runs over the same log")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where the benchmark may create and drop a database",
    )
    args = parser.parse_args()
    if "sqlite" in args.stores:
        folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
        try:
            url = f"sqlite:///{folder}/bench.db"
            build(url, "sqlite", args.events)
            verify(url, "sqlite", args.runs)
        finally:
            shutil.rmtree(folder)
    if "postgres" in args.stores:
        given = os.environ.get("LEDGER_BENCH_DATABASE_URL")
        with nullcontext(given) if given else throwaway_database(args.pg) as url:
            build(url, "postgres", args.events)
            verify(url, "postgres", args.runs)


if __name__ == "__main__":
    main()
