"""Identifier checks: USCC (GB 32100-2015), Shanxi division codes and GB/T 4754-2017 industry classes."""

from __future__ import annotations

import csv
import io
import operator
from dataclasses import dataclass
from functools import cache
from importlib import resources

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# GB 11714: digits count as themselves, letters A=10 … Z=35; a check of 10 is X, 11 is 0.
_ORG_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_ORG_CHECK = {n: {10: "X", 11: "0"}.get(n, str(n)) for n in range(1, 12)}


class CodeError(ValueError):
    """A code that fails its format or check; the message says what is wrong."""


def uscc_check_char(first17: str) -> str:
    """The 18th character of a USCC whose first 17 characters are given."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_check_char(body8: str) -> str:
    """The check character of an organisation code (GB 11714) with the given 8-character body."""
    if len(body8) != len(_ORG_WEIGHTS):
        raise ValueError(f"an organisation code body has 8 characters, got {body8!r}")
    total = sum(map(operator.mul, map(_ORG_VALUE.__getitem__, body8), _ORG_WEIGHTS))
    return _ORG_CHECK[11 - total % 11]


def validate_uscc(code: str) -> str:
    """Return the USCC if valid, else raise CodeError saying which part is wrong."""
    try:
        values = [_USCC_VALUE[c] for c in code]
    except KeyError:
        values = []
    if len(code) != 18:
        raise CodeError(f"must be 18 characters, got {len(code)}")
    if len(values) != 18:
        if code != code.upper():
            raise CodeError("must be upper case")
        bad = sorted({c for c in code if c not in _USCC_VALUE})
        raise CodeError(
            f"character(s) {''.join(bad)!r} not allowed (I, O, Z, S, V and punctuation never occur)"
        )
    if not code[2:8].isdigit():
        raise CodeError(f"positions 3-8 must be a 6-digit division code, got {code[2:8]!r}")
    body, org_check = code[8:16], code[16]
    expected_org = org_check_char(body)
    if org_check != expected_org:
        raise CodeError(
            f"organisation code check character is {org_check!r}, expected {expected_org!r} "
            f"for {body!r}: the code is mistyped"
        )
    total = sum(map(operator.mul, values, _USCC_WEIGHTS))  # zip stops at the 17 weights
    expected = USCC_ALPHABET[(31 - total % 31) % 31]
    if code[17] != expected:
        raise CodeError(
            f"check character is {code[17]!r}, expected {expected!r}: the code is mistyped"
        )
    return code


def make_uscc(division: str, org_body: str, prefix: str = "91") -> str:
    """Build a valid USCC from a division code and an 8-character organisation code body."""
    first17 = prefix + division + org_body + org_check_char(org_body)
    return first17 + uscc_check_char(first17)


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    level: str  # city | county | zone
    city_code: str


@cache
def divisions() -> dict[str, Division]:
    """Shanxi's cities, county-level units and statistical zones, by 6-digit code."""
    text = resources.files("domain").joinpath("data/shanxi_divisions.csv").read_text("utf-8")
    return {
        row["code"]: Division(row["code"], row["name"], row["level"], row["city_code"])
        for row in csv.DictReader(io.StringIO(text))
    }


def cities() -> dict[str, Division]:
    """The 11 prefecture-level cities, by code."""
    return {c: d for c, d in divisions().items() if d.level == "city"}


def resolve_region(code: str) -> Division:
    """The county-level unit or zone for a 6-digit code or a 12-digit statistical code."""
    if not code.isdigit() or len(code) not in (6, 12):
        raise CodeError(f"must be 6 digits or a 12-digit statistical code, got {code!r}")
    division = divisions().get(code[:6])
    if division is None:
        raise CodeError(
            f"{code[:6]} is not a Shanxi division code (see domain/data/shanxi_divisions.csv)"
        )
    if division.level == "city":
        raise CodeError(
            f"{code[:6]} is the city {division.name}; give the firm's county-level unit or zone"
        )
    return division


# GB/T 4754-2017: industry is section B (mining, divisions 06-12), C (manufacturing, 13-43)
# and D (utilities, 44-46).
_SECTIONS = {"B": range(6, 13), "C": range(13, 44), "D": range(44, 47)}


def industry_section(division: int) -> str | None:
    for section, span in _SECTIONS.items():
        if division in span:
            return section
    return None


def normalize_industry(code: str) -> str:
    """Return the 4-digit industrial class of 'C1311' or '1311', else raise CodeError."""
    letter, digits = (code[0], code[1:]) if code[:1].isalpha() else ("", code)
    if len(digits) != 4 or not (digits.isascii() and digits.isdigit()):
        raise CodeError(
            f"must be a 4-digit GB/T 4754-2017 class, optionally after its section letter, got {code!r}"
        )
    section = industry_section(int(digits[:2]))
    if section is None:
        raise CodeError(
            f"division {digits[:2]} is not industrial: industry is B 06-12, C 13-43, D 44-46"
        )
    if letter and letter != section:
        raise CodeError(
            f"section letter {letter!r} does not match division {digits[:2]} (section {section})"
        )
    return digits
