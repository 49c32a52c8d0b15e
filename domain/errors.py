"""The ledger's refusals, in the domain's words: what was wrong and, where one input was, its name.

Each error carries `field`, the name of the argument that was wrong as the application's methods
call it (`reason`, `known_at`, `amount_fen`, ...), or None. The command line and the gRPC service
say it in their own words (`--reason`, `reason`); the messages here never name a flag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

SAME_LINES = 20
"""An error repeated word for word is listed for this many lines, then counted."""


class LedgerError(Exception):
    """Base of the ledger's refusals: bad input or a command the rules refuse. Nothing was written."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class RefusedError(LedgerError):
    """A command the ledger refuses."""


class NotFoundError(RefusedError):
    """An unknown enterprise, entitlement or ref."""


class InvalidInputError(RefusedError):
    """Malformed input: a bad amount, date, ref, reason or point in time."""


class ConflictError(RefusedError):
    """A voucher number already used with other details."""


class PreconditionError(RefusedError):
    """Input well formed but refused by the ledger's state: an overpayment, nothing to recover, a
    revoked award, a register year out of order."""


class NotPermittedError(RefusedError):
    """The user may not do this (another must: the approval of a batch its proposer made)."""


class OutOfScopeError(RefusedError):
    """A user scoped to one city asked about (or for) a firm of another city."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A bad line: FILE:LINE: FIELD: reason."""

    line: int
    field: str
    reason: str

    def format(self, source: str) -> str:
        return f"{source}:{self.line}: {self.field}: {self.reason}"


class RejectedFileError(RefusedError):
    """A file with bad lines, refused whole: every bad line is listed, none of it was used."""

    outcome = "nothing of it was used"

    def __init__(self, source: str, errors: Sequence[RowError]):
        self.source = source
        self.errors = list(errors)
        super().__init__(f"{source}: {len(self.errors)} bad line(s); {self.outcome}")

    def lines(self) -> list[str]:
        """Every bad line as FILE:LINE: FIELD: reason; an error repeated word for word on many
        lines is given for the first SAME_LINES of them, then counted (an encoding's repeats,
        after its first line, at once)."""
        shown: list[str] = []
        counts: Counter[tuple[str, str]] = Counter()
        for e in self.errors:
            counts[(e.field, e.reason)] += 1
            if counts[(e.field, e.reason)] <= _shown(e.field, e.reason):
                shown.append(e.format(self.source))
        for (field, reason), n in counts.items():
            if n > (limit := _shown(field, reason)):
                shown.append(
                    f"{self.source}: ... and {n - limit:,} more line(s) with {field}: {reason}"
                )
        return shown


def _shown(field: str, reason: str) -> int:
    return 0 if field == "encoding" and reason.endswith(" either") else SAME_LINES


class ImportRejectedError(RejectedFileError):
    """A register file with bad rows: every bad line is listed, nothing was written."""

    outcome = "nothing was imported"


class TreasuryRejectedError(RejectedFileError):
    """A treasury payment file with bad lines: every bad line is listed, nothing was reconciled."""

    outcome = "nothing was reconciled"


class DesignationsRejectedError(RejectedFileError):
    """A designations file with bad lines: every bad line is listed, nothing was recorded."""

    outcome = "nothing was recorded"


class HoldsRejectedError(RejectedFileError):
    """A holds file with bad lines: every bad line is listed, nothing was recorded."""

    outcome = "nothing was recorded"


class BelowScaleRejectedError(RejectedFileError):
    """A below-scale file with bad lines: every bad line is listed, nothing was recorded."""

    outcome = "nothing was recorded"


class SubsidyRejectedError(RejectedFileError):
    """A file of (九) hires or contributions with bad lines: every bad line is listed, nothing was
    recorded."""

    outcome = "nothing was recorded"


class PersonErasedError(RefusedError):
    """A person whose details were erased: nothing shows their identity again."""


class ReplicaBehindError(Exception):
    """A query asked a replica for a position its views have not reached yet: the edge waits for
    it, then asks the primary."""

    def __init__(self, wanted: int, reached: int):
        self.wanted, self.reached = wanted, reached
        super().__init__(
            f"the replica's views are at position {reached}, not yet at {wanted}: ask the primary"
        )


class ConcurrentWriteError(Exception):
    """Another writer changed the same aggregates first and retries did not help."""


class DamagedLogError(Exception):
    """The log holds an event that cannot be read: it was changed outside the ledger."""

    def __init__(self, position: int | None, why: str):
        where = f"at position {position}" if position is not None else "of this aggregate"
        super().__init__(
            f"the log holds an event {where} that cannot be read ({why}): it was changed outside "
            "the ledger; `verify` shows where the hash chain breaks"
        )
        self.position = position
