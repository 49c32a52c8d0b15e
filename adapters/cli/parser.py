"""The command line's parser: every command, its options and the checks of their values."""

from __future__ import annotations

import argparse

from adapters.cli.arguments import (
    anchor_arg,
    city_arg,
    day_arg,
    encoding_option,
    fen_arg,
    uscc_arg,
    whole_arg,
    year_arg,
)
from adapters.cli.batch_commands import add_batch_commands
from adapters.cli.hold_commands import add_hold_commands
from adapters.cli.person_commands import add_person_commands
from adapters.cli.pipeline_commands import add_pipeline_commands
from domain.policy import DesignationKind
from domain.roles import ROLES
from domain.rules import AWARD_STATUSES

TOKENS_HELP = "the users' token hashes (default: $LEDGER_TOKENS_FILE)"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: $LEDGER_DATABASE_URL, else sqlite:///ledger.db)",
    )
    common.add_argument(
        "--actor", help="who is acting, recorded on every event (default: the OS user)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    pointing = argparse.ArgumentParser(add_help=False)
    pointing.add_argument(
        "--as-of",
        type=day_arg,
        metavar="DATE",
        help="facts valid on DATE (default today, Asia/Shanghai)",
    )
    pointing.add_argument(
        "--known-at",
        metavar="WHEN",
        help="what the ledger knew then: an RFC 3339 instant with an offset, or @POSITION "
        "(default: now, the last commit)",
    )

    parser = argparse.ArgumentParser(
        prog="subsidy-ledger",
        description="Event-sourced ledger of Shanxi's scale-up awards (晋办发〔2020〕38号).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "import-register",
        parents=[common, listing],
        help="import a year's above-scale register (CSV)",
    )
    p.add_argument("--year", type=year_arg, required=True, help="the register year of the file")
    p.add_argument("file", metavar="FILE", help="the register (CSV, format in the README)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="the first year imported: its firms were already above scale",
    )
    encoding_option(p, "file encoding")
    p.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file adopted with the baseline (default: the packaged 晋办发〔2020〕38号)",
    )
    p.add_argument(
        "--correction",
        action="store_true",
        help="the bureau re-issued this imported year: append corrections (needs --reason)",
    )
    p.add_argument(
        "--reason",
        help="why the year was re-issued, recorded with the correction (required with "
        "--correction; no default)",
    )

    p = sub.add_parser(
        "awards",
        parents=[common, listing, pointing],
        help="entitlements with amounts, payments and status",
    )
    p.add_argument(
        "--fiscal-year",
        type=year_arg,
        help="only awards due in this fiscal year (default: every one)",
    )
    p.add_argument(
        "--city",
        type=city_arg,
        help="only awards counting for this city, e.g. 140100 (default: every city)",
    )
    p.add_argument(
        "--status",
        default="all",
        choices=[*AWARD_STATUSES, "all"],
        help="only awards in this status (default: all)",
    )
    held = p.add_mutually_exclusive_group()
    held.add_argument(
        "--held",
        dest="held",
        action="store_const",
        const=True,
        help="only awards of firms with a hold in force on the --as-of day (default: held or not)",
    )
    held.add_argument(
        "--not-held",
        dest="held",
        action="store_const",
        const=False,
        help="only awards of firms with no hold in force on the --as-of day (default: held or not)",
    )

    p = sub.add_parser(
        "record-payment",
        parents=[common, listing],
        help="record a treasury payment against an entitlement",
    )
    p.add_argument("entitlement_id", metavar="ENTITLEMENT_ID", help="USCC/KIND/DECIDED_YEAR")
    p.add_argument("--ref", required=True, help="the treasury's voucher number, unique ledger-wide")
    p.add_argument(
        "--amount-fen", type=fen_arg, required=True, help="amount in fen (1 yuan = 100 fen)"
    )
    p.add_argument("--paid-on", type=day_arg, required=True, help="payment date YYYY-MM-DD")

    p = sub.add_parser(
        "record-recovery",
        parents=[common, listing],
        help="record money paid against a revoked entitlement coming back (追回)",
    )
    p.add_argument("entitlement_id", metavar="ENTITLEMENT_ID", help="USCC/KIND/DECIDED_YEAR")
    p.add_argument("--ref", required=True, help="the treasury's voucher number, unique ledger-wide")
    p.add_argument(
        "--amount-fen", type=fen_arg, required=True, help="amount in fen (1 yuan = 100 fen)"
    )
    p.add_argument(
        "--received-on", type=day_arg, required=True, help="date the money came back YYYY-MM-DD"
    )

    p = sub.add_parser(
        "totals", parents=[common, listing, pointing], help="fiscal totals by kind or city"
    )
    p.add_argument(
        "--fiscal-year", type=year_arg, help="only this fiscal year (default: every one)"
    )
    p.add_argument(
        "--by", default="kind", choices=["kind", "city"], help="rows per (default: kind)"
    )
    p.add_argument(
        "--basis",
        default="due",
        choices=["due", "cash"],
        help="due: awards by the fiscal year they are due in; cash: payments by the fiscal "
        "year of their date (default: due)",
    )

    p = sub.add_parser(
        "windows",
        parents=[common, listing, pointing],
        help="guarantee (八) and energy (十一) windows of first entrants",
    )
    p.add_argument("--uscc", type=uscc_arg, help="only this firm's windows (default: every firm)")
    p.add_argument(
        "--active-on",
        type=day_arg,
        metavar="DATE",
        help="only windows open on DATE (default: every window begun by --as-of)",
    )

    p = sub.add_parser(
        "enterprise",
        parents=[common, listing, pointing],
        help="one enterprise: identity, register years, awards, payments, windows",
    )
    p.add_argument("uscc", metavar="USCC", type=uscc_arg)

    p = sub.add_parser(
        "explain",
        parents=[common, listing],
        help="why an entitlement is owed: policy, clause, the facts it derives from, payments",
    )
    p.add_argument("entitlement_id", metavar="ENTITLEMENT_ID", help="USCC/KIND/DECIDED_YEAR")

    p = sub.add_parser(
        "audit-trail",
        parents=[common, listing],
        help="every event of an enterprise in log order, with position and commit time",
    )
    p.add_argument("uscc", metavar="USCC", type=uscc_arg)

    p = sub.add_parser(
        "register",
        parents=[common, listing, pointing],
        help="register size and first entries per year and city, or who was on it in one year",
    )
    p.add_argument(
        "--year",
        type=year_arg,
        help="list the firms on the register of this year (default: the sizes of every year)",
    )

    p = sub.add_parser(
        "verify",
        parents=[common, listing],
        help="recompute the log's hash chain and compare it with the stored links (exit 1: broken)",
    )
    p.add_argument(
        "--anchor",
        type=anchor_arg,
        metavar="POSITION:HASH",
        help="a head kept earlier (`anchor`): the recomputed link at POSITION must be HASH "
        "(default: none, the chain alone)",
    )

    p = sub.add_parser(
        "anchor",
        parents=[common, listing],
        help="print the chain's head POSITION:HASH to keep outside the database",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="also append a line `POSITION:HASH TAKEN_AT_UTC` to FILE (default: print only)",
    )

    p = sub.add_parser(
        "reconcile",
        parents=[common, listing],
        help="nightly: the ledger against the treasury's payments, the audit rules and the "
        "integrity checks; writes a report (exit 1: findings)",
    )
    p.add_argument(
        "--treasury",
        metavar="FILE",
        required=True,
        help="the treasury's payment file (CSV), cumulative up to --date",
    )
    p.add_argument(
        "--date",
        type=day_arg,
        metavar="YYYY-MM-DD",
        help="the reconciliation date (default: yesterday, Asia/Shanghai)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where reports go, as DIR/DATE/report.{json,html}, with DIR/anchors.txt "
        "(default: $LEDGER_REPORTS_DIR, else ./reports)",
    )
    encoding_option(p, "the treasury file's encoding")
    p.add_argument(
        "--metrics-file",
        metavar="FILE",
        help="also write the run's figures there for node_exporter's textfile collector "
        "(default: $LEDGER_METRICS_TEXTFILE, else none)",
    )
    p.add_argument(
        "--recovery-grace-days",
        type=whole_arg,
        default=90,
        metavar="N",
        help="days after a revoking correction before money still to recover is a finding "
        "(default 90)",
    )
    p.add_argument(
        "--overdue-grace-days",
        type=whole_arg,
        default=90,
        metavar="N",
        help="days after the end of an award's due fiscal year before it is overdue (default 90)",
    )
    p.add_argument(
        "--wait",
        type=whole_arg,
        default=120,
        metavar="SECONDS",
        help="how long to wait for the database to answer before giving up (exit 3; default 120)",
    )

    sub.add_parser(
        "reconciliations",
        parents=[common, listing],
        help="the reconciliation runs recorded in the log: date, position, findings, reports' hashes",
    )

    sub.add_parser(
        "rebuild-projections",
        parents=[common, listing],
        help="empty the read models and replay the log into them",
    )

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="the gRPC service (subsidy_ledger.v1.LedgerService) for finance, auditors, statistics",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to bind (default $LEDGER_LISTEN, else 127.0.0.1:50051); not loopback only with TLS",
    )
    p.add_argument("--tokens", metavar="FILE", help=TOKENS_HELP)

    p = sub.add_parser("policy", help="policy versions: adopt one, list them, show one")
    versions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = versions.add_parser(
        "adopt",
        parents=[common, listing],
        help="adopt a policy version (TOML); awards it now governs are re-derived",
    )
    v.add_argument("file", metavar="FILE", help="the policy file, e.g. domain/policies/*.toml")
    v.add_argument("--reason", required=True, help="why the version is adopted (recorded)")
    known_at = argparse.ArgumentParser(add_help=False)
    known_at.add_argument(
        "--known-at",
        metavar="WHEN",
        help="the versions adopted by then: an RFC 3339 instant with an offset, or @POSITION "
        "(default: now)",
    )
    versions.add_parser(
        "list", parents=[common, listing, known_at], help="the versions adopted, in log order"
    )
    v = versions.add_parser(
        "show", parents=[common, listing, known_at], help="one adopted version, in full"
    )
    v.add_argument("id", metavar="ID", help="the version's id, e.g. jinbanfa-2020-38")

    kinds = [k.value for k in DesignationKind]
    p = sub.add_parser(
        "import-designations",
        parents=[common, listing],
        help="import a certifying authority's designations (CSV uscc,valid_from,valid_to,document)",
    )
    p.add_argument("--kind", required=True, choices=kinds, help="what the file designates")
    p.add_argument("file", metavar="FILE", help="the designations (CSV, format in the README)")
    encoding_option(p, "file encoding")

    p = sub.add_parser("designation", help="designations: revoke one")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = actions.add_parser(
        "revoke",
        parents=[common, listing],
        help="void a firm's designation as if never granted; its awards are re-derived",
    )
    v.add_argument("uscc", metavar="USCC", type=uscc_arg)
    v.add_argument("--kind", required=True, choices=kinds, help="the designation's kind")
    v.add_argument("--document", required=True, help="the revoking instrument (recorded)")
    v.add_argument("--reason", required=True, help="why it is revoked (recorded)")
    v.add_argument(
        "--of",
        metavar="DOC",
        help="the granting document of the designation revoked (default: the firm's one "
        "designation of the kind; needed when it holds several)",
    )

    add_hold_commands(sub, common, listing)
    add_batch_commands(sub, common, listing)
    add_pipeline_commands(sub, common, listing)
    add_person_commands(sub, common, listing)

    p = sub.add_parser(
        "priority",
        help="first entrants with priority: science (六, valid tech SMEs) or upgrade (七)",
    )
    lists = p.add_subparsers(dest="action", required=True, metavar="LIST")
    for name, what in (
        ("science", "first entrants in their priority window holding a valid tech_sme designation"),
        ("upgrade", "first entrants in their priority window (technical-transformation funds)"),
    ):
        v = lists.add_parser(name, parents=[common, listing], help=what)
        v.add_argument("--on", type=day_arg, required=True, metavar="DATE", help="the day listed")
        v.add_argument(
            "--city", type=city_arg, help="only firms of this city (default: every city)"
        )
        v.add_argument(
            "--csv", action="store_true", help="print CSV on stdout (for the departments' systems)"
        )
        v.add_argument(
            "--encoding",
            default="utf-8",
            choices=["utf-8", "gb18030"],
            help="the CSV's encoding (default utf-8)",
        )

    p = sub.add_parser("token", help="the gRPC users' bearer tokens: add, list, revoke")
    tokens = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = tokens.add_parser("add", help="add a user's token; prints it once")
    t.add_argument(
        "--user", required=True, help="the user's name, the actor of every event their calls cause"
    )
    t.add_argument("--role", required=True, choices=list(ROLES), help="what the user may do")
    t.add_argument(
        "--city", type=city_arg, help="scope the user to one city's firms (default: province-wide)"
    )
    t.add_argument("--tokens", metavar="FILE", help=TOKENS_HELP)
    t = tokens.add_parser("list", help="the users and roles (never the tokens)")
    t.add_argument("--tokens", metavar="FILE", help=TOKENS_HELP)
    t.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    t = tokens.add_parser("revoke", help="remove every token of a user")
    t.add_argument("--user", required=True, help="the user whose tokens stop working at once")
    t.add_argument("--tokens", metavar="FILE", help=TOKENS_HELP)

    p = sub.add_parser(
        "demo",
        parents=[listing],
        help="a synthetic Shanxi, 2020-2025, imported and paid in a new SQLite ledger",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="demo",
        help="where the demo goes: a new or empty directory, or an earlier demo's, which is "
        "replaced (default: ./demo)",
    )
    p.add_argument(
        "--seed", type=int, default=38, help="the synthetic province's seed (default 38)"
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the realistic province size, 0.005 to 10 (default 1.0)",
    )
    return parser
