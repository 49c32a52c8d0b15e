"""What the command line prints: tables for people, JSON documents, errors on stderr, and the exit
status that says what happened (each error mapped to its status and its words)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import traceback
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from eventsourcing.persistence import PersistenceError

from adapters.files.csv_records import CsvFileError
from adapters.files.tokens import TokenFileError
from adapters.persistence.settings import SettingsError
from adapters.persistence.vault import VaultDamagedError
from adapters.reconciliation.job import RunLockedError
from domain.errors import ConcurrentWriteError, DamagedLogError, LedgerError, RejectedFileError
from domain.money import yuan
from domain.policy import PolicyFileError
from domain.results import jsonable

EXIT_OK, EXIT_FINDINGS, EXIT_REFUSED, EXIT_FAILURE = 0, 1, 2, 3

OPTIONS = frozenset(
    {
        "actor",
        "amount_fen",
        "authority",
        "document",
        "fiscal_year",
        "from_fiscal_year",
        "fund",
        "month",
        "person",
        "objections_to",
        "subject",
        "working_days",
        "from",
        "on",
        "to",
        "as_of",
        "baseline",
        "correction",
        "date",
        "known_at",
        "out",
        "paid_on",
        "policy",
        "reason",
        "received_on",
        "ref",
        "period",
        "targets",
    }
)
"""The application's argument names that the command line takes as options (`--known-at`)."""


def width(text: str) -> int:
    """Columns a string takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, size: int, *, right: bool = False) -> str:
    fill = " " * (size - width(text))
    return fill + text if right else text + fill


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], money: Sequence[str] = ()
) -> None:
    """A plain table for people; money columns (fen) are shown in yuan and headed `*_yuan`."""
    if not rows:
        print("(none)")
        return
    headers = [c.removesuffix("_fen") + "_yuan" if c in money else c for c in columns]
    cells = [
        [
            yuan(r[c]) if c in money and r[c] is not None else ("" if r[c] is None else str(r[c]))
            for c in columns
        ]
        for r in rows
    ]
    widths = [max(width(h), *(width(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print("  ".join(pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print(
            "  ".join(
                pad(v, w, right=columns[i] in money)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )


def emit_json(document: Any) -> None:
    """One JSON document on stdout: results as their JSON values (domain.results.jsonable)."""
    json.dump(jsonable(document), sys.stdout, ensure_ascii=False, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], encoding: str) -> None:
    """Rows as CSV on stdout, header first, in `encoding` (utf-8, or gb18030 for the systems
    that read only that)."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\r\n")
    out.writerow(columns)
    for r in rows:
        out.writerow(["" if r[c] is None else r[c] for c in columns])
    sys.stdout.flush()
    try:
        sys.stdout.buffer.write(text.getvalue().encode(encoding))
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        if isinstance(sys.stdout, ReaderMayLeave):
            sys.stdout._reader_gone()  # the reader left: the rest goes nowhere


def fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"subsidy-ledger: {line}", file=sys.stderr)
    return code


def refusal(error: LedgerError) -> str:
    """A refusal in the command line's words: the option it concerns, then what was wrong."""
    if error.field in OPTIONS:
        return f"--{error.field.replace('_', '-')}: {error}"
    return str(error)


class ReaderMayLeave:
    """Standard output for a reader that may stop reading (`| head -1`): once the pipe is
    closed, what is still written goes nowhere and the command runs to its end, so that its exit
    status tells what it did (a reconciliation with findings is 1 however much of its output was
    read), never a BrokenPipeError."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self.gone = True
        # What is left in the stream's buffer is flushed at exit: into /dev/null, not the pipe.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def process_defaults() -> Iterator[None]:
    """What every command runs under: files it makes are its user's alone (umask 077: the SQLite
    database, reports, anchors, tokens are 0600 unless the umask already asks for less), and an
    output reader that may leave (ReaderMayLeave)."""
    umask = os.umask(0o077)
    os.umask(umask | 0o077)
    stdout = sys.stdout
    sys.stdout = ReaderMayLeave(stdout)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = stdout
        os.umask(umask)


def guarded(command: Callable[[], int]) -> int:
    """Run a command; every error becomes its exit status and a message on stderr."""
    try:
        return command()
    except RejectedFileError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        return fail(str(e), EXIT_REFUSED)
    except LedgerError as e:
        return fail(refusal(e), EXIT_REFUSED)
    except (CsvFileError, SettingsError, PolicyFileError, TokenFileError) as e:
        return fail(str(e), EXIT_REFUSED)
    except (ConcurrentWriteError, RunLockedError, DamagedLogError, VaultDamagedError) as e:
        return fail(str(e), EXIT_FAILURE)
    except PersistenceError as e:
        return fail(f"database error: {e}".strip(), EXIT_FAILURE)
    except OSError as e:
        return fail(f"operational failure: {e}", EXIT_FAILURE)
    except Exception as e:
        if os.environ.get("LEDGER_DEBUG"):
            traceback.print_exc()
        return fail(
            f"unexpected failure ({type(e).__name__}: {e}); nothing partial was written; set "
            "LEDGER_DEBUG=1 for details",
            EXIT_FAILURE,
        )
