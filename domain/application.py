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

from domain.enterprise import (
    REGISTER_BOOK_ID,
    Enterprise,
    PaymentRef,
    RegisterBook,
    enterprise_id,
    payment_ref_id,
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


class LedgerError(Exception):
    """Base of the ledger's refusals: bad input or a command the rules refuse. Nothing was written."""


class RefusedError(LedgerError):
    """A command the ledger refuses (exit 2)."""


class NotFoundError(RefusedError):
    """An unknown enterprise, entitlement or ref."""


class ImportRejectedError(RefusedError):
    """A register file with bad rows: every bad line is listed, nothing was written."""

    def __init__(self, source: str, errors: Sequence[RowError]):
        self.source = source
        self.errors = list(errors)
        super().__init__(f"{source}: {len(self.errors)} bad line(s); nothing was imported")

    def lines(self) -> list[str]:
        return [e.format(self.source) for e in self.errors]


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

    def get_payment_ref(self, ref: str) -> PaymentRef | None:
        try:
            claimed: PaymentRef = self.repository.get(payment_ref_id(ref))
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
                raise RefusedError(
                    f"the ledger has no register yet: the first year imported must be the "
                    f"baseline (import {year} with --baseline)"
                )
            return
        base = book.baseline_year
        if baseline:
            raise RefusedError(
                f"the baseline is already imported ({base}); import {year} without --baseline"
            )
        last = book.last_year
        assert base is not None and last is not None
        if year < base:
            raise RefusedError(f"register year {year} is before the baseline year {base}")
        if year - 1 not in book.years:
            raise RefusedError(
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
    ) -> PaymentResult:
        """Record a treasury payment against an entitlement.

        Args:
            entitlement_id: USCC/KIND/DECIDED_YEAR.
            ref: the treasury's voucher number, unique ledger-wide.
            amount_fen: the amount paid, in fen; instalments allowed, never above the entitlement.
            paid_on: the payment date, not after `today`.
            actor: who records it.
            today: today in Asia/Shanghai, decided by the caller.

        Raises:
            RefusedError: non-positive amount, future date, overpayment, ref reused with other
                details; NotFoundError for an unknown entitlement.
        """
        if type(amount_fen) is not int or amount_fen <= 0:
            raise RefusedError(
                f"amount_fen must be a positive whole number of fen, got {amount_fen!r}"
            )
        if paid_on > today:
            raise RefusedError(f"paid_on {paid_on} is after today ({today}, Asia/Shanghai)")
        if not ref or ref != ref.strip():
            raise RefusedError(
                "ref must be the treasury voucher number, without surrounding spaces"
            )
        for _attempt in range(20):
            # The firm first, then the ref: a concurrent payment with the same ref that commits
            # in between is then seen in one or the other, never mistaken for an overpayment.
            firm, entitlement = self.get_entitlement(entitlement_id)
            claimed = self.get_payment_ref(ref)
            if claimed is not None:
                return self._replay(claimed, entitlement_id, ref, amount_fen, paid_on)
            paid = firm.state.paid_fen(entitlement.entitlement_id)
            if paid + amount_fen > entitlement.amount_fen:
                raise RefusedError(
                    f"overpayment: {entitlement_id} is {entitlement.amount_fen} fen, "
                    f"{paid} fen already paid, so at most {entitlement.amount_fen - paid} fen can be "
                    f"paid, not {amount_fen}"
                )
            firm.record_payment(entitlement, ref, amount_fen, paid_on, actor)
            new_ref = PaymentRef._create(
                PaymentRef.Claimed,
                id=payment_ref_id(ref),
                ref=ref,
                uscc=firm.uscc,
                entitlement_id=entitlement_id,
                amount_fen=amount_fen,
                paid_on=paid_on,
                actor=actor,
            )
            try:
                self.save(firm, new_ref)
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

    def get_entitlement(self, entitlement_id: str) -> tuple[Enterprise, Entitlement]:
        """The firm and the entitlement the rules give it under this id; NotFoundError if none."""
        try:
            uscc, _kind, _year = parse_entitlement_id(entitlement_id)
        except ValueError as e:
            raise NotFoundError(f"unknown entitlement: {e}") from None
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
        raise NotFoundError(
            f"unknown entitlement {entitlement_id}: the ledger owes {firm.uscc} no such award "
            "(see `subsidy-ledger enterprise` for what it is entitled to)"
        )

    def _replay(
        self, claimed: PaymentRef, entitlement_id: str, ref: str, amount_fen: int, paid_on: date
    ) -> PaymentResult:
        same = (claimed.entitlement_id, claimed.amount_fen, claimed.paid_on) == (
            entitlement_id,
            amount_fen,
            paid_on,
        )
        if not same:
            raise RefusedError(
                f"ref {ref} already records {claimed.amount_fen} fen on {claimed.paid_on} against "
                f"{claimed.entitlement_id}; a voucher number is used once"
            )
        firm, entitlement = self.get_entitlement(entitlement_id)
        return PaymentResult(
            entitlement_id,
            ref,
            amount_fen,
            paid_on,
            True,
            firm.state.paid_fen(entitlement_id),
            entitlement.amount_fen,
        )
