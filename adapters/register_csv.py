"""The register file format: CSV, UTF-8 (BOM allowed) or GB18030, read twice without holding it."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

from domain.register import COLUMNS, FieldError, RegisterRow, checked_row, parse_row

ENCODINGS = ("utf-8", "gb18030")


class RegisterFileError(Exception):
    """The file cannot be read at all (missing, unreadable, changed while importing)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CsvRegister:
    """A register CSV for one year. `records()` makes a fresh pass over the file each time."""

    def __init__(self, path: str | Path, year: int, encoding: str = "utf-8"):
        self.path = Path(path)
        self.name = str(path)
        self.year = year
        if encoding.lower().replace("_", "-") in ("gbk", "gb2312", "gb18030"):
            encoding = "gb18030"  # GB18030 is a superset of GBK and GB2312
        if encoding not in ENCODINGS:
            raise RegisterFileError(
                f"{path}: encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}"
            )
        self.encoding = encoding
        try:
            self.sha256 = sha256_of(self.path)
        except OSError as e:
            raise RegisterFileError(f"{path}: cannot read: {e.strerror or e}") from e

    def _lines(self, errors: list[tuple[int, FieldError]], digest: hashlib._Hash) -> Iterator[str]:
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                digest.update(raw)
                if number == 1 and self.encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    yield raw.decode(self.encoding)
                except UnicodeDecodeError as e:
                    hint = (
                        "; if the file is GB18030/GBK, pass --encoding gb18030"
                        if self.encoding == "utf-8"
                        else "; check the file's encoding"
                    )
                    errors.append(
                        (
                            number,
                            FieldError(
                                "encoding", f"not valid {self.encoding} at byte {e.start}{hint}"
                            ),
                        )
                    )
                    yield raw.decode(self.encoding, errors="replace")

    def records(
        self, *, checked: bool = False
    ) -> Iterator[tuple[int, RegisterRow | list[FieldError]]]:
        """Every record after the header as (physical line, row or its errors).

        `checked`: a pass over a file already validated; the rows are only normalised, and the
        file's hash is verified at the end as always.
        """
        decode_errors: list[tuple[int, FieldError]] = []
        digest = hashlib.sha256()
        reader = csv.reader(self._lines(decode_errors, digest), strict=True)
        last_line = 0
        while True:
            line = last_line + 1  # a quoted field may span lines: report where the record starts
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                # The reader resumes on the next line, so the lines after this one are still read.
                last_line = reader.line_num
                decode_errors.clear()
                yield line, [FieldError("row", f"malformed CSV: {e}")]
                continue
            last_line = reader.line_num
            pending = [e for n, e in decode_errors if line <= n <= last_line]
            decode_errors.clear()
            if line == 1:
                if [v.strip() for v in values] != list(COLUMNS):
                    got = ",".join(values)
                    yield (
                        1,
                        [
                            FieldError(
                                "header", f"must be {','.join(COLUMNS)} in that order, got {got}"
                            )
                        ],
                    )
                elif pending:
                    yield 1, pending
                continue
            if not values or values == [""]:
                continue  # a blank line carries no row
            if pending:
                yield line, pending
                continue
            yield line, checked_row(values) if checked else parse_row(values, self.year)
        if last_line == 0:
            yield (
                1,
                [FieldError("header", f"the file is empty; line 1 must be {','.join(COLUMNS)}")],
            )
            return
        if digest.hexdigest() != self.sha256:
            raise RegisterFileError(
                f"{self.name}: the file changed while it was being imported; nothing was imported"
            )
