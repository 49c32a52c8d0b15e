"""The register book: the ledger's one record of the register years imported and corrected, the
policy versions adopted and the designation files imported. Every import appends to it, so
concurrent imports conflict here and exactly one wins.

Its events were first stored under `domain.enterprise` (where the book was defined until the
enterprise module grew past what one reads at once); those topics are registered below, so that
every ledger written before the move reads as before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.enterprise import NAMESPACE
from domain.policy import Policies, Policy, policy_from_json

REGISTER_BOOK_ID = uuid.uuid5(NAMESPACE, "register-book")


@dataclass(frozen=True, slots=True)
class AdoptedPolicy:
    policy_id: str
    content_hash: str
    content: str
    actor: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class ImportedYear:
    year: int
    baseline: bool
    sha256: str
    rows: int
    counts: dict[str, int]
    encoding: str | None


class RegisterBook(Aggregate):
    """The ledger's book of register years imported, policy versions adopted and designation
    files imported."""

    class Opened(Aggregate.Created):
        actor: str

    class PolicyAdopted(Aggregate.Event):
        """A policy version adopted: from its `applies_from` it governs the firms that first
        enter then (the first version governs from the beginning)."""

        # Version 2 records why a version was adopted; a version 1 event (the baseline's 38号)
        # was adopted with the baseline and is read with reason None.
        class_version = 2

        policy_id: str
        content_hash: str
        content: str
        """The policy as canonical JSON, so every past answer can be reproduced."""
        actor: str
        reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = None

        def apply(self, aggregate: Any) -> None:
            aggregate.policy_versions[self.policy_id] = AdoptedPolicy(
                self.policy_id, self.content_hash, self.content, self.actor, self.reason
            )
            aggregate._policies = None

    class YearImported(Aggregate.Event):
        # Version 2 records the file's encoding with its hash; a version 1 event did not, and is
        # read with encoding None (unknown), never a guess.
        class_version = 2

        year: int
        baseline: bool
        sha256: str
        rows: int
        counts: dict[str, int]
        actor: str
        encoding: str | None
        """The encoding the file was read in (utf-8 or gb18030)."""

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["encoding"] = None

        def apply(self, aggregate: Any) -> None:
            aggregate.years[self.year] = ImportedYear(
                self.year, self.baseline, self.sha256, self.rows, dict(self.counts), self.encoding
            )

    class YearCorrected(Aggregate.Event):
        """The bureau re-issued an imported year; the corrected file is now the year's record."""

        year: int
        sha256: str
        rows: int
        reason: str
        counts: dict[str, int]
        actor: str
        encoding: str

        def apply(self, aggregate: Any) -> None:
            before = aggregate.years[self.year]
            aggregate.years[self.year] = ImportedYear(
                self.year, before.baseline, self.sha256, self.rows, dict(self.counts), self.encoding
            )

    class DesignationsImported(Aggregate.Event):
        """A certifying authority's file of designations of `kind` was imported (`counts`: rows
        granted, already held, and firms identified by it)."""

        kind: str
        sha256: str
        rows: int
        counts: dict[str, int]
        actor: str

        def apply(self, aggregate: Any) -> None:
            pass

    class HoldsImported(Aggregate.Event):
        """A list of compliance holds was imported (`counts`: holds placed, already held, and
        firms identified by it)."""

        sha256: str
        rows: int
        counts: dict[str, int]
        actor: str

        def apply(self, aggregate: Any) -> None:
            pass

    class ReleaseRequired(Aggregate.Event):
        """From fiscal year `from_fiscal_year` on, an award is paid only once released in a
        payment batch (reviewed, approved, published, released)."""

        from_fiscal_year: int
        actor: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.release_from = self.from_fiscal_year

    def __init__(self, actor: str) -> None:
        self.release_from: int | None = None
        """The first fiscal year whose awards are paid only once released (None: never)."""
        self.years: dict[int, ImportedYear] = {}
        self.policy_versions: dict[str, AdoptedPolicy] = {}
        """Policy id -> the version adopted under it, in the order adopted."""
        self._policies: Policies | None = None

    @property
    def baseline_year(self) -> int | None:
        return next((y.year for y in self.years.values() if y.baseline), None)

    @property
    def last_year(self) -> int | None:
        return max(self.years) if self.years else None

    @property
    def policies(self) -> Policies | None:
        """The versions adopted (None before the first)."""
        if self._policies is None and self.policy_versions:
            self._policies = Policies.of(
                policy_from_json(v.content) for v in self.policy_versions.values()
            )
        return self._policies

    def adopt_policy(self, policy: Policy, actor: str, reason: str | None = None) -> None:
        self.trigger_event(
            self.PolicyAdopted,
            policy_id=policy.id,
            content_hash=policy.content_hash,
            content=policy.canonical_json(),
            actor=actor,
            reason=reason,
        )


_FORMER_MODULE = "domain.enterprise"
register_topic(f"{_FORMER_MODULE}:RegisterBook", RegisterBook)
for _name in (
    "Opened",
    "PolicyAdopted",
    "YearImported",
    "YearCorrected",
    "DesignationsImported",
):
    register_topic(f"{_FORMER_MODULE}:RegisterBook.{_name}", getattr(RegisterBook, _name))
