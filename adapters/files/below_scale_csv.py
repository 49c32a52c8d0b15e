"""A month's file of the below-scale database, as tax or statistics export it:
`uscc,name,region_code,industry_code,revenue_ytd_fen,employees,source`, one firm a row
(`revenue_ytd_fen`: main-business revenue from 1 January to the end of the month, in fen)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adapters.files.csv_records import clean_fields, csv_bytes, csv_encoding, read_rows, uscc_field
from domain.below_scale import BELOW_SCALE_COLUMNS, BelowScaleRow, Source
from domain.codes import CodeError, normalize_industry, resolve_region
from domain.errors import RowError
from domain.register import FieldError

_SOURCES = {s.value for s in Source}
T = TypeVar("T")


@dataclass(frozen=True)
class BelowScaleFile:
    """A below-scale file read whole: its rows with their lines, the hash of exactly the bytes
    they came from, and the lines that could not be read."""

    name: str
    sha256: str
    rows: list[tuple[int, BelowScaleRow]]
    errors: list[RowError]


def read_below_scale(path: str | Path, *, encoding: str = "utf-8") -> BelowScaleFile:
    """Read and check a below-scale file, reading it from disk once.

    Raises:
        CsvFileError: the file cannot be read, or the encoding is not one of those.
    """
    name = str(path)
    sha256, rows, errors = read_rows(
        path, csv_encoding(path, encoding), BELOW_SCALE_COLUMNS, "below-scale file", below_scale_row
    )
    return BelowScaleFile(name, sha256, rows, errors)


def _count(clean: dict[str, str], column: str, errors: list[FieldError], what: str) -> int | None:
    text = clean.get(column)
    if text is None:
        return None
    if not text:
        errors.append(FieldError(column, "missing: the field is required"))
        return None
    if not (text.isascii() and text.isdigit()):
        errors.append(FieldError(column, f"{text!r} is not {what} (a whole number, 0 or more)"))
        return None
    return int(text)


def _checked(
    clean: dict[str, str], column: str, check: Callable[[str], T], errors: list[FieldError]
) -> T | None:
    """The field as `check` reads it (the register's own check of it), or None (reported)."""
    text = clean.get(column)
    if text is None:
        return None
    if not text:
        errors.append(FieldError(column, "missing: the field is required"))
        return None
    try:
        return check(text)
    except CodeError as e:
        errors.append(FieldError(column, str(e)))
        return None


def below_scale_row(line: int, values: list[str]) -> tuple[int, BelowScaleRow] | list[FieldError]:
    """One row checked on its own, with its line, or what is wrong with it: the USCC, the region
    and the industry as the register checks them."""
    errors: list[FieldError] = []
    clean = clean_fields(BELOW_SCALE_COLUMNS, values, errors)
    uscc = uscc_field(clean, errors)
    if clean.get("name") == "":
        errors.append(FieldError("name", "missing: the field is required"))
    division = _checked(clean, "region_code", resolve_region, errors)
    industry = _checked(clean, "industry_code", normalize_industry, errors)
    revenue = _count(clean, "revenue_ytd_fen", errors, "an amount of fen")
    employees = _count(clean, "employees", errors, "a number of employees")
    source = clean.get("source")
    if source is not None and source not in _SOURCES:
        errors.append(
            FieldError(
                "source",
                f"{source!r} is not a reporting source: one of {', '.join(sorted(_SOURCES))}",
            )
        )
    if errors:
        return errors
    assert uscc and division and industry and revenue is not None and employees is not None
    assert source is not None
    row = BelowScaleRow(
        uscc,
        clean["name"],
        division.code,
        division.city_code,
        industry,
        revenue,
        employees,
        source,
    )
    return line, row


def below_scale_csv(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as the CSV file holds them (header first, UTF-8): what the demo writes and what an
    import over the wire hashes."""
    return csv_bytes(BELOW_SCALE_COLUMNS, rows)


def write_below_scale(
    path: str | Path, rows: Iterable[BelowScaleRow], encoding: str = "utf-8"
) -> int:
    """Write a below-scale file in the format above; return the rows written."""
    values = [
        [r.uscc, r.name, r.region_code, r.industry_code, r.revenue_ytd_fen, r.employees, r.source]
        for r in rows
    ]
    data = below_scale_csv(values)
    Path(path).write_bytes(data if encoding == "utf-8" else data.decode().encode(encoding))
    return len(values)
