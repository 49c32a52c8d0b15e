"""The ledger application: its commands (imports, payments) and the reads that replay aggregates."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, StoredEvent, Transcoding

from domain.correction import YearFact, restate, same_fact
from domain.enterprise import (
    REGISTER_BOOK_ID,
    Enterprise,
    PaymentRef,
    RegisterBook,
    enterprise_id,
    payment_ref_id,
    recovery_ref_id,
)
from domain.policy import Policy, load_policy
from domain.register import (
    FieldError,
    PriorFirm,
    RegisterDiff,
    RegisterRow,
    RowError,
    check_against_ledger,
)
from domain.rules import Entitlement, parse_entitlement_id
from domain.rules import entitlements as rule_entitlements


class LedgerError(Exception):
    """Base of the ledger's refusals: bad input or a command the rules refuse. Nothing was written."""


class RefusedError(LedgerError):
    """A command the ledger refuses (exit 2)."""


class NotFoundError(RefusedError):
    """An unknown enterprise, entitlement or ref."""


class InvalidInputError(RefusedError):
    """Malformed input: a bad amount, date, ref, reason or point in time."""


class ConflictError(RefusedError):
    """A voucher number already used with other details."""


class PreconditionError(RefusedError):
    """Input well formed but refused by the ledger's state: an overpayment, nothing to recover, a
    revoked award, a register year out of order."""


class RejectedFileError(RefusedError):
    """A file with bad lines, refused whole: every bad line is listed, none of it was used."""

    outcome = "nothing of it was used"

    def __init__(self, source: str, errors: Sequence[RowError]):
        self.source = source
        self.errors = list(errors)
        super().__init__(f"{source}: {len(self.errors)} bad line(s); {self.outcome}")

    def lines(self) -> list[str]:
        return [e.format(self.source) for e in self.errors]


class ImportRejectedError(RejectedFileError):
    """A register file with bad rows: every bad line is listed, nothing was written."""

    outcome = "nothing was imported"


class TreasuryRejectedError(RejectedFileError):
    """A treasury payment file with bad lines: every bad line is listed, nothing was reconciled."""

    outcome = "nothing was reconciled"


class ConcurrentWriteError(Exception):
    """Another writer changed the same aggregates first and retries did not help."""


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class RegisterSource(Protocol):
    """A register file: its hash, and a fresh pass over its records on each call of `records`."""

    name: str
    sha256: str
    encoding: str

    def records(
        self, *, checked: bool = False
    ) -> Iterator[tuple[int, RegisterRow | list[FieldError]]]: ...


class KnownRegister(Protocol):
    """What the ledger already holds of the register, caught up to the log (the views)."""

    def prior_firms(self) -> dict[str, PriorFirm]: ...

    def year_facts(self, year: int) -> dict[str, YearFact]:
        """Each firm's row of register year `year`, as imported or last corrected."""
        ...

    def firm_sizes(self, usccs: Sequence[str]) -> dict[str, dict[int, str | None]]:
        """The size class of each of these firms in each register year it is on."""
        ...


class EventStreamRecorder(Protocol):
    """A recorder that appends a long stream of events in one transaction, chunk by chunk."""

    def insert_event_stream(self, chunks: Iterable[Sequence[StoredEvent]]) -> int | None: ...


@dataclass(frozen=True)
class ImportResult:
    year: int
    baseline: bool
    sha256: str
    rows: int
    counts: dict[str, int]
    replay: bool
    position: int | None


@dataclass(frozen=True)
class AwardChange:
    """An entitlement a correction changed: newly owed (arrears), revoked or to be recovered."""

    entitlement_id: str
    uscc: str
    kind: str
    amount_fen: int
    due_fiscal_year: int
    paid_fen: int
    recover_fen: int
    """What must come back (追回): paid less already recovered, for a `recovery_due`."""


@dataclass(frozen=True)
class CorrectionResult:
    year: int
    sha256: str
    reason: str
    rows: int
    replay: bool
    """The file is the year's record already, or changes nothing: nothing was written."""
    firms: list[str]
    """Firms whose register history or row the correction changed."""
    arrears: list[AwardChange]
    revoked: list[AwardChange]
    recovery_due: list[AwardChange]
    position: int | None


