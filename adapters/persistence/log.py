"""The names and bounds both recorders of the log share."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

Moved = Callable[[dict[UUID, int]], None] | None
"""What an import is told, under the log's lock: each aggregate moved since it read the log, at its
latest version."""

COMMITS_TABLE = "ledger_commits"
CHAIN_TABLE = "ledger_chain"
CHAIN_FETCH_ROWS = 10_000
"""Rows read at a time for the chain: memory stays bounded at any log size."""
MAX_POSITION = 2**63 - 1
MIN_POSITION = -(2**63)
"""Bounds of a position, for reads of the whole log (a row inserted by hand may lie anywhere)."""


def stored_bytes(value: object) -> bytes:
    """An event's stored state as bytes, whatever a hand edit left in the column: text (SQLite
    keeps any value in any column) as its UTF-8, NULL as nothing. Such a state then fails to
    decode where it is read, and the chain, which hashes the same bytes, breaks there."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return b"" if value is None else str(value).encode()
