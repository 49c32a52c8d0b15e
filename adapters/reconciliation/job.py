"""The nightly reconciliation: the ledger against the treasury's payments, the audit rules and the
integrity checks, written as a report people read and recorded in the log.

A run (see `reconcile`):
1. takes the reconciliation lock (one run at a time per ledger: PostgreSQL's advisory lock, or a
   lock file beside the SQLite database);
2. fixes the log position it reports at: the last event before the run that is not itself a
   run's record, so a re-run on the same facts reports at the same position;
3. verifies the hash chain up to that position, from the last anchor kept in DIR/anchors.txt by
   a run for an earlier date (from the first event when there is none);
4. compares every view with a fresh derivation from the log up to the position (first: it
   takes the most memory, let go before the rest); where anything reads otherwise than the views
   were built from (a drift, an event that cannot be read), verifies the chain again from the
   first event, so that a change before the kept anchor is named too;
5. reads the treasury file again (checked unchanged), matches its rows with the ledger's
   payments and applies the audit rules to the awards and payments known at the position on the
   reconciliation date;
6. writes DIR/DATE/report.json and report.html (replacing a previous run's for that date),
   records the run in the log (ReconciliationBook.RunRecorded) and appends the anchor to
   DIR/anchors.txt (none from a broken chain).
Nothing in the report depends on when or where it ran: the same date and inputs give the same
bytes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any, cast

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from adapters.bootstrap import SHANGHAI, log_of
from adapters.files.csv_records import CsvFileError
from adapters.files.report_html import render_html
from adapters.files.treasury_csv import TreasuryFile, read_treasury
from adapters.persistence import LedgerRecorder
from adapters.persistence.chain import Anchor, Verification, parse_anchor
from adapters.persistence.settings import DatabaseSettings
from domain.application import Ledger
from domain.codes import cities
from domain.errors import InvalidInputError
from domain.payment_audit import workflow_audit
from domain.reconciliation import (
    RECONCILIATION_BOOK_ID,
    AwardFacts,
    Finding,
    ReconciliationBook,
    audit,
    match_payments,
)
from domain.results import Point, TotalRow
from projections.drift import TableDrift, compare, derive
from projections.postgres import schema_key
from projections.runner import LedgerViews

FORMAT = "subsidy-ledger reconciliation report, version 1"
RUN_TOPICS = get_topic(ReconciliationBook) + "."
"""Topic prefix of the runs' own records: not facts a run reconciles."""
LOCK_KEY = 0x5EC0C11E
"""PostgreSQL advisory lock of the reconciliation (session-level, held for the run; with the
ledger's schema's key)."""
ANCHORS_FILE = "anchors.txt"
MONEY = ("entitled_fen", "paid_fen", "outstanding_fen", "to_recover_fen")


class RunLockedError(Exception):
    """Another reconciliation of this ledger is running."""


@dataclass(frozen=True)
class Options:
    day: date
    """The reconciliation date: the treasury file is cumulative up to it."""
    recovery_grace_days: int = 90
    overdue_grace_days: int = 90


@dataclass(frozen=True)
class Outcome:
    exit_status: int
    """0 clean, 1 findings."""
    folder: Path
    report: dict[str, Any]
    report_sha256: str
    anchor: str | None
    """POSITION:HASH, the chain's stored link at the position (None if it has none)."""
    run_position: int | None
    """Where the run's own record went in the log."""


@contextmanager
def run_lock(ledger: Ledger, settings: DatabaseSettings) -> Iterator[None]:
    """Hold the ledger's reconciliation lock for a run; RunLockedError if another run has it."""
    if settings.kind == "sqlite":
        path = Path(settings.env["SQLITE_DBNAME"] + ".reconcile-lock")
        with path.open("a") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(
                    f"another reconciliation of this ledger is running (it holds {path}); "
                    "this run did nothing: run it again when that one has finished"
                ) from None
            yield
        return
    datastore = cast(Any, ledger.recorder).datastore
    with datastore.get_connection() as conn:
        conn.autocommit = True
        try:
            key = (LOCK_KEY, schema_key(datastore.schema))
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
            if not got or not next(iter(got.values())):
                raise RunLockedError(
                    "another reconciliation of this ledger is running (it holds PostgreSQL "
                    f"advisory lock {LOCK_KEY} of schema {datastore.schema}); this run did "
                    "nothing: run it again when that "
                    "one has finished"
                )
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        finally:
            conn.autocommit = False


