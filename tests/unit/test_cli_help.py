"""`--help` tells every option's default: a user reading it never has to guess what a command
does when an option is left out."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from adapters.cli.parser import build_parser


def options(
    parser: argparse.ArgumentParser, name: str = "subsidy-ledger"
) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from options(sub, f"{name} {command}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield name, action


def test_every_option_is_explained_and_says_its_default() -> None:
    found = list(options(build_parser()))
    assert len(found) > 50
    for command, action in found:
        where = f"{command} {action.option_strings[0]}"
        assert action.help, f"{where} has no help"
        flag = isinstance(action, argparse._StoreTrueAction)
        if not (flag or action.required):
            assert "default" in action.help, f"{where}: the help does not say the default"


def test_a_default_the_help_states_is_the_parser_s_default() -> None:
    for command, action in options(build_parser()):
        if action.default not in (None, False) and action.help:
            shown = str(action.default)
            assert (
                shown in action.help
                or f"default: {shown}" in action.help
                or (
                    # the demo's directory is shown as a path
                    shown == "demo" and "./demo" in action.help
                )
            ), f"{command} {action.option_strings[0]}: default {shown!r} not in {action.help!r}"
