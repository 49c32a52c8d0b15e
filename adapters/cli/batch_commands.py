"""The commands of the money's path: appropriations (`budget`), the release workflow
(`workflow require-release`), and payment batches (`batch propose|approve|publish|object|
release|orders|show`, `batches`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters.cli.arguments import city_arg, day_arg, fen_arg, uscc_arg, year_arg
from adapters.cli.common import Command, actor_of, as_rows, warn_views
from adapters.cli.output import EXIT_OK, emit_json, print_table
from adapters.files.forecast_html import render_forecast
from adapters.files.notice import write_notice, write_orders
from domain.application import Ledger
from domain.appropriations import DEFAULT_SUBJECT
from domain.batches import MIN_WORKING_DAYS
from domain.errors import RefusedError
from domain.money import yuan
from domain.payment_book import BATCH_STATUSES
from domain.payment_results import BatchView, BookResult
from domain.results import jsonable

WORKFLOW_REASON = "拨付须经审核、公示、审批 (review, public notice, approval)"
OBJECTIONS_TO = "山西省中小企业主管部门 (the provincial SME authority)"
BATCH_COLUMNS = [
    "batch_id",
    "fiscal_year",
    "city",
    "fund",
    "status",
    "awards_count",
    "total_fen",
    "proposed_by",
    "approved_by",
    "notice_from",
    "notice_to",
    "released_on",
]
BUDGET_COLUMNS = [
    "fiscal_year",
    "fund",
    "subject",
    "appropriated_fen",
    "committed_fen",
    "released_fen",
    "paid_fen",
    "remaining_fen",
]
BUDGET_MONEY = [c for c in BUDGET_COLUMNS if c.endswith("_fen")]


def _said(r: BookResult, a: argparse.Namespace) -> int:
    if a.json:
        emit_json(jsonable(r))
    elif r.replay:
        print(f"{r.message}; nothing changed")
    else:
        print(f"{r.message} (position {r.position})")
    return EXIT_OK


def _workflow(ledger: Ledger, a: argparse.Namespace) -> int:
    return _said(ledger.require_release(a.from_fiscal_year, a.reason, actor=actor_of(a)), a)


def _budget(ledger: Ledger, a: argparse.Namespace) -> int:
    if a.action == "set":
        r = ledger.set_appropriation(
            a.fiscal_year, a.fund, a.amount_fen, a.document, subject=a.subject, actor=actor_of(a)
        )
        return _said(r, a)
    if a.action == "adjust":
        r = ledger.adjust_appropriation(
            a.fiscal_year, a.fund, a.amount_fen, a.document, actor=actor_of(a)
        )
        return _said(r, a)
    rows = ledger.budget(a.fiscal_year)
    if a.json:
        emit_json({"budget": rows})
    else:
        print_table(as_rows(rows), BUDGET_COLUMNS, money=BUDGET_MONEY)
    return EXIT_OK


def _batch(ledger: Ledger, a: argparse.Namespace) -> int:
    actor = actor_of(a)
    if a.action == "propose":
        view = ledger.propose_batch(a.fiscal_year, city=a.city, fund=a.fund, actor=actor)
        return _shown(view, a, f"proposed {view.batch_id}")
    if a.action == "approve":
        view = ledger.approve_batch(a.batch_id, actor=actor)
        return _shown(view, a, f"approved {view.batch_id} by {view.approved_by}")
    if a.action == "publish":
        view = ledger.publish_batch(
            a.batch_id,
            a.notice_from,
            working_days=a.working_days,
            objections_to=a.objections_to,
            actor=actor,
        )
        try:
            page, lines = write_notice(view, Path(a.out))
        except OSError as e:
            raise RefusedError(
                f"{view.batch_id} is published (position {view.position}), but its notice could "
                f"not be written to {a.out} ({e.strerror}): run the same command again with a "
                "writable --out",
                field="out",
            ) from None
        return _shown(
            view,
            a,
            f"published {view.batch_id}: notice period {view.notice_from} to {view.notice_to} "
            f"({view.working_days} working days); the notice is {page} and {lines}",
            extra={"notice_html": str(page), "notice_csv": str(lines)},
        )
    if a.action == "object":
        view = ledger.object_to_batch(a.batch_id, a.uscc, a.reason, a.received_on, actor=actor)
        return _shown(view, a, f"heard the objection to {a.uscc} in {view.batch_id}")
    if a.action == "release":
        view = ledger.release_batch(a.batch_id, actor=actor)
        return _shown(view, a, f"released {view.batch_id} on {view.released_on}")
    if a.action == "orders":
        orders = ledger.batch_orders(a.batch_id)
        try:
            written = write_orders(orders, Path(a.out), a.encoding)
        except OSError as e:
            raise RefusedError(
                f"cannot write {a.out} ({e.strerror}); give a writable file", field="out"
            ) from None
        total = sum(o.amount_fen for o in orders)
        if a.json:
            emit_json({"batch_id": a.batch_id, "out": a.out, "orders": written, "total_fen": total})
        else:
            print(f"wrote {written} payment orders of {a.batch_id} ({yuan(total)} yuan) to {a.out}")
        return EXIT_OK
    view = ledger.batch(a.batch_id)
    return _shown(view, a, None)


def _shown(
    view: BatchView, a: argparse.Namespace, said: str | None, extra: dict[str, Any] | None = None
) -> int:
    warn_views(view)
    if a.json:
        emit_json({**jsonable(view), **(extra or {})})
        return EXIT_OK
    if view.replay:
        print(f"{view.batch_id} is {view.status} already as asked; nothing changed")
    elif said:
        print(f"{said} (position {view.position})")
    print(
        f"{view.batch_id}: fiscal year {view.fiscal_year}, {view.city or 'province-wide'}, fund "
        f"{view.fund}, {view.status}: {view.awards_count} awards, {yuan(view.total_fen)} yuan"
    )
    if said is None:
        print_table(
            as_rows(view.awards),
            ["entitlement_id", "name", "city_code", "amount_fen", "status", "paid_fen", "note"],
            money=["amount_fen", "paid_fen"],
        )
        if view.objections:
            print("objections:")
            print_table(
                as_rows(view.objections), ["uscc", "received_on", "reason", "hold_document"]
            )
    return EXIT_OK


def _batches(ledger: Ledger, a: argparse.Namespace) -> int:
    rows = ledger.batches(fiscal_year=a.fiscal_year, status=a.status)
    found = as_rows(rows)
    for row in found:
        row.pop("awards")
    if a.json:
        emit_json({"batches": found})
    else:
        print_table(found, BATCH_COLUMNS, money=["total_fen"])
    return EXIT_OK


def _forecast(ledger: Ledger, a: argparse.Namespace) -> int:
    first, last = a.fiscal_years
    r = ledger.forecast(first, last, city=a.city, known_at=a.known_at)
    if a.html:
        try:
            Path(a.html).write_text(render_forecast(r), encoding="utf-8")
        except OSError as e:
            raise RefusedError(f"cannot write {a.html} ({e.strerror})", field="out") from None
    if a.json:
        emit_json(r)
        return EXIT_OK
    print(
        f"forecast from the log at position {r.known_at} (registers to {r.last_register_year}), "
        f"{'city ' + r.city if r.city else 'the province'}; amounts in yuan"
    )
    print_table(
        as_rows(r.years),
        [
            "fiscal_year",
            "decided_fen",
            "staying_fen",
            "new_entries",
            "new_entries_fen",
            "total_fen",
            "low_fen",
            "high_fen",
        ],
        money=["decided_fen", "staying_fen", "new_entries_fen", "total_fen", "low_fen", "high_fen"],
    )
    print("life table (years since first entry: on the register, and still on it the year after):")
    print_table(
        as_rows(r.life_table), ["age", "at_risk", "stayed", "rate", "low", "high", "cohorts"]
    )
    if a.html:
        print(f"the page with the chart: {a.html}")
    return EXIT_OK


def _fiscal_years(value: str) -> tuple[int, int]:
    first, _, last = value.partition("-")
    try:
        years = (year_arg(first), year_arg(last or first))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a range of fiscal years, e.g. 2027-2029"
        ) from None
    if years[1] < years[0]:
        raise argparse.ArgumentTypeError(f"{value!r}: the range ends before it begins")
    return years


BATCH_COMMANDS: dict[str, Command] = {
    "forecast": _forecast,
    "workflow": _workflow,
    "budget": _budget,
    "batch": _batch,
    "batches": _batches,
}


def add_batch_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    listing: argparse.ArgumentParser,
) -> None:
    """The parsers of the money's path."""
    p = sub.add_parser("workflow", help="switch the ledger to paying released awards only")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = actions.add_parser(
        "require-release",
        parents=[common, listing],
        help="from a fiscal year on, pay an award only once released in a payment batch",
    )
    v.add_argument(
        "--from-fiscal-year",
        type=year_arg,
        required=True,
        metavar="Y",
        help="the first fiscal year whose awards are paid only once released",
    )
    v.add_argument(
        "--reason", default=WORKFLOW_REASON, help=f"why, recorded (default: {WORKFLOW_REASON})"
    )

    p = sub.add_parser(
        "budget",
        parents=[common, listing],
        help="appropriations per fund and fiscal year: list them, set one, adjust one",
    )
    p.add_argument(
        "--fiscal-year", type=year_arg, help="only this fiscal year (default: every one)"
    )
    actions = p.add_subparsers(dest="action", required=False, metavar="ACTION")
    for name, what in (
        ("set", "the year's appropriation to a fund"),
        ("adjust", "a signed change of a fund's appropriation"),
    ):
        v = actions.add_parser(name, parents=[common, listing], help=what)
        v.add_argument(
            "--fiscal-year", type=year_arg, required=True, metavar="Y", help="the fiscal year"
        )
        v.add_argument("--fund", required=True, metavar="CODE", help="the fund's code")
        v.add_argument(
            "--amount-fen",
            type=fen_arg,
            required=True,
            help="in fen" + (", signed (+ or -)" if name == "adjust" else ""),
        )
        v.add_argument("--document", required=True, help="the budget document (文号), recorded")
        if name == "set":
            v.add_argument(
                "--subject",
                default=DEFAULT_SUBJECT,
                help=f"the budget subject code the orders charge (default {DEFAULT_SUBJECT}, "
                "中小企业发展专项)",
            )

    p = sub.add_parser("batch", help="payment batches: propose, approve, publish, object, release")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = actions.add_parser(
        "propose",
        parents=[common, listing],
        help="every award due in a fiscal year, not paid, not held, in no other batch",
    )
    v.add_argument(
        "--fiscal-year", type=year_arg, required=True, metavar="Y", help="the awards' due year"
    )
    v.add_argument("--city", type=city_arg, help="only this city's awards (default: the province)")
    v.add_argument(
        "--fund", metavar="CODE", help="the fund it draws on (default: the year's only fund)"
    )
    for name, what in (
        ("approve", "approve a batch another user proposed (within the appropriation)"),
        ("release", "release a batch once its notice ended: its awards become payable"),
        ("show", "a batch's awards and where it stands"),
    ):
        v = actions.add_parser(name, parents=[common, listing], help=what)
        v.add_argument("batch_id", metavar="ID")
    v = actions.add_parser(
        "publish", parents=[common, listing], help="publish the batch's public notice (公示)"
    )
    v.add_argument("batch_id", metavar="ID")
    v.add_argument(
        "--from",
        dest="notice_from",
        type=day_arg,
        required=True,
        metavar="DATE",
        help="the notice's first day (counted when it is a working day)",
    )
    v.add_argument(
        "--working-days",
        type=int,
        default=MIN_WORKING_DAYS,
        help=f"its length in working days (default {MIN_WORKING_DAYS}, the least allowed)",
    )
    v.add_argument(
        "--out", default="notices", metavar="DIR", help="where the notice goes (default ./notices)"
    )
    v.add_argument(
        "--objections-to",
        default=OBJECTIONS_TO,
        help=f"where to object, printed on the notice (default: {OBJECTIONS_TO})",
    )
    v = actions.add_parser(
        "object", parents=[common, listing], help="an objection heard during the notice"
    )
    v.add_argument("batch_id", metavar="ID")
    v.add_argument("uscc", metavar="USCC", type=uscc_arg)
    v.add_argument("--reason", required=True, help="what the objection says (recorded)")
    v.add_argument(
        "--received-on",
        type=day_arg,
        required=True,
        metavar="DATE",
        help="the day it was received (within the notice period)",
    )
    v = actions.add_parser(
        "orders", parents=[common, listing], help="the payment orders of a released batch"
    )
    v.add_argument("batch_id", metavar="ID")
    v.add_argument("--out", required=True, metavar="FILE", help="the orders file (CSV)")
    v.add_argument(
        "--encoding",
        default="utf-8",
        choices=["utf-8", "gb18030"],
        help="the file's encoding (default utf-8)",
    )

    p = sub.add_parser(
        "forecast",
        parents=[common, listing],
        help="the coming fiscal years' bill: decided, staying, new entries, with bounds",
    )
    p.add_argument(
        "--fiscal-years", type=_fiscal_years, required=True, metavar="Y1-Y2", help="e.g. 2027-2029"
    )
    p.add_argument("--city", type=city_arg, help="only this city's awards (default: the province)")
    p.add_argument(
        "--known-at",
        metavar="WHEN",
        help="forecast from the log as it was then: @POSITION or an RFC 3339 instant (default: now)",
    )
    p.add_argument(
        "--html", metavar="FILE", help="also write the page with its chart (default: none)"
    )

    p = sub.add_parser(
        "batches", parents=[common, listing], help="the payment batches and where they stand"
    )
    p.add_argument(
        "--fiscal-year", type=year_arg, help="only this fiscal year (default: every one)"
    )
    p.add_argument("--status", choices=BATCH_STATUSES, help="only this status (default: every one)")
