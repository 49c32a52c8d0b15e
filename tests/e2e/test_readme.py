"""The README's examples keep working: its CSV imports, every command it names exists, and the
auditor's chain script it quotes is the one tests/test_hash_chain.py runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.helpers import ROOT, Cli

from adapters.cli.parser import build_parser

README = (ROOT / "README.md").read_text("utf-8")


def test_the_register_example_imports_as_a_baseline(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(r"```\n(uscc,name,.*?)```", README, re.S)
    assert block is not None
    path = tmp_path / "2020.csv"
    path.write_text(block.group(1), "utf-8")
    result = Cli(sqlite_url, capsys).import_year(path, 2021, baseline=True)
    assert result.code == 0, result.err
    assert result.json()["on_baseline"] == block.group(1).count("\n") - 1


def test_every_command_the_readme_shows_is_a_command() -> None:
    shown = set(re.findall(r"^### `([a-z-]+)", README, re.M))
    shown |= set(re.findall(r"subsidy-ledger ([a-z][a-z-]+)", README))
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert shown and shown <= commands, shown - commands


def test_the_auditors_script_is_quoted_as_the_file_the_tests_run() -> None:
    script = (ROOT / "docs" / "recheck_chain.py").read_text("utf-8")
    assert f"```python\n{script}```" in README


def test_the_treasury_example_reads_as_the_operations_section_says(tmp_path: Path) -> None:
    from datetime import date

    from adapters.files.treasury_csv import read_treasury

    block = re.search(r"```\n(voucher_no,payee_uscc,.*?)```", README, re.S)
    assert block is not None
    path = tmp_path / "payments.csv"
    path.write_text(block.group(1), "utf-8")
    rows = read_treasury(path, through=date(2026, 11, 26)).rows
    assert [r.amount_fen for r in rows] == [5_000_000, 10_000_000, 30_000_000]
    assert rows[2].purpose.startswith('首次"小升规"奖励')
    assert rows[2].entitlement_ids == ("91140100MA00ECQD8L/first_entry/2021",)


# Every command of the README, run as printed on a new demo ---------------------------------------

# Not run here, each for its reason: the front door itself (this suite is `make test`; the demo is
# made below by the command `make demo` runs), and the container deployment (tests/e2e/test_docker.py).
NOT_RUN = {
    "make demo": "the test makes the demo with the command `make demo` runs",
    "make test": "this suite",
    "docker compose -f docker/compose.yaml up": "the deployment: tests/e2e/test_docker.py",
}


@dataclass
class Shown:
    """A command the README shows: as printed, where, and (in a console block) what it printed."""

    line: int
    command: str
    output: list[str] | None


def shown_commands(readme: str) -> list[Shown]:
    """The commands of the README's `sh` and `console` blocks, in order (a `sh` line ending in a
    backslash goes on; comment lines are not commands)."""
    shown: list[Shown] = []
    fence: str | None = None
    pending = ""
    for n, line in enumerate(readme.splitlines(), 1):
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            continue
        if fence == "sh":
            text = pending + line
            if text.endswith("\\"):
                pending = text + "\n"  # bash reads the line on
                continue
            pending = ""
            if text.strip() and not text.lstrip().startswith("#"):
                shown.append(Shown(n, text, None))
        elif fence == "console":
            if line.startswith("$ "):
                shown.append(Shown(n, line[2:], []))
            elif shown and shown[-1].output is not None:
                shown[-1].output.append(line)
    return shown


def bare(command: str) -> str:
    """The command without a trailing comment."""
    return re.sub(r"\s+#[^'\"]*$", "", command).strip()


VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)"), "<instant>"),
    (re.compile(r"\d{4}-\d\d-\d\d"), "<date>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<sha256>"),
    (re.compile(r"\d[\d,]*"), "<n>"),
    (re.compile(r" +"), " "),
]


def masked(line: str) -> str:
    """A line with what differs from run to run (times, hashes, counts) masked, except the exit
    status a console example prints."""
    if re.fullmatch(r"exit \d+", line):
        return line
    for pattern, mask in VARYING:
        line = pattern.sub(mask, line)
    return line.rstrip()


@pytest.mark.slow
def test_every_command_of_the_readme_runs_as_printed_on_the_demo(tmp_path: Path) -> None:
    shown = shown_commands(README)
    run = [s for s in shown if bare(s.command) not in NOT_RUN]
    assert {bare(s.command) for s in shown} - {bare(s.command) for s in run} == set(NOT_RUN)
    assert len(run) > 30
    # The reader's folder: this checkout's docs and installed command, and a new demo in ./demo.
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the environment the suite runs in
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    # As the README's outputs were made: by root (the actor of what they record), 80 columns.
    env.update(USER="root", LOGNAME="root", COLUMNS="80")
    made = subprocess.run(
        [str(tmp_path / ".venv/bin/subsidy-ledger"), "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    script = ["exec 2>&1"]
    for i, s in enumerate(run):
        script += [s.command, f'echo "@@{i} $?"']
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    outputs: dict[int, list[str]] = {}
    statuses: dict[int, int] = {}
    lines: list[str] = []
    for line in done.stdout.splitlines():
        end = re.fullmatch(r"@@(\d+) (\d+)", line)
        if end:
            outputs[int(end[1])], statuses[int(end[1])], lines = lines, int(end[2]), []
        else:
            lines.append(line)
    report = "\n".join(
        f"README line {s.line}: $ {s.command}\n" + "\n".join(outputs.get(i, ["(not run)"])[:12])
        for i, s in enumerate(run)
    )
    for i, s in enumerate(run):
        assert i in statuses, f"README line {s.line} never finished:\n{report}"
        assert statuses[i] == 0, f"README line {s.line} exit {statuses[i]}: {s.command}\n{report}"
        if s.output is not None:
            assert [masked(x) for x in outputs[i]] == [masked(x) for x in s.output], (
                f"README line {s.line} printed otherwise than the README shows:\n{report}"
            )
