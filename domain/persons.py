"""People in the ledger's records (38号 (九) hires): the resident identity number's check, how
it is masked in messages, and the vault that keeps a person's details out of the log.

An identity number and a name are personal information (个人信息保护法): the log never holds
them. Events name a person by a pseudonym, a keyed hash of the identity number under a secret
kept outside the database; the details live encrypted, under a key of the person's own, in a
table the log does not chain (`PersonVault`, implemented in `adapters.persistence.vault`).
Destroying that key erases the person (crypto-shredding); the pseudonym and what was paid
remain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

# GB 11643-1999, ISO 7064 MOD 11-2: the weights of the 17 body digits, and the check character
# the sum modulo 11 indexes.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECKS = "10X98765432"
WORKING_AGE = 16
"""No one younger is hired (劳动法 第十五条: 禁止用人单位招用未满十六周岁的未成年人)."""


class PersonIdError(ValueError):
    """An identity number that fails its format, its birth date or its check character."""


def id_check_char(first17: str) -> str:
    """The 18th character of a resident identity number whose first 17 digits are given."""
    return _CHECKS[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def mask(person_id: str) -> str:
    """An identity number as a message may show it: the first 3 and last 4 characters (never
    the birth date, never the whole number)."""
    if len(person_id) < 8:
        return "*" * len(person_id)
    return person_id[:3] + "*" * (len(person_id) - 7) + person_id[-4:]


def normalised_id(value: str) -> str:
    """The identity number as the ledger keys it: stripped, a lower-case check `x` upper-cased."""
    text = value.strip()
    return text[:-1] + "X" if text.endswith("x") else text


def validate_person_id(value: str) -> str:
    """The normalised identity number if it is one (18 characters, a real birth date, its check
    character right); PersonIdError otherwise, never quoting the whole number."""
    pid = normalised_id(value)
    if len(pid) != 18:
        raise PersonIdError(f"must be 18 characters, got {len(pid)}")
    if not (pid[:17].isascii() and pid[:17].isdigit()) or pid[17] not in "0123456789X":
        raise PersonIdError(f"{mask(pid)}: must be 17 digits and a check character 0-9 or X")
    born = birth_date(pid)
    if born is None:
        raise PersonIdError(f"{mask(pid)}: positions 7-14 are not a real birth date YYYYMMDD")
    expected = id_check_char(pid[:17])
    if pid[17] != expected:
        raise PersonIdError(
            f"{mask(pid)}: the check character (ISO 7064 MOD 11-2) does not match the other 17 "
            "digits: check the number against the person's identity card"
        )
    return pid


def birth_date(person_id: str) -> date | None:
    """The birth date positions 7-14 give, or None if they are not a real date (from 1900)."""
    digits = person_id[6:14]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return born if born.year >= 1900 else None


def age_on(person_id: str, day: date) -> int:
    """Whole years of age on `day` of the person the (valid) identity number names."""
    born = birth_date(person_id)
    assert born is not None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class PersonDetails:
    """What the vault holds of a person, encrypted: identity number, name, and the category of
    hard-to-employ person (就业困难人员) each hire was registered under (sensitive: it may say
    that the person is disabled), by hire key `USCC/CONTRACT_START`."""

    person_id: str
    name: str
    categories: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Erasure:
    """A person's details destroyed: under which document, on which day."""

    document: str
    erased_on: date


class PersonVault(Protocol):
    """The personal details kept out of the log (adapters.persistence.vault)."""

    @property
    def fingerprint(self) -> str:
        """A fingerprint of the secret the pseudonyms are made under (never the secret): the
        ledger records it once, and refuses a secret that does not match."""
        ...

    def pseudonym(self, person_id: str) -> str:
        """The keyed hash naming this person in the log (the same for the same number)."""
        ...

    def read(self, pseudonyms: Sequence[str]) -> dict[str, PersonDetails | Erasure]:
        """What the vault holds of these people, by pseudonym (absent: never recorded)."""
        ...

    def keep(self, people: Mapping[str, PersonDetails]) -> None:
        """Record or replace these people's details, each sealed under its own key (made for a
        new person), in one transaction. An erased person is never written again."""
        ...

    def erase(self, pseudonym: str, erasure: Erasure) -> None:
        """Destroy the person's key and sealed details, keeping only the erasure's record."""
        ...
