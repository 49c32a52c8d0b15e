"""A list of compliance holds, as the credit platform (信用中国) and the authorities publish them:
`uscc,reason,authority,document,from,to`, one hold a row (`from`: its first day in force; `to`:
its last, empty until lifted)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from adapters.files.csv_records import (
    clean_fields,
    csv_encoding,
    period_fields,
    read_rows,
    uscc_field,
)
from domain.errors import RowError
from domain.holds import HoldReason, HoldRow
from domain.register import FieldError

HOLD_COLUMNS: tuple[str, ...] = ("uscc", "reason", "authority", "document", "from", "to")
_REASONS = {r.value: r for r in HoldReason}


@dataclass(frozen=True)
class HoldsFile:
    """A holds file read whole: its rows, and the hash of exactly the bytes they came from."""

    name: str
    sha256: str
    rows: list[HoldRow]
    errors: list[RowError]
    """The lines that could not be read: the import lists them with those the ledger refuses."""


def read_holds(path: str | Path, *, encoding: str = "utf-8") -> HoldsFile:
    """Read and check a holds file, reading it from disk once.

    Raises:
        CsvFileError: the file cannot be read, or the encoding is not one of those.
    """
    name = str(path)
    sha256, rows, errors = read_rows(
        path, csv_encoding(path, encoding), HOLD_COLUMNS, "holds file", hold_row
    )
    return HoldsFile(name, sha256, rows, errors)


def hold_row(line: int, values: list[str]) -> HoldRow | list[FieldError]:
    """One row (`HOLD_COLUMNS`' values) checked on its own, or what is wrong with it."""
    errors: list[FieldError] = []
    clean = clean_fields(HOLD_COLUMNS, values, errors)
    uscc = uscc_field(clean, errors)
    reason = _REASONS.get(clean.get("reason", ""))
    if "reason" in clean and reason is None:
        errors.append(
            FieldError(
                "reason",
                f"{clean['reason']!r} is not a hold reason: one of {', '.join(_REASONS)}",
            )
        )
    for column, what in (
        ("authority", "the authority whose list or decision it is"),
        ("document", "the list's or the decision's document number"),
    ):
        if clean.get(column) == "":
            errors.append(FieldError(column, f"missing: name {what}"))
    start, end = period_fields(clean, errors, "from", "to")
    if errors:
        return errors
    assert uscc and reason and start is not None
    return HoldRow(line, uscc, reason, clean["authority"], clean["document"], start, end)


def holds_csv(rows: list[list[str]]) -> bytes:
    """Rows as the CSV file would hold them (header first, UTF-8): what a holds import that came
    over the wire hashes, so that the same rows give the same hash."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(HOLD_COLUMNS)
    out.writerows(rows)
    return text.getvalue().encode("utf-8")


def write_holds(
    path: str | Path, rows: Iterable[tuple[str, str, str, str, date, date | None]]
) -> int:
    """Write a holds file in the format above (UTF-8); return the rows written."""
    values = [
        [uscc, reason, authority, document, start.isoformat(), end.isoformat() if end else ""]
        for uscc, reason, authority, document, start, end in rows
    ]
    Path(path).write_bytes(holds_csv(values))
    return len(values)
