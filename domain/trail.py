"""One firm read back from its own events: its trail, its story up to a commit, and the answers built
from it (`enterprise` as of a day, `explain` of an entitlement).

Pure functions of the firm's logged events (each with its position and commit time) and the policy:
no I/O, no clock. The application reads the events and decides the point; these fold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from domain.codes import divisions
from domain.enterprise import (
    DESIGNATION_EVENTS,
    IDENTITY_EVENTS,
    REGISTER_CHANGES,
    REGISTER_EVENTS,
    REVOKING_EVENTS,
    Enterprise,
    FirmState,
    Hold,
)
from domain.errors import NotFoundError
from domain.policy import Policies
from domain.ports import Commit, TrailEntry
from domain.results import (
    AppliedBonus,
    DesignationView,
    EnterpriseView,
    EntitlementView,
    Explanation,
    FactRef,
    FirmWindow,
    HoldView,
    KnownAt,
    MoneyMoved,
    PaymentView,
    PolicyRef,
    RecoveryView,
    Revocation,
    TrailEvent,
)
from domain.rules import Entitlement, award_status
from domain.rules import entitlements as rule_entitlements
from domain.rules import windows as rule_windows

_UNSHOWN = frozenset(("originator_id", "originator_version", "timestamp", "actor"))


def valid_from(event: Any) -> date:
    """Valid time: a register fact of year Y holds from 1 January of Y (a correction of Y too),
    a payment from its date, a recovery from the day the money came back."""
    if isinstance(event, Enterprise.PaymentRecorded):
        paid_on: date = event.paid_on
        return paid_on
    if isinstance(event, Enterprise.RecoveryRecorded):
        received_on: date = event.received_on
        return received_on
    if isinstance(event, DESIGNATION_EVENTS):
        # A revocation voids the grant from its start, as if it had never been granted.
        start: date = event.valid_from
        return start
    if isinstance(event, Enterprise.HoldPlaced):
        placed: date = event.valid_from
        return placed
    if isinstance(event, Enterprise.HoldLifted):
        lifted: date = event.lifted_on
        return lifted
    if isinstance(event, Enterprise.AwardsReleased):
        released: date = event.released_on
        return released
    if isinstance(event, Enterprise.SubsidyEvent):
        return event.fact_day()
    if isinstance(event, Enterprise.Identified):
        return event.timestamp.date()
    return date(event.year, 1, 1)


def trail_events(entries: list[TrailEntry], events: list[Any]) -> list[TrailEvent]:
    """Each event with where it is in the log, when it was committed, by whom, valid from when."""
    return [
        TrailEvent(
            position=entry.position,
            recorded_at=entry.recorded_at,
            version=event.originator_version,
            type=type(event).__name__,
            actor=getattr(event, "actor", None),
            valid_from=valid_from(event),
            client_timestamp=event.timestamp,
            payload={k: v for k, v in vars(event).items() if k not in _UNSHOWN},
        )
        for entry, event in zip(entries, events, strict=True)
    ]


@dataclass
class FirmStory:
    """A firm's events up to a commit, folded, with what the rules gave it along the way."""

    state: FirmState
    policies: Policies
    """The policy versions adopted by the commit."""
    entries: list[TrailEntry]
    events: list[Any]
    now: FirmState
    """The firm after all its events, whatever the commit: what a user's city scope is checked on."""
    ever: dict[str, Entitlement] = field(default_factory=dict)
    """Every entitlement the firm was ever owed, as last computed."""
    revoked_by: dict[str, TrailEntry] = field(default_factory=dict)
    """Revoked entitlements and the correction or policy version that revoked each."""