@dataclass(frozen=True)
class PaymentResult:
    entitlement_id: str
    payment_ref: str
    amount_fen: int
    paid_on: date
    replay: bool
    paid_fen: int
    """Paid so far against the entitlement, this payment included."""
    entitlement_amount_fen: int


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work.

    An import or a batch of views allocates about a million short-lived, acyclic objects (rows,
    events, tuples), which reference counting frees; meanwhile the collector's passes keep walking
    the large live heap (the prior firms) and find nothing: about a tenth of the time measured.
    Left as found if someone else (another thread's import or catch-up) already paused it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


IMPORT_CHUNK_EVENTS = 1000
"""Events encoded and handed to the recorder at a time: memory stays bounded while one
transaction takes the whole year."""


def _check_money(amount_fen: int, day: date, today: date, ref: str, day_field: str) -> None:
    """What every movement of money must satisfy, payment or recovery."""
    if type(amount_fen) is not int or amount_fen <= 0:
        raise InvalidInputError(
            f"amount_fen must be a positive whole number of fen, got {amount_fen!r}"
        )
    if day > today:
        raise InvalidInputError(f"{day_field} {day} is after today ({today}, Asia/Shanghai)")
    if not ref or ref != ref.strip():
        raise InvalidInputError(
            "ref must be the treasury voucher number, without surrounding spaces"
        )


class Ledger(Application[uuid.UUID]):
    """The scale-up award ledger. Commands append events; reads replay them."""

    name = "ledger"

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._policy: Policy | None = None

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # Reads of aggregates ----------------------------------------------------------------------

    def get_book(self) -> RegisterBook | None:
        try:
            book: RegisterBook = self.repository.get(REGISTER_BOOK_ID)
        except AggregateNotFoundError:
            return None
        return book

    def get_policy(self) -> Policy:
        """The policy adopted in the log; refused when nothing has been imported yet."""
        # One version applies to all years and a different one is refused, so once adopted it
        # stays: keep it rather than replay the book for every payment.
        if self._policy is None:
            book = self.get_book()
            policy = book.policy if book else None
            if policy is None:
                raise RefusedError("no policy adopted yet: import the baseline register first")
            self._policy = policy
        return self._policy

    def get_enterprise(self, uscc: str) -> Enterprise:
        try:
            firm: Enterprise = self.repository.get(enterprise_id(uscc))
        except AggregateNotFoundError:
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger") from None
        return firm

    def get_payment_ref(self, ref: str, *, recovery: bool = False) -> PaymentRef | None:
        try:
            claimed: PaymentRef = self.repository.get(
                recovery_ref_id(ref) if recovery else payment_ref_id(ref)
            )
        except AggregateNotFoundError:
            return None
        return claimed

    # Commands ---------------------------------------------------------------------------------

    def import_register(
        self,
        year: int,
        source: RegisterSource,
        *,
        baseline: bool,
        actor: str,
        load_prior: Callable[[], dict[str, PriorFirm]],
        policy: Policy | None = None,
    ) -> ImportResult:
        """Import the above-scale register of `year`, all or nothing.

        Args:
            year: the register year.
            source: the validated-on-read rows of the file, readable twice.
            baseline: the first year imported; its firms were already above scale.
            actor: who imports (recorded on every event).
            load_prior: what the ledger knows of every firm so far, caught up to the log.
            policy: the policy to adopt with the baseline (default: the packaged 38号 policy).

        Raises:
            ImportRejectedError: bad rows, each listed; nothing written.
            RefusedError: a year out of order, a second baseline or a different file for a year.
        """
        book = self.get_book()
        done = book.years.get(year) if book else None
        if done is not None:
            if done.sha256 == source.sha256 and done.baseline == baseline:
                return ImportResult(year, baseline, done.sha256, done.rows, done.counts, True, None)
            if done.sha256 == source.sha256:
                raise RefusedError(
                    f"register year {year} was imported from this file "
                    f"{'as' if done.baseline else 'not as'} the baseline; repeat the command "
                    f"{'with' if done.baseline else 'without'} --baseline to confirm it"
                )
            raise RefusedError(
                f"register year {year} was already imported from a different file "
                f"(sha256 {done.sha256}); corrections of an imported year are not accepted by a "
                "plain import"
            )
        self._check_year_order(book, year, baseline)
        if (
            policy is not None
            and book is not None
            and book.policy_hash not in (None, policy.content_hash)
        ):
            raise RefusedError(
                f"policy {policy.id} ({policy.content_hash[:12]}) differs from the one adopted "
                f"({book.policy_hash and book.policy_hash[:12]}): one policy version applies to all years"
            )
        with paused_gc():
            prior = load_prior()
            present = self._validate(year, source, prior)
        diff = RegisterDiff(year, baseline, actor, source.sha256, prior)
        if book is None:
            book = RegisterBook._create(RegisterBook.Opened, id=REGISTER_BOOK_ID, actor=actor)
        if book.policy_hash is None:
            book.adopt_policy(policy or load_policy(), actor)
        opening = list(book.collect_events())

        def events() -> Iterator[Any]:
            yield from opening
            rows = 0
            for _line, row in source.records(checked=True):
                assert not isinstance(row, list)  # validated in the first pass
                rows += 1
                yield from diff.events_for_row(row)
            yield from diff.left_events(present)
            book.trigger_event(
                RegisterBook.YearImported,
                year=year,
                baseline=baseline,
                sha256=source.sha256,
                rows=rows,
                counts=diff.counts.as_dict(),
                actor=actor,
                encoding=source.encoding,
            )
            yield from book.collect_events()

        recorder: EventStreamRecorder = self.recorder  # type: ignore[assignment]
        try:
            with paused_gc():
                position = recorder.insert_event_stream(self._chunks(events()))
        except IntegrityError as e:
            raise ConcurrentWriteError(
                f"another writer changed the ledger during the import of {year}; nothing was "
                f"imported: run the same command again ({e})"
            ) from e
        return ImportResult(
            year, baseline, source.sha256, len(present), diff.counts.as_dict(), False, position
        )

    def correct_register(
        self,
        year: int,
        source: RegisterSource,
        *,
        reason: str,
        actor: str,
        known: Callable[[], KnownRegister],
    ) -> CorrectionResult:
        """Take the bureau's re-issue of an imported register year, all or nothing.

        Appends, for every firm whose row or history changes, one `RegisterYearCorrected` with the
        history re-derived (later years included), and the book's `YearCorrected`; never edits or
        deletes. Returns the awards that changed: arrears, revoked, recovery due.

        Raises:
            ImportRejectedError: bad rows, each listed; nothing written.
            RefusedError: a year not imported, an empty reason.
        """
        if not reason.strip():
            raise InvalidInputError("--reason is required: say why the bureau re-issued the year")
        book = self.get_book()
        done = book.years.get(year) if book else None
        if book is None or done is None:
            imported = f"{min(book.years)}-{max(book.years)}" if book and book.years else "none"
            raise RefusedError(
                f"register year {year} has not been imported (imported: {imported}); a correction "
                "re-issues an imported year: import it first"
            )
        if done.sha256 == source.sha256:
            return CorrectionResult(
                year, source.sha256, reason, done.rows, True, [], [], [], [], None
            )
        baseline = book.baseline_year
        assert baseline is not None
        with paused_gc():
            register = known()
            prior = register.prior_firms()
            rows = self._validate_correction(year, source, prior)
            facts = register.year_facts(year)
        candidates = self._changed_firms(year, baseline, rows, prior, facts)
        sizes = register.firm_sizes(sorted(candidates))
        policy = self.get_policy()
        firms: list[Enterprise] = []
        arrears: list[AwardChange] = []
        revoked: list[AwardChange] = []
        recovery_due: list[AwardChange] = []
        for uscc in sorted(candidates):
            row = rows.get(uscc)
            firm = self._firm_or_new(uscc, row, year, actor, source.sha256)
            state = firm.state if uscc in prior else None
            history = restate(state, year, row, book.years, baseline, sizes.get(uscc, {}))
            same_row = same_fact(row, facts.get(uscc))
            if same_row and history.same_as(state):
                continue
            before = {e.entitlement_id: e for e in firm.entitlements(policy)}
            after = {e.entitlement_id: e for e in rule_entitlements(history.history(uscc), policy)}
            firm.trigger_event(
                Enterprise.RegisterYearCorrected,
                year=year,
                row=row._asdict() if row else None,
                reason=reason,
                actor=actor,
                source_sha256=source.sha256,
                earned=sorted(after.keys() - before.keys()),
                revoked=sorted(before.keys() - after.keys()),
                **history.fields(),
            )
            firms.append(firm)
            for eid in sorted(after.keys() - before.keys()):
                arrears.append(self._change(firm, after[eid]))
            for eid in sorted(before.keys() - after.keys()):
                change = self._change(firm, before[eid])
                (recovery_due if change.recover_fen else revoked).append(change)
        if not firms:
            return CorrectionResult(
                year, source.sha256, reason, len(rows), True, [], [], [], [], None
            )
        book.trigger_event(
            RegisterBook.YearCorrected,
            year=year,
            sha256=source.sha256,
            rows=len(rows),
            reason=reason,
            counts={
                "firms": len(firms),
                "arrears": len(arrears),
                "revoked": len(revoked),
                "recovery_due": len(recovery_due),
            },
            actor=actor,
            encoding=source.encoding,
        )
        try:
            recordings = self.save(book, *firms)
        except IntegrityError as e:
            raise ConcurrentWriteError(
                f"another writer changed the ledger during the correction of {year}; nothing was "
                f"written: run the same command again ({e})"
            ) from e
        return CorrectionResult(
            year,
            source.sha256,
            reason,
            len(rows),
            False,
            [f.uscc for f in firms],
            arrears,
            revoked,
            recovery_due,
            max(r.notification.id for r in recordings) if recordings else None,
        )

    @staticmethod
    def _change(firm: Enterprise, e: Entitlement) -> AwardChange:
        paid = firm.state.paid_fen(e.entitlement_id)
        return AwardChange(
            e.entitlement_id,
            e.uscc,
            e.kind,
            e.amount_fen,
            e.due_fiscal_year,
            paid,
            paid - firm.state.recovered_fen(e.entitlement_id),
        )

    def _firm_or_new(
        self, uscc: str, row: RegisterRow | None, year: int, actor: str, sha256: str
    ) -> Enterprise:
        try:
            return self.get_enterprise(uscc)
        except NotFoundError:
            assert row is not None  # a firm the ledger never saw is on the corrected file
            firm: Enterprise = Enterprise._create(
                Enterprise.Registered,
                id=enterprise_id(uscc),
                uscc=uscc,
                name=row.name,
                region_code=row.region_code,
                industry_code=row.industry_code,
                size_class=row.size_class,
                year=year,
                actor=actor,
                source_sha256=sha256,
            )
            return firm

    def _validate_correction(
        self, year: int, source: RegisterSource, prior: dict[str, PriorFirm]
    ) -> dict[str, RegisterRow]:
        """Every bad line of a corrected year, or its rows by USCC. A row's first entry year and
        route are the correction's to change where they decide the firm's history (the baseline
        year, the firm's first year); elsewhere they must agree with the ledger, as on import."""
        decisive = {
            u
            for u, p in prior.items()
            if p.baseline_year == year or not p.years or year <= min(p.years)
        }
        checked = {u: p for u, p in prior.items() if u not in decisive}
        self._validate(year, source, checked)
        rows: dict[str, RegisterRow] = {}
        for _line, row in source.records(checked=True):
            assert not isinstance(row, list)  # validated above
            rows[row.uscc] = row
        return rows

    @staticmethod
    def _changed_firms(
        year: int,
        baseline: int,
        rows: dict[str, RegisterRow],
        prior: dict[str, PriorFirm],
        facts: dict[str, YearFact],
    ) -> set[str]:
        """Firms the correction may change: on one of the two versions of the year only, with a
        different row, or with a different first entry where the year is the firm's first."""
        changed = set(rows).symmetric_difference(facts)
        for uscc in set(rows) & set(facts):
            row, p = rows[uscc], prior[uscc]
            if not same_fact(row, facts[uscc]):
                changed.add(uscc)
            elif year == baseline:
                route = row.route if row.first_entry_year is not None else None
                if (row.first_entry_year, route) != (p.first_entry_year, p.route):
                    changed.add(uscc)
            elif year == min(p.years):
                given = row.first_entry_year
                first_entry = given if given is not None and given < year else year
                route = None if first_entry < year else row.route
                if (first_entry, route) != (p.first_entry_year, p.route):
                    changed.add(uscc)
        return changed

    def _chunks(self, events: Iterator[Any]) -> Iterator[list[StoredEvent]]:
        chunk: list[StoredEvent] = []
        for event in events:
            chunk.append(self.mapper.to_stored_event(event))
            if len(chunk) >= IMPORT_CHUNK_EVENTS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _check_year_order(book: RegisterBook | None, year: int, baseline: bool) -> None:
        if book is None or not book.years:
            if not baseline:
                raise PreconditionError(
                    f"the ledger has no register yet: the first year imported must be the "
                    f"baseline (import {year} with --baseline)"
                )
            return
        base = book.baseline_year
        if baseline:
            raise PreconditionError(
                f"the baseline is already imported ({base}); import {year} without --baseline"
            )
        last = book.last_year
        assert base is not None and last is not None
        if year < base:
            raise PreconditionError(f"register year {year} is before the baseline year {base}")
        if year - 1 not in book.years:
            raise PreconditionError(
                f"register year {year} needs {year - 1} imported first (the ledger has {base}-{last})"
            )

    @staticmethod
    def _validate(year: int, source: RegisterSource, prior: dict[str, PriorFirm]) -> set[str]:
        """First pass: every bad line, or the set of USCCs on the register."""
        errors: list[RowError] = []
        seen: dict[str, int] = {}
        for line, row in source.records():
            if isinstance(row, list):
                errors.extend(RowError(line, e.field, e.reason) for e in row)
                continue
            if row.uscc in seen:
                errors.append(
                    RowError(line, "uscc", f"{row.uscc} duplicates line {seen[row.uscc]}")
                )
                continue
            seen[row.uscc] = line
            errors.extend(
                RowError(line, e.field, e.reason)
                for e in check_against_ledger(row, prior.get(row.uscc))
            )
        if errors:
            raise ImportRejectedError(source.name, errors)
        if not seen:
            raise ImportRejectedError(
                source.name, [RowError(1, "file", f"no rows: a register of {year} cannot be empty")]
            )
        return set(seen)

    def record_payment(
        self,
        entitlement_id: str,
        ref: str,
        amount_fen: int,
        paid_on: date,
        *,
        actor: str,
        today: date,
        save: Callable[[list[Any]], None] | None = None,
    ) -> PaymentResult:
        """Record a treasury payment against an entitlement.

        Args:
            entitlement_id: USCC/KIND/DECIDED_YEAR.
            ref: the treasury's voucher number, unique ledger-wide.
            amount_fen: the amount paid, in fen; instalments allowed, never above the entitlement.
            paid_on: the payment date, not after `today`.
            actor: who records it.
            today: today in Asia/Shanghai, decided by the caller.
            save: how the firm and the ref are saved together (default: in a transaction of
                their own; a server commits concurrent payments together). It raises
                IntegrityError when another write got there first, and the payment is then
                looked at again.

        Raises:
            RefusedError: non-positive amount, future date, overpayment, ref reused with other
                details; NotFoundError for an unknown entitlement.
        """
        _check_money(amount_fen, paid_on, today, ref, "paid_on")
        for _attempt in range(20):
            # The firm first, then the ref: a concurrent payment with the same ref that commits
            # in between is then seen in one or the other, never mistaken for an overpayment.
            firm, entitlement = self.get_entitlement(entitlement_id)
            claimed = self.get_payment_ref(ref)
            if claimed is not None:
                self._refuse_other_details(claimed, entitlement_id, ref, amount_fen, paid_on)
                # Read again: the payment may have committed after the firm was read above.
                firm, entitlement = self.get_entitlement(entitlement_id)
                paid = firm.state.paid_fen(entitlement_id)
                return PaymentResult(
                    entitlement_id, ref, amount_fen, paid_on, True, paid, entitlement.amount_fen
                )
            paid = firm.state.paid_fen(entitlement.entitlement_id)
            if paid + amount_fen > entitlement.amount_fen:
                raise PreconditionError(
                    f"overpayment: {entitlement_id} is {entitlement.amount_fen} fen, "
                    f"{paid} fen already paid, so at most {entitlement.amount_fen - paid} fen can be "
                    f"paid, not {amount_fen}"
                )
            firm.record_payment(entitlement, ref, amount_fen, paid_on, actor)
            new_ref = self._claim(
                payment_ref_id(ref), ref, firm.uscc, entitlement_id, amount_fen, paid_on, actor
            )
            try:
                (save or self._save_together)([firm, new_ref])
            except IntegrityError:
                continue  # a concurrent payment of this firm or this ref: look again
            return PaymentResult(
                entitlement_id,
                ref,
                amount_fen,
                paid_on,
                False,
                paid + amount_fen,
                entitlement.amount_fen,
            )
        raise ConcurrentWriteError(
            f"payment {ref} kept conflicting with concurrent writes; try again"
        )

    def record_recovery(
        self,
        entitlement_id: str,
        ref: str,
        amount_fen: int,
        received_on: date,
        *,
        actor: str,
        today: date,
        save: Callable[[list[Any]], None] | None = None,
    ) -> PaymentResult:
        """Record money paid against a revoked entitlement coming back (追回).

        Same replay and refusal rules as a payment (and the same `save`): a ref is used once, a
        replay with the same details changes nothing, and never more comes back than is due back.
        """
        _check_money(amount_fen, received_on, today, ref, "received_on")
        uscc, _kind, _year = self._parse_id(entitlement_id)
        for _attempt in range(20):
            firm = self.get_enterprise(uscc)
            claimed = self.get_payment_ref(ref, recovery=True)
            if claimed is not None:
                self._refuse_other_details(claimed, entitlement_id, ref, amount_fen, received_on)
                again = self.get_enterprise(uscc).state  # the recovery may be newer than `firm`
                return PaymentResult(
                    entitlement_id,
                    ref,
                    amount_fen,
                    received_on,
                    True,
                    again.recovered_fen(entitlement_id),
                    again.paid_fen(entitlement_id),
                )
            if entitlement_id not in firm.state.revoked:
                raise PreconditionError(
                    f"{entitlement_id} is not a revoked entitlement: only money paid against an "
                    "award a correction took away is recovered"
                )
            paid = firm.state.paid_fen(entitlement_id)
            back = firm.state.recovered_fen(entitlement_id)
            if back + amount_fen > paid:
                raise PreconditionError(
                    f"over-recovery: {paid} fen was paid against {entitlement_id} and {back} fen "
                    f"already came back, so at most {paid - back} fen can be recovered, not "
                    f"{amount_fen}"
                )
            firm.record_recovery(entitlement_id, ref, amount_fen, received_on, actor)
            new_ref = self._claim(
                recovery_ref_id(ref), ref, firm.uscc, entitlement_id, amount_fen, received_on, actor
            )
            try:
                (save or self._save_together)([firm, new_ref])
            except IntegrityError:
                continue  # a concurrent write of this firm or this ref: look again
            return PaymentResult(
                entitlement_id, ref, amount_fen, received_on, False, back + amount_fen, paid
            )
        raise ConcurrentWriteError(
            f"recovery {ref} kept conflicting with concurrent writes; try again"
        )

    def get_entitlement(self, entitlement_id: str) -> tuple[Enterprise, Entitlement]:
        """The firm and the entitlement the rules give it under this id; NotFoundError if none."""
        uscc, _kind, _year = self._parse_id(entitlement_id)
        try:
            firm = self.get_enterprise(uscc)
        except NotFoundError:
            raise NotFoundError(
                f"unknown entitlement {entitlement_id}: no enterprise {uscc} in the ledger"
            ) from None
        policy = self.get_policy()
        for entitlement in firm.entitlements(policy):
            if entitlement.entitlement_id == entitlement_id:
                return firm, entitlement
        if entitlement_id in firm.state.revoked:
            raise PreconditionError(
                f"{entitlement_id} was revoked by the correction in the file with sha256 "
                f"{firm.state.revoked[entitlement_id]}: nothing more is paid against it (see "
                "`subsidy-ledger explain`)"
            )
        raise NotFoundError(
            f"unknown entitlement {entitlement_id}: the ledger owes {firm.uscc} no such award "
            "(see `subsidy-ledger enterprise` for what it is entitled to)"
        )

    def _save_together(self, aggregates: list[Any]) -> None:
        self.save(*aggregates)

    @staticmethod
    def _claim(
        ref_id: uuid.UUID,
        ref: str,
        uscc: str,
        entitlement_id: str,
        amount_fen: int,
        day: date,
        actor: str,
    ) -> PaymentRef:
        claimed: PaymentRef = PaymentRef._create(
            PaymentRef.Claimed,
            id=ref_id,
            ref=ref,
            uscc=uscc,
            entitlement_id=entitlement_id,
            amount_fen=amount_fen,
            paid_on=day,
            actor=actor,
        )
        return claimed

    @staticmethod
    def _parse_id(entitlement_id: str) -> tuple[str, str, int]:
        try:
            return parse_entitlement_id(entitlement_id)
        except ValueError as e:
            raise NotFoundError(f"unknown entitlement: {e}") from None

    @staticmethod
    def _refuse_other_details(
        claimed: PaymentRef, entitlement_id: str, ref: str, amount_fen: int, day: date
    ) -> None:
        """A ref already used: a replay only if it records the same entitlement, amount and day."""
        if (claimed.entitlement_id, claimed.amount_fen, claimed.paid_on) != (
            entitlement_id,
            amount_fen,
            day,
        ):
            raise ConflictError(
                f"ref {ref} already records {claimed.amount_fen} fen on {claimed.paid_on} against "
                f"{claimed.entitlement_id}; a voucher number is used once"
            )
