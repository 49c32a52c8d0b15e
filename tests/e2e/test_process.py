"""The program as a process: the exit status tells the truth when the reader of its output goes
away, the files it makes are its user's alone, and a server that cannot start says why (exit 2)
before it makes anything."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import Firm, ref_uscc, write_register

A = ref_uscc(1)
TREASURY = "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose\n"


def cli(
    *args: str, stdout: int | None = subprocess.PIPE, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.main", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    register = write_register(tmp_path / "2020.csv", [Firm(A)])
    done = cli("import-register", "--db", url, "--year", "2020", "--baseline", str(register))
    assert done.returncode == 0, done.stderr
    return url


def closed_reader() -> int:
    """A pipe whose reader has gone already: every write to it fails (`| head -1` that is done)."""
    read, write = os.pipe()
    os.close(read)
    return write


def test_a_reader_that_leaves_does_not_change_the_exit_status(ledger: str, tmp_path: Path) -> None:
    treasury = tmp_path / "treasury.csv"
    # A voucher the ledger never recorded: a finding, so the run's status is 1.
    treasury.write_text(TREASURY + f"GK9-1,{A},某公司,100.00,2021-03-01,小升规奖励\n", "utf-8")
    reconcile = ("reconcile", "--db", ledger, "--treasury", str(treasury), "--date", "2021-12-31")
    out = ("--out", str(tmp_path / "reports"))
    piped = closed_reader()
    try:
        gone = cli(*reconcile, *out, stdout=piped)
    finally:
        os.close(piped)
    assert gone.returncode == 1, gone.stderr
    assert "Traceback" not in gone.stderr and "BrokenPipe" not in gone.stderr
    # The run was made in full: its report is there, as when the output is read.
    assert (tmp_path / "reports" / "2021-12-31" / "report.json").is_file()
    read = cli(*reconcile, *out)
    assert read.returncode == 1 and "1 finding(s) (missing_in_ledger 1)" in read.stdout

    piped = closed_reader()
    try:
        listing = cli("awards", "--db", ledger, stdout=piped)
    finally:
        os.close(piped)
    assert (listing.returncode, listing.stderr) == (0, "")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_the_reports_are_the_user_s_alone(ledger: str, tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    assert mode(database) == 0o600
    treasury = tmp_path / "treasury.csv"
    treasury.write_text(TREASURY, "utf-8")
    out = tmp_path / "reports"
    done = cli(
        "reconcile", "--db", ledger, "--treasury", str(treasury), "--date", "2021-12-31",
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = [database, out, *out.rglob("*")]
    assert {p.name for p in made} >= {"report.json", "report.html", "anchors.txt"}
    for path in made:
        assert mode(path) & 0o077 == 0, (path, oct(mode(path)))


@pytest.mark.parametrize(
    ("listen", "said"),
    [
        ("0.0.0.0:50999", "binds only a loopback address"),
        ("127.0.0.1.nip.io:50999", "is a name, not an address"),
        ("localhost", "expected HOST:PORT"),
    ],
)
def test_a_server_that_cannot_start_says_why_and_makes_nothing(
    tmp_path: Path, listen: str, said: str
) -> None:
    database = tmp_path / "new.db"
    refused = cli(
        "serve", "--db", f"sqlite:///{database}", "--listen", listen,
        LEDGER_TOKENS_FILE=str(tmp_path / "tokens"),
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert said in refused.stderr and "unexpected" not in refused.stderr
    assert not database.exists()