def kept_anchor(out: Path, day: date, position: int) -> Anchor | None:
    """The last anchor in DIR/anchors.txt kept by a run for a date before `day`, at or before
    `position` (a re-run for `day` must not start from its own earlier run's anchor)."""
    path = out / ANCHORS_FILE
    if not path.exists():
        return None
    found = None
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            anchor = parse_anchor(parts[0])
            kept_for = date.fromisoformat(parts[1]) if len(parts) > 1 else None
        except ValueError as e:
            raise InvalidInputError(
                f"{path}:{number}: not an anchor line ({e}); lines are "
                "'POSITION:HASH DATE REPORT_SHA256' as the runs append them: restore the file"
            ) from None
        if kept_for is not None and kept_for < day and anchor.position <= position:
            found = anchor
    return found


@dataclass(frozen=True)
class TreasuryInput:
    """The treasury file as validated before the run: read again when it is matched, after the
    drift check (so that its rows and the derivation are never in memory together), and refused
    if its bytes changed in between."""

    path: Path
    encoding: str
    sha256: str

    def read(self, through: date) -> TreasuryFile:
        treasury = read_treasury(self.path, through=through, encoding=self.encoding)
        if treasury.sha256 != self.sha256:
            raise CsvFileError(
                f"{self.path}: the file changed during the run (sha256 {self.sha256} when it was "
                f"checked, {treasury.sha256} now); nothing was reconciled: run again once the "
                "treasury's export is complete"
            )
        return treasury


