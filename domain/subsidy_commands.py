"""The commands of the social-insurance subsidy (38号 (九)): hires and contributions imported from
the human-resources bureau's files, the claims decided, subsidy payments recorded, and a person
shown or erased.

People are named in the log by pseudonym only (`domain.persons`); their details are in the
vault, written before the events that name them, so that no event names a person the vault
does not know (an import interrupted between the two is completed by importing the file again).
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.application import AggregateNotFoundError

from domain.enterprise import Enterprise, FirmState
from domain.errors import (
    InvalidInputError,
    RefusedError,
    RowError,
    SubsidyRejectedError,
)
from domain.persons import (
    WORKING_AGE,
    Erasure,
    PersonDetails,
    PersonIdError,
    PersonVault,
    age_on,
    mask,
    validate_person_id,
)
from domain.queries import PointInTimeQueries
from domain.social_insurance import (
    SI_BOOK_ID,
    Contract,
    ContributionsReported,
    HiresRecorded,
    SubsidyBook,
    SubsidyState,
    checked_month,
    contract_problem,
)
from domain.subsidy_results import (
    ContributionRow,
    HireRow,
    SubsidyImportResult,
)
from domain.text import checked_text

NOT_FIRST_ENTRANT = (
    "is not known to the ledger as a first entrant (its first entry is unknown, or it "
    "re-entered): (九) subsidises first entrants' hires only"
)


def subsidy_of(firm: Enterprise) -> SubsidyState:
    """The firm's (九) facts as its aggregate folded them (`Enterprise.SubsidyEvent.apply`)."""
    state: SubsidyState | None = getattr(firm, "si_state", None)
    return state if state is not None else SubsidyState(firm.uscc)


def first_entrant(s: FirmState) -> bool:
    """Whether the ledger knows the firm as a first entrant (the rules' own test)."""
    return s.history().is_first_entrant


