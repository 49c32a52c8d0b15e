"""The ledger application's base: its store and views, the clock it is given, and the aggregates
it reads (the register book, firms, payment refs, entitlements). `domain.application.Ledger`
puts the commands and queries on top of it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar, cast

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    MapperDeserialisationError,
    Transcoding,
)

from domain.codes import CodeError, cities, validate_uscc
from domain.command_results import AmountChange, AwardChange
from domain.enterprise import (
    Enterprise,
    PaymentRef,
    enterprise_id,
    payment_ref_id,
    recovery_ref_id,
)
from domain.errors import (
    ConcurrentWriteError,
    DamagedLogError,
    InvalidInputError,
    NotFoundError,
    OutOfScopeError,
    PreconditionError,
    RefusedError,
)
from domain.persons import PersonVault
from domain.policy import Policies, Policy, policy_from_json
from domain.ports import Commit, KnownRegister, LedgerLog, ReadModel, TrailEntry
from domain.register_book import REGISTER_BOOK_ID, RegisterBook
from domain.rules import Entitlement, parse_entitlement_id, to_recover
from domain.text import control_problem

R = TypeVar("R")


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class LedgerBase(Application[uuid.UUID]):
    """The store, the views, the clock and the aggregates every command and query stands on."""

    def __init__(
        self,
        env: Any = None,
        *,
        today: Callable[[], date],
        views: Callable[[LedgerBase], ReadModel] | None = None,
        known: Callable[[LedgerBase], KnownRegister] | None = None,
        persons: Callable[[LedgerBase], PersonVault] | None = None,
        replica: bool = False,
    ) -> None:
        """`today`: today's date where the ledger is administered (the edge decides it).
        `replica`: the store is a read-only copy of the ledger's database (a PostgreSQL hot
        standby): the views are the primary's, replicated with the log, never caught up here;
        an answer stands at the position they reached (queries only: a command is refused).
        `views`: builds the read models over this application's datastore; `known`: what imports
        need of the register instead, where a store has no views (the in-memory store: the
        application then answers commands only). `persons`: opens the vault of (九) hires'
        personal details, when a command first needs it (only those commands need its secret)."""
        super().__init__(env)
        self.today = today
        self.replica = replica
        try:
            self._views = views(self) if views is not None else None
            self._known = known(self) if known is not None else self._views
        except BaseException:
            self.close()
            raise
        self._persons_factory = persons
        self._persons: PersonVault | None = None
        self._book: RegisterBook | None = None
        self._parsed: dict[str, Policy] = {}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    @property
    def views(self) -> ReadModel:
        if self._views is None:
            raise RuntimeError("this ledger was opened without views: it answers commands only")
        return self._views

    @property
    def persons(self) -> PersonVault:
        """The vault of personal details, opened on first use."""
        if self._persons is None:
            if self._persons_factory is None:
                raise RefusedError("this ledger was opened without the vault of personal details")
            self._persons = self._persons_factory(self)
        return self._persons

    @property
    def store(self) -> LedgerLog:
        """The log's recorder, with commit times and trails."""
        return cast(LedgerLog, self.recorder)

    def catch_up(self) -> int:
        """Bring the views up to the log; the position they reached. On a replica, the position
        the primary's views reached, as replicated so far."""
        if self.replica:
            return self.views.position()
        return self._register().catch_up(self)

    def save(self, *objs: Any, **kwargs: Any) -> list[Any]:
        if self.replica:
            raise RefusedError(
                "this is a read-only replica of the ledger: commands write to the primary "
                "(LEDGER_DATABASE_URL), queries read here (LEDGER_READ_DATABASE_URL)"
            )
        return list(super().save(*objs, **kwargs))

    def _register(self) -> KnownRegister:
        if self._known is None:
            raise RuntimeError("this ledger was opened without views: it answers commands only")
        return self._known

    def rebuild_views(self) -> int:
        """Empty every view and replay the whole log into them."""
        return self.views.rebuild(self)

    # Aggregates -------------------------------------------------------------------------------

    def _get(self, aggregate_id: uuid.UUID) -> Any:
        """The aggregate, replayed; DamagedLogError if one of its events cannot be read."""
        try:
            return self.repository.get(aggregate_id)
        except MapperDeserialisationError as e:
            raise DamagedLogError(None, str(e)) from e

    def decoded(self, entries: list[TrailEntry]) -> list[Any]:
        """The events of these log entries; DamagedLogError naming the first that cannot be read."""
        events = []
        for entry in entries:
            try:
                events.append(self.mapper.to_domain_event(entry.stored))
            except Exception as e:
                raise DamagedLogError(entry.position, f"{type(e).__name__}: {e}") from e
        return events

    def save_or_conflict(self, during: str, *aggregates: Any) -> list[Any]:
        """Save the aggregates in one transaction; ConcurrentWriteError (nothing written) if
        another writer moved one of them meanwhile. `during`: what was being done, for the
        message."""
        try:
            return self.save(*aggregates)
        except IntegrityError as e:
            raise ConcurrentWriteError(
                f"another writer changed the ledger {during}; nothing was written: run the same "
                f"command again ({e})"
            ) from e

    def caught_up(self, result: R) -> R:
        """A command's result once the views are caught up to it, or with `views_error` saying
        why they are not: what it wrote is in the log whatever happened to the views, and the
        next command that reads them catches them up."""
        try:
            self.catch_up()
        except Exception as e:
            return dataclasses.replace(result, views_error=f"{type(e).__name__}: {e}")  # type: ignore[type-var]
        return result

    def ledger_book(self) -> RegisterBook:
        """The register book of a ledger begun (a baseline imported, a policy adopted); refused
        before."""
        book = self.get_book()
        if book is None or book.policies is None:
            raise RefusedError(
                "no ledger here yet: import the baseline register first (it adopts the first "
                "policy version)"
            )
        return book

    def get_book(self) -> RegisterBook | None:
        try:
            book: RegisterBook = self._get(REGISTER_BOOK_ID)
        except AggregateNotFoundError:
            return None
        return book

    def get_policies(self) -> Policies:
        """The policy versions adopted in the log; refused when none is yet. The book is kept
        between calls and read again only when it has new events (another process may have
        adopted a version): one small query when nothing moved."""
        book = self._book
        if book is None or self.recorder.select_events(REGISTER_BOOK_ID, gt=book.version, limit=1):
            self._book = book = self.get_book()
        policies = book.policies if book else None
        if policies is None:
            raise RefusedError("no policy adopted yet: import the baseline register first")
        return policies

    def release_required_from(self, *, fresh: bool = True) -> int | None:
        """The first fiscal year whose awards are paid only once released in a batch (None: the
        ledger never switched), from the book `get_policies` keeps; `fresh=False` when this
        command called `get_policies` already (a payment: no second read of the book)."""
        if fresh or self._book is None:
            self.get_policies()
        return self._book.release_from if self._book else None

    def policies_at(self, commit: Commit | None) -> Policies:
        """The policy versions the ledger had adopted by a commit (None: none at all)."""
        if commit is None:
            raise RefusedError("no policy adopted yet: import the baseline register first")
        versions = [policy for _entry, _event, policy in self.adoptions_at(commit)]
        if not versions:
            raise RefusedError(
                f"no policy adopted by position {commit.position}: import the baseline first"
            )
        return Policies.of(versions)

    def adoptions_at(self, commit: Commit) -> list[tuple[TrailEntry, Any, Policy]]:
        """Each policy version adopted by a commit, in log order: where in the log, the
        `PolicyAdopted` event, the version (parsed once per content hash)."""
        entries = [
            e for e in self.store.select_trail(REGISTER_BOOK_ID) if e.position <= commit.position
        ]
        return [
            (entry, event, self._policy(event.content_hash, event.content))
            for entry, event in zip(entries, self.decoded(entries), strict=True)
            if isinstance(event, RegisterBook.PolicyAdopted)
        ]

    def _policy(self, content_hash: str, content: str) -> Policy:
        policy = self._parsed.get(content_hash)
        if policy is None:
            policy = self._parsed[content_hash] = policy_from_json(content)
        return policy

    def get_enterprise(self, uscc: str, *, city: str | None = None) -> Enterprise:
        """The firm; with `city` (a user scoped to it), refused unless the firm belongs to it
        (is there now or was on a register there), an unknown firm alike."""
        try:
            firm: Enterprise = self._get(enterprise_id(checked_uscc(uscc)))
        except AggregateNotFoundError:
            if city is not None:
                raise OutOfScopeError(
                    f"{uscc} is not a firm of city {city}", field="uscc"
                ) from None
            raise NotFoundError(
                f"no enterprise with USCC {uscc} in the ledger", field="uscc"
            ) from None
        if city is not None and not firm.state.belongs_to(city):
            raise OutOfScopeError(f"{uscc} is not a firm of city {city}", field="uscc")
        return firm

    def get_enterprises(self, usccs: Sequence[str]) -> list[Enterprise]:
        """Several firms, each replayed as `get_enterprise` does, from one read of their events
        (a command that re-derives thousands of firms would otherwise query once a firm)."""
        found = self.find_enterprises(usccs)
        firms = []
        for uscc in usccs:
            firm = found[uscc]
            if firm is None:
                raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger", field="uscc")
            firms.append(firm)
        return firms

    def find_enterprises(self, usccs: Sequence[str]) -> dict[str, Enterprise | None]:
        """Several firms by USCC, None for each the ledger does not have, from one read."""
        ids = [enterprise_id(u) for u in usccs]
        streams = self.store.select_streams(ids)
        firms: dict[str, Enterprise | None] = {}
        for uscc, oid in zip(usccs, ids, strict=True):
            firm: Any = None
            for stored in streams.get(oid, []):
                try:
                    event: Any = self.mapper.to_domain_event(stored)
                except Exception as e:
                    raise DamagedLogError(None, f"{type(e).__name__}: {e}") from e
                firm = event.mutate(firm)
            firms[uscc] = firm
        return firms

    def get_payment_ref(self, ref: str, *, recovery: bool = False) -> PaymentRef | None:
        try:
            claimed: PaymentRef = self._get(
                recovery_ref_id(ref) if recovery else payment_ref_id(ref)
            )
        except AggregateNotFoundError:
            return None
        return claimed

    def get_entitlement(self, entitlement_id: str) -> tuple[Enterprise, Entitlement]:
        """The firm and the entitlement the rules give it under this id; NotFoundError if none."""
        return self._entitlement_of(self._firm_of(entitlement_id, None), entitlement_id)

    def _firm_of(self, entitlement_id: str, city: str | None) -> Enterprise:
        """The firm of an entitlement id; with `city`, refused unless the award belongs to it."""
        uscc, _kind, year = parse_id(entitlement_id)
        try:
            firm: Enterprise = self._get(enterprise_id(uscc))
        except AggregateNotFoundError:
            if city is not None:
                raise OutOfScopeError(
                    f"{entitlement_id} is not an award of city {city}", field="entitlement_id"
                ) from None
            raise NotFoundError(
                f"unknown entitlement {entitlement_id}: no enterprise {uscc} in the ledger",
                field="entitlement_id",
            ) from None
        if city is not None and firm.state.award_city(year) != city:
            raise OutOfScopeError(
                f"{entitlement_id} is not an award of city {city}", field="entitlement_id"
            )
        return firm

    def _entitlement_of(
        self, firm: Enterprise, entitlement_id: str
    ) -> tuple[Enterprise, Entitlement]:
        for entitlement in firm.entitlements(self.get_policies()):
            if entitlement.entitlement_id == entitlement_id:
                return firm, entitlement
        if entitlement_id in firm.state.revoked:
            raise PreconditionError(
                f"{entitlement_id} was revoked by {revoked_by(firm.state.revoked[entitlement_id])}: "
                "nothing more is paid against it (see `explain`)",
                field="entitlement_id",
            )
        raise NotFoundError(
            f"unknown entitlement {entitlement_id}: the ledger owes {firm.uscc} no such award "
            "(see `enterprise` for what it is entitled to)",
            field="entitlement_id",
        )


