"""CSV files as the bureaus and the treasury export them: records with the physical line they start on."""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

from domain.codes import CodeError, validate_uscc
from domain.errors import RowError
from domain.persons import mask
from domain.progress import stage
from domain.register import FieldError
from domain.text import control_problem

ENCODINGS = ("utf-8", "gb18030")
_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
"""What a resident identity number looks like (and an all-digit USCC: masked alike)."""


class CsvFileError(Exception):
    """The file cannot be read at all (missing, unreadable, unknown encoding, changed while read)."""


class Record(NamedTuple):
    """A data record with as many fields as the header, and the physical line it starts on."""

    line: int
    values: list[str]


class BadLine(NamedTuple):
    """A record that is not CSV, not in the encoding, of the wrong width, or a wrong header."""

    line: int
    errors: list[FieldError]


def csv_encoding(path: str | Path, encoding: str) -> str:
    """The codec to read the file with: utf-8 or gb18030 (gbk and gb2312 are read as gb18030)."""
    if encoding.lower().replace("_", "-") in ("gbk", "gb2312", "gb18030"):
        return "gb18030"  # GB18030 is a superset of GBK and GB2312
    if encoding not in ENCODINGS:
        raise CsvFileError(
            f"{path}: encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}"
        )
    return encoding


def _open(path: str | Path) -> BinaryIO:
    try:
        return Path(path).open("rb")
    except OSError as e:
        raise CsvFileError(f"{path}: cannot read: {e.strerror or e}") from e


def sha256_of(path: str | Path) -> str:
    """The hash of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with _open(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lines(
    path: str | Path,
    encoding: str,
    errors: list[tuple[int, FieldError]],
    digest: hashlib._Hash,
) -> Iterator[str]:
    first_bad = 0
    with _open(path) as f:
        for number, raw in enumerate(f, start=1):
            digest.update(raw)
            if number == 1 and encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as e:
                if first_bad:  # one line says what is wrong; the others are counted
                    reason = f"not valid {encoding} either"
                else:
                    first_bad = number
                    hint = (
                        ": the file looks like GB18030/GBK; pass --encoding gb18030"
                        if encoding == "utf-8"
                        else ": check the file's encoding"
                    )
                    reason = (
                        f"not valid {encoding}: byte 0x{raw[e.start]:02x} at byte {e.start + 1} "
                        f"of the line{hint}"
                    )
                errors.append((number, FieldError("encoding", reason)))
                yield raw.decode(encoding, errors="replace")


def csv_records(
    path: str | Path, encoding: str, columns: Sequence[str], digest: hashlib._Hash
) -> Iterator[Record | BadLine]:
    """Every record after the header, or what is wrong with it; blank lines are skipped.

    The file is read once, from start to end: `digest` is fed every byte of it, so that the caller
    has the file's hash of exactly the bytes its rows came from.
    """
    header = ",".join(columns)
    decode_errors: list[tuple[int, FieldError]] = []
    reader = csv.reader(_lines(path, encoding, decode_errors, digest), strict=True)
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
            yield BadLine(line, [FieldError("row", f"malformed CSV: {e}")])
            continue
        last_line = reader.line_num
        pending = [e for n, e in decode_errors if line <= n <= last_line]
        decode_errors.clear()
        if line == 1:
            if [v.strip() for v in values] != list(columns):
                # A damaged header may hold a row's values: an identity number is masked there
                # as everywhere (the (九) hires' files).
                got = _ID_LIKE.sub(lambda m: mask(m.group()), ",".join(values))
                yield BadLine(
                    1, [FieldError("header", f"must be {header} in that order, got {got}")]
                )
            elif pending:
                yield BadLine(1, pending)
            continue
        if not values or values == [""]:
            continue  # a blank line carries no row
        if pending:
            yield BadLine(line, pending)
        elif len(values) != len(columns):
            yield BadLine(
                line,
                [
                    FieldError(
                        "row", f"expected {len(columns)} fields ({header}), got {len(values)}"
                    )
                ],
            )
        else:
            yield Record(line, values)
    if last_line == 0:
        yield BadLine(1, [FieldError("header", f"the file is empty; line 1 must be {header}")])


_Row = TypeVar("_Row")


def read_rows(
    path: str | Path,
    encoding: str,
    columns: Sequence[str],
    what: str,
    parse: Callable[[int, list[str]], _Row | list[FieldError]],
) -> tuple[str, list[_Row], list[RowError]]:
    """A CSV file read once, each record parsed on its own (`parse(line, values)`: the row, or
    what is wrong with it): the file's SHA-256, the rows, and every bad line.

    Raises CsvFileError if the file cannot be read at all.
    """
    digest = hashlib.sha256()
    rows: list[_Row] = []
    errors: list[RowError] = []
    with stage(f"read the {what}") as bar:
        for record in csv_records(path, encoding, columns, digest):
            bar.advance()
            if isinstance(record, BadLine):
                errors.extend(RowError(record.line, e.field, e.reason) for e in record.errors)
                continue
            row = parse(record.line, record.values)
            if isinstance(row, list):
                errors.extend(RowError(record.line, e.field, e.reason) for e in row)
            else:
                rows.append(row)
    return digest.hexdigest(), rows, errors


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """Rows as a file of this format holds them (the header first, UTF-8, `\n` line ends): what
    a file writer writes, and what an import that came over the wire hashes, so that the same
    rows give the same hash."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(columns)
    out.writerows(rows)
    return text.getvalue().encode("utf-8")


