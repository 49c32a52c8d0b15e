"""The `subsidy-ledger` command line.

Exit status: 0 success (a replay that changed nothing included), 1 findings, 2 bad input or a
refused command (nothing written), 3 operational failure (database unreachable and the like).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError

from adapters.chain import Anchor, Verification, parse_anchor
from adapters.persistence import SettingsError
from adapters.reconcile import Options, RunLockedError, TreasuryInput, reconcile, run_lock
from adapters.register_csv import RegisterFileError
from adapters.service import LedgerService, Point, today_in_shanghai
from adapters.tokens import ROLES, TokenFileError, add_user, load_users, revoke_user, tokens_path
from adapters.treasury_csv import read_treasury
from domain.application import (
    ConcurrentWriteError,
    InvalidInputError,
    LedgerError,
    RefusedError,
    RejectedFileError,
)
from domain.codes import cities
from domain.money import yuan
from domain.policy import PolicyFileError, load_policy
from projections.queries import AWARD_STATUSES

EXIT_OK, EXIT_FINDINGS, EXIT_REFUSED, EXIT_FAILURE = 0, 1, 2, 3


def width(text: str) -> int:
    """Columns a string takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, size: int, *, right: bool = False) -> str:
    fill = " " * (size - width(text))
    return fill + text if right else text + fill


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], money: Sequence[str] = ()
) -> None:
    """A plain table for people; money columns (fen) are shown in yuan and headed `*_yuan`."""
    if not rows:
        print("(none)")
        return
    headers = [c.removesuffix("_fen") + "_yuan" if c in money else c for c in columns]
    cells = [
        [
            yuan(r[c]) if c in money and r[c] is not None else ("" if r[c] is None else str(r[c]))
            for c in columns
        ]
        for r in rows
    ]
    widths = [max(width(h), *(width(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print("  ".join(pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print(
            "  ".join(
                pad(v, w, right=columns[i] in money)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def _year(value: str) -> int:
    if not (value.isdigit() and len(value) == 4):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 4-digit year")
    return int(value)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def _whole(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number (0 or more)")
    return int(value)


def _fen(value: str) -> int:
    if not value.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number of fen (1 yuan = 100 fen)"
        )
    return int(value)


def _city(value: str) -> str:
    if value not in cities():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Shanxi city code ({', '.join(sorted(cities()))})"
        )
    return value


def _uscc(value: str) -> str:
    from domain.codes import CodeError, validate_uscc

    try:
        return validate_uscc(value)
    except CodeError as e:
        raise argparse.ArgumentTypeError(f"USCC {value!r}: {e}") from None


def _anchor_arg(value: str) -> Anchor:
    try:
        return parse_anchor(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _encoding_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--encoding",
        default="utf-8",
        choices=["utf-8", "gb18030", "gbk"],
        help=f"{what} (default utf-8, BOM allowed)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: $LEDGER_DATABASE_URL, else sqlite:///ledger.db)",
    )
    common.add_argument(
        "--actor", help="who is acting, recorded on every event (default: the OS user)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    pointing = argparse.ArgumentParser(add_help=False)
    pointing.add_argument(
        "--as-of",
        type=_day,
        metavar="DATE",
        help="facts valid on DATE (default today, Asia/Shanghai)",
    )
    pointing.add_argument(
        "--known-at",
        metavar="WHEN",
        help="what the ledger knew then: an RFC 3339 instant with an offset, or @POSITION",
    )

    parser = argparse.ArgumentParser(
        prog="subsidy-ledger",
        description="Event-sourced ledger of Shanxi's scale-up awards (晋办发〔2020〕38号).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "import-register",
        parents=[common, listing],
        help="import a year's above-scale register (CSV)",
    )
    p.add_argument("--year", type=_year, required=True)
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="the first year imported: its firms were already above scale",
    )
    _encoding_option(p, "file encoding")
    p.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file adopted with the baseline (default: the packaged 晋办发〔2020〕38号)",
    )
    p.add_argument(
        "--correction",
        action="store_true",
        help="the bureau re-issued this imported year: append corrections (needs --reason)",
    )
    p.add_argument("--reason", help="why the year was re-issued (recorded with the correction)")

    p = sub.add_parser(
        "awards",
        parents=[common, listing, pointing],
        help="entitlements with amounts, payments and status",
    )
    p.add_argument("--fiscal-year", type=_year, help="due fiscal year")
    p.add_argument("--city", type=_city, help="city code, e.g. 140100")
    p.add_argument("--status", default="all", choices=[*AWARD_STATUSES, "all"])

    p = sub.add_parser(
        "record-payment",
        parents=[common, listing],
        help="record a treasury payment against an entitlement",
    )
    p.add_argument("entitlement_id", metavar="ENTITLEMENT_ID", help="USCC/KIND/DECIDED_YEAR")
    p.add_argument("--ref", required=True, help="the treasury's voucher number, unique ledger-wide")
    p.add_argument(
        "--amount-fen", type=_fen, required=True, help="amount in fen (1 yuan = 100 fen)"
    )
    p.add_argument("--paid-on", type=_day, required=True, help="payment date YYYY-MM-DD")

    p = sub.add_parser(
        "record-recovery",
        parents=[common, listing],
        help="record money paid against a revoked entitlement coming back (追回)",
    )
    p.add_argument("entitlement_id", metavar="ENTITLEMENT_ID", help="USCC/KIND/DECIDED_YEAR")
    p.add_argument("--ref", required=True, help="the treasury's voucher number, unique ledger-wide")
    p.add_argument(
        "--amount-fen", type=_fen, required=True, help="amount in fen (1 yuan = 100 fen)"
    )
    p.add_argument(
        "--received-on", type=_day, required=True, help="date the money came back YYYY-MM-DD"
    )

    p = sub.add_parser(
        "totals", parents=[common, listing, pointing], help="fiscal totals by kind or city"
    )
    p.add_argument("--fiscal-year", type=_year)
    p.add_argument("--by", default="kind", choices=["kind", "city"])
    p.add_argument("--basis", default="due", choices=["due", "cash"])

    p = sub.add_parser(
        "windows",
        parents=[common, listing, pointing],
        help="guarantee (八) and energy (十一) windows of first entrants",
    )
    p.add_argument("--uscc", type=_uscc)
    p.add_argument("--active-on", type=_day, metavar="DATE")

    p = sub.add_parser(
        "enterprise",
        parents=[common, listing, pointing],
        help="one enterprise: identity, register years, awards, payments, windows",
    )
    p.add_argument("uscc", metavar="USCC", type=_uscc)

    p = sub.add_parser(
        "explain",
        parents=[common, listing],
        help="why an entitlement is owed: policy, clause, the facts it derives from, payments",
    )
    p.add_argument("entitlement_id", metavar="ENTITLEMENT_ID", help="USCC/KIND/DECIDED_YEAR")

    p = sub.add_parser(
        "audit-trail",
        parents=[common, listing],
        help="every event of an enterprise in log order, with position and commit time",
    )
    p.add_argument("uscc", metavar="USCC", type=_uscc)

    p = sub.add_parser(
        "register",
        parents=[common, listing, pointing],
        help="register size and first entries per year and city, or who was on it in one year",
    )
    p.add_argument("--year", type=_year, help="list the firms on the register of this year")

    p = sub.add_parser(
        "verify",
        parents=[common, listing],
        help="recompute the log's hash chain and compare it with the stored links (exit 1: broken)",
    )
    p.add_argument(
        "--anchor",
        type=_anchor_arg,
        metavar="POSITION:HASH",
        help="a head kept earlier (`anchor`): the recomputed link at POSITION must be HASH",
    )

    p = sub.add_parser(
        "anchor",
        parents=[common, listing],
        help="print the chain's head POSITION:HASH to keep outside the database",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="also append a line `POSITION:HASH TAKEN_AT_UTC` to FILE",
    )

    p = sub.add_parser(
        "reconcile",
        parents=[common, listing],
        help="nightly: the ledger against the treasury's payments, the audit rules and the "
        "integrity checks; writes a report (exit 1: findings)",
    )
    p.add_argument(
        "--treasury",
        metavar="FILE",
        required=True,
        help="the treasury's payment file (CSV), cumulative up to --date",
    )
    p.add_argument(
        "--date",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the reconciliation date (default: yesterday, Asia/Shanghai)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where reports go, as DIR/DATE/report.{json,html}, with DIR/anchors.txt "
        "(default: $LEDGER_REPORTS_DIR, else ./reports)",
    )
    _encoding_option(p, "the treasury file's encoding")
    p.add_argument(
        "--recovery-grace-days",
        type=_whole,
        default=90,
        metavar="N",
        help="days after a revoking correction before money still to recover is a finding "
        "(default 90)",
    )
    p.add_argument(
        "--overdue-grace-days",
        type=_whole,
        default=90,
        metavar="N",
        help="days after the end of an award's due fiscal year before it is overdue (default 90)",
    )
    p.add_argument(
        "--wait",
        type=_whole,
        default=120,
        metavar="SECONDS",
        help="how long to wait for the database to answer before giving up (exit 3; default 120)",
    )

    sub.add_parser(
        "reconciliations",
        parents=[common, listing],
        help="the reconciliation runs recorded in the log: date, position, findings, reports' hashes",
    )

    sub.add_parser(
        "rebuild-projections",
        parents=[common, listing],
        help="empty the read models and replay the log into them",
    )

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="the gRPC service (subsidy_ledger.v1.LedgerService) for finance, auditors, statistics",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to bind (default $LEDGER_LISTEN, else 127.0.0.1:50051); not loopback only with TLS",
    )
    p.add_argument(
        "--tokens", metavar="FILE", help="the users' token hashes (default $LEDGER_TOKENS_FILE)"
    )

    p = sub.add_parser("token", help="the gRPC users' bearer tokens: add, list, revoke")
    tokens = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = tokens.add_parser("add", help="add a user's token; prints it once")
    t.add_argument("--user", required=True)
    t.add_argument("--role", required=True, choices=list(ROLES))
    t.add_argument("--city", type=_city, help="scope the user to one city's firms")
    t.add_argument("--tokens", metavar="FILE")
    t = tokens.add_parser("list", help="the users and roles (never the tokens)")
    t.add_argument("--tokens", metavar="FILE")
    t.add_argument("--json", action="store_true")
    t = tokens.add_parser("revoke", help="remove every token of a user")
    t.add_argument("--user", required=True)
    t.add_argument("--tokens", metavar="FILE")

    p = sub.add_parser(
        "demo", parents=[listing], help="a synthetic Shanxi, 2020-2025, in a fresh SQLite file"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="keep the demo ledger in DIR (default: a new temporary directory)",
    )
    p.add_argument("--seed", type=int, default=38)
    p.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the realistic province size"
    )
    return parser


def _import(svc: LedgerService, a: argparse.Namespace) -> int:
    if a.correction:
        return _correct(svc, a)
    if a.reason is not None:
        raise RefusedError("--reason goes with --correction (a plain import needs none)")
    r = svc.import_register(
        a.file, a.year, baseline=a.baseline, encoding=a.encoding, policy=a.policy_loaded
    )
    doc = {
        "year": r.year,
        "baseline": r.baseline,
        "sha256": r.sha256,
        "rows": r.rows,
        "replay": r.replay,
        **r.counts,
        "position": r.position,
    }
    if a.json:
        emit_json(doc)
    elif r.replay:
        print(
            f"register {r.year} was already imported from this file (sha256 {r.sha256}); nothing changed"
        )
    else:
        print(
            f"imported register {r.year}{' (baseline)' if r.baseline else ''}: {r.rows} firms, sha256 {r.sha256}"
        )
        print(", ".join(f"{k} {v}" for k, v in r.counts.items()))
    return EXIT_OK


def _correct(svc: LedgerService, a: argparse.Namespace) -> int:
    if a.baseline or a.policy:
        raise RefusedError("a correction re-issues an imported year: no --baseline or --policy")
    if not a.reason:
        raise RefusedError("--correction needs --reason TEXT: say why the bureau re-issued it")
    r = svc.correct_register(a.file, a.year, reason=a.reason, encoding=a.encoding)
    doc: dict[str, Any] = {
        "year": r.year,
        "correction": True,
        "sha256": r.sha256,
        "reason": r.reason,
        "rows": r.rows,
        "replay": r.replay,
        "firms": r.firms,
        "arrears": [asdict(c) for c in r.arrears],
        "revoked": [asdict(c) for c in r.revoked],
        "recovery_due": [asdict(c) for c in r.recovery_due],
        "position": r.position,
    }
    if a.json:
        emit_json(doc)
        return EXIT_OK
    if r.replay:
        print(f"register {r.year} already reads as this file (sha256 {r.sha256}); nothing changed")
        return EXIT_OK
    print(
        f"corrected register {r.year} (sha256 {r.sha256}): {len(r.firms)} firms changed, "
        f"reason: {r.reason}"
    )
    for title, changes, money in (
        ("arrears (newly owed)", doc["arrears"], ["amount_fen"]),
        ("revoked (unpaid, no longer owed)", doc["revoked"], ["amount_fen"]),
        (
            "recovery due (paid, no longer owed: 追回)",
            doc["recovery_due"],
            ["amount_fen", "recover_fen"],
        ),
    ):
        print(f"{title}:")
        print_table(changes, ["entitlement_id", "due_fiscal_year", *money], money=money)
    return EXIT_OK


def _header(at: Point) -> str:
    h = at.header()
    return (
        f"as of {h['as_of']}, as the ledger knew it at position {h['known_at']['position']} "
        f"({h['known_at']['recorded_at'] or 'nothing recorded yet'})"
    )


def _answer(at: Point, name: str, rows: list[dict[str, Any]]) -> None:
    emit_json({**at.header(), name: rows})


def _awards(svc: LedgerService, a: argparse.Namespace) -> int:
    at = svc.point(a.known_at, a.as_of)
    rows = svc.awards(
        at=at,
        fiscal_year=a.fiscal_year,
        city=a.city,
        status=None if a.status == "all" else a.status,
    )
    if a.json:
        _answer(at, "awards", rows)
    else:
        print(_header(at))
        print_table(
            rows,
            [
                "entitlement_id",
                "name",
                "city_code",
                "clause",
                "due_fiscal_year",
                "amount_fen",
                "paid_fen",
                "status",
            ],
            money=["amount_fen", "paid_fen"],
        )
    return EXIT_OK


def _payment(svc: LedgerService, a: argparse.Namespace) -> int:
    r = svc.record_payment(a.entitlement_id, a.ref, a.amount_fen, a.paid_on)
    doc = {
        "entitlement_id": r.entitlement_id,
        "payment_ref": r.payment_ref,
        "amount_fen": r.amount_fen,
        "paid_on": r.paid_on.isoformat(),
        "replay": r.replay,
        "paid_fen": r.paid_fen,
        "entitlement_amount_fen": r.entitlement_amount_fen,
    }
    if a.json:
        emit_json(doc)
    elif r.replay:
        print(
            f"replay: payment {r.payment_ref} is already recorded with these details; nothing written"
        )
    else:
        print(
            f"recorded payment {r.payment_ref}: {yuan(r.amount_fen)} yuan against {r.entitlement_id} "
            f"(paid {yuan(r.paid_fen)} of {yuan(r.entitlement_amount_fen)})"
        )
    return EXIT_OK


def _recovery(svc: LedgerService, a: argparse.Namespace) -> int:
    r = svc.record_recovery(a.entitlement_id, a.ref, a.amount_fen, a.received_on)
    doc = {
        "entitlement_id": r.entitlement_id,
        "recovery_ref": r.payment_ref,
        "amount_fen": r.amount_fen,
        "received_on": r.paid_on.isoformat(),
        "replay": r.replay,
        "recovered_fen": r.paid_fen,
        "paid_fen": r.entitlement_amount_fen,
    }
    if a.json:
        emit_json(doc)
    elif r.replay:
        print(f"replay: recovery {a.ref} is already recorded with these details; nothing written")
    else:
        print(
            f"recorded recovery {a.ref}: {yuan(r.amount_fen)} yuan back against {r.entitlement_id} "
            f"(recovered {yuan(r.paid_fen)} of {yuan(r.entitlement_amount_fen)} paid)"
        )
    return EXIT_OK


def _totals(svc: LedgerService, a: argparse.Namespace) -> int:
    at = svc.point(a.known_at, a.as_of)
    rows = svc.totals(at=at, fiscal_year=a.fiscal_year, by=a.by, basis=a.basis)
    if a.json:
        _answer(at, "totals", rows)
    else:
        group = "kind" if a.by == "kind" else "city_code"
        extra = "recovery_due_fen" if a.basis == "due" else "recovered_fen"
        print(_header(at))
        print(f"basis: {a.basis}")
        print_table(
            rows,
            ["fiscal_year", group, "count", "entitled_fen", "paid_fen", "outstanding_fen", extra],
            money=["entitled_fen", "paid_fen", "outstanding_fen", extra],
        )
    return EXIT_OK


def _windows(svc: LedgerService, a: argparse.Namespace) -> int:
    at = svc.point(a.known_at, a.as_of)
    rows = svc.windows(at=at, uscc=a.uscc, active_on=a.active_on)
    if a.json:
        _answer(at, "windows", rows)
    else:
        for r in rows:
            r.setdefault("closed_on", None)
            r.setdefault("fee_cap_bp", None)
        print(_header(at))
        print_table(
            rows,
            [
                "uscc",
                "window",
                "clause",
                "starts_on",
                "ends_on",
                "closed_on",
                "fee_cap_bp",
                "size_class",
            ],
        )
    return EXIT_OK


def _enterprise(svc: LedgerService, a: argparse.Namespace) -> int:
    doc = svc.enterprise(a.uscc, as_of=a.as_of, known_at=a.known_at)
    if a.json:
        emit_json(doc)
        return EXIT_OK
    print(f"{doc['uscc']}  {doc['name']}")
    print(
        f"as of {doc['as_of']}, as the ledger knew it at position {doc['known_at']['position']} "
        f"({doc['known_at']['recorded_at']})"
    )
    print(
        f"region {doc['region_code']} {doc['region_name']} ({doc['city_name']}), industry {doc['industry_code']}, size {doc['size_class'] or 'unknown'}"
    )
    print(
        f"register years {', '.join(map(str, doc['register_years']))}; first entry {doc['first_entry_year'] or 'unknown'} ({doc['first_entry_route'] or '-'})"
    )
    print("entitlements:")
    print_table(
        doc["entitlements"],
        ["entitlement_id", "clause", "amount_fen", "due_fiscal_year", "paid_fen", "status"],
        money=["amount_fen", "paid_fen"],
    )
    print("payments:")
    print_table(
        doc["payments"],
        ["payment_ref", "entitlement_id", "amount_fen", "paid_on"],
        money=["amount_fen"],
    )
    if doc["recoveries"]:
        print("recoveries:")
        print_table(
            doc["recoveries"],
            ["recovery_ref", "entitlement_id", "amount_fen", "received_on"],
            money=["amount_fen"],
        )
    print("windows:")
    for w in doc["windows"]:
        w.setdefault("closed_on", None)
        w.setdefault("fee_cap_bp", None)
    print_table(
        doc["windows"], ["window", "clause", "starts_on", "ends_on", "closed_on", "fee_cap_bp"]
    )
    return EXIT_OK


def _explain(svc: LedgerService, a: argparse.Namespace) -> int:
    doc = svc.explain(a.entitlement_id)
    if a.json:
        emit_json(doc)
        return EXIT_OK
    print(
        f"{doc['entitlement_id']}: {yuan(doc['amount_fen'])} yuan, clause {doc['clause']} of "
        f"{doc['policy']['id']} ({doc['policy']['content_hash']})"
    )
    print(
        f"decided on register year {doc['decided_year']}, due in fiscal year "
        f"{doc['due_fiscal_year']}; register years {', '.join(map(str, doc['basis_years']))}"
        + (
            f" (assumed before the baseline: {doc['assumed_years']})"
            if doc["assumed_years"]
            else ""
        )
    )
    print("derives from:")
    print_table(doc["derives_from"], ["position", "recorded_at", "type", "year", "actor"])
    print(f"payments ({doc['status']}, paid {yuan(doc['paid_fen'])}):")
    print_table(
        doc["payments"],
        ["position", "payment_ref", "amount_fen", "paid_on", "actor"],
        money=["amount_fen"],
    )
    cause = doc["revoked_by"]
    if cause is not None:
        print(
            f"revoked by the correction of register year {cause['year']} at position "
            f"{cause['position']} ({cause['recorded_at']}, {cause['actor']}): {cause['reason']}"
        )
        print(f"recoveries (recovered {yuan(doc['recovered_fen'])}):")
        print_table(
            doc["recoveries"],
            ["position", "recovery_ref", "amount_fen", "received_on", "actor"],
            money=["amount_fen"],
        )
    return EXIT_OK


def _audit_trail(svc: LedgerService, a: argparse.Namespace) -> int:
    trail = svc.audit_trail(a.uscc)
    if a.json:
        emit_json(trail)
    else:
        for e in trail:
            e["payload"] = json.dumps(e["payload"], ensure_ascii=False)
        print_table(trail, ["position", "recorded_at", "type", "actor", "valid_from", "payload"])
    return EXIT_OK


def _reconciliations(svc: LedgerService, a: argparse.Namespace) -> int:
    runs = svc.reconciliations()
    if a.json:
        emit_json(runs)
    else:
        print_table(
            runs,
            [
                "date",
                "position",
                "log_position",
                "exit_status",
                "findings",
                "treasury_rows",
                "report_sha256",
                "recorded_at",
                "actor",
            ],
        )
    return EXIT_OK


def _register(svc: LedgerService, a: argparse.Namespace) -> int:
    at = svc.point(a.known_at, a.as_of)
    if a.year is not None:
        rows = svc.register(a.year, at=at)
        columns = ["uscc", "name", "kind", "first_entry", "region_code", "city_code", "size_class"]
    else:
        rows = svc.register_sizes(at=at)
        columns = ["year", "city_code", "size", "first_entries", "re_entries"]
    if a.json:
        _answer(at, "register", rows)
    else:
        print(_header(at))
        print_table(rows, columns)
    return EXIT_OK


def _rebuild(svc: LedgerService, a: argparse.Namespace) -> int:
    position = svc.rebuild_projections()
    if a.json:
        emit_json({"position": position})
    else:
        print(f"projections rebuilt from the log up to position {position}")
    return EXIT_OK


def _link(position: int, link: bytes) -> dict[str, Any]:
    return {"position": position, "hash": link.hex()}


def _verify(svc: LedgerService, a: argparse.Namespace) -> int:
    v: Verification = svc.verify(a.anchor)
    last_good = _link(v.position, v.link)
    anchor = v.anchor
    if a.json:
        emit_json(
            {
                "intact": v.intact,
                "events": v.events,
                "head": last_good if v.intact else None,
                "anchor": _link(anchor.position, anchor.link) | {"held": v.anchor_held}
                if anchor
                else None,
                "break": {
                    "position": v.broken.position,
                    "problem": v.broken.problem,
                    "message": v.broken.message,
                }
                if v.broken
                else None,
                "last_good": last_good,
            }
        )
        return EXIT_OK if v.intact else EXIT_FINDINGS
    if v.broken is None:
        print(f"chain intact: {v.events:,} events, head {v.position}:{v.link.hex()}")
    else:
        b = v.broken
        print(f"chain broken at position {b.position} ({b.problem}): {b.message}")
        print(
            f"intact up to position {v.position} ({v.events:,} events): {v.position}:{v.link.hex()}"
        )
    if v.anchor_held:
        print(f"anchor {anchor} matches: up to it, the log is as it was when the anchor was taken")
    return EXIT_OK if v.intact else EXIT_FINDINGS


def _anchor(svc: LedgerService, a: argparse.Namespace) -> int:
    head, taken_at = svc.anchor(a.out)
    if a.json:
        emit_json(
            {
                **_link(head.position, head.link),
                "anchor": str(head),
                "taken_at": taken_at.isoformat().replace("+00:00", "Z"),
                "out": a.out,
            }
        )
    else:
        print(head)
    return EXIT_OK


COMMANDS: dict[str, Callable[[LedgerService, argparse.Namespace], int]] = {
    "import-register": _import,
    "awards": _awards,
    "record-payment": _payment,
    "record-recovery": _recovery,
    "totals": _totals,
    "windows": _windows,
    "enterprise": _enterprise,
    "register": _register,
    "audit-trail": _audit_trail,
    "explain": _explain,
    "reconciliations": _reconciliations,
    "rebuild-projections": _rebuild,
    "verify": _verify,
    "anchor": _anchor,
}


def _token(a: argparse.Namespace) -> int:
    path = tokens_path(a.tokens)
    if a.action == "add":
        token = add_user(path, a.user, a.role, a.city)
        print(token)
        print(
            f"token for {a.user} ({a.role}{', city ' + a.city if a.city else ''}) added to {path}; "
            "it is shown only now",
            file=sys.stderr,
        )
    elif a.action == "list":
        users = [
            {"user": u.user, "role": u.role, "city": u.city, "created": u.created}
            for u in load_users(path).values()
        ]
        if a.json:
            emit_json(users)
        else:
            print_table(users, ["user", "role", "city", "created"])
    else:
        removed = revoke_user(path, a.user)
        if not removed:
            raise TokenFileError(f"no token of user {a.user} in {path}")
        print(f"revoked {removed} token(s) of {a.user}")
    return EXIT_OK


def _reconcile(a: argparse.Namespace) -> int:
    """Bad input (exit 2) is found before the database is opened: nothing is written then."""
    today = today_in_shanghai()
    day = a.date or today - timedelta(days=1)
    if day > today:
        raise InvalidInputError(
            f"--date {day} is after today ({today}, Asia/Shanghai): the treasury file covers "
            "payments up to a day that has begun"
        )
    out = Path(a.out or os.environ.get("LEDGER_REPORTS_DIR") or "reports")
    checked = read_treasury(a.treasury, through=day, encoding=a.encoding)
    source = TreasuryInput(Path(a.treasury), checked.encoding, checked.sha256)
    del checked  # read again after the drift check, which needs the memory
    deadline = time.monotonic() + a.wait
    while True:
        try:
            svc = LedgerService(a.db, actor=a.actor)
            break
        except PersistenceError as e:
            if time.monotonic() >= deadline:
                raise type(e)(
                    f"{str(e).strip()} (waited {a.wait} s for the database; --wait to wait longer)"
                ) from e
            print(
                f"waiting for the database ({str(e).strip() or type(e).__name__})", file=sys.stderr
            )
            time.sleep(2)
    options = Options(day, a.recovery_grace_days, a.overdue_grace_days)
    with svc, run_lock(svc):
        outcome = reconcile(svc, source, options, out)
    report = outcome.report
    summary = {
        "date": report["date"],
        "position": report["log"]["position"],
        "anchor": outcome.anchor,
        "exit_status": outcome.exit_status,
        "findings": report["outcome"]["findings"],
        "by_code": report["outcome"]["by_code"],
        "matching": report["matching"],
        "report": str(outcome.folder / "report.json"),
        "html": str(outcome.folder / "report.html"),
        "report_sha256": outcome.report_sha256,
        "run_position": outcome.run_position,
    }
    if a.json:
        emit_json(summary)
    else:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_code"].items()))
        print(
            f"reconciled {summary['date']} at log position {summary['position']}: "
            f"{summary['findings']} finding(s){' (' + codes + ')' if codes else ''}; "
            f"{summary['matching']['matched']} of {summary['matching']['refs']} voucher(s) matched"
        )
        print(f"report: {summary['html']} (sha256 of report.json {outcome.report_sha256})")
        if outcome.anchor:
            print(f"anchor: {outcome.anchor} (appended to {out / 'anchors.txt'})")
        else:
            print("anchor: none (the chain has no link at the position: see the findings)")
    return outcome.exit_status


def fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"subsidy-ledger: {line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from adapters.demo import run_demo

            return run_demo(out=args.out, seed=args.seed, scale=args.scale, as_json=args.json)
        if args.command == "token":
            return _token(args)
        if args.command == "reconcile":
            return _reconcile(args)
        if args.command == "serve":
            from adapters.serve import serve

            return serve(args.db, listen=args.listen, tokens=args.tokens)
        # A bad policy file is refused before the database is even opened.
        args.policy_loaded = load_policy(args.policy) if getattr(args, "policy", None) else None
        with LedgerService(args.db, actor=args.actor) as svc:
            return COMMANDS[args.command](svc, args)
    except RejectedFileError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        return fail(str(e), EXIT_REFUSED)
    except (LedgerError, RegisterFileError, SettingsError, PolicyFileError, TokenFileError) as e:
        return fail(str(e), EXIT_REFUSED)
    except (ConcurrentWriteError, RunLockedError) as e:
        return fail(str(e), EXIT_FAILURE)
    except PersistenceError as e:
        return fail(f"database error: {e}".strip(), EXIT_FAILURE)
    except BrokenPipeError:
        # The reader went away (`| head`): not a failure of the ledger.
        sys.stderr.close()
        return EXIT_OK
    except OSError as e:
        return fail(f"operational failure: {e}", EXIT_FAILURE)
    except Exception as e:
        if os.environ.get("LEDGER_DEBUG"):
            traceback.print_exc()
        return fail(
            f"unexpected failure ({type(e).__name__}: {e}); nothing partial was written; set LEDGER_DEBUG=1 for details",
            EXIT_FAILURE,
        )


if __name__ == "__main__":
    sys.exit(main())
