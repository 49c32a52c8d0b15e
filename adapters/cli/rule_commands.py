"""The commands of the rules: policy versions (`policy adopt|list|show`), designations
(`import-designations`, `designation revoke`) and the priority lists of (六)(七) (`priority`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from adapters.cli.common import Command, actor_of, as_rows, warn_views
from adapters.cli.output import EXIT_OK, emit_json, print_table, write_csv
from adapters.files.designations_csv import read_designations
from domain.application import Ledger
from domain.command_results import AdoptionResult, DesignationResult
from domain.policy import DesignationKind
from domain.results import jsonable


def _policy(ledger: Ledger, a: argparse.Namespace) -> int:
    """`policy adopt`, `policy list`, `policy show`."""
    if a.action == "adopt":
        return _adopted(ledger.adopt_policy(a.policy_loaded, actor=actor_of(a), reason=a.reason), a)
    if a.action == "list":
        rows = ledger.policy_versions(a.known_at)
        if a.json:
            emit_json({"policies": [_version_row(v) for v in rows]})
        else:
            print_table(
                [_version_row(v) for v in rows],
                ["id", "applies_from", "content_hash", "position", "recorded_at", "actor"],
            )
        return EXIT_OK
    version = ledger.policy_version(a.id, a.known_at)
    doc = {**_version_row(version), "content": version.content}
    if a.json:
        emit_json(doc)
    else:
        for key in ("id", "title", "issued_on", "applies_from", "content_hash"):
            print(f"{key}: {doc[key]}")
        print(
            f"adopted at position {doc['position']} ({doc['recorded_at']}) by {doc['actor']}"
            + (f": {doc['reason']}" if doc["reason"] else " with the baseline")
        )
        print(json.dumps(version.content, ensure_ascii=False, indent=2))
    return EXIT_OK


def _version_row(v: Any) -> dict[str, Any]:
    row = jsonable(v)
    row.pop("content")
    return dict(row)


def _adopted(r: AdoptionResult, a: argparse.Namespace) -> int:
    doc: dict[str, Any] = {
        "policy_id": r.policy_id,
        "content_hash": r.content_hash,
        "replay": r.replay,
        "firms": r.firms,
        "arrears": [asdict(c) for c in r.arrears],
        "revoked": [asdict(c) for c in r.revoked],
        "recovery_due": [asdict(c) for c in r.recovery_due],
        "amount_changed": [asdict(c) for c in r.amount_changed],
        "version_changed": [asdict(c) for c in r.version_changed],
        "position": r.position,
        **({"views_error": r.views_error} if r.views_error else {}),
    }
    warn_views(r)
    if a.json:
        emit_json(doc)
        return EXIT_OK
    if r.replay:
        print(
            f"policy {r.policy_id} was already adopted with this content ({r.content_hash}); nothing changed"
        )
        return EXIT_OK
    print(
        f"adopted policy {r.policy_id} ({r.content_hash}) at position {r.position}: "
        f"{len(r.firms)} firms re-derived"
    )
    for title, changes, columns, money in (
        ("arrears (newly owed)", doc["arrears"], ["amount_fen"], ["amount_fen"]),
        ("revoked (unpaid, no longer owed)", doc["revoked"], ["amount_fen"], ["amount_fen"]),
        (
            "recovery due (paid, no longer owed: 追回)",
            doc["recovery_due"],
            ["amount_fen", "recover_fen"],
            ["amount_fen", "recover_fen"],
        ),
        (
            "amount changed",
            doc["amount_changed"],
            ["old_amount_fen", "new_amount_fen", "recover_fen"],
            ["old_amount_fen", "new_amount_fen", "recover_fen"],
        ),
        ("version changed (same amount)", doc["version_changed"], ["old_policy"], []),
    ):
        print(f"{title}:")
        print_table(changes, ["entitlement_id", "due_fiscal_year", *columns], money=money)
    return EXIT_OK


def _import_designations(ledger: Ledger, a: argparse.Namespace) -> int:
    source = read_designations(a.file, encoding=a.encoding)
    r = ledger.import_designations(
        DesignationKind(a.kind),
        source.name,
        source.sha256,
        source.rows,
        actor=actor_of(a),
        unreadable=source.errors,
    )
    return _designated(r, a, f"{a.file} (sha256 {source.sha256})")


def _designation(ledger: Ledger, a: argparse.Namespace) -> int:
    """`designation revoke`."""
    r = ledger.revoke_designation(
        a.uscc,
        DesignationKind(a.kind),
        a.document,
        a.reason,
        of_document=a.of,
        actor=actor_of(a),
    )
    return _designated(r, a, f"the revocation of {a.uscc}'s {a.kind} designation by {a.document}")


def _designated(r: DesignationResult, a: argparse.Namespace, what: str) -> int:
    doc = jsonable(r)
    warn_views(r)
    if a.json:
        emit_json(doc)
        return EXIT_OK
    if r.replay:
        print(f"{what} was already recorded; nothing changed")
        return EXIT_OK
    if r.sha256 is not None:
        print(
            f"imported {r.kind} designations from {what} at position {r.position}: granted "
            f"{r.granted}, held already {r.held}, revoked earlier {r.revoked_earlier}, firms "
            f"identified {len(r.identified)}"
        )
    else:
        print(f"recorded {what} at position {r.position}")
    print("amount changed (a bonus earned late is arrears; paid above the new amount: 追回):")
    print_table(
        doc["amount_changed"],
        ["entitlement_id", "due_fiscal_year", "old_amount_fen", "new_amount_fen", "recover_fen"],
        money=["old_amount_fen", "new_amount_fen", "recover_fen"],
    )
    return EXIT_OK


PRIORITY_COLUMNS = [
    "uscc",
    "name",
    "region_code",
    "city_code",
    "first_entry_year",
    "window_from",
    "window_to",
    "clause",
    "policy_id",
    "tech_sme_documents",
]


def _priority(ledger: Ledger, a: argparse.Namespace) -> int:
    rows = ledger.priority(a.action, a.on, city=a.city)
    at = ledger.point()
    found = as_rows(rows)
    if a.json:
        emit_json(
            {
                "list": a.action,
                "on": a.on.isoformat(),
                "known_at": at.header()["known_at"],
                "city": a.city,
                "firms": found,
            }
        )
        return EXIT_OK
    for row in found:
        row["tech_sme_documents"] = " ".join(row["tech_sme_documents"])
    if a.csv:
        write_csv(found, PRIORITY_COLUMNS, a.encoding)
        return EXIT_OK
    print(
        f"{a.action} priority on {a.on.isoformat()} as the ledger knows it at position "
        f"{at.position}: {len(found)} first entrants"
    )
    print_table(found, PRIORITY_COLUMNS)
    return EXIT_OK


RULE_COMMANDS: dict[str, Command] = {
    "policy": _policy,
    "import-designations": _import_designations,
    "designation": _designation,
    "priority": _priority,
}
