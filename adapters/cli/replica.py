"""Queries read from a streaming replica (LEDGER_READ_DATABASE_URL): which commands are
queries, and a query answered there, or handed back to the primary when the replica has not
reached the position asked for."""

from __future__ import annotations

import argparse
import sys

from adapters.bootstrap import caught_up_to, open_reader, read_wait_seconds
from adapters.cli.common import Command
from domain.errors import ReplicaBehindError

QUERIES = frozenset(
    {
        "awards",
        "totals",
        "windows",
        "enterprise",
        "register",
        "explain",
        "audit-trail",
        "reconciliations",
        "pipeline",
        "progress",
        "si-claims",
        "forecast",
        "priority",
    }
)
"""The commands that only read: with LEDGER_READ_DATABASE_URL they read from the replica."""


def on_replica(command: Command, a: argparse.Namespace) -> int | None:
    """A query answered by the replica (LEDGER_READ_DATABASE_URL), or None when there is none or
    it has not reached the position asked for (`--known-at @N`) within LEDGER_READ_WAIT_SECONDS:
    the primary answers then, and stderr says so."""
    reader = open_reader()
    if reader is None:
        return None
    with reader:
        known_at = getattr(a, "known_at", None) or ""
        wanted = int(known_at[1:]) if known_at[:1] == "@" and known_at[1:].isdigit() else 0
        waited = read_wait_seconds()
        try:
            if caught_up_to(reader, wanted, waited):
                return command(reader, a)
        except ReplicaBehindError:
            pass
        print(
            f"subsidy-ledger: note: the replica's views were at position "
            f"{reader.views.position()}, not at {known_at or 'the position asked'}, after "
            f"{waited:g} s: answered from the primary",
            file=sys.stderr,
        )
    return None
