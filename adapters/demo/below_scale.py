"""The synthetic province's below-scale database (十七): about 30,000 industrial firms below the
threshold, in a year of monthly files (December of the year before the last register year, then
each month of the last register year up to the one before today's).

The last register year's first entrants are in the December file, most at or near the threshold:
the pipeline at the end of that year is what the conversion measures. Every other firm's yearly
revenue is drawn from a log-normal around 4 million yuan, so that a few percent reach the
threshold without being on the register (the firms 应统尽统 is about) and a few more are in the
cultivation pool. A share of the register's own firms are in the files too (tax data cover every
firm). Each month's figure is the year's revenue to date, month by month with some noise.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from adapters.cli.output import pad, width
from adapters.demo.synthetic import INDUSTRIES, TRADE_CHARS, SyntheticProvince
from adapters.files.below_scale_csv import read_below_scale, write_below_scale
from adapters.files.progress_html import render_progress
from adapters.files.targets_toml import read_targets
from domain.application import Ledger
from domain.below_scale import BelowScaleRow, Period, Source
from domain.codes import cities, divisions, make_uscc
from domain.results import jsonable

BELOW_SCALE_SIZE = 30_000
"""Firms in the database at scale 1 (DOMAIN.md "Scale")."""
MEDIAN_FEN = 400_000_000
"""A below-scale firm's typical yearly revenue: 4 million yuan."""
SIGMA = 0.75
ON_REGISTER_SHARE = 0.05
"""Share of the register's firms the tax files name as well."""
DIRECTORY = "below-scale"
PROGRESS_DIRECTORY = "progress"


def below_scale_months(
    province: SyntheticProvince, seed: int, today: Period
) -> dict[Period, list[BelowScaleRow]]:
    """The monthly files' rows, by period: December of the year before the last register year,
    then the last register year's months before `today`'s month."""
    rng = random.Random(seed * 7919 + 17)  # noqa: S311 - reproducible, not secret
    year = province.last_year
    counties = [d for d in divisions().values() if d.level in ("county", "zone")]
    industries = [code for code, _, _ in INDUSTRIES]
    taken = set(province.firms)
    # (uscc, name, region, industry, source, revenue the year before, revenue the year)
    firms: list[tuple[str, str, str, str, str, int, int]] = []

    def add(uscc: str, before: int, this_year: int, known: Sequence[str] | None = None) -> None:
        """A firm of the database; `known`: its register row, whose name, region and industry
        the database shares (the same enterprise)."""
        if known is not None:
            name, region, industry = known[1], known[2][:6], known[3][-4:]
        else:
            name = f"山西{''.join(rng.sample(TRADE_CHARS, 3))}工贸有限公司"
            region, industry = rng.choice(counties).code, rng.choice(industries)
        source = Source.STATISTICS if rng.random() < 0.2 else Source.TAX
        firms.append((uscc, name, region, industry, source, before, this_year))

    threshold = 2_000_000_000
    entering = set(province.first_entrants.get(year, ()))
    for row in province.registers[year]:
        if row[0] in entering:
            # Most of the year's entrants were in the pipeline the year before; a tenth grew
            # from further below.
            share = rng.uniform(0.8, 1.3) if rng.random() < 0.9 else rng.uniform(0.5, 0.75)
            before = int(threshold * share)
            add(row[0], before, int(threshold * rng.uniform(1.0, 1.4)), row)
    registered = province.registers[year - 1]
    for row in rng.sample(registered, int(len(registered) * ON_REGISTER_SHARE)):
        before = int(threshold * rng.uniform(1.0, 3.0))
        add(row[0], before, int(before * rng.uniform(0.95, 1.2)), row)
    body = 0
    while len(firms) < max(1, round(BELOW_SCALE_SIZE * province.scale)):
        body += 1
        uscc = make_uscc(rng.choice(counties).code, f"MB{body:06d}")
        if uscc in taken:
            continue
        this_year = int(MEDIAN_FEN * math.exp(rng.gauss(0, SIGMA)))
        add(uscc, int(this_year / rng.uniform(0.95, 1.25)), this_year)

    months: dict[Period, list[BelowScaleRow]] = {}
    december = Period(year - 1, 12)
    if december < today:
        months[december] = [_row(f, f[5]) for f in firms]
    to_date = [0] * len(firms)
    for month in range(1, 13):
        period = Period(year, month)
        if period >= today:
            break
        rows = []
        for i, f in enumerate(firms):
            to_date[i] += int(f[6] / 12 * rng.uniform(0.85, 1.15))
            rows.append(_row(f, to_date[i]))
        months[period] = rows
    return months


