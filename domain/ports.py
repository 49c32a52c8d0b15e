"""What the application needs from outside the domain, as protocols: the log's own additions to the
library's recorder and the read models (the views). (A register year's rows are a
`domain.register.RegisterSource`.)

The adapters and the projections implement them; the domain names them only here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from eventsourcing.persistence import StoredEvent

from domain.correction import YearFact
from domain.register import PriorFirm
from domain.results import (
    AwardRow,
    ImportedYearRow,
    Point,
    RegisterEntry,
    RegisterSize,
    TotalRow,
    WindowRow,
)

if TYPE_CHECKING:
    from eventsourcing.application import Application

    from domain.enterprise import FirmState, Hold
    from domain.reconciliation import LedgerPayment


@dataclass(frozen=True)
class Commit:
    """A transaction of the log: its last position and when the database committed it."""

    position: int
    recorded_at: datetime


@dataclass(frozen=True)
class TrailEntry:
    """An event as the log holds it: its position, its stored form and when it was committed."""

    position: int
    stored: StoredEvent
    recorded_at: datetime | None


class LedgerLog(Protocol):
    """The ledger's recorders: the library's application recorder, with commit times (so that
    "known at T" follows commit order) and each aggregate's events with their positions."""

    def commit_at(
        self, position: int | None = None, instant: datetime | None = None
    ) -> Commit | None: ...

    def select_trail(self, originator_id: uuid.UUID) -> list[TrailEntry]: ...

    def select_streams(
        self, originator_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[StoredEvent]]:
        """Several aggregates' events, each in version order, in one read."""
        ...


class EventStreamRecorder(Protocol):
    """A recorder that appends a long stream of events in one transaction, chunk by chunk. Optional:
    without it (the library's in-memory store) a register year is appended in one insert."""

    def insert_event_stream(
        self,
        chunks: Iterable[Sequence[StoredEvent]],
        *,
        since: int = 0,
        under_lock: Callable[[dict[uuid.UUID, int]], None] | None = None,
    ) -> int | None:
        """Append in one transaction. `under_lock` is called once the log's write lock is held,
        before the first chunk is taken, with the latest version of every aggregate that moved
        after position `since`: the import carries on from them, or refuses."""
        ...


class KnownRegister(Protocol):
    """What the ledger already holds of the register, caught up to the log: what imports and
    corrections need."""

    def catch_up(self, app: Application[uuid.UUID]) -> int:
        """Apply every event after the tracked position; return the position reached."""
        ...

    def prior_firms(self) -> dict[str, PriorFirm]:
        """Every firm the ledger knows, as the register diff needs it."""
        ...

    def year_facts(self, year: int) -> dict[str, YearFact]:
        """Each firm's row of register year `year`, as imported or last corrected."""
        ...

    def firm_sizes(self, usccs: Sequence[str]) -> dict[str, dict[int, str | None]]:
        """The size class of each of these firms in each register year it is on."""
        ...


class ReadModel(KnownRegister, Protocol):
    """The views: register-wide answers at any point without replaying the log.

    `point`: known at its position and valid on its day; None reads the current rows, any day.
    """

    def position(self) -> int:
        """The log position the views are caught up to."""
        ...

    def first_entrants(
        self, entered_from: int, entered_to: int, city: str | None
    ) -> list[FirmState]:
        """The firms known now as first entrants of those register years (of `city`, where the
        firm is now, if given)."""
        ...

    def firms_known_at(self, app: Application[uuid.UUID], position: int) -> list[FirmState]:
        """Every firm as the log had it at `position` (its register history and designations)."""
        ...

    def rebuild(self, app: Application[uuid.UUID]) -> int: ...

    def awards(
        self,
        point: Point | None,
        *,
        fiscal_year: int | None = None,
        city: str | None = None,
        status: str | None = None,
        held: bool | None = None,
    ) -> list[AwardRow]: ...

    def totals(
        self,
        point: Point | None,
        *,
        fiscal_year: int | None = None,
        by: str = "kind",
        basis: str = "due",
        city: str | None = None,
        known_awards: list[AwardRow] | None = None,
    ) -> list[TotalRow]: ...

    def windows(
        self,
        point: Point | None,
        *,
        uscc: str | None = None,
        active_on: date | None = None,
        city: str | None = None,
    ) -> list[WindowRow]: ...

    def holds(self, point: Point | None) -> dict[str, list[Hold]]:
        """Every firm's compliance holds as known at the point's position (lifts known by then
        applied), by USCC, the longest-standing first."""
        ...

    def register_sizes(self, point: Point | None) -> list[RegisterSize]: ...

    def register(self, year: int, point: Point | None) -> list[RegisterEntry]: ...

    def imported_years(self) -> list[ImportedYearRow]: ...

    def payments(self, point: Point | None) -> list[LedgerPayment]:
        """Every payment recorded by the point's position, whatever its date, in log order."""
        ...

    def revocations(self, point: Point | None) -> dict[str, int]:
        """Entitlements revoked as known at the point, with the position of the correction."""
        ...
