"""The register file format: CSV, UTF-8 (BOM allowed) or GB18030, read twice without holding it,
and written (the demo's registers, the rows a gRPC import streams, hashed as this file would be)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from adapters.files.csv_records import BadLine, CsvFileError, csv_encoding, csv_records, sha256_of
from domain.register import COLUMNS, FieldError, RegisterRows

RegisterFileError = CsvFileError
"""The register's name for a file that cannot be read at all (the CLI and gRPC catch it)."""

Row = Sequence[str]
"""uscc, name, region_code, industry_code, size_class, route, first_entry_year (empty: missing)."""


class CsvRegister(RegisterRows):
    """A register CSV for one year, hashed when it is opened. `records()` makes a fresh pass over
    the file each time, and refuses it if its bytes no longer have that hash."""

    def __init__(self, path: str | Path, year: int, encoding: str = "utf-8"):
        self.path = Path(path)
        self.name = str(path)
        self.year = year
        self.encoding = csv_encoding(path, encoding)
        self.sha256 = sha256_of(path)

    def raw(self) -> Iterator[tuple[int, list[str] | tuple[FieldError, ...]]]:
        """Every record after the header as (physical line, values or what is wrong); the file's
        hash is checked at the end of every pass."""
        digest = hashlib.sha256()
        for record in csv_records(self.name, self.encoding, COLUMNS, digest):
            if isinstance(record, BadLine):
                yield record.line, tuple(record.errors)
            else:
                yield record.line, record.values
        if digest.hexdigest() != self.sha256:
            raise RegisterFileError(
                f"{self.name}: the file changed while it was being imported; nothing was imported"
            )


class RowsRegister(RegisterRows):
    """A register year's rows as values (a gRPC import's messages), numbered from 1 and named
    "row" in errors; hashed as the register file of these rows would be, so that the same rows
    imported from a file or from messages are the same import."""

    name = "row"

    def __init__(self, rows: Iterable[Row], year: int):
        self.rows = [list(r) for r in rows]
        self.year = year
        self.encoding = "utf-8"
        digest = hashlib.sha256()
        for line in _lines(self.rows):
            digest.update(line.encode("utf-8"))
        self.sha256 = digest.hexdigest()

    def raw(self) -> Iterator[tuple[int, list[str] | tuple[FieldError, ...]]]:
        yield from enumerate(self.rows, start=1)


def _lines(rows: Iterable[Row]) -> Iterator[str]:
    """The register file's lines: the header, then one line per row, as csv writes them."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(COLUMNS)
    for row in rows:
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        out.writerow(row)
    yield buffer.getvalue()


def write_register(path: str | Path, rows: Iterable[Row]) -> int:
    """Write a register CSV (UTF-8, the ledger's columns); return the number of rows."""
    n = -1
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        for line in _lines(rows):
            f.write(line)
            n += 1
    return n
