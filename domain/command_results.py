"""What the ledger's commands report: an import or a correction, a policy version adopted,
designations and holds recorded, money moved (`domain.results` holds the answers of its queries,
`domain.payment_results` those of the money's path; `jsonable` turns any of them into JSON)."""

from __future__ import annotations

import dataclasses
from datetime import date


@dataclasses.dataclass(frozen=True, slots=True)
class ImportResult:
    year: int
    baseline: bool
    sha256: str
    rows: int
    counts: dict[str, int]
    replay: bool
    position: int | None
    views_error: str | None = None
    """Committed, but the views could not be caught up after it (why); None when they were."""


@dataclasses.dataclass(frozen=True, slots=True)
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


@dataclasses.dataclass(frozen=True, slots=True)
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
    views_error: str | None = None
    """Committed, but the views could not be caught up after it (why); None when they were."""


@dataclasses.dataclass(frozen=True, slots=True)
class AmountChange:
    """An award a policy version (or a designation) re-derived at another amount or under
    another deciding version."""

    entitlement_id: str
    uscc: str
    kind: str
    due_fiscal_year: int
    old_amount_fen: int
    new_amount_fen: int
    old_policy: str
    new_policy: str
    paid_fen: int
    recover_fen: int
    """What was paid above the new amount and has not come back (追回), if any."""


@dataclasses.dataclass(frozen=True, slots=True)
class AdoptionResult:
    """A policy version adopted (or found adopted already: `replay`) and what it re-derived."""

    policy_id: str
    content_hash: str
    replay: bool
    firms: list[str]
    """Firms whose awards or windows the version re-derived."""
    arrears: list[AwardChange]
    revoked: list[AwardChange]
    recovery_due: list[AwardChange]
    amount_changed: list[AmountChange]
    version_changed: list[AmountChange]
    """Awards now decided by this version at the same amount."""
    position: int | None
    views_error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MoneyResult:
    """A payment or a recovery as recorded (or found already recorded: `replay`)."""

    entitlement_id: str
    ref: str
    amount_fen: int
    on: date
    """The payment's date, or the day a recovery's money came back."""
    replay: bool
    total_fen: int
    """Paid (or recovered) so far against the entitlement, this one included."""
    limit_fen: int
    """What the total may reach: the entitlement's amount (or, for a recovery, what was paid)."""
    position: int | None = None
    """Where it went in the log (None: a replay, nothing written): what to read at least to see
    it (`--known-at @POSITION`, gRPC's `min-position`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class DesignationResult:
    """Designations imported from a certifying authority's file, or one revoked: what was
    recorded and the awards it re-derived (a bonus earned late is arrears; one taken away after
    payment leaves the excess to recover)."""

    kind: str
    sha256: str | None
    """The imported file's hash (None: a revocation)."""
    replay: bool
    """Nothing was recorded: every row was held already (or the revocation was recorded)."""
    granted: int
    held: int
    """Rows the firm held already with the same dates (a replay of them)."""
    revoked_earlier: int
    """Rows whose grant was revoked since: not granted again (grant under a new document)."""
    identified: list[str]
    """Firms on no register yet, identified by this file."""
    firms: list[str]
    """Firms whose designations changed."""
    amount_changed: list[AmountChange]
    position: int | None
    views_error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HoldResult:
    """Holds placed (by hand or from a list file) or one lifted."""

    sha256: str | None
    """The imported file's hash (None: placed or lifted by hand)."""
    replay: bool
    """Nothing was recorded: every hold was there already (or the lift was recorded)."""
    placed: int
    lifted: int
    held: int
    """Rows the firm was held under already with the same details (a replay of them)."""
    identified: list[str]
    """Firms on no register yet, identified by these holds."""
    firms: list[str]
    position: int | None
    views_error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BelowScaleResult:
    """A period of the below-scale database recorded, corrected, or replayed."""

    period: str
    sha256: str
    replay: bool
    """Nothing was recorded: the period holds these rows already."""
    corrected: bool
    """The period had other rows: this file replaced them (a `PeriodReissued`)."""
    counts: dict[str, int]
    """rows, on_register (firms on the latest register: kept, left out of the pipeline); for a
    correction also added, removed, changed and unchanged."""
    position: int | None
    views_error: str | None = None
