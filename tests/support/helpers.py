"""Helpers for the tests: reference check characters (from DOMAIN.md, not from the code), register
CSV files and the CLI run in-process."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""
HEADER = "uscc,name,region_code,industry_code,size_class,route,first_entry_year"

# GB 32100-2015 as DOMAIN.md states it: the alphabet and the weights written out by hand.
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def ref_uscc_check(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def ref_org_check(body8: str) -> str:
    def value(c: str) -> int:
        return int(c) if c.isdigit() else 10 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(c)

    check = 11 - sum(value(c) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def ref_uscc(n: int, division: str = "140105", prefix: str = "91") -> str:
    """A valid USCC whose organisation code body is the number n, zero-padded to 8 digits."""
    body = f"{n:08d}"
    first17 = prefix + division + body + ref_org_check(body)
    return first17 + ref_uscc_check(first17)


@dataclass(frozen=True)
class Firm:
    """One register row; the defaults make a valid small manufacturer in 小店区 (Taiyuan)."""

    uscc: str
    name: str = "山西测试制造有限公司"
    region_code: str = "140105"
    industry_code: str = "C1311"
    size_class: str = ""
    route: str = ""
    first_entry_year: str = ""

    def line(self) -> str:
        return ",".join(
            (
                self.uscc,
                self.name,
                self.region_code,
                self.industry_code,
                self.size_class,
                self.route,
                self.first_entry_year,
            )
        )


def write_register(
    path: Path,
    rows: Sequence[Firm | str],
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    header: str = HEADER,
) -> Path:
    """Write a register CSV: the header, then one line per row (a Firm or a raw line)."""
    text = "\n".join([header, *(r.line() if isinstance(r, Firm) else r for r in rows)]) + "\n"
    data = text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """`subsidy-ledger` in-process against one database, capturing its output."""

    def __init__(self, db_url: str, capsys: pytest.CaptureFixture[str]):
        self.db_url = db_url
        self.capsys = capsys

    def run(self, *args: str) -> Result:
        from adapters.main import main

        self.capsys.readouterr()  # drop anything printed before
        code = main([*args, "--db", self.db_url])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok_json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.code == 0, result.err
        return result.json()

    def import_year(
        self, path: Path, year: int, *, baseline: bool = False, encoding: str | None = None
    ) -> Result:
        args = ["import-register", "--year", str(year), str(path)]
        if baseline:
            args.append("--baseline")
        if encoding:
            args += ["--encoding", encoding]
        return self.run(*args, "--json")

    def listing(self, command: str, *args: str) -> list[dict[str, Any]]:
        """The rows of a register-wide answer (awards, totals, windows, register), which also
        names the point it was computed at."""
        doc = self.ok_json(command, *args)
        assert set(doc) == {"as_of", "known_at", command}, doc.keys()
        rows: list[dict[str, Any]] = doc[command]
        return rows

    def awards(self, *args: str) -> list[dict[str, Any]]:
        return self.listing("awards", *args)

    def awards_by_id(self, *args: str) -> dict[str, dict[str, Any]]:
        return {a["entitlement_id"]: a for a in self.awards(*args)}


def run_at_once(
    target: Callable[..., None], calls: Sequence[tuple[Any, ...]]
) -> list[BaseException]:
    """Call `target` with each tuple of arguments, each call on its own thread, all released at
    once; return what the calls raised."""
    barrier = threading.Barrier(len(calls), timeout=30)
    errors: list[BaseException] = []

    def call(*args: Any) -> None:
        try:
            barrier.wait()
            target(*args)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=call, args=args) for args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


# The ledger's commands through the CLI, as finance and the SME authority run them -------------


def pay(cli: Cli, entitlement: str, ref: str, fen: int, day: str) -> None:
    result = cli.run(
        "record-payment", entitlement, "--ref", ref, "--amount-fen", str(fen), "--paid-on", day
    )
    assert result.code == 0, result.err


def recover(cli: Cli, entitlement: str, ref: str, fen: int, day: str) -> Any:
    return cli.run(
        "record-recovery",
        entitlement,
        "--ref",
        ref,
        "--amount-fen",
        str(fen),
        "--received-on",
        day,
        "--json",
    )


def correct(cli: Cli, path: Path, year: int, reason: str = "统计局复核") -> Any:
    return cli.run(
        "import-register",
        "--year",
        str(year),
        str(path),
        "--correction",
        "--reason",
        reason,
        "--json",
    )


HASH_38 = "9e67e6df606b64a664f26f858ada17d3d8a7cf8855601b4bfa1a64b979620e9b"
"""The content hash of 晋办发〔2020〕38号 as every ledger before policy versions recorded it: new
optional keys of the policy model must never change it."""
