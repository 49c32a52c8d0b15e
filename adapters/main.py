"""The `subsidy-ledger` program: the command line's parser, and each command handed to the adapter
that runs it (the gRPC server for `serve`, the demo for `demo`, the command line for the rest)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapters.cli import commands, operations
from adapters.cli.output import EXIT_REFUSED, fail, guarded, process_defaults
from adapters.cli.parser import build_parser
from adapters.cli.progress import terminal_bars
from domain.progress import showing


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from adapters.demo.run import run_demo

        return run_demo(out=args.out, seed=args.seed, scale=args.scale, as_json=args.json)
    if args.command == "serve":
        from adapters.grpc.server import serve
        from adapters.grpc.settings import ServeError

        try:
            return serve(args.db, listen=args.listen, tokens=args.tokens)
        except ServeError as e:
            return fail(str(e), EXIT_REFUSED)
    if args.command == "token":
        return operations.token(args)
    if args.command == "reconcile":
        return operations.reconcile_command(args)
    return commands.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Bars on a terminal for the long commands; a server's stderr is its log.
    bars = terminal_bars() if args.command != "serve" else None
    with process_defaults(), showing(bars):
        return guarded(lambda: _dispatch(args))


if __name__ == "__main__":
    sys.exit(main())
