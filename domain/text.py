"""Text the ledger accepts: no control characters (NUL above all) and no lone surrogates in any
field of a file, an option or a message. PostgreSQL cannot store a NUL in text, a lone surrogate
cannot be written as UTF-8, and a line break or an escape sequence in a name or a reason would be
read back as something it is not."""

from __future__ import annotations

import re
from enum import Enum
from typing import TypeVar

from domain.errors import InvalidInputError

_UNWANTED = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LABELS = {0x00: "NUL", 0x09: "TAB", 0x1B: "ESC", 0x7F: "DEL"}


def has_control(value: str) -> bool:
    """Whether the text holds anything `control_problem` would name (one search, for hot paths)."""
    return _UNWANTED.search(value) is not None


def control_problem(value: str) -> str | None:
    """What is wrong with the text, or None: the first control character (C0, DEL or C1) or lone
    surrogate, named and placed (1-based)."""
    found = _UNWANTED.search(value)
    if found is None:
        return None
    char, at = found.group(), found.start() + 1
    code = ord(char)
    if char in "\n\r":
        return f"must be on one line (a line break at character {at})"
    if 0xD800 <= code <= 0xDFFF:
        what = f"an undecodable byte (U+{code:04X})"
    else:
        label = _LABELS.get(code)
        what = f"a control character (U+{code:04X}{' ' + label if label else ''})"
    return f"contains {what} at character {at}: remove it"


def checked_text(value: str, field: str, *, required: bool = True) -> str:
    """The text, if the ledger accepts it; InvalidInputError naming `field` otherwise."""
    if required and not value.strip():
        raise InvalidInputError("is required and may not be blank", field=field)
    problem = control_problem(value)
    if problem is not None:
        raise InvalidInputError(problem, field=field)
    return value


E = TypeVar("E", bound=Enum)


def checked_choice(choices: type[E], value: str, field: str, what: str) -> E:
    """The member of `choices` named `value`; InvalidInputError listing them otherwise (`what`:
    what a member is, e.g. "hold reason")."""
    try:
        return choices(value)
    except ValueError:
        names = ", ".join(str(c.value) for c in choices)
        raise InvalidInputError(f"{value!r} is not a {what}: one of {names}", field=field) from None
