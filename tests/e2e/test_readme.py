"""The README's examples keep working: its CSV imports, every command it names exists, and the
auditor's chain script it quotes is the one tests/test_hash_chain.py runs."""

from __future__ import annotations

import re
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
    result = Cli(sqlite_url, capsys).import_year(path, 2020, baseline=True)
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
    assert [r.amount_fen for r in rows] == [10_000_000, 20_000_000, 30_000_000]
    assert rows[2].purpose.startswith('首次"小升规"奖励')
    assert rows[2].entitlement_ids == ("91140402000005071T/first_entry/2023",)
