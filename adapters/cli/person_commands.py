"""The commands of the (九) social-insurance subsidy: `import-hires`, `import-contributions`,
`si-claims`, `si-pay`, `person show`, `person erase`."""

from __future__ import annotations

import argparse

from adapters.cli.arguments import day_arg, encoding_option, fen_arg, uscc_arg, year_arg
from adapters.cli.common import Command, actor_of, as_rows, warn_views
from adapters.cli.output import EXIT_OK, emit_json, print_table
from adapters.files.hires_csv import read_contributions, read_hires
from adapters.persistence.vault import SECRET_ENV
from domain.application import Ledger
from domain.money import yuan
from domain.results import jsonable
from domain.subsidy_results import SubsidyImportResult

CLAIM_COLUMNS = [
    "uscc",
    "person",
    "month",
    "employer_paid_fen",
    "eligible",
    "subsidy_fen",
    "paid_fen",
    "outstanding_fen",
    "why_not",
]
CLAIM_MONEY = ["employer_paid_fen", "subsidy_fen", "paid_fen", "outstanding_fen"]


def _import_hires(ledger: Ledger, a: argparse.Namespace) -> int:
    source = read_hires(a.file, encoding=a.encoding)
    r = ledger.import_hires(
        source.name, source.sha256, source.rows, actor=actor_of(a), unreadable=source.errors
    )
    return _imported(r, a, "hires (contracts)")


def _import_contributions(ledger: Ledger, a: argparse.Namespace) -> int:
    source = read_contributions(a.file, encoding=a.encoding)
    r = ledger.import_contributions(
        a.month,
        source.name,
        source.sha256,
        source.rows,
        actor=actor_of(a),
        unreadable=source.errors,
    )
    return _imported(r, a, f"contributions of {a.month} (person-months)")


def _imported(r: SubsidyImportResult, a: argparse.Namespace, what: str) -> int:
    warn_views(r)
    if a.json:
        emit_json(jsonable(r))
    elif r.replay:
        print(
            f"{a.file} (sha256 {r.sha256}) is recorded already ({r.already} rows); nothing changed"
        )
    else:
        print(
            f"imported {what} from {a.file} (sha256 {r.sha256})"
            + (f" at position {r.position}" if r.position is not None else "")
            + f": recorded {r.recorded}, recorded already {r.already}, firms {len(r.firms)}"
        )
    return EXIT_OK


def _claims(ledger: Ledger, a: argparse.Namespace) -> int:
    found = ledger.si_claims(
        month=a.month, fiscal_year=a.fiscal_year, uscc=a.uscc, known_at=a.known_at
    )
    if a.json:
        emit_json(found)
        return EXIT_OK
    at = found.point
    print(
        f"(九) social-insurance subsidy, employment fund, as the ledger knew it at position "
        f"{at.position} ({at.header()['known_at']['recorded_at'] or 'nothing recorded yet'})"
    )
    rows = as_rows(found.claims)
    for row in rows:
        row["eligible"] = "yes" if row["eligible"] else "no"
    print_table(rows, CLAIM_COLUMNS, money=CLAIM_MONEY)
    print("totals:")
    print_table(as_rows(found.totals), ["fund", "months", *CLAIM_MONEY], money=CLAIM_MONEY)
    return EXIT_OK


def _pay(ledger: Ledger, a: argparse.Namespace) -> int:
    r = ledger.record_si_payment(
        a.uscc, a.person, a.month, a.ref, a.amount_fen, a.paid_on, actor=actor_of(a)
    )
    if a.json:
        emit_json(jsonable(r))
    elif r.replay:
        print(f"replay: payment {r.ref} is already recorded with these details; nothing written")
    else:
        print(
            f"recorded payment {r.ref}: {yuan(r.amount_fen)} yuan from the {r.fund} fund for "
            f"{r.claim_id} (paid {yuan(r.paid_fen)} of {yuan(r.subsidy_fen)})"
        )
    return EXIT_OK


