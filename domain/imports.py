"""The ledger's register commands: a year imported (diffed against the year before) or corrected
(the history re-derived), all or nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.bulk import paused_gc
from domain.command_results import AwardChange, CorrectionResult, ImportResult
from domain.correction import changed_firms, restate, same_fact, validate_correction
from domain.enterprise import Enterprise, enterprise_id
from domain.errors import ConcurrentWriteError, InvalidInputError, NotFoundError, RefusedError
from domain.ledger_base import LedgerBase, award_change
from domain.policy import Policy, load_policy
from domain.ports import EventStreamRecorder
from domain.progress import stage
from domain.register import (
    RegisterDiff,
    RegisterRow,
    RegisterSource,
    check_year_order,
    validate_year,
)
from domain.register_book import REGISTER_BOOK_ID, RegisterBook
from domain.rules import entitlements as rule_entitlements
from domain.text import checked_text

IMPORT_CHUNK_EVENTS = 1000
"""Events encoded and handed to the recorder at a time: memory stays bounded while one
transaction takes the whole year."""


def check_import_options(
    *, baseline: bool, policy: bool, correction: bool, reason: str | None
) -> None:
    """What an import's options must be: a reason only with a correction, and a correction (which
    re-issues an imported year) with a reason, never as the baseline, adopting no policy. Checked
    before anything is read, so that a wrong option is said first."""
    if reason is not None and reason.strip():
        checked_text(reason, "reason")
    if not correction:
        if reason is not None:
            raise InvalidInputError(
                "given without a correction: a plain import takes no reason", field="reason"
            )
        return
    if baseline or policy:
        raise InvalidInputError(
            "a correction re-issues an imported year: it is never the baseline and adopts no "
            "policy",
            field="baseline" if baseline else "policy",
        )
    if not (reason or "").strip():
        raise InvalidInputError(
            "say why the bureau re-issued the year (a correction needs a reason)", field="reason"
        )


class RegisterCommands(LedgerBase):
    """Imports and corrections of register years."""

    def import_register(
        self,
        year: int,
        source: RegisterSource,
        *,
        actor: str,
        baseline: bool = False,
        policy: Policy | None = None,
        correction: bool = False,
        reason: str | None = None,
    ) -> ImportResult | CorrectionResult:
        """Take the above-scale register of `year`, all or nothing: imported, or (`correction`)
        the bureau's re-issue of an imported year, appended as corrections.

        Args:
            year: the register year.
            source: its rows, validated as they are read, readable twice.
            actor: who imports (recorded on every event).
            baseline: the first year imported; its firms were already above scale.
            policy: the policy to adopt with the baseline (default: the packaged 38号 policy).
            correction: re-issue an imported year (needs `reason`; no baseline, no policy).
            reason: why the bureau re-issued the year.

        Raises:
            ImportRejectedError: bad rows, each listed; nothing written.
            RefusedError: a year out of order, a second baseline, a different file for a year,
                a reason without a correction or a correction without one.
        """
        checked_text(actor, "actor")
        check_import_options(
            baseline=baseline, policy=policy is not None, correction=correction, reason=reason
        )
        result: ImportResult | CorrectionResult
        if not correction:
            result = self._import(year, source, baseline=baseline, actor=actor, policy=policy)
        else:
            result = self._correct(year, source, reason=cast(str, reason), actor=actor)
        # Once what the import held (every prior firm, the diff) is let go: the catch-up's batch
        # then takes its place in memory instead of adding to it.
        return result if result.replay else self.caught_up(result)

    def _import(
        self,
        year: int,
        source: RegisterSource,
        *,
        baseline: bool,
        actor: str,
        policy: Policy | None,
    ) -> ImportResult:
        book = self.get_book()
        done = book.years.get(year) if book else None
        if done is not None:
            if done.sha256 == source.sha256 and done.baseline == baseline:
                return ImportResult(year, baseline, done.sha256, done.rows, done.counts, True, None)
            if done.sha256 == source.sha256:
                raise RefusedError(
                    f"register year {year} was imported from this file "
                    f"{'as' if done.baseline else 'not as'} the baseline; repeat the import "
                    f"{'as' if done.baseline else 'not as'} the baseline to confirm it",
                    field="baseline",
                )
            raise RefusedError(
                f"register year {year} was already imported from a different file "
                f"(sha256 {done.sha256}); corrections of an imported year are not accepted by a "
                "plain import"
            )
        check_year_order(
            book.years if book else {}, book.baseline_year if book else None, year, baseline
        )
        adopted = {v.content_hash for v in book.policy_versions.values()} if book else set()
        if policy is not None and adopted and policy.content_hash not in adopted:
            raise RefusedError(
                f"policy {policy.id} ({policy.content_hash[:12]}) is not a version this ledger "
                "adopted: an import adopts a version only with the baseline; adopt a later "
                "version with `policy adopt`",
                field="policy",
            )
        with paused_gc():
            read_at = self.catch_up()
            prior = self._register().prior_firms()
            present = validate_year(year, source, prior)
        diff = RegisterDiff(year, baseline, actor, source.sha256, prior)

        def carry_on(moved: dict[uuid.UUID, int]) -> None:
            """Under the log's lock, before the first event is written: payments recorded while
            the year was being checked moved their firms on, and the diff carries on from their
            versions; another import or correction (the register book moved) is a conflict."""
            if REGISTER_BOOK_ID in moved:
                raise ConcurrentWriteError(
                    f"another import or correction was committed during the import of {year}; "
                    "nothing was imported: run the same command again"
                )
            diff.moved = moved

        if book is None:
            book = RegisterBook._create(RegisterBook.Opened, id=REGISTER_BOOK_ID, actor=actor)
        if not book.policy_versions:
            book.adopt_policy(policy or load_policy(), actor)
        opening = list(book.collect_events())

        def events() -> Iterator[Any]:
            yield from opening
            rows = 0
            with stage(f"write register {year}", total=len(present)) as bar:
                for _line, row in source.records(checked=True):
                    assert not isinstance(row, list)  # validated in the first pass
                    rows += 1
                    bar.advance()
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

        try:
            with paused_gc():
                position = self._append_stream(events(), since=read_at, under_lock=carry_on)
        except IntegrityError as e:
            raise ConcurrentWriteError(
                f"another writer changed the ledger during the import of {year}; nothing was "
                f"imported: run the same command again ({e})"
            ) from e
        return ImportResult(
            year, baseline, source.sha256, len(present), diff.counts.as_dict(), False, position
        )

    def _append_stream(
        self,
        events: Iterator[Any],
        *,
        since: int = 0,
        under_lock: Callable[[dict[uuid.UUID, int]], None] | None = None,
    ) -> int | None:
        """Append a long stream of events in one transaction; the last position written. A
        recorder without streams (the library's in-memory store, one writer: nothing moves
        meanwhile) takes them in one insert."""
        stream = getattr(self.recorder, "insert_event_stream", None)
        chunks = self._chunks(events)
        if stream is not None:
            return cast(EventStreamRecorder, self.recorder).insert_event_stream(
                chunks, since=since, under_lock=under_lock
            )
        ids = self.recorder.insert_events([e for chunk in chunks for e in chunk])
        return max(ids) if ids else None

    def _chunks(self, events: Iterator[Any]) -> Iterator[list[StoredEvent]]:
        chunk: list[StoredEvent] = []
        for event in events:
            chunk.append(self.mapper.to_stored_event(event))
            if len(chunk) >= IMPORT_CHUNK_EVENTS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _correct(
        self, year: int, source: RegisterSource, *, reason: str, actor: str
    ) -> CorrectionResult:
        """Appends, for every firm whose row or history changes, one `RegisterYearCorrected` with
        the history re-derived (later years included), and the book's `YearCorrected`; never edits
        or deletes. Returns the awards that changed: arrears, revoked, recovery due."""
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
            self.catch_up()
            known = self._register()
            prior = known.prior_firms()
            rows = validate_correction(year, source, prior)
            facts = known.year_facts(year)
        candidates = sorted(changed_firms(year, baseline, rows, prior, facts))
        sizes = known.firm_sizes(candidates)
        policies = self.get_policies()
        firms: list[Enterprise] = []
        arrears: list[AwardChange] = []
        revoked: list[AwardChange] = []
        recovery_due: list[AwardChange] = []
        for uscc in candidates:
            row = rows.get(uscc)
            firm = self._firm_or_new(uscc, row, year, actor, source.sha256)
            state = firm.state if uscc in prior else None
            history = restate(state, year, row, book.years, baseline, sizes.get(uscc, {}))
            if same_fact(row, facts.get(uscc)) and history.same_as(state):
                continue
            before = {e.entitlement_id: e for e in firm.entitlements(policies)}
            after = {
                e.entitlement_id: e
                for e in rule_entitlements(history.history(uscc, state, (year, row)), policies)
            }
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
                arrears.append(award_change(firm, after[eid], earned=True))
            for eid in sorted(before.keys() - after.keys()):
                change = award_change(firm, before[eid], earned=False)
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
        recordings = self.save_or_conflict(f"during the correction of {year}", book, *firms)
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
