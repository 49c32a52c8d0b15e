"""Designations: a certifying authority's files of firms designated strategic emerging (战略性新兴
产业) or tech-based SMEs (科技型中小企业), each valid for a period, and their revocation.

A designation is a fact of the firm's (an event on its stream), so that a bonus asking for it
re-derives the firm's awards the moment it is granted or revoked, as a correction does: a bonus
earned late is arrears, one taken away after payment leaves what was paid above the new amount
to recover. A firm need not be on any register yet: it is then identified by its USCC alone.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.command_results import AmountChange, DesignationResult
from domain.enterprise import Enterprise
from domain.errors import (
    DesignationsRejectedError,
    NotFoundError,
    RefusedError,
    RowError,
)
from domain.ledger_base import LedgerBase, amount_change, checked_uscc
from domain.policy import DesignationKind, Policies
from domain.rules import Designation, Entitlement, entitlements
from domain.text import checked_choice, checked_text


@dataclass(frozen=True, slots=True)
class DesignationRow:
    """One designation of a certifying authority's file, read and checked on its own."""

    line: int
    uscc: str
    valid_from: date
    valid_to: date | None
    document: str


def designation_kind(value: str) -> DesignationKind:
    """The kind named, or InvalidInputError listing the kinds."""
    return checked_choice(DesignationKind, value, "kind", "designation kind")


class DesignationCommands(LedgerBase):
    """`import_designations`, `revoke_designation`."""

    def import_designations(
        self,
        kind: DesignationKind,
        name: str,
        sha256: str,
        rows: list[DesignationRow],
        *,
        actor: str,
        unreadable: Sequence[RowError] = (),
    ) -> DesignationResult:
        """Grant the designations of a certifying authority's file, all or none.

        A row the firm holds already (same kind, document and dates) changes nothing, so the
        same file again is a replay; the same document with other dates is refused (revoke it
        and grant again under the new document), and so is a row whose grant was revoked
        (counted, not granted again). Every bad line is listed (`name:LINE: FIELD: reason`),
        those the file's reader could not read (`unreadable`) with them.
        """
        checked_text(actor, "actor")
        policies = self.ledger_book().policies
        assert policies is not None
        errors: list[RowError] = list(unreadable)
        seen: dict[str, int] = {}
        by_firm: dict[str, list[DesignationRow]] = defaultdict(list)
        for row in rows:
            first = seen.setdefault(f"{row.uscc}\0{row.document}", row.line)
            if first != row.line:
                errors.append(
                    RowError(
                        row.line,
                        "document",
                        f"{row.uscc} is granted {row.document!r} on line {first} already",
                    )
                )
                continue
            by_firm[row.uscc].append(row)
        found = self.find_enterprises(sorted(by_firm))
        held = revoked_earlier = 0
        pending: list[tuple[Enterprise | None, str, list[DesignationRow]]] = []
        for uscc, firm_rows in by_firm.items():
            firm = found[uscc]
            grant = []
            for row in firm_rows:
                had = firm.state.designations.get((kind, row.document)) if firm else None
                was = firm.state.revoked_designations.get((kind, row.document)) if firm else None
                gone = was[0] if was else None
                before = had or gone
                if before is None:
                    grant.append(row)
                    continue
                if (before.valid_from, before.valid_to) != (row.valid_from, row.valid_to):
                    errors.append(
                        RowError(
                            row.line,
                            "document",
                            f"{uscc} was granted {row.document!r} valid {_period(before)}"
                            + (" and it was revoked since" if gone else "")
                            + f", not {_period(row)}: "
                            + (
                                "grant it under the new document"
                                if gone
                                else "revoke it (designation revoke) and grant again under the "
                                "new document"
                            ),
                        )
                    )
                elif gone:
                    revoked_earlier += 1
                else:
                    held += 1
            if grant:
                pending.append((firm, uscc, grant))
        if errors:
            raise DesignationsRejectedError(name, sorted(errors, key=lambda e: e.line))
        if not pending:
            return DesignationResult(kind, sha256, True, 0, held, revoked_earlier, [], [], [], None)
        book = self.ledger_book()
        report = _Report()
        firms: list[Enterprise] = []
        identified = []
        for firm, uscc, grant in pending:
            if firm is None:
                firm = Enterprise.identified(uscc, actor, sha256)
                identified.append(uscc)
            old = _owed(firm, policies)
            for row in grant:
                owed = _owed(firm, policies)
                added = Designation(kind, row.valid_from, row.valid_to, row.document)
                firm.trigger_event(
                    Enterprise.DesignationGranted,
                    kind=kind.value,
                    document=row.document,
                    valid_from=row.valid_from,
                    valid_to=row.valid_to,
                    changed=_changed(owed, _owed(firm, policies, added=added)),
                    actor=actor,
                    source_sha256=sha256,
                )
            report.add(firm, old, _owed(firm, policies))
            firms.append(firm)
        granted = sum(len(g) for _, _, g in pending)
        book.trigger_event(
            book.DesignationsImported,
            kind=kind.value,
            sha256=sha256,
            rows=len(rows),
            counts={
                "granted": granted,
                "held": held,
                "revoked_earlier": revoked_earlier,
                "identified": len(identified),
            },
            actor=actor,
        )
        recordings = self.save_or_conflict(f"while {name} was imported", book, *firms)
        result = DesignationResult(
            kind,
            sha256,
            False,
            granted,
            held,
            revoked_earlier,
            sorted(identified),
            sorted(f.uscc for f in firms),
            report.changes,
            max(r.notification.id for r in recordings),
        )
        return self.caught_up(result)

    def revoke_designation(
        self,
        uscc: str,
        kind: DesignationKind,
        document: str,
        reason: str,
        *,
        of_document: str | None = None,
        actor: str,
    ) -> DesignationResult:
        """Void the firm's designation of `kind` (the one granted under `of_document` when it
        holds several) as if never granted; `document` is the revoking instrument. The same
        revocation again changes nothing."""
        checked_text(actor, "actor")
        checked_text(document, "document")
        checked_text(reason, "reason")
        if of_document is not None:
            checked_text(of_document, "of")
        policies = self.ledger_book().policies
        assert policies is not None
        firm = self.get_enterprise(checked_uscc(uscc))
        s = firm.state
        held = sorted(doc for k, doc in s.designations if k == kind)
        if of_document is None:
            if not held:
                if any(
                    k == kind and by == document
                    for (k, _), (_, by) in s.revoked_designations.items()
                ):
                    return _replayed(kind)
                raise NotFoundError(f"{uscc} holds no {kind} designation", field="kind")
            if len(held) > 1:
                raise RefusedError(
                    f"{uscc} holds {len(held)} {kind} designations ({', '.join(held)}): name the "
                    "one revoked with --of DOC",
                    field="of",
                )
            of_document = held[0]
        elif of_document not in held:
            gone = s.revoked_designations.get((kind, of_document))
            if gone is not None and gone[1] == document:
                return _replayed(kind)
            raise NotFoundError(
                f"{uscc} holds no {kind} designation under {of_document!r}"
                + (f": {gone[1]!r} revoked it" if gone else "")
                + (f" (it holds {', '.join(held)})" if held else ""),
                field="of",
            )
        voided = s.designations[(kind, of_document)]
        old = _owed(firm, policies)
        firm.trigger_event(
            Enterprise.DesignationRevoked,
            kind=kind.value,
            of_document=of_document,
            document=document,
            reason=reason,
            valid_from=voided.valid_from,
            changed=_changed(old, _owed(firm, policies, removed=voided)),
            actor=actor,
            source_sha256=None,
        )
        report = _Report()
        report.add(firm, old, _owed(firm, policies))
        recordings = self.save_or_conflict(f"while {uscc}'s designation was revoked", firm)
        result = DesignationResult(
            kind,
            None,
            False,
            0,
            0,
            0,
            [],
            [firm.uscc],
            report.changes,
            max(r.notification.id for r in recordings),
        )
        return self.caught_up(result)