def _person(ledger: Ledger, a: argparse.Namespace) -> int:
    if a.action == "show":
        view = ledger.person(a.person_id)
        if a.json:
            emit_json(jsonable(view))
            return EXIT_OK
        print(f"person {view.person} (the pseudonym the log knows them by)")
        print(f"identity number {view.person_id}, name {view.person_name}")
        print("hires:")
        print_table(as_rows(view.hires), ["uscc", "contract_start", "contract_end", "category"])
        return EXIT_OK
    r = ledger.erase_person(a.person_id, a.document, actor=actor_of(a))
    if a.json:
        emit_json(jsonable(r))
    elif r.replay:
        print(f"person {r.person} was erased already under {r.document!r}; nothing changed")
    else:
        print(
            f"erased person {r.person} under {r.document!r} on {r.erased_on}: their key is "
            f"destroyed; recorded on the streams of {', '.join(r.firms) or 'no firm'}"
            + (f" at position {r.position}" if r.position is not None else "")
        )
    return EXIT_OK


PERSON_COMMANDS: dict[str, Command] = {
    "import-hires": _import_hires,
    "import-contributions": _import_contributions,
    "si-claims": _claims,
    "si-pay": _pay,
    "person": _person,
}


def add_person_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    listing: argparse.ArgumentParser,
) -> None:
    """The (九) commands' parsers."""
    secret = argparse.ArgumentParser(add_help=False)
    secret.add_argument(
        "--person-secret",
        metavar="FILE",
        help=f"the ledger's person secret (default: ${SECRET_ENV}; the first import makes it)",
    )
    p = sub.add_parser(
        "import-hires",
        parents=[common, listing, secret],
        help="(九) import the human-resources bureau's hires of hard-to-employ people (CSV "
        "uscc,person_id,person_name,category,contract_start,contract_end), all or none",
    )
    p.add_argument("file", metavar="FILE", help="the hires (CSV, format in the README)")
    encoding_option(p, "file encoding")
    p = sub.add_parser(
        "import-contributions",
        parents=[common, listing, secret],
        help="(九) import a month's social insurance paid by employers for their hires (CSV "
        "uscc,person_id,employer_paid_fen), all or none",
    )
    p.add_argument(
        "--month", required=True, metavar="YYYY-MM", help="the month the contributions are for"
    )
    p.add_argument("file", metavar="FILE", help="the contributions (CSV, format in the README)")
    encoding_option(p, "file encoding")

    p = sub.add_parser(
        "si-claims",
        parents=[common, listing],
        help="(九) each hire's months: eligible or not, the subsidy (what the employer paid), "
        "paid and outstanding, from the employment fund",
    )
    months = p.add_mutually_exclusive_group()
    months.add_argument(
        "--month", metavar="YYYY-MM", help="only this contribution month (default: every month)"
    )
    months.add_argument(
        "--fiscal-year",
        type=year_arg,
        help="only the contribution months of this year (default: every month)",
    )
    p.add_argument("--uscc", type=uscc_arg, help="only this employer (default: every employer)")
    p.add_argument(
        "--known-at",
        metavar="WHEN",
        help="what the ledger knew then: an RFC 3339 instant with an offset, or @POSITION "
        "(default: now, the last commit)",
    )

    p = sub.add_parser(
        "si-pay",
        parents=[common, listing],
        help="(九) record a payment of a hire's month of subsidy from the employment fund",
    )
    p.add_argument("uscc", metavar="USCC", type=uscc_arg, help="the employer paid")
    p.add_argument("--person", required=True, help="the hire's pseudonym, as si-claims shows it")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month paid for")
    p.add_argument("--ref", required=True, help="the treasury's voucher number, unique ledger-wide")
    p.add_argument(
        "--amount-fen", type=fen_arg, required=True, help="amount in fen (1 yuan = 100 fen)"
    )
    p.add_argument("--paid-on", type=day_arg, required=True, help="payment date YYYY-MM-DD")

    p = sub.add_parser("person", help="(九) a hired person's details: show them, or erase them")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = actions.add_parser(
        "show",
        parents=[common, listing, secret],
        help="the person's identity, name and hires (refused once erased)",
    )
    v.add_argument("person_id", metavar="PERSON_ID", help="the resident identity number")
    v = actions.add_parser(
        "erase",
        parents=[common, listing, secret],
        help="destroy the person's key (crypto-shredding): their identity and name are gone "
        "for good; the pseudonym and every amount remain",
    )
    v.add_argument("person_id", metavar="PERSON_ID", help="the resident identity number")
    v.add_argument(
        "--document", required=True, help="the decision or request the erasure is made under"
    )