def story(
    uscc: str,
    entries: list[TrailEntry],
    events: list[Any],
    commit: Commit | None,
    policies: Policies,
) -> FirmStory:
    """A firm's events up to a commit, folded one by one, keeping every entitlement the rules ever
    gave it and the event that last changed each. `entries` and `events` are all of the firm's;
    `policies` the versions adopted by the commit."""
    kept = [
        (entry, event)
        for entry, event in zip(entries, events, strict=True)
        if commit is not None and entry.position <= commit.position
    ]
    if not kept:
        raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger", field="uscc")
    s = FirmState.created(kept[0][1])
    told = FirmStory(s, policies, [k[0] for k in kept], [k[1] for k in kept], s)
    # What the rules gave along the way matters only where something was taken away: by a
    # correction, or by a policy version (under the versions adopted before it). Without
    # re-derivations entitlements only accrue: the current ones are all there were.
    rederived = any(isinstance(e, REVOKING_EVENTS) for _, e in kept)
    for entry, event in kept:
        if rederived and isinstance(event, Enterprise.PolicyApplied):
            before = policies.without(event.content_hash)
            for e in rule_entitlements(s.history(), before):
                told.ever[e.entitlement_id] = e
        s.apply(event)
        if rederived and isinstance(event, (*REGISTER_CHANGES, Enterprise.PolicyApplied)):
            for e in rule_entitlements(s.history(), policies):
                told.ever[e.entitlement_id] = e
            if isinstance(event, REVOKING_EVENTS):
                for eid in event.revoked:
                    told.revoked_by[eid] = entry
                for eid in event.earned:
                    told.revoked_by.pop(eid, None)
    # The current ones as they are now (a designation may have changed an amount since).
    told.ever.update((e.entitlement_id, e) for e in rule_entitlements(s.history(), policies))
    if len(kept) < len(events):
        told.now = folded(events)
    return told


def folded(events: list[Any]) -> FirmState:
    """A firm's state after all these events of its (the first its `Registered`)."""
    state = FirmState.created(events[0])
    for event in events:
        state.apply(event)
    return state


def enterprise_view(told: FirmStory, commit: Commit, day: date) -> EnterpriseView | None:
    """The firm as of `day` (None: not yet on any register then): identity and money as valid on
    the day; the register history as the ledger knew it at the commit (a correction restates the
    past), cut at the day's year."""
    history = told.state
    # A firm identified by a designation alone is in the ledger whatever the day: its
    # designations say for which days they hold.
    if not isinstance(told.events[0], Enterprise.Identified):
        first_year = min(history.years) if history.years else told.events[0].year
        if first_year > day.year:
            return None
    s = FirmState.created(told.events[0])
    for event in told.events:
        if isinstance(event, IDENTITY_EVENTS) and valid_from(event) <= day:
            s.apply(event)
    policies = told.policies
    division = divisions()[s.region_code] if s.region_code else None
    owed = [
        (e, True)
        for e in rule_entitlements(history.history(), policies)
        if e.decided_year <= day.year
    ] + [
        (told.ever[eid], False)
        for eid in sorted(history.revoked)
        if told.ever[eid].decided_year <= day.year
    ]
    entitlements = []
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
            EntitlementView(
                entitlement_id=e.entitlement_id,
                uscc=e.uscc,
                kind=e.kind,
                clause=e.clause,
                amount_fen=e.amount_fen,
                decided_year=e.decided_year,
                due_fiscal_year=e.due_fiscal_year,
                policy=e.policy_id,
                basis_years=list(e.basis_years),
                paid_fen=paid,
                recovered_fen=back,
                status=award_status(paid, e.amount_fen, earned=earned, recovered_fen=back),
                policy_hash=e.policy_hash,
                base_fen=e.base_fen,
                bonuses=applied_bonuses(e, history),
            )
        )
    payments = sorted(
        (p for p in history.payments.values() if p.paid_on <= day), key=lambda p: (p.paid_on, p.ref)
    )
    recoveries = sorted(
        (r for r in history.recoveries.values() if r.received_on <= day),
        key=lambda r: (r.received_on, r.ref),
    )
    return EnterpriseView(
        as_of=day,
        known_at=KnownAt(commit.position, commit.recorded_at),
        uscc=s.uscc,
        name=s.name,
        region_code=s.region_code,
        region_name=division.name if division else "",
        city_code=division.city_code if division else "",
        city_name=divisions()[division.city_code].name if division else "",
        industry_code=s.industry_code,
        size_class=s.size_class,
        register_years=sorted(y for y in history.years if y <= day.year),
        exit_years=sorted(y for y in history.exit_years if y <= day.year),
        re_entry_years=sorted(y for y in history.re_entry_years if y <= day.year),
        on_baseline=history.baseline_year is not None,
        first_entry_year=history.first_entry_year,
        first_entry_route=history.route,
        entry_size_class=history.entry_size_class,
        version=told.events[-1].originator_version,
        entitlements=entitlements,
        payments=[PaymentView(p.ref, p.entitlement_id, p.amount_fen, p.paid_on) for p in payments],
        recoveries=[
            RecoveryView(r.ref, r.entitlement_id, r.amount_fen, r.received_on) for r in recoveries
        ],
        windows=[
            FirmWindow(
                window=w.window,
                clause=w.clause,
                starts_on=w.starts_on,
                ends_on=w.ends_on,
                closed_on=w.closed_on if w.closed_on and w.closed_on <= day else None,
                fee_cap_bp=w.fee_cap_bp,
                size_class=w.size_class,
            )
            for w in rule_windows(history.history(), policies)
            if w.starts_on <= day
        ],
        designations=designation_views(told, day),
        holds=hold_views(told, day),
    )


