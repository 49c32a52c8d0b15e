"""The one seam over the two stores' SQL that the views' runner and queries use: a transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

STREAM_ROWS = 10000
"""Rows fetched at a time by `Tx.stream`."""


REPLACEMENT = "\ufffd"
"""What stands, in a view row, for a character its store cannot hold (see the runner's commit)."""


class Tx(Protocol):
    clean: bool
    """Replace characters the store cannot hold (writes only)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Like execute, with plain tuples for rows: for reads of many rows."""
        ...

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Like rows, fetched a batch at a time: for reads of a whole table."""
        ...

    def matching(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """`column` matching any of `values`, as (condition, params) pieces to run in turn."""
        ...

    def bulk_insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
    ) -> None: ...

    def close_versions(
        self, table: str, key: Sequence[str], closes: Sequence[tuple[int, Sequence[Any]]]
    ) -> None:
        """End the current version of each key at its position: `known_to = position` where
        the key matches, `known_to` is null and `known_from < position`. A key once only."""
        ...