def reconcile(
    ledger: Ledger, source: TreasuryInput, options: Options, out: Path, *, actor: str
) -> Outcome:
    """One run; call it holding `run_lock`, with the treasury file validated already."""
    recorder = log_of(ledger)
    head = ledger.catch_up()
    position = recorder.last_position(head, skipping=RUN_TOPICS)
    commit = recorder.commit_at(position=position) if position else None
    since = kept_anchor(out, options.day, position)
    verification = recorder.verify_chain(since=since, stop=position)
    drift, derived_events, unreadable = _drift(ledger, recorder, position)  # the most memory
    if since is not None and (unreadable or any(d.drifted for d in drift)):
        # Something in the log reads otherwise than the views were built from: the events
        # before the kept anchor are checked again too, so that a change there is named.
        since = None
        verification = recorder.verify_chain(stop=position)
    stored = recorder.link_at(position)
    # No anchor is kept from a broken chain (the next night would start from it), nor where the
    # chain table has no link at the position (it was tampered with).
    anchor = str(stored) if stored and verification.intact else None
    treasury = source.read(options.day)
    at = Point(position, commit.recorded_at if commit else None, options.day)
    awards = ledger.awards(at)
    revoked = ledger.revocations(at)
    payments = ledger.payments(at)
    totals = ledger.views.totals(at, by="city", known_awards=awards)
    policies = ledger.policies_at(commit).versions if position else ()
    policy = policies[0] if policies else None

    commit_days: dict[int, date] = {}

    def committed_on(p: int) -> date | None:
        if p not in commit_days:
            c = recorder.commit_at(position=p)
            if c is None:
                return None
            commit_days[p] = c.recorded_at.astimezone(SHANGHAI).date()
        return commit_days[p]

    facts = [
        AwardFacts(
            a.entitlement_id,
            a.uscc,
            a.kind,
            a.amount_fen,
            a.decided_year,
            a.due_fiscal_year,
            a.earned,
            a.paid_fen,
            a.recovered_fen,
            committed_on(revoked[a.entitlement_id]) if a.entitlement_id in revoked else None,
            revoked.get(a.entitlement_id),
        )
        for a in awards
    ]
    matching = match_payments(
        treasury.rows,
        payments,
        through=options.day,
        known_entitlements={a.entitlement_id for a in awards},
    )
    findings = list(matching.findings)
    findings += audit(
        facts,
        [p for p in payments if p.paid_on <= options.day],
        first_entry_kind=policy.first_entry.kind if policy else "first_entry",
        day=options.day,
        recovery_grace_days=options.recovery_grace_days,
        overdue_grace_days=options.overdue_grace_days,
        holds=ledger.views.holds(at),
    )
    findings += workflow_audit(
        facts,
        [p for p in payments if p.paid_on <= options.day],
        ledger.get_payment_book(),
        ledger.release_required_from() if position else None,
        ledger.budget(),
    )
    findings += _chain_findings(verification, since)

    findings += _drift_findings(drift, position)
    findings += _unreadable_findings(unreadable)
    findings.sort(key=Finding.sort_key)

    by_code: dict[str, int] = defaultdict(int)
    for f in findings:
        by_code[f.code] += 1
    status = 1 if findings else 0
    report = {
        "format": FORMAT,
        "date": options.day.isoformat(),
        "log": {
            "position": position,
            "recorded_at": commit.recorded_at.astimezone(UTC).isoformat() if commit else None,
            "anchor": anchor,
        },
        "inputs": {
            "treasury": {
                "sha256": treasury.sha256,
                "encoding": treasury.encoding,
                "rows": len(treasury.rows),
            },
            "policy": {"id": policy.id, "content_hash": policy.content_hash} if policy else None,
            "policies": [
                {"id": p.id, "content_hash": p.content_hash, "applies_from": p.applies_from}
                for p in policies
            ],
            "options": {
                "recovery_grace_days": options.recovery_grace_days,
                "overdue_grace_days": options.overdue_grace_days,
            },
        },
        "outcome": {"exit_status": status, "findings": len(findings), "by_code": dict(by_code)},
        "matching": {"refs": sum(matching.counts.values()), **matching.counts},
        "totals": _totals(totals),
        "integrity": {
            "chain": {
                "intact": verification.intact,
                "verified_from": str(since or Anchor(0, bytes(32))),
                "head": f"{verification.position}:{verification.link.hex()}",
                "events": verification.events,
                "break": None
                if verification.broken is None
                else {
                    "position": verification.broken.position,
                    "problem": verification.broken.problem,
                    "message": verification.broken.message,
                },
            },
            "projections": {
                "events": derived_events,
                "unreadable": [p for p, _why in unreadable],
                "tables": [d.table for d in drift],
                "rows": sum(d.rows for d in drift),
                "drifted": sum(d.drifted for d in drift),
            },
        },
        "findings": [f.as_dict() for f in findings],
    }
    report_bytes = (
        json.dumps(report, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
    ).encode()
    html_bytes = render_html(report).encode()
    report_sha = hashlib.sha256(report_bytes).hexdigest()

    out.mkdir(parents=True, exist_ok=True)
    folder = out / options.day.isoformat()
    staging = out / f".{options.day.isoformat()}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _write(staging / "report.json", report_bytes)
        _write(staging / "report.html", html_bytes)
        run_position = _record_run(
            ledger,
            actor,
            run_date=options.day,
            position=position,
            anchor=anchor,
            treasury_sha256=treasury.sha256,
            treasury_encoding=treasury.encoding,
            treasury_rows=len(treasury.rows),
            options=report["inputs"]["options"],  # type: ignore[index]
            counts={**matching.counts, **by_code},
            findings=len(findings),
            exit_status=status,
            report_sha256=report_sha,
            html_sha256=hashlib.sha256(html_bytes).hexdigest(),
        )
        if folder.exists():
            old = out / f".{options.day.isoformat()}.replaced-{os.getpid()}"
            folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old)
        else:
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if anchor is not None:
        with (out / ANCHORS_FILE).open("a", encoding="ascii") as kept:
            kept.write(f"{anchor} {options.day.isoformat()} {report_sha}\n")
    return Outcome(status, folder, report, report_sha, anchor, run_position)


