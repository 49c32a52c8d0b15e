"""The command line's argument types: the checks of option values every command shares."""

from __future__ import annotations

import argparse
from datetime import date

from adapters.persistence.chain import Anchor, parse_anchor
from domain.codes import CodeError, cities, validate_uscc


def year_arg(value: str) -> int:
    if not (value.isdigit() and len(value) == 4):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 4-digit year")
    return int(value)


def day_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def whole_arg(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number (0 or more)")
    return int(value)


def fen_arg(value: str) -> int:
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number of fen (1 yuan = 100 fen)"
        )
    return int(value)


def city_arg(value: str) -> str:
    if value not in cities():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Shanxi city code ({', '.join(sorted(cities()))})"
        )
    return value


def uscc_arg(value: str) -> str:
    try:
        return validate_uscc(value)
    except CodeError as e:
        raise argparse.ArgumentTypeError(f"USCC {value!r}: {e}") from None


def anchor_arg(value: str) -> Anchor:
    try:
        return parse_anchor(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def encoding_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--encoding",
        default="utf-8",
        choices=["utf-8", "gb18030", "gbk"],
        help=f"{what} (default utf-8, BOM allowed)",
    )
