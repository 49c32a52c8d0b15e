"""The treasury's payment file (国库集中支付), read for the nightly reconciliation.

Format
------
A CSV file as the treasury's centralised payment system exports it, in UTF-8 (a BOM is allowed)
or GB18030 (`--encoding gb18030`; gbk and gb2312 are read as gb18030, their superset). Line 1 is
the header, exactly

    voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose

(spaces around a name are tolerated, nothing else: no other order, case or extra column). Each
further line is one payment; blank lines are skipped, and a quoted field may span lines (a record
is reported on the line it starts on). The file is cumulative: every payment up to the
reconciliation date, so the same file grows from night to night.

- `voucher_no`: the treasury's voucher number, which is the ledger's payment ref. Required and
  taken exactly as written: spaces around it are an error, not trimmed away.
- `payee_uscc`: the payee's unified social credit code, 18 characters, check characters verified.
- `payee_name`: the payee's name, required.
- `amount_yuan`: yuan with exactly two decimals, `300000.00` or `0.01`; positive, with no sign,
  no thousands separators and no exponent. It is read into integer fen exactly.
- `paid_on`: the payment date as `YYYY-MM-DD`, not after the reconciliation date.
- `purpose`: free text, may be empty (on one line, as every field: no control characters). Every entitlement id written in it (`USCC/KIND/YEAR`, as in
  `首次小升规奖励 91140105000000211P/first_entry/2022`) is picked out, in order and once each;
  only an id whose USCC passes its check characters counts.

Spaces around payee_uscc, payee_name, amount_yuan and paid_on are ignored; purpose is kept as
written. The same voucher number on two lines is not an error here: the reconciliation reports it.
A file with any bad line is refused whole, with every bad line listed as FILE:LINE: FIELD: reason.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from adapters.files.csv_records import (
    csv_encoding,
    parse_day,
    read_rows,
    required,
    uscc_problem,
)
from domain.errors import TreasuryRejectedError
from domain.register import FieldError
from domain.text import control_problem, has_control

TREASURY_COLUMNS: tuple[str, ...] = (
    "voucher_no",
    "payee_uscc",
    "payee_name",
    "amount_yuan",
    "paid_on",
    "purpose",
)

_AMOUNT = re.compile(r"(0|[1-9][0-9]*)\.([0-9]{2})")
# An id standing on its own: not the tail or the head of a longer run of letters and digits.
_ENTITLEMENT_ID = re.compile(r"(?<![0-9A-Za-z])([0-9A-Z]{18})/[a-z0-9_]+/[0-9]{4}(?![0-9A-Za-z_])")
_MAX_FEN = 2**63 - 1  # BIGINT in SQL, int64 on the wire
_MAX_YUAN_DIGITS = len(str(_MAX_FEN // 100))

_T = TypeVar("_T")
_LAYOUT = str.maketrans("", "", "\n\r\t")
"""What a free-text purpose may hold besides text: line breaks and tabs."""


@dataclass(frozen=True, slots=True)
class TreasuryRow:
    """One payment of the treasury's file."""

    line: int
    """The physical line the record starts on."""
    voucher_no: str
    payee_uscc: str
    payee_name: str
    amount_fen: int
    paid_on: date
    purpose: str
    entitlement_ids: tuple[str, ...]


@dataclass(frozen=True)
class TreasuryFile:
    """A treasury file read whole: its rows, and the hash of exactly the bytes they came from."""

    name: str
    sha256: str
    encoding: str
    rows: list[TreasuryRow]


def read_treasury(path: str | Path, *, through: date, encoding: str = "utf-8") -> TreasuryFile:
    """Read and validate a treasury payment file, reading it from disk once.

    Args:
        path: the file; its name in messages is the path as given.
        through: the reconciliation date: the file holds the payments up to that day.
        encoding: utf-8 (a BOM allowed) or gb18030 (gbk and gb2312 are read as gb18030).

    Raises:
        CsvFileError: the file cannot be read, or the encoding is not one of those.
        TreasuryRejectedError: bad lines, every one listed; no row is returned.
    """
    name = str(path)
    encoding = csv_encoding(path, encoding)
    sha256, rows, errors = read_rows(
        path,
        encoding,
        TREASURY_COLUMNS,
        "treasury file",
        lambda line, values: _row(line, values, through),
    )
    if errors:
        raise TreasuryRejectedError(name, errors)
    return TreasuryFile(name, sha256, encoding, rows)


