"""The ledger as the CLI (and later the gRPC server) uses it: the application, its views, and
answers that are always caught up with the log before they are given."""

from __future__ import annotations

import getpass
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError, InternalError, ProgrammingError

from adapters.chain import Anchor, Verification
from adapters.group_commit import GroupCommit
from adapters.persistence import (
    Commit,
    DatabaseSettings,
    LedgerRecorder,
    TrailEntry,
    database_settings,
)
from adapters.register_csv import CsvRegister
from domain.application import (
    CorrectionResult,
    ImportResult,
    InvalidInputError,
    Ledger,
    NotFoundError,
    PaymentResult,
    RefusedError,
)
from domain.codes import divisions
from domain.enterprise import (
    IDENTITY_EVENTS,
    REGISTER_CHANGES,
    REGISTER_EVENTS,
    Enterprise,
    FirmState,
    enterprise_id,
)
from domain.policy import Policy
from domain.reconciliation import RECONCILIATION_BOOK_ID, ReconciliationBook
from domain.rules import Entitlement, award_status, parse_entitlement_id
from domain.rules import entitlements as rule_entitlements
from domain.rules import windows as rule_windows
from projections import queries
from projections.views import LedgerViews, PostgresLedgerViews, SQLiteLedgerViews

SHANGHAI = ZoneInfo("Asia/Shanghai")
REGISTER_FACTS = {e.__name__ for e in REGISTER_EVENTS}


def valid_from(event: Any) -> date:
    """Valid time: a register fact of year Y holds from 1 January of Y (a correction of Y too),
    a payment from its date, a recovery from the day the money came back."""
    if isinstance(event, Enterprise.PaymentRecorded):
        paid_on: date = event.paid_on
        return paid_on
    if isinstance(event, Enterprise.RecoveryRecorded):
        received_on: date = event.received_on
        return received_on
    return date(event.year, 1, 1)


@dataclass
class FirmStory:
    """A firm's events up to a commit, folded, with what the rules gave it along the way."""

    state: FirmState
    policy: Policy
    entries: list[TrailEntry]
    events: list[Any]
    ever: dict[str, Entitlement] = field(default_factory=dict)
    """Every entitlement the firm was ever owed, as last computed."""
    revoked_by: dict[str, TrailEntry] = field(default_factory=dict)
    """Revoked entitlements and the correction that revoked each."""


def _money_row(t: dict[str, Any]) -> dict[str, Any]:
    ref, day = (
        ("payment_ref", "paid_on")
        if t["type"] == "PaymentRecorded"
        else ("recovery_ref", "received_on")
    )
    return {k: t[k] for k in ("position", "recorded_at", "actor")} | {
        k: t["payload"][k] for k in (ref, "amount_fen", day)
    }


