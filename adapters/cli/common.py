"""What every command of the command line shares: its signature, who acts, and how it reports a
commit whose views could not be caught up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from adapters.bootstrap import default_actor
from domain.application import Ledger
from domain.results import jsonable

Command = Callable[[Ledger, argparse.Namespace], int]


def actor_of(a: argparse.Namespace) -> str:
    """Who acts: `--actor`, else the OS user."""
    return a.actor or default_actor()


def warn_views(r: Any) -> None:
    """A command committed but its views were not caught up after it: say so on stderr."""
    if r.views_error is not None:
        print(
            f"subsidy-ledger: warning: committed at position {r.position}, but the views could "
            f"not be caught up after it ({r.views_error}); the next command that reads them "
            "catches them up",
            file=sys.stderr,
        )


def as_rows(rows: list[Any]) -> list[dict[str, Any]]:
    """Typed results as the JSON objects a table or a document prints."""
    found: list[dict[str, Any]] = jsonable(rows)
    return found