def _drift(
    ledger: Ledger, recorder: LedgerRecorder, position: int
) -> tuple[list[TableDrift], int, list[tuple[int, str]]]:
    """Every view compared with a fresh derivation from the log up to the position, the events
    replayed and those that could not be read; the derivation is let go before the rest of the
    run."""
    derived = derive(ledger, position)
    unreadable = list(derived.batch.unreadable)

    def first_position(oid: str) -> int | None:
        trail = recorder.select_trail(uuid.UUID(oid))
        return trail[0].position if trail else None

    with cast(LedgerViews, ledger.views).read() as tx:
        return compare(tx, derived, first_position), derived.events, unreadable


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _record_run(ledger: Ledger, actor: str, **facts: Any) -> int | None:
    try:
        book: ReconciliationBook = ledger.repository.get(RECONCILIATION_BOOK_ID)
    except AggregateNotFoundError:
        book = ReconciliationBook._create(
            ReconciliationBook.Opened, id=RECONCILIATION_BOOK_ID, actor=actor
        )
    book.record_run(actor=actor, **facts)
    recordings = ledger.save(book)
    return recordings[-1].notification.id if recordings else None


def _chain_findings(v: Verification, since: Anchor | None) -> list[Finding]:
    if v.broken is None:
        return []
    b = v.broken
    return [
        Finding(
            "chain_broken",
            "integrity",
            f"position {b.position}",
            f"the hash chain breaks at position {b.position} ({b.problem}): {b.message}",
            {
                "position": b.position,
                "problem": b.problem,
                "verified_from": str(since or Anchor(0, bytes(32))),
                "last_good": f"{v.position}:{v.link.hex()}",
            },
        )
    ]


def _unreadable_findings(unreadable: list[tuple[int, str]]) -> list[Finding]:
    return [
        Finding(
            "unreadable_event",
            "integrity",
            f"position {position}",
            f"the event at position {position} cannot be read ({why}): it was changed outside "
            "the ledger; the views and this report leave it out",
            {"position": position, "error": why},
        )
        for position, why in unreadable
    ]


def _drift_findings(drift: list[TableDrift], position: int) -> list[Finding]:
    return [
        Finding(
            "projection_drift",
            "integrity",
            d.table,
            f"{d.table} differs from a fresh derivation of the log at position {position}: "
            f"{d.missing} row(s) missing, {d.unexpected} unexpected, {d.differing} differing; "
            "answers read from it are suspect until `subsidy-ledger rebuild-projections`",
            {
                "rows": d.rows,
                "missing": d.missing,
                "unexpected": d.unexpected,
                "differing": d.differing,
                "examples": d.examples,
            },
        )
        for d in drift
        if d.drifted
    ]


def _totals(rows: list[TotalRow]) -> dict[str, Any]:
    """Per fiscal year, per city and overall, from totals by due year and city."""
    names = cities()

    def blank() -> dict[str, int]:
        return {"awards": 0, **dict.fromkeys(MONEY, 0)}

    by_year: dict[int, dict[str, int]] = defaultdict(blank)
    by_city: dict[str, dict[str, int]] = defaultdict(blank)
    overall = blank()
    for r in rows:
        figures = {
            "awards": r.count,
            "entitled_fen": r.entitled_fen,
            "paid_fen": r.paid_fen,
            "outstanding_fen": r.outstanding_fen,
            "to_recover_fen": r.recovery_due_fen or 0,
        }
        for target in (by_year[r.fiscal_year], by_city[r.group], overall):
            for k, v in figures.items():
                target[k] += int(v)
    return {
        "by_fiscal_year": [{"fiscal_year": y, **by_year[y]} for y in sorted(by_year)],
        "by_city": [
            {
                "city_code": c,
                "city_name": names[c].name if c in names else None,
                **by_city[c],
            }
            for c in sorted(by_city)
        ],
        "all": overall,
    }