def designation_views(told: FirmStory, day: date | None) -> list[DesignationView]:
    """The designations the firm holds at the story's commit, each with its grant's place in the
    log and (given a day) whether it is valid then."""
    granted = {
        (e.kind, e.document): (entry, e)
        for entry, e in zip(told.entries, told.events, strict=True)
        if isinstance(e, Enterprise.DesignationGranted)
    }
    views = []
    for d in told.state.held_designations():
        entry, event = granted[(d.kind, d.document)]
        views.append(
            DesignationView(
                kind=d.kind,
                document=d.document,
                valid_from=d.valid_from,
                valid_to=d.valid_to,
                valid=d.valid_on(day) if day is not None else None,
                position=entry.position,
                recorded_at=entry.recorded_at,
                actor=event.actor,
            )
        )
    return views


def hold_view(h: Hold, day: date | None, position: int, actor: str | None) -> HoldView:
    """A hold as the answers show it: in force on `day` (None: the answer has no day)."""
    return HoldView(
        reason=h.reason,
        authority=h.authority,
        document=h.document,
        valid_from=h.valid_from,
        valid_to=h.valid_to,
        lifted_on=h.lifted_on,
        lift_reason=h.lift_reason,
        in_force=h.in_force(day) if day is not None else None,
        position=position,
        actor=actor,
    )


def hold_views(told: FirmStory, day: date | None) -> list[HoldView]:
    """The firm's holds at the story's commit, lifted ones included, the longest-standing first,
    each with where it was placed in the log."""
    placed = {
        e.document: (entry, e)
        for entry, e in zip(told.entries, told.events, strict=True)
        if isinstance(e, Enterprise.HoldPlaced)
    }
    return [
        hold_view(h, day, placed[h.document][0].position, placed[h.document][1].actor)
        for h in sorted(told.state.holds.values(), key=lambda h: (h.valid_from, h.document))
    ]


def applied_bonuses(e: Entitlement, state: FirmState) -> list[AppliedBonus]:
    """The bonuses an award carries, each with the documents of the designations that earned
    it (valid in the register year the bonus asks)."""
    entry = e.basis_years[0]
    return [
        AppliedBonus(
            designation=b.designation,
            percent=b.percent,
            documents=[
                d.document
                for d in state.held_designations()
                if d.kind == b.designation
                and d.valid_in(entry if b.valid_in == "entry_year" else e.decided_year)
            ],
        )
        for b in e.bonuses
    ]