def _row(f: tuple[str, str, str, str, str, int, int], revenue_fen: int) -> BelowScaleRow:
    uscc, name, region, industry, source, _, this_year = f
    return BelowScaleRow(
        uscc,
        name,
        region,
        divisions()[region].city_code,
        industry,
        revenue_fen,
        max(1, this_year // 50_000_000),  # about 500,000 yuan of revenue an employee
        source,
    )


def write_months(months: dict[Period, list[BelowScaleRow]], d: Path) -> dict[Period, Path]:
    """The files, one a month, in `d`/below-scale/YYYY-MM.csv."""
    folder = d / DIRECTORY
    folder.mkdir(exist_ok=True)
    paths = {}
    for period, rows in months.items():
        paths[period] = folder / f"{period}.csv"
        write_below_scale(paths[period], rows)
    return paths


def run_below_scale(
    ledger: Ledger, province: SyntheticProvince, seed: int, d: Path, today: date, actor: str
) -> dict[str, Any]:
    """Import the months' files, and write the last register year's progress report: what the
    demo says of them (the pipeline by city, where the files and the report are)."""
    paths = write_months(below_scale_months(province, seed, Period.of(today)), d)
    firms = 0
    for period, path in paths.items():
        read = read_below_scale(path)
        ledger.import_below_scale(str(period), read.name, read.sha256, read.rows, actor=actor)
        firms = max(firms, len(read.rows))
    year = province.last_year
    pipeline = ledger.pipeline(date(year, 12, 31))
    by_city: dict[str, dict[str, int]] = {c: {"reached": 0, "pool": 0} for c in sorted(cities())}
    for which, rows in (("reached", pipeline.reached), ("pool", pipeline.pool)):
        for r in rows:
            by_city[r.city_code][which] += 1
    out = d / PROGRESS_DIRECTORY
    out.mkdir(exist_ok=True)
    targets_file = out / f"targets-{year}.toml"
    targets_file.write_text(targets_toml(ledger, year), encoding="utf-8")
    report = ledger.progress(year, targets=read_targets(targets_file))
    document = report.to_json()
    (out / f"progress-{year}.json").write_text(
        json.dumps(jsonable(document), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    page = out / f"progress-{year}.html"
    page.write_text(render_progress(document), encoding="utf-8")
    return {
        "periods": [str(p) for p in paths],
        "firms": firms,
        "pipeline_on": pipeline.on,
        "pipeline": by_city,
        "progress_year": year,
        "files": {
            "directory": str(d / DIRECTORY),
            "targets": str(targets_file),
            "progress_report": str(page),
        },
    }


TARGET_GROWTH_PERCENT = 6
"""The demo's targets: each city's register of the year before, grown by this much."""


def targets_toml(ledger: Ledger, year: int) -> str:
    """A targets file for `year`: each city's register of the year before grown by
    `TARGET_GROWTH_PERCENT` (rounded up), the top and bottom three marked."""
    before = {s.city_code: s.size for s in ledger.register_sizes() if s.year == year - 1}
    lines = [
        f"# {year}年度各市规上工业企业目标 (the demo's: the {year - 1} register + "
        f"{TARGET_GROWTH_PERCENT}%)",
        f"year = {year}",
        "praise_top = 3",
        "criticise_bottom = 3",
        "",
        "[targets]",
        *(
            f"{code} = {-(-n * (100 + TARGET_GROWTH_PERCENT) // 100)}"
            for code, n in sorted(before.items())
            if n > 0
        ),
    ]
    return "\n".join(lines) + "\n"


def print_below_scale(doc: dict[str, Any], files: dict[str, str]) -> None:
    names = {code: c.name for code, c in cities().items()}
    periods = doc["periods"]
    print(
        f"The below-scale database (十七): {doc['firms']:,} firms a month in {len(periods)} "
        f"monthly files ({periods[0]} to {periods[-1]}) in {files['directory']}/. The pipeline on "
        f"{doc['pipeline_on']}, by city:"
    )
    rows = [[names[c], f"{n['reached']:,}", f"{n['pool']:,}"] for c, n in doc["pipeline"].items()]
    rows.append(
        [
            "全省 total",
            f"{sum(n['reached'] for n in doc['pipeline'].values()):,}",
            f"{sum(n['pool'] for n in doc['pipeline'].values()):,}",
        ]
    )
    head = ["city", "reached (应统尽统)", "pool (重点培育库)"]
    widths = [max(width(r[i]) for r in [head, *rows]) for i in range(3)]
    for r in [head, *rows]:
        first, *rest = (
            pad(v, w, right=i > 0) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        print("  " + "  ".join([first, *rest]))
    print(
        f"The city progress report of {doc['progress_year']} (十四), against the targets of "
        f"{files['targets']}: {files['progress_report']}"
    )
