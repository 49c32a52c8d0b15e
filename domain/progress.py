"""How far a long piece of work has come.

The application, the views and the stores say what they are doing (`stage`) and how much of it is
done (`Bar.advance`); nothing is shown unless an adapter has installed a display for the work
(`showing`): the command line draws bars on a terminal (adapters.cli.progress). The ledger's code
never knows whether anyone looks, and pays nothing for it when no one does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Bar(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def end(self) -> None: ...


class Display(Protocol):
    def begin(self, what: str, total: int | None, unit: str) -> Bar: ...


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass

    def end(self) -> None:
        pass


SILENT: Bar = _Silent()
_display: ContextVar[Display | None] = ContextVar("progress display", default=None)


def shown() -> bool:
    """Whether anyone looks: work that costs something only to size a bar may then be done."""
    return _display.get() is not None


@contextmanager
def stage(what: str, total: int | None = None, unit: str = "rows") -> Iterator[Bar]:
    """A stage of the work, `total` units long (None: not known beforehand)."""
    display = _display.get()
    if display is None:
        yield SILENT
        return
    bar = display.begin(what, total, unit)
    try:
        yield bar
    finally:
        bar.end()


@contextmanager
def showing(display: Display | None) -> Iterator[None]:
    """Show the stages of the work done inside on `display` (None: nothing)."""
    token = _display.set(display)
    try:
        yield
    finally:
        _display.reset(token)