def award_change(firm: Enterprise, e: Entitlement, *, earned: bool) -> AwardChange:
    """An award a correction or a policy version changed, with what was paid against it and
    what must come back (`earned`: whether the rules still give it)."""
    s = firm.state
    paid, back = s.paid_fen(e.entitlement_id), s.recovered_fen(e.entitlement_id)
    return AwardChange(
        e.entitlement_id,
        e.uscc,
        e.kind,
        e.amount_fen,
        e.due_fiscal_year,
        paid,
        to_recover(paid, e.amount_fen, earned=earned, recovered_fen=back),
    )


def amount_change(firm: Enterprise, old: Entitlement, new: Entitlement) -> AmountChange:
    """An award re-derived at another amount or under another deciding version, with what was
    paid against it and what was paid above the new amount (to come back)."""
    s = firm.state
    paid, back = s.paid_fen(new.entitlement_id), s.recovered_fen(new.entitlement_id)
    return AmountChange(
        entitlement_id=new.entitlement_id,
        uscc=firm.uscc,
        kind=new.kind,
        due_fiscal_year=new.due_fiscal_year,
        old_amount_fen=old.amount_fen,
        new_amount_fen=new.amount_fen,
        old_policy=old.policy_id,
        new_policy=new.policy_id,
        paid_fen=paid,
        recover_fen=to_recover(paid, new.amount_fen, earned=True, recovered_fen=back),
    )


