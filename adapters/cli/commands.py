"""The `subsidy-ledger` commands that work on a ledger: each asks the application and prints its
answer, as a table for people or (`--json`) one JSON document. The commands of the rules
(policy versions, designations, priority lists) are in `adapters.cli.rule_commands`.

Exit status: 0 success (a replay that changed nothing included), 1 findings, 2 bad input or a
refused command (nothing written), 3 operational failure (database unreachable and the like).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from adapters.bootstrap import log_of, open_store
from adapters.cli.batch_commands import BATCH_COMMANDS
from adapters.cli.common import Command, actor_of, as_rows, warn_views
from adapters.cli.hold_commands import HOLD_COMMANDS
from adapters.cli.output import EXIT_FINDINGS, EXIT_OK, emit_json, print_table
from adapters.cli.person_commands import PERSON_COMMANDS
from adapters.cli.pipeline_commands import PIPELINE_COMMANDS
from adapters.cli.replica import QUERIES, on_replica
from adapters.cli.rule_commands import RULE_COMMANDS
from adapters.files.register_csv import CsvRegister
from adapters.persistence.chain import Verification
from adapters.persistence.settings import NoLedgerError, database_settings, require_ledger
from domain.application import Ledger
from domain.command_results import CorrectionResult
from domain.errors import RefusedError
from domain.imports import check_import_options
from domain.money import yuan
from domain.policy import load_policy
from domain.register import validate_year
from domain.results import Point, jsonable


def _import(ledger: Ledger, a: argparse.Namespace) -> int:
    r = ledger.import_register(
        a.year,
        CsvRegister(a.file, a.year, a.encoding),
        actor=actor_of(a),
        baseline=a.baseline,
        policy=a.policy_loaded,
        correction=a.correction,
        reason=a.reason,
    )
    warn_views(r)
    if isinstance(r, CorrectionResult):
        return _corrected(r, a)
    if a.json:
        emit_json(
            {
                "year": r.year,
                "baseline": r.baseline,
                "sha256": r.sha256,
                "rows": r.rows,
                "replay": r.replay,
                **r.counts,
                "position": r.position,
                **({"views_error": r.views_error} if r.views_error else {}),
            }
        )
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


def _corrected(r: CorrectionResult, a: argparse.Namespace) -> int:
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
        **({"views_error": r.views_error} if r.views_error else {}),
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


HOLD_TABLE = [
    "reason",
    "authority",
    "document",
    "valid_from",
    "valid_to",
    "lifted_on",
    "in_force",
    "position",
]


def _header(at: Point) -> str:
    recorded = at.header()["known_at"]["recorded_at"]
    return (
        f"as of {at.as_of.isoformat()}, as the ledger knew it at position {at.position} "
        f"({recorded or 'nothing recorded yet'})"
    )


def _answer(at: Point, name: str, rows: list[Any]) -> None:
    emit_json({**at.header(), name: rows})


def _awards(ledger: Ledger, a: argparse.Namespace) -> int:
    at = ledger.point(a.known_at, a.as_of)
    rows = ledger.awards(
        at,
        fiscal_year=a.fiscal_year,
        city=a.city,
        status=None if a.status == "all" else a.status,
        held=a.held,
    )
    if a.json:
        _answer(at, "awards", rows)
    else:
        print(_header(at))
        shown = as_rows(rows)
        for row in shown:
            h = row["hold"]
            row["hold"] = f"{h['reason']} {h['document']} since {h['since']}" if h else ""
        print_table(
            shown,
            [
                "entitlement_id",
                "name",
                "city_code",
                "clause",
                "due_fiscal_year",
                "amount_fen",
                "paid_fen",
                "status",
                "hold",
            ],
            money=["amount_fen", "paid_fen"],
        )
    return EXIT_OK


def _money(ledger: Ledger, a: argparse.Namespace, *, recovery: bool) -> int:
    """A payment (`record-payment`) or a recovery (`record-recovery`) recorded, and said."""
    move = ledger.record_recovery if recovery else ledger.record_payment
    day = a.received_on if recovery else a.paid_on
    r = move(a.entitlement_id, a.ref, a.amount_fen, day, actor=actor_of(a))
    what = "recovery" if recovery else "payment"
    ref, on, total, limit = (
        ("recovery_ref", "received_on", "recovered_fen", "paid_fen")
        if recovery
        else ("payment_ref", "paid_on", "paid_fen", "entitlement_amount_fen")
    )
    if a.json:
        emit_json(
            {
                "entitlement_id": r.entitlement_id,
                ref: r.ref,
                "amount_fen": r.amount_fen,
                on: r.on,
                "replay": r.replay,
                total: r.total_fen,
                limit: r.limit_fen,
                "position": r.position,
            }
        )
    elif r.replay:
        print(f"replay: {what} {r.ref} is already recorded with these details; nothing written")
    elif recovery:
        print(
            f"recorded recovery {r.ref}: {yuan(r.amount_fen)} yuan back against {r.entitlement_id} "
            f"(recovered {yuan(r.total_fen)} of {yuan(r.limit_fen)} paid)"
        )
    else:
        print(
            f"recorded payment {r.ref}: {yuan(r.amount_fen)} yuan against {r.entitlement_id} "
            f"(paid {yuan(r.total_fen)} of {yuan(r.limit_fen)})"
        )
    return EXIT_OK


def _totals(ledger: Ledger, a: argparse.Namespace) -> int:
    at = ledger.point(a.known_at, a.as_of)
    group = "kind" if a.by == "kind" else "city_code"
    extra = "recovery_due_fen" if a.basis == "due" else "recovered_fen"
    rows = [
        {
            "fiscal_year": t.fiscal_year,
            group: t.group,
            "count": t.count,
            "entitled_fen": t.entitled_fen,
            "paid_fen": t.paid_fen,
            "outstanding_fen": t.outstanding_fen,
            extra: t.recovery_due_fen if a.basis == "due" else t.recovered_fen,
        }
        for t in ledger.totals(at, fiscal_year=a.fiscal_year, by=a.by, basis=a.basis)
    ]
    if a.json:
        _answer(at, "totals", rows)
    else:
        print(_header(at))
        print(f"basis: {a.basis}")
        print_table(
            rows,
            ["fiscal_year", group, "count", "entitled_fen", "paid_fen", "outstanding_fen", extra],
            money=["entitled_fen", "paid_fen", "outstanding_fen", extra],
        )
    return EXIT_OK


WINDOW_COLUMNS = ["window", "clause", "starts_on", "ends_on", "closed_on", "fee_cap_bp"]


def _windows(ledger: Ledger, a: argparse.Namespace) -> int:
    at = ledger.point(a.known_at, a.as_of)
    rows = ledger.windows(at, uscc=a.uscc, active_on=a.active_on)
    if a.json:
        _answer(at, "windows", rows)
    else:
        print(_header(at))
        table = [{"closed_on": None, "fee_cap_bp": None, **r} for r in as_rows(rows)]
        print_table(table, ["uscc", *WINDOW_COLUMNS, "size_class"])
    return EXIT_OK


def _enterprise(ledger: Ledger, a: argparse.Namespace) -> int:
    view = ledger.enterprise(a.uscc, as_of=a.as_of, known_at=a.known_at)
    if a.json:
        emit_json(view)
        return EXIT_OK
    doc = jsonable(view)
    print(f"{doc['uscc']}  {doc['name']}")
    print(
        f"as of {doc['as_of']}, as the ledger knew it at position {doc['known_at']['position']} "
        f"({doc['known_at']['recorded_at']})"
    )
    if doc["region_code"]:
        print(
            f"region {doc['region_code']} {doc['region_name']} ({doc['city_name']}), industry {doc['industry_code']}, size {doc['size_class'] or 'unknown'}"
        )
        print(
            f"register years {', '.join(map(str, doc['register_years']))}; first entry {doc['first_entry_year'] or 'unknown'} ({doc['first_entry_route'] or '-'})"
        )
    else:
        print("on no register yet: identified by its designations")
    print("designations:")
    print_table(
        doc["designations"],
        ["kind", "document", "valid_from", "valid_to", "valid", "position"],
    )
    print("holds (no payment while one is in force):")
    print_table(doc["holds"], HOLD_TABLE)
    print("entitlements:")
    for e in doc["entitlements"]:
        e["bonuses"] = _bonus_text(e["bonuses"])
    print_table(
        doc["entitlements"],
        [
            "entitlement_id",
            "policy",
            "clause",
            "amount_fen",
            "bonuses",
            "due_fiscal_year",
            "paid_fen",
            "status",
        ],
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
    print_table(
        [{"closed_on": None, "fee_cap_bp": None, **w} for w in doc["windows"]], WINDOW_COLUMNS
    )
    return EXIT_OK


def _explain(ledger: Ledger, a: argparse.Namespace) -> int:
    doc = jsonable(ledger.explain(a.entitlement_id))
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
    if doc["bonuses"]:
        print(
            f"base {yuan(doc['base_fen'])} yuan, bonuses {_bonus_text(doc['bonuses'])}, "
            "rounded half up to the fen"
        )
    print("derives from:")
    print_table(doc["derives_from"], ["position", "recorded_at", "type", "year", "actor"])
    if doc["designations"]:
        print("designations the bonuses rest on:")
        print_table(
            doc["designations"],
            ["position", "recorded_at", "kind", "document", "valid_from", "valid_to", "actor"],
        )
    if doc["holds"]:
        print("the firm's holds (no payment while one is in force):")
        print_table(doc["holds"], HOLD_TABLE)
    print(f"payments ({doc['status']}, paid {yuan(doc['paid_fen'])}):")
    print_table(
        doc["payments"],
        ["position", "payment_ref", "amount_fen", "paid_on", "actor"],
        money=["amount_fen"],
    )
    cause = doc["revoked_by"]
    if cause is not None:
        what = (
            f"the adoption of policy version {cause['policy_id']}"
            if cause["policy_id"]
            else f"the correction of register year {cause['year']}"
        )
        print(
            f"revoked by {what} at position {cause['position']} ({cause['recorded_at']}, "
            f"{cause['actor']}): {cause['reason']}"
        )
        print(f"recoveries (recovered {yuan(doc['recovered_fen'])}):")
        print_table(
            doc["recoveries"],
            ["position", "recovery_ref", "amount_fen", "received_on", "actor"],
            money=["amount_fen"],
        )
    return EXIT_OK


def _bonus_text(bonuses: list[dict[str, Any]]) -> str:
    """`+30% strategic_emerging (DOC)` for each bonus an award carries."""
    return "; ".join(
        f"+{b['percent']}% {b['designation']} ({', '.join(b['documents'])})" for b in bonuses
    )


def _audit_trail(ledger: Ledger, a: argparse.Namespace) -> int:
    trail = as_rows(ledger.audit_trail(a.uscc))
    if a.json:
        emit_json(trail)
    else:
        for e in trail:
            e["payload"] = json.dumps(e["payload"], ensure_ascii=False)
        print_table(trail, ["position", "recorded_at", "type", "actor", "valid_from", "payload"])
    return EXIT_OK


def _reconciliations(ledger: Ledger, a: argparse.Namespace) -> int:
    runs = as_rows(ledger.reconciliations())
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


def _register(ledger: Ledger, a: argparse.Namespace) -> int:
    at = ledger.point(a.known_at, a.as_of)
    rows: list[Any]
    if a.year is not None:
        rows = ledger.register(a.year, at)
        columns = ["uscc", "name", "kind", "first_entry", "region_code", "city_code", "size_class"]
    else:
        rows = ledger.register_sizes(at)
        columns = ["year", "city_code", "size", "first_entries", "re_entries"]
    if a.json:
        _answer(at, "register", rows)
    else:
        print(_header(at))
        print_table(as_rows(rows), columns)
    return EXIT_OK


def _rebuild(ledger: Ledger, a: argparse.Namespace) -> int:
    position = ledger.rebuild_views()
    if a.json:
        emit_json({"position": position})
    else:
        print(f"projections rebuilt from the log up to position {position}")
    return EXIT_OK


def _link(position: int, link: bytes) -> dict[str, Any]:
    return {"position": position, "hash": link.hex()}


def _verify(ledger: Ledger, a: argparse.Namespace) -> int:
    v: Verification = log_of(ledger).verify_chain(a.anchor)
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


def _anchor(ledger: Ledger, a: argparse.Namespace) -> int:
    """The stored head of the chain, read, not recomputed: an anchor that does not match the
    events shows up at the next `verify --anchor`, and reading it stays instant at any log size.
    `--out` appends `POSITION:HASH TAKEN_AT` to the auditors' file outside the database."""
    head = log_of(ledger).chain_head()
    taken_at = datetime.now(UTC).replace(microsecond=0)
    if a.out is not None:
        try:
            with open(a.out, "a", encoding="ascii") as kept:
                kept.write(f"{head} {taken_at.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
        except OSError as e:
            raise RefusedError(
                f"cannot append to {a.out} ({e.strerror}); give a writable file", field="out"
            ) from None
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


COMMANDS: dict[str, Command] = {
    "import-register": _import,
    "awards": _awards,
    "record-payment": lambda ledger, a: _money(ledger, a, recovery=False),
    "record-recovery": lambda ledger, a: _money(ledger, a, recovery=True),
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
    **RULE_COMMANDS,
    **HOLD_COMMANDS,
    **BATCH_COMMANDS,
    **PIPELINE_COMMANDS,
    **PERSON_COMMANDS,
}


def run(a: argparse.Namespace) -> int:
    """A command on the ledger of `--db`."""
    if a.command == "import-register":
        # Wrong options, then a bad policy file, are refused before the database is opened.
        check_import_options(
            baseline=a.baseline, policy=bool(a.policy), correction=a.correction, reason=a.reason
        )
        a.policy_loaded = load_policy(a.policy) if a.policy else None
    if a.command == "policy" and a.action == "adopt":
        # A bad file is refused, every bad key named, before the database is opened.
        a.policy_loaded = load_policy(a.file)
    # Only the baseline's import makes a ledger: any other command on a missing one is refused,
    # and the baseline's file is checked first, so that a refused one makes nothing either.
    creates = False
    if a.command == "import-register" and a.baseline:
        try:
            require_ledger(database_settings(a.db))
        except NoLedgerError:
            validate_year(a.year, CsvRegister(a.file, a.year, a.encoding), {})
            creates = True
    if a.command in QUERIES and not a.db:
        answered = on_replica(COMMANDS[a.command], a)
        if answered is not None:
            return answered
    ledger, _settings = open_store(
        a.db, create=creates, person_secret=getattr(a, "person_secret", None)
    )
    with ledger:
        return COMMANDS[a.command](ledger, a)
