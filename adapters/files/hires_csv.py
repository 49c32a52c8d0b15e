"""The human-resources bureau's (九) files: hires of hard-to-employ people
(`uscc,person_id,person_name,category,contract_start,contract_end`, `contract_end` empty for an
open-ended contract) and a month's social-insurance contributions paid by each employer
(`uscc,person_id,employer_paid_fen`). An identity number is never quoted whole in a message."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from adapters.files.csv_records import (
    clean_fields,
    csv_bytes,
    csv_encoding,
    parse_day,
    read_rows,
    uscc_field,
)
from domain.errors import RowError
from domain.persons import PersonIdError, validate_person_id
from domain.register import FieldError
from domain.subsidy_results import ContributionRow, HireRow

HIRE_COLUMNS: tuple[str, ...] = (
    "uscc",
    "person_id",
    "person_name",
    "category",
    "contract_start",
    "contract_end",
)
CONTRIBUTION_COLUMNS: tuple[str, ...] = ("uscc", "person_id", "employer_paid_fen")
MAX_FEN = 2**63 - 1
"""What a BIGINT holds."""
_FEN = re.compile(r"[0-9]+")
_TEXT_LIMIT = 100

R = TypeVar("R")


@dataclass(frozen=True)
class SubsidyFile(Generic[R]):
    """A (九) file read whole: its rows, and the hash of exactly the bytes they came from."""

    name: str
    sha256: str
    rows: list[R]
    errors: list[RowError]
    """The lines that could not be read: the import lists them with those the ledger refuses."""


def read_hires(path: str | Path, *, encoding: str = "utf-8") -> SubsidyFile[HireRow]:
    """Read and check a hires file, reading it from disk once (CsvFileError if it cannot be)."""
    sha256, rows, errors = read_rows(
        path, csv_encoding(path, encoding), HIRE_COLUMNS, "hires file", hire_row
    )
    return SubsidyFile(str(path), sha256, rows, errors)


def read_contributions(
    path: str | Path, *, encoding: str = "utf-8"
) -> SubsidyFile[ContributionRow]:
    """Read and check a month's contributions file (CsvFileError if it cannot be read)."""
    sha256, rows, errors = read_rows(
        path,
        csv_encoding(path, encoding),
        CONTRIBUTION_COLUMNS,
        "contributions file",
        contribution_row,
    )
    return SubsidyFile(str(path), sha256, rows, errors)


def _person_id(clean: dict[str, str], errors: list[FieldError]) -> str | None:
    value = clean.get("person_id")
    if value is None:
        return None
    if not value:
        errors.append(FieldError("person_id", "missing: the resident identity number"))
        return None
    try:
        return validate_person_id(value)
    except PersonIdError as e:
        errors.append(FieldError("person_id", str(e)))
        return None


def _text(clean: dict[str, str], errors: list[FieldError], column: str, what: str) -> str | None:
    value = clean.get(column)
    if value is None:
        return None
    if not value:
        errors.append(FieldError(column, f"missing: {what}"))
        return None
    if len(value) > _TEXT_LIMIT:
        errors.append(FieldError(column, f"longer than {_TEXT_LIMIT} characters"))
        return None
    return value


def hire_row(line: int, values: list[str]) -> HireRow | list[FieldError]:
    """One row (`HIRE_COLUMNS`' values) checked on its own, or what is wrong with it."""
    errors: list[FieldError] = []
    clean = clean_fields(HIRE_COLUMNS, values, errors)
    uscc = uscc_field(clean, errors)
    pid = _person_id(clean, errors)
    name = _text(clean, errors, "person_name", "the person's name")
    category = _text(
        clean, errors, "category", "the category of hard-to-employ person (就业困难人员类别)"
    )
    start = end = None
    for column in ("contract_start", "contract_end"):
        text = clean.get(column)
        if text is None or (not text and column == "contract_end"):
            continue  # reported, or an open-ended contract (无固定期限劳动合同)
        try:
            day = parse_day(text)
        except ValueError as e:
            errors.append(FieldError(column, str(e)))
            continue
        if column == "contract_start":
            start = day
        else:
            end = day
    if errors:
        return errors
    assert uscc and pid and name and category and start is not None
    return HireRow(line, uscc, pid, name, category, start, end)


def contribution_row(line: int, values: list[str]) -> ContributionRow | list[FieldError]:
    """One row (`CONTRIBUTION_COLUMNS`' values) checked on its own, or what is wrong with it."""
    errors: list[FieldError] = []
    clean = clean_fields(CONTRIBUTION_COLUMNS, values, errors)
    uscc = uscc_field(clean, errors)
    pid = _person_id(clean, errors)
    fen = clean.get("employer_paid_fen")
    amount = None
    if fen is not None:
        if _FEN.fullmatch(fen) is None or int(fen) == 0:
            errors.append(
                FieldError(
                    "employer_paid_fen",
                    f"{fen!r} is not a positive whole number of fen (1 yuan = 100 fen; no sign, "
                    "no decimal point): what the employer paid of the person's insurance",
                )
            )
        elif int(fen) > MAX_FEN:
            errors.append(FieldError("employer_paid_fen", f"{fen} is beyond any amount paid"))
        else:
            amount = int(fen)
    if errors:
        return errors
    assert uscc and pid and amount is not None
    return ContributionRow(line, uscc, pid, amount)


def hires_csv(rows: Iterable[Sequence[object]]) -> bytes:
    """Hires as the file holds them (UTF-8): what the demo writes, and what an import over the
    wire hashes."""
    return csv_bytes(HIRE_COLUMNS, rows)


def contributions_csv(rows: Iterable[Sequence[object]]) -> bytes:
    """A month's contributions as the file holds them (UTF-8)."""
    return csv_bytes(CONTRIBUTION_COLUMNS, rows)
