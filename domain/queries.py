"""The ledger's point-in-time queries: register-wide answers from the views, and one firm's from
its own events, at any `as_of` day and `known_at` position, with typed results."""

from __future__ import annotations

from datetime import date, datetime

from domain.enterprise import enterprise_id
from domain.errors import InvalidInputError, NotFoundError, OutOfScopeError, ReplicaBehindError
from domain.ledger_base import LedgerBase, checked_city, checked_uscc, parse_id
from domain.ports import Commit, TrailEntry
from domain.reconciliation import RECONCILIATION_BOOK_ID, LedgerPayment, ReconciliationBook
from domain.results import (
    AwardRow,
    EnterpriseView,
    Explanation,
    ImportedYearRow,
    Point,
    PolicyVersion,
    PriorityRow,
    ReconciliationRun,
    RegisterEntry,
    RegisterSize,
    TotalRow,
    TrailEvent,
    WindowRow,
)
from domain.rules import AWARD_STATUSES
from domain.rules import priority as rule_priority
from domain.text import checked_text
from domain.trail import FirmStory, enterprise_view, explanation, folded, story, trail_events

MAX_POSITION = 2**63 - 1
"""The largest position a log holds (both stores keep positions as 64-bit integers)."""


class PointInTimeQueries(LedgerBase):
    """What the ledger says at a point: known at a log position, valid on a day."""

    def point(self, known_at: str | None = None, as_of: date | None = None) -> Point:
        """The bitemporal point a query answers at: the log commit `known_at` names (default: the
        head, once the views are caught up) and the day `as_of` (default: today)."""
        head = self.catch_up()
        commit = (
            self.commit_at(known_at)
            if known_at is not None
            else self.store.commit_at(position=head)
        )
        day = as_of or self.today()
        if commit is None:
            return Point(0, None, day)
        if self.replica and commit.position > head:
            raise ReplicaBehindError(commit.position, head)
        return Point(commit.position, commit.recorded_at, day)

    def commit_at(self, known_at: str | None = None) -> Commit | None:
        """The log commit a `known_at` names: `@POSITION`, or an RFC 3339 instant with an offset
        (inclusive); the head of the log when None."""
        if known_at is None:
            return self.store.commit_at()
        if known_at.startswith("@"):
            if not known_at[1:].isdigit():
                raise InvalidInputError(
                    f"{known_at!r}: a position is @ and a whole number", field="known_at"
                )
            position = int(known_at[1:])
            if position > MAX_POSITION:
                raise InvalidInputError(
                    f"{known_at!r}: past any log position (at most @{MAX_POSITION})",
                    field="known_at",
                )
            return self.store.commit_at(position=position)
        try:
            instant = datetime.fromisoformat(known_at)
        except ValueError:
            raise InvalidInputError(
                f"{known_at!r} is not an RFC 3339 instant, e.g. 2024-03-01T09:00:00+08:00",
                field="known_at",
            ) from None
        if instant.tzinfo is None:
            raise InvalidInputError(
                f"{known_at!r} has no offset: give one (+08:00 or Z), the ledger does not guess a "
                "time zone",
                field="known_at",
            )
        return self.store.commit_at(instant=instant)

    def awards(
        self,
        point: Point | None = None,
        *,
        fiscal_year: int | None = None,
        city: str | None = None,
        status: str | None = None,
        held: bool | None = None,
    ) -> list[AwardRow]:
        """One row per entitlement known at the point, filtered by due fiscal year, city, status
        and whether a hold on the firm is in force on the point's day (`held`)."""
        if status is not None and status not in AWARD_STATUSES:
            raise InvalidInputError(
                f"{status!r} is not one of {', '.join(AWARD_STATUSES)}", field="status"
            )
        return self.views.awards(
            point or self.point(),
            fiscal_year=fiscal_year,
            city=checked_city(city),
            status=status,
            held=held,
        )

    def totals(
        self,
        point: Point | None = None,
        *,
        fiscal_year: int | None = None,
        by: str = "kind",
        basis: str = "due",
        city: str | None = None,
    ) -> list[TotalRow]:
        """Fiscal totals by kind or city, on the due or the cash basis."""
        return self.views.totals(
            point or self.point(),
            fiscal_year=fiscal_year,
            by=by,
            basis=basis,
            city=checked_city(city),
        )

    def windows(
        self,
        point: Point | None = None,
        *,
        uscc: str | None = None,
        active_on: date | None = None,
        city: str | None = None,
    ) -> list[WindowRow]:
        """The windows (八)(十一) of first entrants known at the point."""
        return self.views.windows(
            point or self.point(),
            uscc=None if uscc is None else checked_uscc(uscc),
            active_on=active_on,
            city=checked_city(city),
        )

    def register_sizes(self, point: Point | None = None) -> list[RegisterSize]:
        """Register size, first entries and re-entries per register year and city."""
        return self.views.register_sizes(point or self.point())

    def register(self, year: int, point: Point | None = None) -> list[RegisterEntry]:
        """Who was on the register of `year`, with the kind of their presence."""
        return self.views.register(year, point or self.point())

    def imported_years(self) -> list[ImportedYearRow]:
        self.catch_up()
        return self.views.imported_years()

    def payments(self, point: Point | None = None) -> list[LedgerPayment]:
        """Every payment recorded by the point's position, whatever its date, in log order."""
        return self.views.payments(point or self.point())

    def revocations(self, point: Point | None = None) -> dict[str, int]:
        """Entitlements revoked as known at the point, with the position of the correction."""
        return self.views.revocations(point or self.point())

    def priority(self, which: str, on: date, *, city: str | None = None) -> list[PriorityRow]:
        """The first entrants with priority on `on` under (六) (`science`: holding a tech_sme
        designation valid that day) or (七) (`upgrade`), as the ledger knows them now, in USCC
        order; `city`: firms of that city now."""
        if which not in ("science", "upgrade"):
            raise InvalidInputError(f"{which!r}: the lists are science and upgrade", field="list")
        checked_city(city)
        self.catch_up()
        policies = self.get_policies()
        longest = max(v.priority_rule.years for v in policies.versions)
        rows = []
        for s in self.views.first_entrants(on.year - longest + 1, on.year, city):
            found = rule_priority(s.history(), policies, which, on)
            if found is not None:
                first_entry = s.first_entry_year
                assert first_entry is not None  # the rules list first entrants only
                rows.append(
                    PriorityRow(
                        uscc=s.uscc,
                        name=s.name,
                        region_code=s.region_code,
                        city_code=s.city_code,
                        first_entry_year=first_entry,
                        window_from=first_entry,
                        window_to=found.window_to,
                        clause=found.clause,
                        policy_id=found.policy_id,
                        tech_sme_documents=list(found.documents),
                    )
                )
        return rows

    # One firm, from its own events ------------------------------------------------------------

    def enterprise(
        self,
        uscc: str,
        *,
        as_of: date | None = None,
        known_at: str | None = None,
        city: str | None = None,
    ) -> EnterpriseView:
        """A firm from its own events: identity, register years, entitlements, payments, windows.

        `known_at`: only the events the ledger had committed then (what it answered then);
        `as_of`: only the facts valid on that date (default today). `city` (a user scoped to
        it): refused unless the firm belongs to the city (is there now, or was on a register
        there).
        """
        checked_uscc(uscc)
        commit = self.commit_at(known_at)
        day = as_of or self.today()
        when = f" as of {day}" + (f", known at {known_at}" if known_at else "")
        told = self._story(uscc, commit, city, when=when)
        if city is not None and not told.now.belongs_to(city):
            raise OutOfScopeError(f"{uscc} is not a firm of city {city}", field="uscc")
        assert commit is not None
        view = enterprise_view(told, commit, day)
        if view is None:
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger{when}", field="uscc")
        return view

    def explain(self, entitlement_id: str, *, city: str | None = None) -> Explanation:
        """Why an entitlement is (or was) owed: the policy and clause, the register facts it
        derives from (with their log positions), the payments and recoveries against it, and for
        a revoked one the correction that took it away. `city`: refused unless the award belongs
        to the city."""
        uscc, _kind, year = parse_id(entitlement_id)
        told = self._story(uscc, self.commit_at(), city)
        if city is not None and told.now.award_city(year) != city:
            raise OutOfScopeError(
                f"{entitlement_id} is not an award of city {city}", field="entitlement_id"
            )
        return explanation(told, entitlement_id, self.today())

    def audit_trail(self, uscc: str, *, city: str | None = None) -> list[TrailEvent]:
        """Every event of a firm in log order: position, commit time, actor, type, valid time and
        payload. `city`: refused unless the firm belongs to the city."""
        entries = self._trail(checked_uscc(uscc), city)
        events = self.decoded(entries)
        if city is not None and not folded(events).belongs_to(city):
            raise OutOfScopeError(f"{uscc} is not a firm of city {city}", field="uscc")
        return trail_events(entries, events)

    def _trail(self, uscc: str, city: str | None, when: str = "") -> list[TrailEntry]:
        """The firm's events as the log holds them; an unknown firm is refused (to a scoped user
        as another city's firm is: it learns nothing of which firms exist)."""
        entries = self.store.select_trail(enterprise_id(uscc))
        if not entries:
            if city is not None:
                raise OutOfScopeError(f"{uscc} is not a firm of city {city}", field="uscc")
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger{when}", field="uscc")
        return entries

    def _story(
        self, uscc: str, commit: Commit | None, city: str | None, *, when: str = ""
    ) -> FirmStory:
        """The firm's events read once and folded up to the commit."""
        entries = self._trail(uscc, city, when)
        events = self.decoded(entries)
        try:
            return story(uscc, entries, events, commit, self.policies_at(commit))
        except NotFoundError:
            raise NotFoundError(
                f"no enterprise with USCC {uscc} in the ledger{when}", field="uscc"
            ) from None

    def policy_versions(self, known_at: str | None = None) -> list[PolicyVersion]:
        """The policy versions adopted as known at a point (default: now), in log order."""
        commit = self.commit_at(known_at)
        return self._versions(commit)

    def policy_version(self, policy_id: str, known_at: str | None = None) -> PolicyVersion:
        """One adopted version, with its full content, as known at a point."""
        checked_text(policy_id, "id")
        for version in self._versions(self.commit_at(known_at)):
            if version.id == policy_id:
                return version
        raise NotFoundError(
            f"no policy version {policy_id!r} adopted"
            + (f" by {known_at}" if known_at else "")
            + " (see `policy list`)",
            field="id",
        )

    def _versions(self, commit: Commit | None) -> list[PolicyVersion]:
        if commit is None:
            return []
        return [
            PolicyVersion(
                id=policy.id,
                content_hash=event.content_hash,
                title=policy.title,
                issued_on=policy.issued_on,
                applies_from=policy.applies_from,
                position=entry.position,
                recorded_at=entry.recorded_at,
                actor=event.actor,
                reason=event.reason,
                content=policy.model_dump(mode="json"),
            )
            for entry, event, policy in self.adoptions_at(commit)
        ]

    def reconciliations(self) -> list[ReconciliationRun]:
        """Every reconciliation run recorded in the log, in log order."""
        runs = []
        entries = self.store.select_trail(RECONCILIATION_BOOK_ID)
        for entry, event in zip(entries, self.decoded(entries), strict=True):
            if isinstance(event, ReconciliationBook.RunRecorded):
                runs.append(
                    ReconciliationRun(
                        position=entry.position,
                        recorded_at=entry.recorded_at,
                        actor=event.actor,
                        date=event.run_date,
                        log_position=event.position,
                        anchor=event.anchor,
                        treasury_sha256=event.treasury_sha256,
                        treasury_encoding=event.treasury_encoding,
                        treasury_rows=event.treasury_rows,
                        options=event.options,
                        exit_status=event.exit_status,
                        findings=event.findings,
                        counts=event.counts,
                        report_sha256=event.report_sha256,
                        html_sha256=event.html_sha256,
                    )
                )
        return runs
