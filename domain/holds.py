"""Compliance holds: a firm on a serious-default list (credit, work safety, environment), under
investigation for statistical fraud, deregistered, or objected to in a public notice is not paid
while the hold is in force.

A hold is a fact of the firm's (an event on its stream), valid from its first day in force to
its last (open-ended: until lifted), and lifted from the first day free. It never changes what
is owed: a confirmed statistical fraud is a register correction, which revokes and recovers. A
firm need not be on any register yet (the credit platform's lists are national): it is then
identified by its USCC alone, so that the hold stands when the firm enters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from domain.command_results import HoldResult
from domain.enterprise import Enterprise, Hold
from domain.errors import (
    ConflictError,
    HoldsRejectedError,
    InvalidInputError,
    NotFoundError,
    RowError,
)
from domain.ledger_base import LedgerBase, checked_uscc
from domain.text import checked_choice, checked_text


class HoldReason(StrEnum):
    CREDIT_DEFAULT = "credit_default"
    """On the serious-default list of 信用中国 (严重失信主体名单)."""
    WORK_SAFETY = "work_safety"
    """On the work-safety serious-default list (应急管理部令第11号, in force 2023-10-01)."""
    ENVIRONMENT = "environment"
    STATISTICAL_FRAUD = "statistical_fraud"
    """Under investigation for statistical fraud (统计造假)."""
    DEREGISTERED = "deregistered"
    """Deregistered or its licence revoked (注销/吊销)."""
    OBJECTION = "objection"
    """Objected to during a public notice (公示) of a payment batch."""
    OTHER = "other"


def hold_reason(value: str) -> HoldReason:
    """The reason named, or InvalidInputError listing the reasons."""
    return checked_choice(HoldReason, value, "reason", "hold reason")


@dataclass(frozen=True, slots=True)
class HoldRow:
    """One hold of a list file (or placed by hand: line 0), read and checked on its own."""

    line: int
    uscc: str
    reason: HoldReason
    authority: str
    document: str
    valid_from: date
    valid_to: date | None

    def hold(self) -> Hold:
        return Hold(
            self.reason.value, self.authority, self.document, self.valid_from, self.valid_to
        )


def hold_problem(held: Hold, row: HoldRow) -> str | None:
    """Why `row` cannot be placed where the firm holds `held` under the same document (None:
    it is the same hold, a replay)."""
    if held.lifted_on is not None:
        return (
            f"the hold under {row.document!r} was lifted from {held.lifted_on}: place a new hold "
            "under the new document"
        )
    if (held.reason, held.authority, held.valid_from, held.valid_to) != (
        row.reason.value,
        row.authority,
        row.valid_from,
        row.valid_to,
    ):
        return (
            f"{row.uscc} is held under {row.document!r} already ({held.reason}, "
            f"{held.authority}, {period(held)}), not as given ({row.reason.value}, "
            f"{row.authority}, {period(row)}): a document places one hold"
        )
    return None


def period(h: Hold | HoldRow) -> str:
    return f"from {h.valid_from} to {h.valid_to or 'until lifted'}"


def check_hold_row(row: HoldRow) -> None:
    """The text fields of a hold placed by hand, as a file's reader checks them."""
    checked_text(row.authority, "authority")
    checked_text(row.document, "document")
    if row.valid_to is not None and row.valid_to < row.valid_from:
        raise InvalidInputError(
            f"{row.valid_to} is before the first day in force {row.valid_from}", field="to"
        )


