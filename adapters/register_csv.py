"""The register file format: CSV, UTF-8 (BOM allowed) or GB18030, read twice without holding it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from adapters.csv_records import BadLine, CsvFileError, csv_encoding, csv_records, sha256_of
from domain.register import COLUMNS, FieldError, RegisterRow, checked_row, parse_row

RegisterFileError = CsvFileError
"""The register's name for a file that cannot be read at all (the CLI and gRPC catch it)."""


class CsvRegister:
    """A register CSV for one year. `records()` makes a fresh pass over the file each time."""

    def __init__(self, path: str | Path, year: int, encoding: str = "utf-8"):
        self.path = Path(path)
        self.name = str(path)
        self.year = year
        self.encoding = csv_encoding(path, encoding)
        self.sha256 = sha256_of(path)

    def records(
        self, *, checked: bool = False
    ) -> Iterator[tuple[int, RegisterRow | list[FieldError]]]:
        """Every record after the header as (physical line, row or its errors).

        `checked`: a pass over a file already validated; the rows are only normalised, and the
        file's hash is verified at the end as always.
        """
        digest = hashlib.sha256()
        for record in csv_records(self.name, self.encoding, COLUMNS, digest):
            if isinstance(record, BadLine):
                yield record.line, record.errors
            elif checked:
                yield record.line, checked_row(record.values)
            else:
                yield record.line, parse_row(record.values, self.year)
        if digest.hexdigest() != self.sha256:
            raise RegisterFileError(
                f"{self.name}: the file changed while it was being imported; nothing was imported"
            )
