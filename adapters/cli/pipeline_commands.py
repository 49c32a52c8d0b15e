"""The commands of the below-scale database (十七) and the city progress report (十四):
`import-below-scale`, `pipeline`, `progress`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adapters.cli.arguments import city_arg, day_arg, encoding_option, year_arg
from adapters.cli.common import Command, actor_of, as_rows, warn_views
from adapters.cli.output import EXIT_OK, emit_json, print_table, write_csv
from adapters.files.below_scale_csv import read_below_scale
from adapters.files.progress_html import render_progress
from adapters.files.targets_toml import read_targets
from domain.application import Ledger
from domain.errors import InvalidInputError, RefusedError
from domain.results import jsonable

PIPELINE_COLUMNS = (
    "list",
    "uscc",
    "name",
    "city_code",
    "region_code",
    "industry_code",
    "period",
    "revenue_ytd_fen",
    "annualised_revenue_fen",
    "rule",
    "employees",
    "source",
)
PROGRESS_COLUMNS = (
    "city_code",
    "register_size",
    "first_entries",
    "re_entries",
    "exits",
    "net_change",
    "pipeline",
    "target",
    "share_of_target",
    "rank",
    "mark",
)
CONVERSION_COLUMNS = (
    "city_code",
    "pipeline",
    "reached",
    "pool",
    "entered",
    "first_entries",
    "outside_pipeline",
    "conversion",
    "coverage",
)


def _import_below_scale(ledger: Ledger, a: argparse.Namespace) -> int:
    source = read_below_scale(a.file, encoding=a.encoding)
    r = ledger.import_below_scale(
        a.period,
        source.name,
        source.sha256,
        source.rows,
        actor=actor_of(a),
        unreadable=source.errors,
        reason=a.reason,
    )
    warn_views(r)
    if a.json:
        emit_json(r)
        return EXIT_OK
    counts = ", ".join(f"{k} {v}" for k, v in r.counts.items())
    if r.replay:
        print(f"{a.file}: the period {r.period} holds these rows already; nothing changed")
    elif r.corrected:
        print(
            f"corrected the below-scale period {r.period} from {a.file} at position {r.position}: {counts}"
        )
    else:
        print(
            f"imported the below-scale period {r.period} from {a.file} at position {r.position}: {counts}"
        )
    return EXIT_OK


def _pipeline(ledger: Ledger, a: argparse.Namespace) -> int:
    if a.conversion:
        if a.year is None:
            raise InvalidInputError("--conversion measures a year: give --year Y", field="year")
        return _conversion(ledger, a)
    if a.year is not None:
        raise InvalidInputError(
            "--year goes with --conversion; the pipeline of a day is --on DATE", field="year"
        )
    r = ledger.pipeline(a.on, city=a.city, known_at=a.known_at, pool_percent=a.pool_percent)
    rows = [{"list": "reached", **row} for row in as_rows(r.reached)] + [
        {"list": "pool", **row} for row in as_rows(r.pool)
    ]
    if a.csv:
        write_csv(rows, PIPELINE_COLUMNS, a.csv_encoding)
        return EXIT_OK
    if a.json:
        emit_json(r.to_json())
        return EXIT_OK
    periods = ", ".join(p["period"] for p in r.periods) or "none"
    print(
        f"pipeline on {r.on} at position {r.point.position}: threshold {r.threshold_fen} fen "
        f"({r.policy_id} {r.clause}), pool from {r.pool_percent}% ({r.pool_from_fen} fen); "
        f"register {r.register_year or 'none'} left out ({r.on_register} firms); months read: "
        f"{periods}"
    )
    print(f"reached (应统尽统) {len(r.reached)}, pool (重点培育库) {len(r.pool)}")
    print_table(
        rows,
        ["list", "uscc", "name", "city_code", "period", "annualised_revenue_fen", "rule"],
        money=["annualised_revenue_fen"],
    )
    return EXIT_OK


def _conversion(ledger: Ledger, a: argparse.Namespace) -> int:
    r = ledger.conversion(a.year, known_at=a.known_at)
    rows = as_rows([*r.cities, r.province])
    if a.csv:
        write_csv(rows, CONVERSION_COLUMNS, a.csv_encoding)
        return EXIT_OK
    if a.json:
        emit_json(r.to_json())
        return EXIT_OK
    print(
        f"the pipeline on {r.pipeline_on} against the first entries of {r.year}, known at "
        f"position {r.point.position}"
    )
    print_table(rows, CONVERSION_COLUMNS)
    return EXIT_OK


def _progress(ledger: Ledger, a: argparse.Namespace) -> int:
    targets = read_targets(a.targets) if a.targets else None
    r = ledger.progress(a.year, targets=targets, known_at=a.known_at)
    document = r.to_json()
    written = []
    if a.out:
        out = Path(a.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, text in (
                (
                    f"progress-{a.year}.json",
                    json.dumps(jsonable(document), ensure_ascii=False, indent=2),
                ),
                (f"progress-{a.year}.html", render_progress(document)),
            ):
                (out / name).write_text(
                    text + ("\n" if name.endswith("json") else ""), encoding="utf-8"
                )
                written.append(str(out / name))
        except OSError as e:
            raise RefusedError(f"cannot write into {a.out} ({e.strerror})", field="out") from None
    if a.csv:
        write_csv(as_rows(r.cities), PROGRESS_COLUMNS, a.csv_encoding)
        return EXIT_OK
    if a.json:
        emit_json(document)
        return EXIT_OK
    p = r.province
    print(
        f"progress of {r.year} {r.clause} at position {r.point.position}: the province "
        f"{p['register_size']} of the goal {r.province_goal} by {r.goal_year}; targets: "
        f"{r.targets_from}"
    )
    print_table(as_rows(r.cities), PROGRESS_COLUMNS)
    for path in written:
        print(f"written: {path}")
    return EXIT_OK


PIPELINE_COMMANDS: dict[str, Command] = {
    "import-below-scale": _import_below_scale,
    "pipeline": _pipeline,
    "progress": _progress,
}


def _csv_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--csv", action="store_true", help="print the rows as CSV on stdout (default: a table)"
    )
    p.add_argument(
        "--csv-encoding",
        default="utf-8",
        choices=["utf-8", "gb18030"],
        help="the CSV's encoding (default utf-8)",
    )


def _known_at(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--known-at",
        metavar="WHEN",
        help="what the ledger knew then: an RFC 3339 instant with an offset, or @POSITION "
        "(default: now, the last commit)",
    )


def add_pipeline_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    listing: argparse.ArgumentParser,
) -> None:
    """The parsers of the below-scale database's and the progress report's commands."""
    p = sub.add_parser(
        "import-below-scale",
        parents=[common, listing],
        help="import a month of the below-scale database (CSV uscc,name,region_code,"
        "industry_code,revenue_ytd_fen,employees,source), all or none",
    )
    p.add_argument(
        "--period", required=True, metavar="YYYY-MM", help="the month the file's figures are to"
    )
    p.add_argument("file", metavar="FILE", help="the month's file (CSV, format in the README)")
    p.add_argument(
        "--reason",
        help="why a period imported already was re-issued, recorded with the correction "
        "(default: re-issued by its source)",
    )
    encoding_option(p, "file encoding")

    p = sub.add_parser(
        "pipeline",
        parents=[common, listing],
        help="below-scale firms that reached the threshold (应统尽统) and the cultivation pool",
    )
    p.add_argument(
        "--on", type=day_arg, metavar="DATE", help="the day of the pipeline (default today)"
    )
    p.add_argument(
        "--city", type=city_arg, help="only this city's firms, e.g. 140100 (default: every city)"
    )
    p.add_argument(
        "--pool-percent",
        type=int,
        choices=range(1, 100),
        metavar="N",
        help="the pool from N%% of the threshold (default: the policy's, 75)",
    )
    p.add_argument(
        "--year",
        type=year_arg,
        help="with --conversion: the year whose first entries the pipeline at the end of the "
        "year before is measured against (no default)",
    )
    p.add_argument(
        "--conversion",
        action="store_true",
        help="how many of the pipeline at the end of Y-1 first entered in Y, by city",
    )
    _known_at(p)
    _csv_options(p)

    p = sub.add_parser(
        "progress",
        parents=[common, listing],
        help="the city progress report of a year (十四): JSON and an HTML page",
    )
    p.add_argument("--year", type=year_arg, required=True, help="the register year reported")
    p.add_argument(
        "--targets",
        metavar="FILE",
        help="the year's targets (TOML, format in the README; default: the province goal split "
        "by each city's share of the register before the year)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write progress-YEAR.json and progress-YEAR.html there (default: print only)",
    )
    _known_at(p)
    _csv_options(p)