def explanation(told: FirmStory, entitlement_id: str, today: date) -> Explanation:
    """Why an entitlement is (or was) owed: the policy and clause, the register facts it derives
    from (with their log positions), the payments and recoveries against it, and for a revoked one
    the correction that took it away."""
    entitlement = told.ever.get(entitlement_id)
    uscc = told.state.uscc
    if entitlement is None:
        raise NotFoundError(
            f"unknown entitlement {entitlement_id}: the ledger owes {uscc} no such award "
            "(see `enterprise` for what it is entitled to)",
            field="entitlement_id",
        )
    trail = {t.position: t for t in trail_events(told.entries, told.events)}
    basis = set(entitlement.basis_years)
    facts = [
        t
        for t, e in zip(trail.values(), told.events, strict=True)
        if isinstance(e, REGISTER_EVENTS) and e.year in basis
    ]
    corrections = [
        t
        for t, e in zip(trail.values(), told.events, strict=True)
        if isinstance(e, Enterprise.RegisterYearCorrected) and e.year in basis
    ]
    moved = [
        MoneyMoved(
            t.position,
            t.recorded_at,
            t.actor,
            e.payment_ref if isinstance(e, Enterprise.PaymentRecorded) else e.recovery_ref,
            e.amount_fen,
            valid_from(e),
            isinstance(e, Enterprise.RecoveryRecorded),
        )
        for t, e in zip(trail.values(), told.events, strict=True)
        if isinstance(e, Enterprise.PaymentRecorded | Enterprise.RecoveryRecorded)
        and e.entitlement_id == entitlement_id
    ]
    s = told.state
    paid, back = s.paid_fen(entitlement_id), s.recovered_fen(entitlement_id)
    cause = told.revoked_by.get(entitlement_id)
    known = {t.payload["year"] for t in facts} | {
        y for t in corrections for y in t.payload["years"] if y in basis
    }
    revoked_by = None
    if cause is not None:
        row = trail[cause.position]
        revoked_by = Revocation(
            position=cause.position,
            recorded_at=row.recorded_at,
            year=row.payload.get("year"),
            reason=row.payload["reason"],
            source_sha256=row.payload["source_sha256"],
            actor=row.actor,
            policy_id=row.payload.get("policy_id"),
        )
    bonuses = applied_bonuses(entitlement, s)
    documents = {doc for b in bonuses for doc in b.documents}
    return Explanation(
        entitlement_id=entitlement.entitlement_id,
        uscc=uscc,
        kind=entitlement.kind,
        clause=entitlement.clause,
        policy=PolicyRef(entitlement.policy_id, entitlement.policy_hash),
        amount_fen=entitlement.amount_fen,
        decided_year=entitlement.decided_year,
        due_fiscal_year=entitlement.due_fiscal_year,
        basis_years=list(entitlement.basis_years),
        # Years before the baseline count as on the register when the baseline gave the first
        # entry year (DOMAIN.md default 5): no event of the ledger records them.
        assumed_years=sorted(basis - known),
        derives_from=[
            FactRef(
                t.position,
                t.recorded_at,
                t.type,
                t.actor,
                t.valid_from,
                t.payload["year"],
                t.payload["source_sha256"],
            )
            for t in facts + corrections
        ],
        payments=[m for m in moved if not m.recovery],
        recoveries=[m for m in moved if m.recovery],
        paid_fen=paid,
        recovered_fen=back,
        status=award_status(paid, entitlement.amount_fen, earned=cause is None, recovered_fen=back),
        revoked_by=revoked_by,
        base_fen=entitlement.base_fen,
        bonuses=bonuses,
        designations=[d for d in designation_views(told, None) if d.document in documents],
        holds=hold_views(told, today),
    )
