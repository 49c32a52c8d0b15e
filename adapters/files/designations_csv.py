"""A certifying authority's designations file: `uscc,valid_from,valid_to,document`, one
designation a row (valid_to empty: open-ended)."""

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
from domain.designations import DesignationRow
from domain.errors import RowError
from domain.register import FieldError

DESIGNATION_COLUMNS: tuple[str, ...] = ("uscc", "valid_from", "valid_to", "document")


@dataclass(frozen=True)
class DesignationsFile:
    """A designations file read whole: its rows, and the hash of exactly the bytes they came
    from."""

    name: str
    sha256: str
    rows: list[DesignationRow]
    errors: list[RowError]
    """The lines that could not be read: the import lists them with those the ledger refuses."""


def read_designations(path: str | Path, *, encoding: str = "utf-8") -> DesignationsFile:
    """Read and check a designations file, reading it from disk once.

    Raises:
        CsvFileError: the file cannot be read, or the encoding is not one of those.
    """
    name = str(path)
    sha256, rows, errors = read_rows(
        path,
        csv_encoding(path, encoding),
        DESIGNATION_COLUMNS,
        "designations file",
        designation_row,
    )
    return DesignationsFile(name, sha256, rows, errors)


def designation_row(line: int, values: list[str]) -> DesignationRow | list[FieldError]:
    """One row (`DESIGNATION_COLUMNS`' values) checked on its own, or what is wrong with it."""
    errors: list[FieldError] = []
    clean = clean_fields(DESIGNATION_COLUMNS, values, errors)
    uscc = uscc_field(clean, errors)
    start, end = period_fields(clean, errors, "valid_from", "valid_to")
    document = clean.get("document")
    if document == "":
        errors.append(
            FieldError("document", "missing: name the instrument that grants the designation")
        )
    if errors:
        return errors
    assert uscc and start is not None and document
    return DesignationRow(line, uscc, start, end, document)


def designations_csv(rows: list[list[str]]) -> bytes:
    """Rows as the CSV file would hold them (header first, UTF-8): what a designations import
    that came over the wire hashes, so that the same rows give the same hash."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(DESIGNATION_COLUMNS)
    out.writerows(rows)
    return text.getvalue().encode("utf-8")


def write_designations(path: str | Path, rows: Iterable[tuple[str, date, date | None, str]]) -> int:
    """Write a designations file in the format above (UTF-8); return the rows written."""
    values = [
        [uscc, start.isoformat(), end.isoformat() if end else "", document]
        for uscc, start, end, document in rows
    ]
    Path(path).write_bytes(designations_csv(values))
    return len(values)
