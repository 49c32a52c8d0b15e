"""Progress bars: on a terminal, every long command draws a bar for each of its stages, to its
end; anywhere else (a pipe, a log, cron) it prints nothing but what it has to say."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from support.helpers import Firm, ref_uscc, write_register

from adapters.cli import progress
from adapters.main import main

FIRMS = [Firm(ref_uscc(i)) for i in range(1, 41)]
TREASURY = "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(args: list[str], db_url: str, monkeypatch: pytest.MonkeyPatch, *, tty: bool) -> str:
    """What the command wrote on stderr, a terminal or not."""
    stderr = Terminal() if tty else io.StringIO()
    monkeypatch.setattr(progress, "DELAY_SECONDS", 0)  # these stages are quick: draw them anyway
    monkeypatch.setattr("sys.stderr", stderr)
    code = main([*args, "--db", db_url])
    assert code in (0, 1), stderr.getvalue()
    return stderr.getvalue()


FRAME = re.compile(
    r"^(?P<desc>[^:]+): +(?:\d+%\|[^|]*\| (?P<done>\d+/\d+) |(?P<count>\d+) [a-z]+ )"
)


def finished(drawn: str) -> dict[str, str]:
    """Each bar's description and what its last frame counted: `N/TOTAL`, or `N` for a stage
    whose size is not known beforehand."""
    last: dict[str, str] = {}
    for frame in re.split(r"[\r\n]", drawn):
        m = FRAME.match(frame)
        if m:
            last[m["desc"]] = m["done"] or m["count"]
    return last


def test_each_long_command_draws_its_stages_to_the_end_on_a_terminal(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_register(tmp_path / "2020.csv", FIRMS)
    imported = run(
        ["import-register", "--year", "2020", "--baseline", str(path)],
        db_url,
        monkeypatch,
        tty=True,
    )
    bars = finished(imported)
    assert bars["check register 2020"] == "40"  # rows, counted as read (no total beforehand)
    assert bars["write register 2020"] == "40/40"
    behind = bars["bring the views up to date"]
    assert behind.split("/")[0] == behind.split("/")[1]  # every event the views were behind

    events = int(behind.split("/")[1])
    rebuilt = finished(run(["rebuild-projections"], db_url, monkeypatch, tty=True))
    assert rebuilt["bring the views up to date"] == f"{events}/{events}"
    verified = finished(run(["verify"], db_url, monkeypatch, tty=True))
    assert set(verified) == {"verify the hash chain"}

    treasury = tmp_path / "treasury.csv"
    treasury.write_text(TREASURY, "utf-8")
    reconcile = ["reconcile", "--treasury", str(treasury), "--date", "2021-01-01"]
    reconciled = finished(
        run([*reconcile, "--out", str(tmp_path / "r")], db_url, monkeypatch, tty=True)
    )
    assert {"read the treasury file", "verify the hash chain", "replay the log in memory"} <= set(
        reconciled
    )
    assert reconciled["replay the log in memory"] == f"{events}/{events}"


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_register(tmp_path / "2020.csv", FIRMS)
    args = ["import-register", "--year", "2020", "--baseline", str(path)]
    assert run(args, db_url, monkeypatch, tty=False) == ""
    assert run(["rebuild-projections"], db_url, monkeypatch, tty=False) == ""
    assert run(["verify"], db_url, monkeypatch, tty=False) == ""
