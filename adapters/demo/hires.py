"""The synthetic province's (九) hires: a few hundred of the 2025 and 2026 first entrants hire
one to three hard-to-employ people each, on contracts of one to three years or open-ended,
starting in their entry year (a tenth the year before: outside the window); the human-resources bureau's hires file and a
contributions file a month (what each employer paid of each hire's social insurance) from
January 2025 to the month before today's; finance pays the subsidy of January and February
2026. The identity numbers and names are made up (a valid check character, a real birth date):
they go to the vault, never to the log."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from adapters.demo.synthetic import SyntheticProvince
from adapters.files.hires_csv import contributions_csv, hires_csv, read_contributions, read_hires
from domain.application import Ledger
from domain.errors import PreconditionError
from domain.persons import id_check_char
from domain.social_insurance import Contract, month_of, month_start

EMPLOYERS = 300
"""First entrants that hire (at scale 1)."""
DIRECTORY = "hires"
CATEGORIES = ("长期失业人员", "城镇大龄失业人员", "残疾人", "零就业家庭成员", "低保家庭成员")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文斌鹏辉"
PAID_MONTHS = ("2026-01", "2026-02")


def _person_id(rng: random.Random, division: str) -> str:
    born = date(1966, 1, 1) + timedelta(days=rng.randrange(365 * 34))
    first17 = f"{division}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def write_hires(
    province: SyntheticProvince, seed: int, today: date, d: Path
) -> tuple[Path, dict[str, Path], str]:
    """The hires file and the months' contributions files; one person's identity number (the
    first hire's: the README's example)."""
    rng = random.Random(f"subsidy-ledger-demo-hires-{seed}")  # noqa: S311 - demo data, not secrets
    rows_of = {r[0]: r for y in (2025, 2026) for r in province.registers.get(y, [])}
    entrants = [
        (u, y)
        for y in (2025, 2026)
        for u in sorted(province.first_entrants.get(y, ()))
        if u in rows_of
    ]
    chosen = rng.sample(entrants, min(len(entrants), max(1, round(EMPLOYERS * province.scale))))
    hires: list[list[Any]] = []
    contracts: list[tuple[str, str, date, date | None, int]] = []
    for uscc, year in sorted(chosen):
        county = rows_of[uscc][2][:6]
        for _ in range(rng.randint(1, 3)):
            # A tenth began before the firm's entry year: recorded, outside the window (not
            # subsidised), as the rule says.
            before = rng.random() < 0.1
            start = date(year - 1 if before else year, 1, 1) + timedelta(days=rng.randrange(300))
            if start >= today:
                continue
            pid = _person_id(rng, county)
            name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.randint(1, 2)))
            years = rng.choice((1, 2, 3, None))
            end = None if years is None else start.replace(year=start.year + years) - timedelta(1)
            wage = rng.randrange(90_000, 170_000, 100)  # 900-1,700 yuan a month, in fen
            hires.append(
                [uscc, pid, name, rng.choice(CATEGORIES), start, end.isoformat() if end else ""]
            )
            contracts.append((uscc, pid, start, end, wage))
    folder = d / DIRECTORY
    folder.mkdir(exist_ok=True)
    hires_file = folder / "hires.csv"
    hires_file.write_bytes(hires_csv(hires))
    months: dict[str, list[list[Any]]] = defaultdict(list)
    month = date(2025, 1, 1)
    while month_of(month) < month_of(today):
        for uscc, pid, start, end, wage in contracts:
            if Contract(start, end).covers(month_of(month)):
                months[month_of(month)].append([uscc, pid, wage])
        month = (month + timedelta(days=32)).replace(day=1)
    files = {}
    for m, rows in sorted(months.items()):
        files[m] = folder / f"contributions-{m}.csv"
        files[m].write_bytes(contributions_csv(rows))
    return hires_file, files, hires[0][1] if hires else ""


def run_hires(
    ledger: Ledger, province: SyntheticProvince, seed: int, d: Path, today: date, actor: str
) -> dict[str, Any]:
    """Import the hires and the months' contributions, pay January and February 2026: what the
    demo says of them."""
    hires_file, months, example = write_hires(province, seed, today, d)
    read = read_hires(hires_file)
    imported = ledger.import_hires(read.name, read.sha256, read.rows, actor=actor)
    for month, path in months.items():
        c = read_contributions(path)
        ledger.import_contributions(month, c.name, c.sha256, c.rows, actor=actor)
    paid = held_back = 0
    for n, claim in enumerate(
        c
        for m in PAID_MONTHS
        for c in ledger.si_claims(month=m).claims
        if c.eligible and c.outstanding_fen > 0
    ):
        paid_on = month_start(claim.month).replace(day=25) + timedelta(days=20)
        if paid_on > today:
            continue
        try:
            ledger.record_si_payment(
                claim.uscc,
                claim.person,
                claim.month,
                f"SI{claim.month.replace('-', '')}{n:05d}",
                claim.subsidy_fen,
                paid_on,
                actor=actor,
            )
            paid += 1
        except PreconditionError:
            held_back += 1  # a hold on the employer in force: the treasury holds it back
    claims = ledger.si_claims()
    (total,) = claims.totals
    return {
        "hires": imported.recorded,
        "employers": len(imported.firms),
        "months": len(months),
        "claims": len(claims.claims),
        "eligible": sum(1 for c in claims.claims if c.eligible),
        "subsidy_fen": total.subsidy_fen,
        "paid_fen": total.paid_fen,
        "payments": paid,
        "held_back": held_back,
        "example_person_id": example,
        "files": {"hires_file": str(hires_file), "directory": str(d / DIRECTORY)},
    }
