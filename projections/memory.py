"""What imports and corrections need of the register, derived from the log in memory by the views'
own fold (the drift check's derivation): for the library's in-memory store, which has no SQL.

It derives the whole log again whenever the log has grown: for a ledger of tests' size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Application

from domain.correction import YearFact
from domain.register import PriorFirm
from projections.drift import Derived, derive, register_rows


class MemoryRegister:
    """The register as the views would hold it, folded from the log in memory."""

    def __init__(self) -> None:
        self._derived: Derived | None = None
        self._rows: dict[Any, tuple[Any, ...]] = {}

    def catch_up(self, app: Application[uuid.UUID]) -> int:
        head = app.recorder.max_notification_id() or 0
        if self._derived is None or self._derived.position != head:
            self._derived = derive(app, head)
            self._rows = register_rows(self._derived.batch)
        return head

    def _batch_firms(self) -> dict[str, Any]:
        if self._derived is None:
            raise RuntimeError("catch up first")
        return self._derived.batch.firms

    def prior_firms(self) -> dict[str, PriorFirm]:
        result = {}
        for oid, firm in self._batch_firms().items():
            s = firm.state
            result[s.uscc] = PriorFirm(
                s.uscc,
                uuid.UUID(oid),
                firm.version,
                s.name,
                s.region_code,
                s.industry_code,
                s.size_class,
                frozenset(s.years),
                s.first_entry_year,
                s.baseline_year,
                s.route,
            )
        return result

    def _current(self) -> list[tuple[Any, ...]]:
        return [r for r in self._rows.values() if r[-1] is None]

    def year_facts(self, year: int) -> dict[str, YearFact]:
        return {r[1]: YearFact(r[4], r[5], r[7], r[8]) for r in self._current() if r[0] == year}

    def firm_sizes(self, usccs: Sequence[str]) -> dict[str, dict[int, str | None]]:
        wanted = set(usccs)
        result: dict[str, dict[int, str | None]] = {}
        for r in self._current():
            if r[1] in wanted:
                result.setdefault(r[1], {})[r[0]] = r[8]
        return result
