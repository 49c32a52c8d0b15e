"""Money for people: integer fen written as yuan, exactly."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """Fen as yuan for people, exactly, by integer arithmetic: 30000000 -> '300,000.00'.

    Anything but a whole number of fen (a float, a bool, None) is refused, never rounded."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"money must be a whole number of fen, got {fen!r}")
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole:,}.{cents:02d}"
