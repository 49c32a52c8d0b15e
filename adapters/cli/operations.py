"""The operations' commands: the nightly reconciliation, and the tokens file of the gRPC users."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from eventsourcing.persistence import PersistenceError

from adapters.bootstrap import open_store, today_in_shanghai
from adapters.cli.common import actor_of
from adapters.cli.output import EXIT_OK, emit_json, print_table
from adapters.files.tokens import TokenFileError, add_user, load_users, revoke_user, tokens_path
from adapters.files.treasury_csv import read_treasury
from adapters.persistence.metrics import write_reconciliation
from adapters.persistence.settings import ServerUnreachableError
from adapters.reconciliation.job import Options, TreasuryInput, reconcile, run_lock
from domain.errors import InvalidInputError


def token(a: argparse.Namespace) -> int:
    """`token add|list|revoke`: the gRPC users' tokens file."""
    path = tokens_path(a.tokens)
    if a.action == "add":
        secret = add_user(path, a.user, a.role, a.city)
        print(secret)
        print(
            f"token for {a.user} ({a.role}{', city ' + a.city if a.city else ''}) added to {path}; "
            "it is shown only now",
            file=sys.stderr,
        )
    elif a.action == "list":
        users = [
            {"user": u.user, "role": u.role, "city": u.city, "created": u.created}
            for u in load_users(path).values()
        ]
        if a.json:
            emit_json(users)
        else:
            print_table(users, ["user", "role", "city", "created"])
    else:
        removed = revoke_user(path, a.user)
        if not removed:
            raise TokenFileError(f"no token of user {a.user} in {path}")
        print(f"revoked {removed} token(s) of {a.user}")
    return EXIT_OK


def reconcile_command(a: argparse.Namespace) -> int:
    """Bad input (exit 2) is found before the database is opened: nothing is written then."""
    today = today_in_shanghai()
    day = a.date or today - timedelta(days=1)
    if day > today:
        raise InvalidInputError(
            f"{day} is after today ({today}, Asia/Shanghai): the treasury file covers payments up "
            "to a day that has begun",
            field="date",
        )
    out = Path(a.out or os.environ.get("LEDGER_REPORTS_DIR") or "reports")
    checked = read_treasury(a.treasury, through=day, encoding=a.encoding)
    source = TreasuryInput(Path(a.treasury), checked.encoding, checked.sha256)
    del checked  # read again after the drift check, which needs the memory
    deadline = time.monotonic() + a.wait
    while True:
        try:
            ledger, settings = open_store(a.db)
            break
        except (PersistenceError, ServerUnreachableError) as e:
            if time.monotonic() >= deadline:
                raise type(e)(
                    f"{str(e).strip()} (waited {a.wait} s for the database; --wait to wait longer)"
                ) from e
            print(
                f"waiting for the database ({str(e).strip() or type(e).__name__})", file=sys.stderr
            )
            time.sleep(2)
    options = Options(day, a.recovery_grace_days, a.overdue_grace_days)
    started = time.monotonic()
    with ledger, run_lock(ledger, settings):
        outcome = reconcile(ledger, source, options, out, actor=actor_of(a))
    report = outcome.report
    textfile = a.metrics_file or os.environ.get("LEDGER_METRICS_TEXTFILE")
    if textfile:
        try:
            write_reconciliation(
                Path(textfile),
                day=report["date"],
                exit_status=outcome.exit_status,
                by_code=report["outcome"]["by_code"],
                seconds=time.monotonic() - started,
                position=report["log"]["position"],
                vouchers=report["matching"]["refs"],
                matched=report["matching"].get("matched", 0),
            )
        except OSError as e:
            # The run is recorded and its report written: say so, and that the figures are not.
            print(
                f"subsidy-ledger: warning: the run's figures were not written to {textfile} "
                f"({e.strerror or e}); the run and its report were",
                file=sys.stderr,
            )
    summary = {
        "date": report["date"],
        "position": report["log"]["position"],
        "anchor": outcome.anchor,
        "exit_status": outcome.exit_status,
        "findings": report["outcome"]["findings"],
        "by_code": report["outcome"]["by_code"],
        "matching": report["matching"],
        "report": str(outcome.folder / "report.json"),
        "html": str(outcome.folder / "report.html"),
        "report_sha256": outcome.report_sha256,
        "run_position": outcome.run_position,
    }
    if a.json:
        emit_json(summary)
    else:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_code"].items()))
        print(
            f"reconciled {summary['date']} at log position {summary['position']}: "
            f"{summary['findings']} finding(s){' (' + codes + ')' if codes else ''}; "
            f"{summary['matching']['matched']} of {summary['matching']['refs']} voucher(s) matched"
        )
        print(f"report: {summary['html']} (sha256 of report.json {outcome.report_sha256})")
        if outcome.anchor:
            print(f"anchor: {outcome.anchor} (appended to {out / 'anchors.txt'})")
        else:
            print("anchor: none kept (the chain is broken or has no link there: see the findings)")
    return outcome.exit_status