class SubsidyCommands(PointInTimeQueries):
    """`import_hires`, `import_contributions`, and what the other (九) commands share: the book,
    the vault, the pseudonym of an identity number."""

    # The book and the vault -------------------------------------------------------------------

    def si_book(self) -> SubsidyBook | None:
        try:
            book: SubsidyBook = self._get(SI_BOOK_ID)
        except AggregateNotFoundError:
            return None
        return book

    def _checked_vault(self, book: SubsidyBook | None) -> PersonVault:
        """The vault, refused if its secret is not the one the ledger's pseudonyms were made
        under (another secret would name the same person otherwise)."""
        vault = self.persons
        if book is not None and book.secret_fingerprint != vault.fingerprint:
            raise RefusedError(
                "the person secret given is not the one this ledger's pseudonyms were made under "
                f"(its fingerprint is {vault.fingerprint}, the ledger's {book.secret_fingerprint}): "
                "give the ledger's secret file (restore it from safe keeping)"
            )
        return vault

    def _pseudonym(self, vault: PersonVault, person_id: str) -> tuple[str, str]:
        """The checked identity number and its pseudonym; InvalidInputError naming `person_id`."""
        try:
            pid = validate_person_id(person_id)
        except PersonIdError as e:
            raise InvalidInputError(str(e), field="person_id") from None
        return pid, vault.pseudonym(pid)

    # Imports ---------------------------------------------------------------------------------

    def import_hires(
        self,
        name: str,
        sha256: str,
        rows: list[HireRow],
        *,
        actor: str,
        unreadable: Sequence[RowError] = (),
    ) -> SubsidyImportResult:
        """Record the human-resources bureau's file of hires, all or none.

        Each row is a contract of a hard-to-employ person with a first entrant: a year or more
        (or open-ended), begun by today, the person 16 or older at its start. A contract recorded
        already with the same details changes nothing, so the same file again is a replay; a
        renewal (a later contract of the same person with the same firm) continues the hire.
        Every bad line is listed (`name:LINE: FIELD: reason`), an identity number masked.
        """
        checked_text(actor, "actor")
        self.ledger_book()
        policies = self.get_policies()
        book = self.si_book()
        vault = self._checked_vault(book)
        today = self.today()
        errors: list[RowError] = list(unreadable)
        valid: list[tuple[HireRow, str, str]] = []
        for row in rows:
            try:
                pid = validate_person_id(row.person_id)
            except PersonIdError as e:
                errors.append(RowError(row.line, "person_id", str(e)))
                continue
            if row.contract_start > today:
                errors.append(
                    RowError(
                        row.line,
                        "contract_start",
                        f"{row.contract_start} is after today "
                        f"({today}): a hire is recorded once it has begun",
                    )
                )
            elif age_on(pid, row.contract_start) < WORKING_AGE:
                errors.append(
                    RowError(
                        row.line,
                        "person_id",
                        f"{mask(pid)} is under {WORKING_AGE} on "
                        f"{row.contract_start}: check the number and the contract",
                    )
                )
            else:
                valid.append((row, pid, vault.pseudonym(pid)))
        found = self.find_enterprises(sorted({r.uscc for r, _, _ in valid}))
        people = vault.read(sorted({p for _, _, p in valid}))
        kept: dict[str, PersonDetails] = {}
        named: dict[str, tuple[str, int]] = {}
        new: dict[str, list[tuple[str, Contract]]] = {}
        already = 0
        for row, pid, person in valid:
            firm = found[row.uscc]
            if firm is None:
                errors.append(RowError(row.line, "uscc", f"no enterprise {row.uscc} in the ledger"))
                continue
            if not first_entrant(firm.state):
                errors.append(RowError(row.line, "uscc", f"{row.uscc} {NOT_FIRST_ENTRANT}"))
                continue
            rule = policies.governing(firm.state.first_entry_year or 0).social_insurance_rule
            problem = contract_problem(row.contract_start, row.contract_end, rule)
            if problem is not None:
                errors.append(RowError(row.line, "contract_end", problem))
                continue
            held = people.get(person)
            if isinstance(held, Erasure):
                errors.append(RowError(row.line, "person_id", erased_message(pid, held)))
                continue
            first_name = named.setdefault(person, (row.person_name, row.line))
            if first_name[0] != row.person_name:
                errors.append(
                    RowError(
                        row.line,
                        "person_name",
                        f"differs from line {first_name[1]}'s name for the same person {mask(pid)}",
                    )
                )
                continue
            details = kept.get(person) or held or PersonDetails(pid, row.person_name, {})
            if details.name != row.person_name:
                errors.append(
                    RowError(
                        row.line,
                        "person_name",
                        f"differs from the name the ledger holds for {mask(pid)}: check the file",
                    )
                )
                continue
            contract = Contract(row.contract_start, row.contract_end)
            key = f"{row.uscc}/{row.contract_start}"
            hire = subsidy_of(firm).hires.get(person)
            recorded = [c for c in hire.contracts] if hire else []
            pending = [c for p, c in new.get(row.uscc, []) if p == person]
            same = [c for c in recorded + pending if c.start == contract.start]
            if same:
                if same[0] != contract or contract in pending:
                    what = "in this file" if contract in pending or same[0] in pending else ""
                    errors.append(
                        RowError(
                            row.line,
                            "contract_start",
                            f"a contract of {mask(pid)} "
                            f"with {row.uscc} from {contract.start} is recorded "
                            f"{what or 'already'} ({same[0].text()}): a contract "
                            "is recorded once",
                        )
                    )
                    continue
                if details.categories.get(key) not in (None, row.category):
                    errors.append(
                        RowError(
                            row.line,
                            "category",
                            "differs from the category recorded with this contract",
                        )
                    )
                    continue
                already += 1
                if key not in details.categories:  # the vault's half of an interrupted import
                    kept[person] = PersonDetails(
                        pid, details.name, {**details.categories, key: row.category}
                    )
                continue
            overlap = [c for c in recorded + pending if _overlaps(c, contract)]
            if overlap:
                errors.append(
                    RowError(
                        row.line,
                        "contract_start",
                        f"{contract.text()} overlaps "
                        f"the contract {overlap[0].text()} of {mask(pid)} with "
                        f"{row.uscc}: a renewal starts after the last one ends",
                    )
                )
                continue
            new.setdefault(row.uscc, []).append((person, contract))
            kept[person] = PersonDetails(
                pid, details.name, {**details.categories, key: row.category}
            )
        if errors:
            raise SubsidyRejectedError(name, sorted(errors, key=lambda e: e.line))
        if kept:
            vault.keep(kept)
        if not new:
            return SubsidyImportResult(
                sha256, None, not kept, len(rows), 0, already, len(kept), [], None
            )
        firms: list[Enterprise] = []
        employers: dict[str, list[str]] = {}
        for uscc, contracts in sorted(new.items()):
            firm = found[uscc]
            assert firm is not None
            known = subsidy_of(firm).hires
            employers[uscc] = sorted({p for p, _ in contracts if p not in known})
            firm.trigger_event(
                HiresRecorded,
                hires=[
                    {
                        "person": p,
                        "contract_start": c.start.isoformat(),
                        "contract_end": c.end.isoformat() if c.end else None,
                    }
                    for p, c in contracts
                ],
                actor=actor,
                source_sha256=sha256,
            )
            firms.append(firm)
        recorded_count = sum(len(c) for c in new.values())
        book = book or SubsidyBook._create(
            SubsidyBook.Opened, id=SI_BOOK_ID, secret_fingerprint=vault.fingerprint, actor=actor
        )
        book.trigger_event(
            SubsidyBook.HiresImported,
            sha256=sha256,
            rows=len(rows),
            counts={"recorded": recorded_count, "already": already},
            employers=employers,
            actor=actor,
        )
        saved = self.save_or_conflict(f"while {name} was imported", book, *firms)
        result = SubsidyImportResult(
            sha256,
            None,
            False,
            len(rows),
            recorded_count,
            already,
            len(kept),
            sorted(new),
            max(r.notification.id for r in saved),
        )
        return self.caught_up(result)

    def import_contributions(
        self,
        month: str,
        name: str,
        sha256: str,
        rows: list[ContributionRow],
        *,
        actor: str,
        unreadable: Sequence[RowError] = (),
    ) -> SubsidyImportResult:
        """Record what each employer paid of its hires' social insurance in `month`, all or
        none. A person-month is reported once: the same figure again changes nothing (the same
        file again is a replay), another figure is refused, as is a month no contract of the
        hire covers, a person the firm did not hire, a person erased, and a person-month another
        employer reported (one employer insures a person in a month)."""
        checked_text(actor, "actor")
        checked_month(month, self.today())
        book = self.si_book()
        if book is None:
            raise RefusedError("no hires recorded yet: import the hires first (import-hires)")
        vault = self._checked_vault(book)
        errors: list[RowError] = list(unreadable)
        valid: list[tuple[ContributionRow, str, str]] = []
        seen: dict[tuple[str, str], int] = {}
        for row in rows:
            if type(row.employer_paid_fen) is not int or row.employer_paid_fen <= 0:
                errors.append(
                    RowError(
                        row.line,
                        "employer_paid_fen",
                        f"must be a positive whole number of fen, got {row.employer_paid_fen!r}",
                    )
                )
                continue
            try:
                pid = validate_person_id(row.person_id)
            except PersonIdError as e:
                errors.append(RowError(row.line, "person_id", str(e)))
                continue
            person = vault.pseudonym(pid)
            first = seen.setdefault((row.uscc, person), row.line)
            if first != row.line:
                errors.append(
                    RowError(
                        row.line,
                        "person_id",
                        f"{mask(pid)} is reported for {row.uscc} on line {first} already",
                    )
                )
                continue
            valid.append((row, pid, person))
        others = {u for _, _, p in valid for u in book.employers_of.get(p, ())}
        found = self.find_enterprises(sorted({r.uscc for r, _, _ in valid} | others))
        amounts: dict[str, dict[str, int]] = {}
        already = 0
        for row, pid, person in valid:
            firm = found[row.uscc]
            if firm is None:
                errors.append(RowError(row.line, "uscc", f"no enterprise {row.uscc} in the ledger"))
                continue
            st = subsidy_of(firm)
            hire = st.hires.get(person)
            problem = None
            if hire is None:
                problem = (
                    f"{mask(pid)} is not a hire of {row.uscc} in the ledger (import-hires first)"
                )
            elif person in st.erased:
                problem = erased_message(pid, st.erased[person])
            elif not any(c.covers(month) for c in hire.contracts):
                contracts = ", ".join(c.text() for c in hire.contracts)
                problem = (
                    f"no contract of {mask(pid)} with {row.uscc} runs in {month} ({contracts})"
                )
            else:
                other = _reported_by_other(found, book, row.uscc, person, month)
                if other is not None:
                    problem = (
                        f"{month}'s insurance of {mask(pid)} is reported by {other} "
                        "already: one employer insures a person in a month"
                    )
            if problem is not None:
                errors.append(RowError(row.line, "person_id", problem))
                continue
            reported = st.contributions.get((person, month))
            if reported == row.employer_paid_fen:
                already += 1
            elif reported is not None:
                errors.append(
                    RowError(
                        row.line,
                        "employer_paid_fen",
                        f"{month} of {mask(pid)} "
                        f"is reported at {reported} fen already, not "
                        f"{row.employer_paid_fen}: a reported month is not "
                        "changed by another report",
                    )
                )
            else:
                amounts.setdefault(row.uscc, {})[person] = row.employer_paid_fen
        if errors:
            raise SubsidyRejectedError(name, sorted(errors, key=lambda e: e.line))
        if not amounts:
            return SubsidyImportResult(sha256, month, True, len(rows), 0, already, 0, [], None)
        firms = []
        for uscc, by_person in sorted(amounts.items()):
            firm = found[uscc]
            assert firm is not None
            firm.trigger_event(
                ContributionsReported,
                month=month,
                amounts=by_person,
                actor=actor,
                source_sha256=sha256,
            )
            firms.append(firm)
        recorded = sum(len(a) for a in amounts.values())
        book.trigger_event(
            SubsidyBook.ContributionsImported,
            month=month,
            sha256=sha256,
            rows=len(rows),
            counts={"recorded": recorded, "already": already},
            actor=actor,
        )
        saved = self.save_or_conflict(f"while {name} was imported", book, *firms)
        result = SubsidyImportResult(
            sha256,
            month,
            False,
            len(rows),
            recorded,
            already,
            0,
            sorted(amounts),
            max(r.notification.id for r in saved),
        )
        return self.caught_up(result)


def erased_message(pid: str, erasure: Erasure) -> str:
    return (
        f"{mask(pid)} was erased under {erasure.document!r} on {erasure.erased_on}: their "
        "identity and name are destroyed, and nothing of them is recorded again"
    )


def _reported_by_other(
    found: dict[str, Enterprise | None], book: SubsidyBook, uscc: str, person: str, month: str
) -> str | None:
    """Another employer of the person that reported the month already, if any."""
    for other in sorted(book.employers_of.get(person, ())):
        firm = found.get(other)
        if other != uscc and firm is not None and (person, month) in subsidy_of(firm).contributions:
            return other
    return None


def _overlaps(a: Contract, b: Contract) -> bool:
    return (a.end is None or b.start <= a.end) and (b.end is None or a.start <= b.end)
