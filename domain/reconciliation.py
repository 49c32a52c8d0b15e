"""The nightly reconciliation's rules: the treasury's payments matched with the ledger's, the audit
rules over the ledger's own awards and payments, and the record of each run in the log.

Pure functions: the facts come in as arguments (the treasury's rows, the ledger's payments and
awards as known at one log position, the reconciliation date), never from a clock or a database.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from eventsourcing.domain import Aggregate

from domain.enterprise import NAMESPACE, Hold
from domain.money import yuan
from domain.rules import parse_entitlement_id

RECONCILIATION_BOOK_ID = uuid.uuid5(NAMESPACE, "reconciliation-book")

MATCH_CLASSES = (
    "duplicate_in_treasury",
    "missing_in_ledger",
    "missing_in_treasury",
    "payee_mismatch",
    "amount_mismatch",
    "paid_on_mismatch",
    "matched",
)
"""Each voucher number gets exactly one, the first that applies, in this order."""

AUDIT_CODES = (
    "paid_above_entitlement",
    "recovery_overdue",
    "first_entry_paid_twice",
    "paid_before_register_year",
    "award_overdue",
    "paid_while_on_hold",
    "paid_without_release",
    "paid_before_notice_ended",
    "appropriation_exceeded",
)
INTEGRITY_CODES = ("chain_broken", "unreadable_event", "projection_drift")
CATEGORIES = ("integrity", "treasury", "audit")


class TreasuryEntry(Protocol):
    """One row of the treasury's payment file (adapters.treasury_csv reads them)."""

    @property
    def line(self) -> int: ...
    @property
    def voucher_no(self) -> str: ...
    @property
    def payee_uscc(self) -> str: ...
    @property
    def payee_name(self) -> str: ...
    @property
    def amount_fen(self) -> int: ...
    @property
    def paid_on(self) -> date: ...
    @property
    def purpose(self) -> str: ...
    @property
    def entitlement_ids(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class LedgerPayment:
    """A payment the ledger recorded: its voucher number (ref) and where it is in the log."""

    ref: str
    entitlement_id: str
    uscc: str
    amount_fen: int
    paid_on: date
    position: int

    def evidence(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "ref": self.ref,
            "entitlement_id": self.entitlement_id,
            "uscc": self.uscc,
            "amount_fen": self.amount_fen,
            "paid_on": self.paid_on.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class AwardFacts:
    """An entitlement as known at the reconciled log position, with the money against it."""

    entitlement_id: str
    uscc: str
    kind: str
    amount_fen: int
    decided_year: int
    due_fiscal_year: int
    earned: bool
    """False once a correction revoked it."""
    paid_fen: int
    recovered_fen: int
    revoked_on: date | None = None
    """The day (Asia/Shanghai) the correction that revoked it was committed."""
    revoked_position: int | None = None

    def evidence(self) -> dict[str, Any]:
        found = {
            "entitlement_id": self.entitlement_id,
            "uscc": self.uscc,
            "kind": self.kind,
            "amount_fen": self.amount_fen,
            "decided_year": self.decided_year,
            "due_fiscal_year": self.due_fiscal_year,
            "earned": self.earned,
            "paid_fen": self.paid_fen,
            "recovered_fen": self.recovered_fen,
        }
        if not self.earned:
            found["revoked_position"] = self.revoked_position
            found["revoked_on"] = self.revoked_on.isoformat() if self.revoked_on else None
        return found


@dataclass(frozen=True)
class Finding:
    """Something operations must look at, with the facts that show it."""

    code: str
    category: str
    subject: str
    """What the finding is about: a voucher number, an entitlement id, a USCC, a table."""
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    uscc: str | None = None
    entitlement_id: str | None = None
    amount_fen: int | None = None
    """The money at stake, when there is one figure for it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "category": self.category,
            "subject": self.subject,
            "uscc": self.uscc,
            "entitlement_id": self.entitlement_id,
            "amount_fen": self.amount_fen,
            "message": self.message,
            "evidence": self.evidence,
        }

    def sort_key(self) -> tuple[int, str, str]:
        return (CATEGORIES.index(self.category), self.code, self.subject)


@dataclass(frozen=True)
class Matching:
    counts: dict[str, int]
    """Voucher numbers per class, every class listed."""
    findings: list[Finding]
    """One per voucher number not `matched`."""


def _treasury_evidence(row: TreasuryEntry) -> dict[str, Any]:
    return {
        "line": row.line,
        "voucher_no": row.voucher_no,
        "payee_uscc": row.payee_uscc,
        "payee_name": row.payee_name,
        "amount_fen": row.amount_fen,
        "paid_on": row.paid_on.isoformat(),
        "purpose": row.purpose,
    }


def match_payments(
    treasury: Iterable[TreasuryEntry],
    ledger: Iterable[LedgerPayment],
    *,
    through: date,
    known_entitlements: set[str] | frozenset[str] = frozenset(),
) -> Matching:
    """Match the treasury's rows with the ledger's payments by voucher number (the ledger's
    payment ref) and give each voucher number one class (MATCH_CLASSES, in precedence order).

    The treasury file is cumulative up to `through`: a ledger payment dated after it is not
    expected there yet and is left out, unless the treasury has its voucher (then its date is
    what differs). `known_entitlements`: the ids the ledger knows, to say whether an entitlement
    named in a missing payment's purpose exists.
    """
    rows_by_ref: dict[str, list[TreasuryEntry]] = defaultdict(list)
    for row in treasury:
        rows_by_ref[row.voucher_no].append(row)
    ledger_by_ref = {p.ref: p for p in ledger}
    counts = dict.fromkeys(MATCH_CLASSES, 0)
    findings: list[Finding] = []

    def found(cls: str, ref: str, message: str, evidence: dict[str, Any], **facts: Any) -> None:
        counts[cls] += 1
        findings.append(Finding(cls, "treasury", ref, message, evidence, **facts))

    for ref in sorted(rows_by_ref.keys() | ledger_by_ref.keys()):
        rows = rows_by_ref.get(ref, [])
        paid = ledger_by_ref.get(ref)
        ledger_evidence = paid.evidence() if paid else None
        facts: dict[str, Any] = (
            {"uscc": paid.uscc, "entitlement_id": paid.entitlement_id} if paid else {}
        )
        if len(rows) > 1:
            lines = ", ".join(str(r.line) for r in rows)
            found(
                "duplicate_in_treasury",
                ref,
                f"voucher {ref} appears {len(rows)} times in the treasury file (lines {lines})",
                {"treasury": [_treasury_evidence(r) for r in rows], "ledger": ledger_evidence},
                amount_fen=sum(r.amount_fen for r in rows),
                **facts,
            )
            continue
        if paid is None:
            row = rows[0]
            named = [
                {"entitlement_id": e, "known_to_ledger": e in known_entitlements}
                for e in row.entitlement_ids
            ]
            found(
                "missing_in_ledger",
                ref,
                f"the treasury paid {yuan(row.amount_fen)} yuan to {row.payee_uscc} on "
                f"{row.paid_on} (voucher {ref}, line {row.line}) and the ledger has no payment "
                "with that voucher",
                {"treasury": [_treasury_evidence(row)], "purpose_entitlements": named},
                uscc=row.payee_uscc,
                entitlement_id=row.entitlement_ids[0] if len(row.entitlement_ids) == 1 else None,
                amount_fen=row.amount_fen,
            )
            continue
        if not rows:
            if paid.paid_on > through:
                continue  # dated after the file's date: not expected in it yet
            found(
                "missing_in_treasury",
                ref,
                f"the ledger records {yuan(paid.amount_fen)} yuan paid on {paid.paid_on} against "
                f"{paid.entitlement_id} (voucher {ref}, position {paid.position}) and the "
                "treasury file has no such voucher",
                {"treasury": [], "ledger": ledger_evidence},
                amount_fen=paid.amount_fen,
                **facts,
            )
            continue
        row = rows[0]
        evidence = {"treasury": [_treasury_evidence(row)], "ledger": ledger_evidence}
        if row.payee_uscc != paid.uscc:
            found(
                "payee_mismatch",
                ref,
                f"voucher {ref} paid {row.payee_uscc} ({row.payee_name}) in the treasury; the "
                f"ledger records it for {paid.uscc}",
                evidence,
                amount_fen=row.amount_fen,
                **facts,
            )
        elif row.amount_fen != paid.amount_fen:
            found(
                "amount_mismatch",
                ref,
                f"voucher {ref}: the treasury paid {yuan(row.amount_fen)} yuan, the ledger "
                f"records {yuan(paid.amount_fen)} (difference {yuan(row.amount_fen - paid.amount_fen)})",
                evidence,
                amount_fen=row.amount_fen - paid.amount_fen,
                **facts,
            )
        elif row.paid_on != paid.paid_on:
            found(
                "paid_on_mismatch",
                ref,
                f"voucher {ref}: the treasury paid on {row.paid_on}, the ledger records "
                f"{paid.paid_on}",
                evidence,
                amount_fen=row.amount_fen,
                **facts,
            )
        else:
            counts["matched"] += 1
    return Matching(counts, findings)


def audit(
    awards: Sequence[AwardFacts],
    payments: Sequence[LedgerPayment],
    *,
    first_entry_kind: str,
    day: date,
    recovery_grace_days: int,
    overdue_grace_days: int,
    holds: Mapping[str, Sequence[Hold]] | None = None,
) -> list[Finding]:
    """The audit rules over the ledger's own facts as known at one position, on `day`.

    - `paid_above_entitlement`: more paid (net of recoveries) against an award than it is for,
      or money paid against an id the rules never gave: the ledger refuses both when paying, so
      this is an amount lowered after payment (a policy version, a designation revoked) whose
      excess is still to come back, or what got past.
    - `recovery_overdue`: money paid against an award a correction revoked, not all back
      `recovery_grace_days` or more days after the day the correction was committed (0: from
      that day on).
    - `first_entry_paid_twice`: a firm holding (paid and not recovered) more than one first-entry
      award (四): one firm enters the register for the first time once.
    - `paid_before_register_year`: a payment dated before 1 January of the register year whose
      facts the award rewards (its decided year).
    - `award_overdue`: an award not fully paid more than `overdue_grace_days` after the end of
      the fiscal year it is due in.
    - `paid_while_on_hold`: a payment dated on a day a hold on the firm was in force, by the
      holds as the ledger knows them at the position (`holds`, by USCC): the ledger refuses such
      a payment, so this is a hold learnt of later, dated back (a list published late).
    """
    findings: list[Finding] = []
    by_id = {a.entitlement_id: a for a in awards}
    paid_by_id: dict[str, list[LedgerPayment]] = defaultdict(list)
    for p in payments:
        paid_by_id[p.entitlement_id].append(p)

    def money(eid: str) -> list[dict[str, Any]]:
        return [p.evidence() for p in sorted(paid_by_id[eid], key=lambda p: p.position)]

    for eid in sorted(paid_by_id):
        award = by_id.get(eid)
        if award is None:
            total = sum(p.amount_fen for p in paid_by_id[eid])
            findings.append(
                Finding(
                    "paid_above_entitlement",
                    "audit",
                    eid,
                    f"{yuan(total)} yuan paid against {eid}, which the rules never gave: the "
                    "entitlement is 0",
                    {"award": None, "payments": money(eid)},
                    uscc=paid_by_id[eid][0].uscc,
                    entitlement_id=eid,
                    amount_fen=total,
                )
            )
        elif award.earned and award.paid_fen - award.recovered_fen > award.amount_fen:
            # Net of what came back: an amount lowered after payment (a policy version, a
            # designation revoked) leaves the excess here until it is recovered.
            over = award.paid_fen - award.recovered_fen - award.amount_fen
            findings.append(
                Finding(
                    "paid_above_entitlement",
                    "audit",
                    eid,
                    f"{yuan(award.paid_fen - award.recovered_fen)} yuan paid (net of recoveries) "
                    f"against {eid}, which is for {yuan(award.amount_fen)}: {yuan(over)} too "
                    "much, to recover (record-recovery)",
                    {"award": award.evidence(), "payments": money(eid)},
                    uscc=award.uscc,
                    entitlement_id=eid,
                    amount_fen=over,
                )
            )
    for a in awards:
        if a.earned:
            continue
        due_back = a.paid_fen - a.recovered_fen
        if due_back <= 0 or a.revoked_on is None:
            continue
        deadline = a.revoked_on + timedelta(days=recovery_grace_days)
        if day >= deadline:
            findings.append(
                Finding(
                    "recovery_overdue",
                    "audit",
                    a.entitlement_id,
                    f"{yuan(due_back)} yuan paid against {a.entitlement_id} is still to come back: "
                    f"the award was revoked on {a.revoked_on} (position {a.revoked_position}) "
                    f"and {recovery_grace_days} day(s) of grace were given",
                    {"award": a.evidence(), "payments": money(a.entitlement_id)},
                    uscc=a.uscc,
                    entitlement_id=a.entitlement_id,
                    amount_fen=due_back,
                )
            )
    held: dict[str, list[AwardFacts]] = defaultdict(list)
    for a in awards:
        if a.kind == first_entry_kind and a.paid_fen > a.recovered_fen:
            held[a.uscc].append(a)
    for uscc in sorted(held):
        if len(held[uscc]) > 1:
            ids = sorted(a.entitlement_id for a in held[uscc])
            findings.append(
                Finding(
                    "first_entry_paid_twice",
                    "audit",
                    uscc,
                    f"{uscc} holds {len(ids)} first-entry awards paid and not recovered "
                    f"({', '.join(ids)}); a firm enters the register for the first time once",
                    {
                        "awards": [a.evidence() for a in sorted(held[uscc], key=_by_id)],
                        "payments": [e for eid in ids for e in money(eid)],
                    },
                    uscc=uscc,
                    amount_fen=sum(a.paid_fen - a.recovered_fen for a in held[uscc]),
                )
            )
    for p in sorted(payments, key=lambda p: p.position):
        try:
            _uscc, _kind, year = parse_entitlement_id(p.entitlement_id)
        except ValueError:
            continue  # not an id the rules give: paid_above_entitlement says so
        if p.paid_on < date(year, 1, 1):
            findings.append(
                Finding(
                    "paid_before_register_year",
                    "audit",
                    p.ref,
                    f"payment {p.ref} of {yuan(p.amount_fen)} yuan is dated {p.paid_on}, before "
                    f"register year {year}, whose facts {p.entitlement_id} rewards",
                    {"payment": p.evidence()},
                    uscc=p.uscc,
                    entitlement_id=p.entitlement_id,
                    amount_fen=p.amount_fen,
                )
            )
    for a in awards:
        if not a.earned or a.paid_fen >= a.amount_fen:
            continue
        deadline = date(a.due_fiscal_year, 12, 31) + timedelta(days=overdue_grace_days)
        if day > deadline:
            left = a.amount_fen - a.paid_fen
            findings.append(
                Finding(
                    "award_overdue",
                    "audit",
                    a.entitlement_id,
                    f"{yuan(left)} yuan of {a.entitlement_id} is unpaid: it was due in fiscal year "
                    f"{a.due_fiscal_year} and the {overdue_grace_days}-day grace ended on "
                    f"{deadline}",
                    {"award": a.evidence(), "payments": money(a.entitlement_id)},
                    uscc=a.uscc,
                    entitlement_id=a.entitlement_id,
                    amount_fen=left,
                )
            )
    for p in sorted(payments, key=lambda p: p.position):
        standing = [h for h in (holds or {}).get(p.uscc, ()) if h.in_force(p.paid_on)]
        if standing:
            h = standing[0]
            findings.append(
                Finding(
                    "paid_while_on_hold",
                    "audit",
                    p.ref,
                    f"payment {p.ref} of {yuan(p.amount_fen)} yuan to {p.uscc} is dated "
                    f"{p.paid_on}, when the firm was on hold ({h.reason} by {h.authority} under "
                    f"{h.document}, in force from {h.valid_from}): stop what is not yet paid and "
                    "decide with the authority whether the money comes back",
                    {"payment": p.evidence(), "holds": [_hold_evidence(h) for h in standing]},
                    uscc=p.uscc,
                    entitlement_id=p.entitlement_id,
                    amount_fen=p.amount_fen,
                )
            )
    return findings


def _hold_evidence(h: Hold) -> dict[str, Any]:
    return {
        "reason": h.reason,
        "authority": h.authority,
        "document": h.document,
        "valid_from": h.valid_from.isoformat(),
        "valid_to": h.valid_to.isoformat() if h.valid_to else None,
        "lifted_on": h.lifted_on.isoformat() if h.lifted_on else None,
    }


def _by_id(a: AwardFacts) -> str:
    return a.entitlement_id


class ReconciliationBook(Aggregate):
    """The record of every reconciliation run, so that the nightly history is auditable too.

    A run's record is not an input of the report it records: the report is computed at the
    last position before it (see adapters.reconcile).
    """

    class Opened(Aggregate.Created):
        actor: str

    class RunRecorded(Aggregate.Event):
        run_date: date
        """The reconciliation date (the treasury file is cumulative up to it)."""
        position: int
        """The log position the report was computed at."""
        anchor: str | None
        """The chain's stored link there, POSITION:HASH (None: there was none, a finding)."""
        treasury_sha256: str
        treasury_encoding: str
        treasury_rows: int
        options: dict[str, int]
        counts: dict[str, int]
        """Findings per code and vouchers per matching class."""
        findings: int
        exit_status: int
        report_sha256: str
        """SHA-256 of report.json as written."""
        html_sha256: str
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.runs += 1

    def __init__(self, actor: str) -> None:
        self.runs = 0

    def record_run(self, **facts: Any) -> None:
        self.trigger_event(self.RunRecorded, **facts)