# Fields every file format checks the same way --------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def required(value: str) -> str:
    if not value:
        raise ValueError("missing: the field is required")
    return value


@functools.lru_cache(maxsize=1 << 16)
def uscc_problem(code: str) -> str | None:
    """What is wrong with a USCC, or None. Cached: a payee's code recurs in its row's purpose and
    in its other payments, and checking it is most of the time a row takes."""
    try:
        validate_uscc(code)
    except CodeError as e:
        return str(e)
    return None


def parse_day(value: str) -> date:
    """A date written YYYY-MM-DD; ValueError saying what is wrong otherwise."""
    if _DATE.fullmatch(required(value)) is None:
        raise ValueError(f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2023-03-15")
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"{value} is not a real date: {e}") from None


def clean_fields(
    columns: Sequence[str], values: list[str], errors: list[FieldError]
) -> dict[str, str]:
    """A record's fields stripped of surrounding spaces, by column; a field with a control
    character is left out and reported."""
    clean: dict[str, str] = {}
    for column, value in zip(columns, values, strict=True):
        problem = control_problem(value)
        if problem is not None:
            errors.append(FieldError(column, problem))
        else:
            clean[column] = value.strip()
    return clean


def uscc_field(clean: dict[str, str], errors: list[FieldError], column: str = "uscc") -> str | None:
    """The record's USCC if it is one (None, reported, otherwise)."""
    uscc = clean.get(column)
    if uscc is None:
        return None
    wrong = uscc_problem(uscc) if uscc else "missing: the field is required"
    if wrong is not None:
        errors.append(FieldError(column, f"{uscc!r}: {wrong}" if uscc else wrong))
        return None
    return uscc


def period_fields(
    clean: dict[str, str], errors: list[FieldError], start: str, end: str
) -> tuple[date | None, date | None]:
    """A period's first day (required) and last (empty: open-ended), both included, the last
    not before the first; None where a field is missing or wrong (reported)."""
    days: dict[str, date | None] = {}
    for column in (start, end):
        text = clean.get(column)
        if text is None:
            continue
        if not text and column == end:
            days[column] = None  # open-ended
            continue
        try:
            days[column] = parse_day(text)
        except ValueError as e:
            errors.append(FieldError(column, str(e)))
    first, last = days.get(start), days.get(end)
    if first is not None and last is not None and last < first:
        errors.append(FieldError(end, f"{last} is before {start} {first}: check the dates"))
    return first, last
