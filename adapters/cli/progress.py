"""Progress bars on stderr for the long commands (import, rebuild, verify, reconcile, demo), when
stderr is a terminal; nothing otherwise, so that logs and pipes get only what the command says."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

from domain.progress import Display

DELAY_SECONDS = 0.5
"""A stage done sooner than this draws nothing: the bars are for the waits people notice."""


class _TqdmBar:
    def __init__(self, bar: tqdm[Any]):
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def end(self) -> None:
        self.bar.close()


class TerminalBars:
    """One bar per stage, drawn on the stream, left in place when the stage ends."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def begin(self, what: str, total: int | None, unit: str) -> _TqdmBar:
        return _TqdmBar(
            tqdm(
                total=total,
                desc=what,
                unit=f" {unit}",
                file=self.stream,
                delay=DELAY_SECONDS,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        )


def terminal_bars(stream: TextIO | None = None) -> Display | None:
    """Bars on `stream` (default stderr) if it is a terminal, else None (nothing shown)."""
    stream = stream or sys.stderr
    return TerminalBars(stream) if stream.isatty() else None