def _replayed(kind: DesignationKind) -> DesignationResult:
    return DesignationResult(kind, None, True, 0, 0, 0, [], [], [], None)


def _period(d: Any) -> str:
    return f"{d.valid_from} to {d.valid_to or 'open-ended'}"


def _owed(
    firm: Enterprise,
    policies: Policies,
    *,
    added: Designation | None = None,
    removed: Designation | None = None,
) -> dict[str, Entitlement]:
    """The firm's awards now, or with one designation more or one less."""
    history = firm.state.history()
    if added is not None or removed is not None:
        held = tuple(d for d in history.designations if d != removed)
        history = dataclasses.replace(history, designations=held + ((added,) if added else ()))
    return {e.entitlement_id: e for e in entitlements(history, policies)}


def _changed(old: dict[str, Entitlement], new: dict[str, Entitlement]) -> list[str]:
    return sorted(
        eid for eid in old.keys() & new.keys() if old[eid].amount_fen != new[eid].amount_fen
    )


class _Report:
    def __init__(self) -> None:
        self.changes: list[AmountChange] = []

    def add(
        self, firm: Enterprise, old: dict[str, Entitlement], new: dict[str, Entitlement]
    ) -> None:
        # A designation changes amounts only: the awards a firm is given stay the same.
        for eid in _changed(old, new):
            self.changes.append(amount_change(firm, old[eid], new[eid]))