def revoked_by(cause: str) -> str:
    """What took an entitlement away, from `FirmState.revoked`'s value."""
    if cause.startswith("policy:"):
        return f"the adoption of policy version {cause.removeprefix('policy:')}"
    return f"the correction in the file with sha256 {cause}"


def parse_id(entitlement_id: str) -> tuple[str, str, int]:
    """USCC, kind and decided year of a well-formed entitlement id; InvalidInputError otherwise."""
    problem = control_problem(entitlement_id)
    if problem is not None:
        raise InvalidInputError(problem, field="entitlement_id")
    try:
        uscc, kind, year = parse_entitlement_id(entitlement_id)
        validate_uscc(uscc)
    except (ValueError, CodeError) as e:
        raise InvalidInputError(
            f"{entitlement_id!r} is not an entitlement id USCC/KIND/YEAR ({e})",
            field="entitlement_id",
        ) from None
    return uscc, kind, year


def checked_uscc(uscc: str) -> str:
    """A USCC whose check characters hold; InvalidInputError naming `uscc` otherwise."""
    try:
        return validate_uscc(uscc)
    except CodeError as e:
        raise InvalidInputError(f"{uscc!r}: {e}", field="uscc") from None


def checked_city(city: str | None) -> str | None:
    """A city code of Shanxi's (or None: every city); InvalidInputError naming `city` otherwise."""
    if city is not None and city not in cities():
        raise InvalidInputError(
            f"{city!r} is not a Shanxi city code ({', '.join(sorted(cities()))})", field="city"
        )
    return city