class HoldCommands(LedgerBase):
    """`place_hold`, `lift_hold`, `import_holds`."""

    def place_hold(self, row: HoldRow, *, actor: str) -> HoldResult:
        """Place one hold (`row.line` unused). The same hold again changes nothing; another under
        a document the firm is held under already is refused."""
        checked_text(actor, "actor")
        checked_uscc(row.uscc)
        check_hold_row(row)
        firm = self.find_enterprises([row.uscc])[row.uscc]
        held = firm.state.holds.get(row.document) if firm else None
        if held is not None:
            problem = hold_problem(held, row)
            if problem is not None:
                raise ConflictError(problem, field="document")
            return _replayed(None)
        return self._place_holds([(firm, row.uscc, [row])], None, 0, actor)

    def import_holds(
        self,
        name: str,
        sha256: str,
        rows: list[HoldRow],
        *,
        actor: str,
        unreadable: Sequence[RowError] = (),
    ) -> HoldResult:
        """Place the holds of a list file (the credit platform's, an authority's), all or none.

        A row the firm is held under already with the same details changes nothing, so the same
        file again is a replay; every bad line is listed (`name:LINE: FIELD: reason`), those the
        reader could not read (`unreadable`) with them.
        """
        checked_text(actor, "actor")
        self.ledger_book()
        errors: list[RowError] = list(unreadable)
        seen: dict[tuple[str, str], int] = {}
        by_firm: dict[str, list[HoldRow]] = {}
        for row in rows:
            first = seen.setdefault((row.uscc, row.document), row.line)
            if first != row.line:
                errors.append(
                    RowError(
                        row.line,
                        "document",
                        f"{row.uscc} is held under {row.document!r} on line {first} already",
                    )
                )
                continue
            by_firm.setdefault(row.uscc, []).append(row)
        found = self.find_enterprises(sorted(by_firm))
        held_already = 0
        pending: list[tuple[Enterprise | None, str, list[HoldRow]]] = []
        for uscc, firm_rows in by_firm.items():
            firm = found[uscc]
            place = []
            for row in firm_rows:
                held = firm.state.holds.get(row.document) if firm else None
                if held is None:
                    place.append(row)
                    continue
                problem = hold_problem(held, row)
                if problem is not None:
                    errors.append(RowError(row.line, "document", problem))
                else:
                    held_already += 1
            if place:
                pending.append((firm, uscc, place))
        if errors:
            raise HoldsRejectedError(name, sorted(errors, key=lambda e: e.line))
        if not pending:
            return _replayed(sha256, held_already)
        return self._place_holds(pending, (name, sha256, len(rows)), held_already, actor)

    def lift_hold(
        self, uscc: str, document: str, lifted_on: date, reason: str, *, actor: str
    ) -> HoldResult:
        """Lift the firm's hold placed under `document`: free of it from `lifted_on` (the first
        day free). The same lift again changes nothing; another lift of a lifted hold is
        refused."""
        checked_text(actor, "actor")
        checked_text(document, "document")
        checked_text(reason, "reason")  # why, and under which instrument: never blank
        firm = self.get_enterprise(checked_uscc(uscc))
        held = firm.state.holds.get(document)
        if held is None:
            documents = ", ".join(sorted(firm.state.holds)) or "none"
            raise NotFoundError(
                f"{uscc} has no hold under {document!r} (its holds: {documents})",
                field="document",
            )
        if held.lifted_on is not None:
            if (held.lifted_on, held.lift_reason) == (lifted_on, reason):
                return _replayed(None)
            raise ConflictError(
                f"the hold under {document!r} was lifted from {held.lifted_on} already "
                f"({held.lift_reason})",
                field="document",
            )
        firm.trigger_event(
            Enterprise.HoldLifted,
            document=document,
            lifted_on=lifted_on,
            reason=reason,
            actor=actor,
            source_sha256=None,
        )
        recordings = self.save_or_conflict(f"while {uscc}'s hold was lifted", firm)
        result = HoldResult(
            None, False, 0, 1, 0, [], [uscc], max(r.notification.id for r in recordings)
        )
        return self.caught_up(result)

    def _place_holds(
        self,
        pending: list[tuple[Enterprise | None, str, list[HoldRow]]],
        source: tuple[str, str, int] | None,
        held_already: int,
        actor: str,
    ) -> HoldResult:
        """Place the pending holds in one transaction (a file's with the book's record of it)."""
        book = self.ledger_book()
        sha256 = source[1] if source else None
        firms: list[Enterprise] = []
        identified = []
        for firm, uscc, place in pending:
            if firm is None:
                firm = Enterprise.identified(uscc, actor, sha256)
                identified.append(uscc)
            for row in place:
                firm.place_hold(row.hold(), actor, sha256)
            firms.append(firm)
        placed = sum(len(p) for _, _, p in pending)
        aggregates: list[object] = list(firms)
        if source is not None:
            name, sha, rows = source
            book.trigger_event(
                book.HoldsImported,
                sha256=sha,
                rows=rows,
                counts={"placed": placed, "held": held_already, "identified": len(identified)},
                actor=actor,
            )
            aggregates.insert(0, book)
            during = f"while {name} was imported"
        else:
            during = f"while {pending[0][1]}'s hold was placed"
        recordings = self.save_or_conflict(during, *aggregates)
        result = HoldResult(
            sha256,
            False,
            placed,
            0,
            held_already,
            sorted(identified),
            sorted(f.uscc for f in firms),
            max(r.notification.id for r in recordings),
        )
        return self.caught_up(result)


def _replayed(sha256: str | None, held: int = 0) -> HoldResult:
    return HoldResult(sha256, True, 0, 0, held, [], [], None)