def today_in_shanghai() -> date:
    """'Today' for the rules: decided here, at the edge, in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


@dataclass(frozen=True)
class Point:
    """Where a register-wide answer stands: known at a log position, valid on a day."""

    at: queries.At
    recorded_at: datetime | None
    """When the database committed that position (None: nothing committed yet)."""

    def header(self) -> dict[str, Any]:
        assert self.at.day is not None and self.at.position is not None
        return {
            "as_of": self.at.day.isoformat(),
            "known_at": {
                "position": self.at.position,
                "recorded_at": self.recorded_at.astimezone(UTC).isoformat()
                if self.recorded_at
                else None,
            },
        }


class LedgerService:
    """One open ledger: the log, the views over it, and the commands and queries on both."""

    def __init__(
        self, url: str | None = None, *, actor: str | None = None, pool_size: int | None = None
    ):
        self.settings: DatabaseSettings = database_settings(url, pool_size=pool_size)
        self.actor = actor or default_actor()
        views_class = SQLiteLedgerViews if self.settings.kind == "sqlite" else PostgresLedgerViews
        for attempt in range(5):
            app: Ledger | None = None
            try:
                app = Ledger(env=self.settings.env)
                # The library builds the views as a tracking recorder on the log's own datastore.
                views = cast(LedgerViews, app.factory.tracking_recorder(views_class))
                break
            except (InternalError, IntegrityError, ProgrammingError):
                # Processes creating a new database's tables at once collide in PostgreSQL's
                # catalogue ("tuple concurrently updated"); the tables exist after one try.
                if app is not None:
                    app.close()
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        assert app is not None
        self.app: Ledger = app
        self.views: LedgerViews = views
        self.group: GroupCommit | None = None
        """Set by a server: concurrent payments are then committed together."""

    def close(self) -> None:
        if self.group is not None:
            self.group.close()
        self.app.close()

    def __enter__(self) -> LedgerService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Commands ---------------------------------------------------------------------------------

    def catch_up(self, progress: Any = None) -> int:
        return self.views.catch_up(self.app, progress=progress)

    def import_register(
        self,
        path: str | Path,
        year: int,
        *,
        baseline: bool = False,
        encoding: str = "utf-8",
        policy: Policy | None = None,
    ) -> ImportResult:
        source = CsvRegister(path, year, encoding)

        def load_prior() -> dict[str, Any]:
            self.catch_up()
            return self.views.prior_firms()

        result = self.app.import_register(
            year, source, baseline=baseline, actor=self.actor, load_prior=load_prior, policy=policy
        )
        self.catch_up()
        return result

    def correct_register(
        self, path: str | Path, year: int, *, reason: str, encoding: str = "utf-8"
    ) -> CorrectionResult:
        """The bureau's re-issue of an imported year: appended as corrections, never edits."""
        source = CsvRegister(path, year, encoding)

        def known() -> LedgerViews:
            self.catch_up()
            return self.views

        result = self.app.correct_register(
            year, source, reason=reason, actor=self.actor, known=known
        )
        self.catch_up()
        return result

    def record_recovery(
        self, entitlement_id: str, ref: str, amount_fen: int, received_on: date
    ) -> PaymentResult:
        return self.app.record_recovery(
            entitlement_id,
            ref,
            amount_fen,
            received_on,
            actor=self.actor,
            today=today_in_shanghai(),
            save=self.group.save if self.group else None,
        )

    def record_payment(
        self, entitlement_id: str, ref: str, amount_fen: int, paid_on: date
    ) -> PaymentResult:
        # Queries catch the views up before they answer, so the payment needs no catch-up here.
        return self.app.record_payment(
            entitlement_id,
            ref,
            amount_fen,
            paid_on,
            actor=self.actor,
            today=today_in_shanghai(),
            save=self.group.save if self.group else None,
        )

    def rebuild_projections(self, progress: Any = None) -> int:
        return self.views.rebuild(self.app, progress=progress)

    # Queries ----------------------------------------------------------------------------------

    def _read(self) -> Any:
        self.catch_up()
        return self.views.read()

    def point(self, known_at: str | None = None, as_of: date | None = None) -> Point:
        """The bitemporal point a query answers at: the log commit `known_at` names (default: the
        head, once the views are caught up) and the day `as_of` (default: today, Asia/Shanghai)."""
        head = self.catch_up()
        commit = self.commit_at(known_at) if known_at is not None else None
        if known_at is None:
            commit = cast(LedgerRecorder, self.app.recorder).commit_at(position=head)
        day = as_of or today_in_shanghai()
        if commit is None:
            return Point(queries.At(0, day), None)
        return Point(queries.At(commit.position, day), commit.recorded_at)

    def awards(self, *, at: Point | None = None, **filters: Any) -> list[dict[str, Any]]:
        at = at or self.point()
        with self.views.read() as tx:
            return queries.awards(tx, at=at.at, **filters)

    def totals(self, *, at: Point | None = None, **options: Any) -> list[dict[str, Any]]:
        at = at or self.point()
        with self.views.read() as tx:
            return queries.totals(tx, at=at.at, **options)

    def windows(self, *, at: Point | None = None, **filters: Any) -> list[dict[str, Any]]:
        at = at or self.point()
        with self.views.read() as tx:
            return queries.windows(tx, at=at.at, **filters)

    def register_sizes(self, *, at: Point | None = None) -> list[dict[str, Any]]:
        at = at or self.point()
        with self.views.read() as tx:
            return queries.register_sizes(tx, at=at.at)

    def register(self, year: int, *, at: Point | None = None) -> list[dict[str, Any]]:
        """Who was on the register of `year`, with the kind of their presence."""
        at = at or self.point()
        with self.views.read() as tx:
            return queries.register(tx, year, at=at.at)

    def imported_years(self) -> list[dict[str, Any]]:
        with self._read() as tx:
            return queries.imported_years(tx)

    def audit_trail(self, uscc: str) -> list[dict[str, Any]]:
        """Every event of a firm in log order: position, commit time, actor, type, valid time and
        payload (dates as ISO strings)."""
        firm = self.app.get_enterprise(uscc)  # NotFoundError for a firm the ledger never saw
        recorder = cast(LedgerRecorder, self.app.recorder)
        entries = recorder.select_trail(firm.id)
        return self._trail_rows(
            entries, [self.app.mapper.to_domain_event(e.stored) for e in entries]
        )

    def reconciliations(self) -> list[dict[str, Any]]:
        """Every reconciliation run recorded in the log, in log order: where its record is and
        when it was committed, and what it recorded (the report's date, position and anchor, the
        treasury file's hash, the counts, the exit status and the reports' hashes)."""
        recorder = cast(LedgerRecorder, self.app.recorder)
        runs = []
        for entry in recorder.select_trail(RECONCILIATION_BOOK_ID):
            event = self.app.mapper.to_domain_event(entry.stored)
            if not isinstance(event, ReconciliationBook.RunRecorded):
                continue
            runs.append(
                {
                    "position": entry.position,
                    "recorded_at": entry.recorded_at.astimezone(UTC).isoformat()
                    if entry.recorded_at
                    else None,
                    "actor": event.actor,
                    "date": event.run_date.isoformat(),
                    "log_position": event.position,
                    "anchor": event.anchor,
                    "treasury_sha256": event.treasury_sha256,
                    "treasury_encoding": event.treasury_encoding,
                    "treasury_rows": event.treasury_rows,
                    "options": event.options,
                    "exit_status": event.exit_status,
                    "findings": event.findings,
                    "counts": event.counts,
                    "report_sha256": event.report_sha256,
                    "html_sha256": event.html_sha256,
                }
            )
        return runs

    @staticmethod
    def _trail_rows(entries: list[TrailEntry], events: list[Any]) -> list[dict[str, Any]]:
        trail = []
        for entry, event in zip(entries, events, strict=True):
            fields = {
                k: v
                for k, v in vars(event).items()
                if k not in ("originator_id", "originator_version", "timestamp", "actor")
            }
            trail.append(
                {
                    "position": entry.position,
                    "recorded_at": entry.recorded_at.astimezone(UTC).isoformat()
                    if entry.recorded_at
                    else None,
                    "version": event.originator_version,
                    "type": type(event).__name__,
                    "actor": getattr(event, "actor", None),
                    "valid_from": valid_from(event).isoformat(),
                    "client_timestamp": event.timestamp.isoformat(),
                    "payload": {
                        k: v.isoformat() if isinstance(v, date) else v for k, v in fields.items()
                    },
                }
            )
        return trail

    def _story(self, uscc: str, commit: Commit | None) -> FirmStory:
        """A firm's events up to a commit, folded one by one, keeping every entitlement the
        rules ever gave it and the event that last changed each."""
        recorder = cast(LedgerRecorder, self.app.recorder)
        entries = [
            e
            for e in recorder.select_trail(enterprise_id(uscc))
            if commit is not None and e.position <= commit.position
        ]
        if not entries:
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger")
        policy = self._policy_at(commit)
        events: list[Any] = [self.app.mapper.to_domain_event(e.stored) for e in entries]
        s = FirmState.registered(events[0])
        story = FirmStory(s, policy, entries, events)
        # What the rules gave along the way matters only where a correction took something away.
        corrected = any(isinstance(e, Enterprise.RegisterYearCorrected) for e in events)
        for entry, event in zip(entries, events, strict=True):
            s.apply(event)
            if corrected and isinstance(event, REGISTER_CHANGES):
                for e in rule_entitlements(s.history(), policy):
                    story.ever[e.entitlement_id] = e
                if isinstance(event, Enterprise.RegisterYearCorrected):
                    for eid in event.revoked:
                        story.revoked_by[eid] = entry
                    for eid in event.earned:
                        story.revoked_by.pop(eid, None)
        if not corrected:
            # Without corrections entitlements only accrue: the current ones are all there were.
            story.ever = {e.entitlement_id: e for e in rule_entitlements(s.history(), policy)}
        return story

    def _policy_at(self, commit: Commit | None) -> Policy:
        """The policy in force at a commit. One policy version applies to all years (the ledger
        refuses to adopt another), and it is adopted with the baseline, before any firm's event:
        so it is the one the log holds. When versions by year arrive, this becomes a lookup of
        the last adoption at or before the commit (the views keep each with its position)."""
        return self.app.get_policy()

    def explain(self, entitlement_id: str) -> dict[str, Any]:
        """Why an entitlement is (or was) owed: the policy and clause, the register facts it
        derives from (with their log positions), the payments and recoveries against it, and for
        a revoked one the correction that took it away."""
        try:
            uscc, _kind, _year = parse_entitlement_id(entitlement_id)
        except ValueError as e:
            raise NotFoundError(f"unknown entitlement: {e}") from None
        story = self._story(uscc, self.commit_at())
        entitlement = story.ever.get(entitlement_id)
        if entitlement is None:
            raise NotFoundError(
                f"unknown entitlement {entitlement_id}: the ledger owes {uscc} no such award "
                "(see `subsidy-ledger enterprise` for what it is entitled to)"
            )
        trail = {t["position"]: t for t in self._trail_rows(story.entries, story.events)}
        basis = set(entitlement.basis_years)
        facts = [
            t
            for t in trail.values()
            if t["type"] in REGISTER_FACTS and t["payload"]["year"] in basis
        ]
        corrections = [
            t
            for t in trail.values()
            if t["type"] == "RegisterYearCorrected" and t["payload"]["year"] in basis
        ]
        money = [
            t
            for t in trail.values()
            if t["type"] in ("PaymentRecorded", "RecoveryRecorded")
            and t["payload"]["entitlement_id"] == entitlement_id
        ]
        s = story.state
        paid, back = s.paid_fen(entitlement_id), s.recovered_fen(entitlement_id)
        revoked_by = story.revoked_by.get(entitlement_id)
        known = {t["payload"]["year"] for t in facts} | {
            y for t in corrections for y in t["payload"]["years"] if y in basis
        }
        policy_hash = story.policy.content_hash
        return {
            "entitlement_id": entitlement.entitlement_id,
            "uscc": uscc,
            "kind": entitlement.kind,
            "clause": entitlement.clause,
            "policy": {"id": entitlement.policy_id, "content_hash": policy_hash},
            "amount_fen": entitlement.amount_fen,
            "decided_year": entitlement.decided_year,
            "due_fiscal_year": entitlement.due_fiscal_year,
            "basis_years": list(entitlement.basis_years),
            # Years before the baseline count as on the register when the baseline gave the first
            # entry year (DOMAIN.md default 5): no event of the ledger records them.
            "assumed_years": sorted(basis - known),
            "derives_from": [
                {k: t[k] for k in ("position", "recorded_at", "type", "actor", "valid_from")}
                | {"year": t["payload"]["year"], "source_sha256": t["payload"]["source_sha256"]}
                for t in facts + corrections
            ],
            "payments": [_money_row(t) for t in money if t["type"] == "PaymentRecorded"],
            "recoveries": [_money_row(t) for t in money if t["type"] == "RecoveryRecorded"],
            "paid_fen": paid,
            "recovered_fen": back,
            "status": award_status(
                paid, entitlement.amount_fen, earned=revoked_by is None, recovered_fen=back
            ),
            "revoked_by": None
            if revoked_by is None
            else {
                "position": revoked_by.position,
                "recorded_at": trail[revoked_by.position]["recorded_at"],
                "year": trail[revoked_by.position]["payload"]["year"],
                "reason": trail[revoked_by.position]["payload"]["reason"],
                "source_sha256": trail[revoked_by.position]["payload"]["source_sha256"],
                "actor": trail[revoked_by.position]["actor"],
            },
        }

    def verify(self, anchor: Anchor | None = None) -> Verification:
        """Recompute the log's hash chain from the stored events and compare it with the stored
        links, stopping at the first break.

        `anchor`: a head kept earlier (outside the database); the recomputed link at its position
        must equal it, which catches events changed before it even if every stored link after
        them was rewritten to match.
        """
        return cast(LedgerRecorder, self.app.recorder).verify_chain(anchor)

    def anchor(self, out: str | Path | None = None) -> tuple[Anchor, datetime]:
        """The stored head of the chain and when it was taken (UTC, this machine's clock).

        `out`: append `POSITION:HASH TAKEN_AT` to this file, the auditors' record outside the
        database. The head is read, not recomputed: an anchor that does not match the events
        shows up at the next `verify --anchor`, and reading it stays instant at any log size.
        """
        head = cast(LedgerRecorder, self.app.recorder).chain_head()
        taken_at = datetime.now(UTC).replace(microsecond=0)
        if out is not None:
            try:
                with open(out, "a", encoding="ascii") as kept:
                    kept.write(f"{head} {taken_at.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
            except OSError as e:
                raise RefusedError(
                    f"--out {out}: cannot append to it ({e.strerror}); give a writable file"
                ) from None
        return head, taken_at

    def commit_at(self, known_at: str | None = None) -> Commit | None:
        """The log commit a `--known-at` names: `@POSITION`, or an RFC 3339 instant with an offset
        (inclusive); the head of the log when None."""
        recorder = cast(LedgerRecorder, self.app.recorder)
        if known_at is None:
            return recorder.commit_at()
        if known_at.startswith("@"):
            if not known_at[1:].isdigit():
                raise InvalidInputError(
                    f"--known-at {known_at!r}: a position is @ and a whole number"
                )
            return recorder.commit_at(position=int(known_at[1:]))
        try:
            instant = datetime.fromisoformat(known_at)
        except ValueError:
            raise InvalidInputError(
                f"--known-at {known_at!r} is not an RFC 3339 instant, e.g. 2024-03-01T09:00:00+08:00"
            ) from None
        if instant.tzinfo is None:
            raise InvalidInputError(
                f"--known-at {known_at!r} has no offset: give one (+08:00 or Z), the ledger does "
                "not guess a time zone"
            )
        return recorder.commit_at(instant=instant)

    def enterprise(
        self, uscc: str, *, as_of: date | None = None, known_at: str | None = None
    ) -> dict[str, Any]:
        """A firm from its own events: identity, register years, entitlements, payments, windows.

        `known_at`: only the events the ledger had committed then (what it answered then);
        `as_of`: only the facts valid on that date (default today in Asia/Shanghai).
        """
        commit = self.commit_at(known_at)
        day = as_of or today_in_shanghai()
        when = f" as of {day}" + (f", known at {known_at}" if known_at else "")
        try:
            story = self._story(uscc, commit)
        except NotFoundError:
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger{when}") from None
        assert commit is not None
        history = story.state
        first_year = min(history.years) if history.years else story.events[0].year
        if first_year > day.year:
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger{when}")
        # Identity and money as valid on the day; the register history as the ledger knows it
        # now (a correction restates the past), cut at the day's year.
        s = FirmState.registered(story.events[0])
        for event in story.events:
            if isinstance(event, IDENTITY_EVENTS) and valid_from(event) <= day:
                s.apply(event)
        policy = story.policy
        division = divisions()[s.region_code]
        entitlements = []
        owed = [
            (e, True)
            for e in rule_entitlements(history.history(), policy)
            if e.decided_year <= day.year
        ] + [
            (story.ever[eid], False)
            for eid in sorted(history.revoked)
            if story.ever[eid].decided_year <= day.year
        ]
        for e, earned in owed:
            paid = sum(
                p.amount_fen
                for p in history.payments.values()
                if p.entitlement_id == e.entitlement_id and p.paid_on <= day
            )
            back = sum(
                r.amount_fen
                for r in history.recoveries.values()
                if r.entitlement_id == e.entitlement_id and r.received_on <= day
            )
            entitlements.append(
                {
                    **{k: v for k, v in asdict(e).items() if k not in ("basis_years", "policy_id")},
                    "policy": e.policy_id,
                    "basis_years": list(e.basis_years),
                    "paid_fen": paid,
                    "recovered_fen": back,
                    "status": award_status(paid, e.amount_fen, earned=earned, recovered_fen=back),
                }
            )
        s.years = {y for y in history.years if y <= day.year}
        s.exit_years = {y for y in history.exit_years if y <= day.year}
        s.re_entry_years = {y for y in history.re_entry_years if y <= day.year}
        s.baseline_year, s.first_entry_year = history.baseline_year, history.first_entry_year
        s.route, s.entry_size_class = history.route, history.entry_size_class
        s.payments = {k: p for k, p in history.payments.items() if p.paid_on <= day}
        s.recoveries = {k: r for k, r in history.recoveries.items() if r.received_on <= day}
        return {
            "as_of": day.isoformat(),
            "known_at": {
                "position": commit.position,
                "recorded_at": commit.recorded_at.astimezone(UTC).isoformat(),
            },
            "uscc": s.uscc,
            "name": s.name,
            "region_code": s.region_code,
            "region_name": division.name,
            "city_code": division.city_code,
            "city_name": divisions()[division.city_code].name,
            "industry_code": s.industry_code,
            "size_class": s.size_class,
            "register_years": sorted(s.years),
            "exit_years": sorted(s.exit_years),
            "re_entry_years": sorted(s.re_entry_years),
            "on_baseline": s.baseline_year is not None,
            "first_entry_year": s.first_entry_year,
            "first_entry_route": s.route,
            "entry_size_class": s.entry_size_class,
            "version": story.events[-1].originator_version,
            "entitlements": entitlements,
            "payments": [
                {
                    "payment_ref": p.ref,
                    "entitlement_id": p.entitlement_id,
                    "amount_fen": p.amount_fen,
                    "paid_on": p.paid_on.isoformat(),
                }
                for p in sorted(s.payments.values(), key=lambda p: (p.paid_on, p.ref))
            ],
            "recoveries": [
                {
                    "recovery_ref": r.ref,
                    "entitlement_id": r.entitlement_id,
                    "amount_fen": r.amount_fen,
                    "received_on": r.received_on.isoformat(),
                }
                for r in sorted(s.recoveries.values(), key=lambda r: (r.received_on, r.ref))
            ],
            "windows": [
                {
                    "window": w.window,
                    "clause": w.clause,
                    "starts_on": w.starts_on.isoformat(),
                    "ends_on": w.ends_on.isoformat(),
                    **(
                        {
                            "closed_on": w.closed_on.isoformat()
                            if w.closed_on and w.closed_on <= day
                            else None
                        }
                        if w.window == "energy"
                        else {"fee_cap_bp": w.fee_cap_bp}
                    ),
                    "size_class": w.size_class,
                }
                for w in rule_windows(history.history(), policy)
                if w.starts_on <= day
            ],
        }