def entitlement_ids_in(text: str) -> tuple[str, ...]:
    """The entitlement ids (USCC/KIND/YEAR) written in a payment's purpose, in order, once each."""
    found: dict[str, None] = {}
    for match in _ENTITLEMENT_ID.finditer(text):
        if uscc_problem(match[1]) is None:  # a code that only looks like a USCC names nothing
            found.setdefault(match[0])
    return tuple(found)


def _row(line: int, values: list[str], through: date) -> TreasuryRow | list[FieldError]:
    errors: list[FieldError] = []
    control: dict[str, str] = {}
    if has_control("".join(values)):
        # A field with a control character is reported for that alone; the purpose, free text
        # kept as written, may hold line breaks and tabs.
        for column, value in zip(TREASURY_COLUMNS, values, strict=True):
            seen = value.translate(_LAYOUT) if column == "purpose" else value
            if (problem := control_problem(seen)) is not None:
                control[column] = problem
                errors.append(FieldError(column, problem))

    def check(column: str, parse: Callable[[str], _T], value: str) -> _T | None:
        if column in control:
            return None
        try:
            return parse(value)
        except ValueError as e:
            errors.append(FieldError(column, str(e)))
            return None

    voucher_no = check("voucher_no", _voucher_no, values[0])
    payee_uscc = check("payee_uscc", _payee_uscc, values[1].strip())
    payee_name = check("payee_name", _payee_name, values[2].strip())
    amount_fen = check("amount_yuan", _amount_fen, values[3].strip())
    paid_on = check("paid_on", lambda v: _paid_on(v, through), values[4].strip())
    purpose = values[5]
    if (
        control
        or voucher_no is None
        or payee_uscc is None
        or payee_name is None
        or amount_fen is None
        or paid_on is None
    ):
        return errors
    return TreasuryRow(
        line,
        voucher_no,
        payee_uscc,
        payee_name,
        amount_fen,
        paid_on,
        purpose,
        entitlement_ids_in(purpose),
    )


def _voucher_no(value: str) -> str:
    if required(value.strip()) != value:
        raise ValueError(
            f"{value!r} has spaces around it: write the voucher number exactly as the treasury "
            "issued it"
        )
    return value


def _payee_uscc(value: str) -> str:
    problem = uscc_problem(required(value))
    if problem is not None:
        raise ValueError(f"{value!r}: {problem}")
    return value


def _payee_name(value: str) -> str:
    return required(value)


def _amount_fen(value: str) -> int:
    m = _AMOUNT.fullmatch(required(value))
    if m is None:
        raise ValueError(
            f"{value!r} is not an amount in yuan: write it with exactly two decimals, no sign, "
            "no thousands separators, e.g. 300000.00"
        )
    # Exact, never through a float; a whole part longer than int() takes is too large anyway.
    fen = int(m[1]) * 100 + int(m[2]) if len(m[1]) <= _MAX_YUAN_DIGITS else _MAX_FEN + 1
    if fen > _MAX_FEN:
        raise ValueError(f"{value} is more than the ledger can hold")
    if fen == 0:
        raise ValueError(f"{value} is not positive: a payment moves money")
    return fen


def _paid_on(value: str, through: date) -> date:
    day = parse_day(value)
    if day > through:
        raise ValueError(
            f"{value} is after the reconciliation date {through}: the file is cumulative up to "
            f"that date; check the date, or reconcile through {value} or later"
        )
    return day


TreasuryLine = tuple[str, str, str, int, date, str]
"""voucher_no, payee_uscc, payee_name, amount in fen, paid_on, purpose."""


def amount_yuan(fen: int) -> str:
    """Fen as the file writes yuan, exactly: 30000000 -> '300000.00' (what `_amount_fen` reads)."""
    whole, cents = divmod(fen, 100)
    return f"{whole}.{cents:02d}"


def write_treasury(path: str | Path, lines: Iterable[TreasuryLine]) -> int:
    """Write a treasury file in the format above (UTF-8); return the rows written."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(TREASURY_COLUMNS)
        for voucher, uscc, name, fen, paid_on, purpose in lines:
            out.writerow((voucher, uscc, name, amount_yuan(fen), paid_on.isoformat(), purpose))
            count += 1
    return count
