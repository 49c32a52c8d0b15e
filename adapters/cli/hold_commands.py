"""The commands of compliance holds: `hold place`, `hold lift`, `import-holds`."""

from __future__ import annotations

import argparse

from adapters.cli.arguments import day_arg, encoding_option, uscc_arg
from adapters.cli.common import Command, actor_of, warn_views
from adapters.cli.output import EXIT_OK, emit_json
from adapters.files.holds_csv import read_holds
from domain.application import Ledger
from domain.command_results import HoldResult
from domain.holds import HoldReason, HoldRow
from domain.results import jsonable


def _hold(ledger: Ledger, a: argparse.Namespace) -> int:
    """`hold place`, `hold lift`."""
    if a.action == "place":
        row = HoldRow(
            0, a.uscc, HoldReason(a.reason), a.authority, a.document, a.valid_from, a.valid_to
        )
        r = ledger.place_hold(row, actor=actor_of(a))
        return _said(r, a, f"the hold on {a.uscc} under {a.document}")
    r = ledger.lift_hold(a.uscc, a.document, a.on, a.reason, actor=actor_of(a))
    return _said(r, a, f"the lift of {a.uscc}'s hold under {a.document} from {a.on}")


def _import_holds(ledger: Ledger, a: argparse.Namespace) -> int:
    source = read_holds(a.file, encoding=a.encoding)
    r = ledger.import_holds(
        source.name, source.sha256, source.rows, actor=actor_of(a), unreadable=source.errors
    )
    return _said(r, a, f"{a.file} (sha256 {source.sha256})")


def _said(r: HoldResult, a: argparse.Namespace, what: str) -> int:
    warn_views(r)
    if a.json:
        emit_json(jsonable(r))
        return EXIT_OK
    if r.replay:
        print(
            f"{what} was already recorded; nothing changed"
            + (f" ({r.held} holds)" if r.held else "")
        )
    elif r.sha256 is not None:
        print(
            f"imported holds from {what} at position {r.position}: placed {r.placed}, held "
            f"already {r.held}, firms identified {len(r.identified)}"
        )
    else:
        print(f"recorded {what} at position {r.position}")
    return EXIT_OK


HOLD_COMMANDS: dict[str, Command] = {"hold": _hold, "import-holds": _import_holds}


def add_hold_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    listing: argparse.ArgumentParser,
) -> None:
    """The hold commands' parsers."""
    reasons = [r.value for r in HoldReason]
    p = sub.add_parser("hold", help="compliance holds: place one on a firm, lift one")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = actions.add_parser(
        "place",
        parents=[common, listing],
        help="hold a firm's payments (a default list, an investigation, a deregistration)",
    )
    v.add_argument("uscc", metavar="USCC", type=uscc_arg)
    v.add_argument("--reason", required=True, choices=reasons, help="why the firm is held")
    v.add_argument("--authority", required=True, help="whose list or decision it is (recorded)")
    v.add_argument(
        "--document", required=True, help="the list's or decision's document (names the hold)"
    )
    v.add_argument(
        "--from",
        dest="valid_from",
        type=day_arg,
        required=True,
        metavar="DATE",
        help="its first day in force",
    )
    v.add_argument(
        "--to",
        dest="valid_to",
        type=day_arg,
        metavar="DATE",
        help="its last day in force (default: until lifted)",
    )
    v = actions.add_parser(
        "lift", parents=[common, listing], help="lift a firm's hold from a day (the first day free)"
    )
    v.add_argument("uscc", metavar="USCC", type=uscc_arg)
    v.add_argument("--document", required=True, help="the document the hold was placed under")
    v.add_argument(
        "--on", type=day_arg, required=True, metavar="DATE", help="the first day free of the hold"
    )
    v.add_argument(
        "--reason", required=True, help="why it is lifted, and under which instrument (recorded)"
    )
    p = sub.add_parser(
        "import-holds",
        parents=[common, listing],
        help="import a list of holds (CSV uscc,reason,authority,document,from,to), all or none",
    )
    p.add_argument("file", metavar="FILE", help="the holds (CSV, format in the README)")
    encoding_option(p, "file encoding")
