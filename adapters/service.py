"""The ledger as the CLI (and later the gRPC server) uses it: the application, its views, and
answers that are always caught up with the log before they are given."""

from __future__ import annotations

import getpass
import os
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError, InternalError, ProgrammingError

from adapters.chain import Anchor, Verification
from adapters.persistence import Commit, DatabaseSettings, LedgerRecorder, database_settings
from adapters.register_csv import CsvRegister
from domain.application import ImportResult, Ledger, NotFoundError, PaymentResult, RefusedError
from domain.codes import divisions
from domain.enterprise import Enterprise, FirmState, enterprise_id
from domain.policy import Policy
from domain.rules import award_status
from domain.rules import entitlements as rule_entitlements
from domain.rules import windows as rule_windows
from projections import queries
from projections.views import LedgerViews, PostgresLedgerViews, SQLiteLedgerViews

SHANGHAI = ZoneInfo("Asia/Shanghai")
REGISTER_FACTS = (
    "OnBaselineRegister",
    "EnteredRegister",
    "ReEnteredRegister",
    "RetainedInRegister",
)


def valid_from(event: Any) -> date:
    """Valid time: a register fact of year Y holds from 1 January of Y, a payment from its date."""
    if isinstance(event, Enterprise.PaymentRecorded):
        paid_on: date = event.paid_on
        return paid_on
    return date(event.year, 1, 1)


def today_in_shanghai() -> date:
    """'Today' for the rules: decided here, at the edge, in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


class LedgerService:
    """One open ledger: the log, the views over it, and the commands and queries on both."""

    def __init__(
        self, url: str | None = None, *, actor: str | None = None, pool_size: int | None = None
    ):
        self.settings: DatabaseSettings = database_settings(url, pool_size=pool_size)
        self.actor = actor or default_actor()
        views_class = SQLiteLedgerViews if self.settings.kind == "sqlite" else PostgresLedgerViews
        for attempt in range(5):
            app: Ledger | None = None
            try:
                app = Ledger(env=self.settings.env)
                # The library builds the views as a tracking recorder on the log's own datastore.
                views = cast(LedgerViews, app.factory.tracking_recorder(views_class))
                break
            except (InternalError, IntegrityError, ProgrammingError):
                # Processes creating a new database's tables at once collide in PostgreSQL's
                # catalogue ("tuple concurrently updated"); the tables exist after one try.
                if app is not None:
                    app.close()
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        assert app is not None
        self.app: Ledger = app
        self.views: LedgerViews = views

    def close(self) -> None:
        self.app.close()

    def __enter__(self) -> LedgerService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Commands ---------------------------------------------------------------------------------

    def catch_up(self, progress: Any = None) -> int:
        return self.views.catch_up(self.app, progress=progress)

    def import_register(
        self,
        path: str | Path,
        year: int,
        *,
        baseline: bool = False,
        encoding: str = "utf-8",
        policy: Policy | None = None,
    ) -> ImportResult:
        source = CsvRegister(path, year, encoding)

        def load_prior() -> dict[str, Any]:
            self.catch_up()
            return self.views.prior_firms()

        result = self.app.import_register(
            year, source, baseline=baseline, actor=self.actor, load_prior=load_prior, policy=policy
        )
        self.catch_up()
        return result

    def record_payment(
        self, entitlement_id: str, ref: str, amount_fen: int, paid_on: date
    ) -> PaymentResult:
        # Queries catch the views up before they answer, so the payment needs no catch-up here.
        return self.app.record_payment(
            entitlement_id, ref, amount_fen, paid_on, actor=self.actor, today=today_in_shanghai()
        )

    def rebuild_projections(self, progress: Any = None) -> int:
        return self.views.rebuild(self.app, progress=progress)

    # Queries ----------------------------------------------------------------------------------

    def _read(self) -> Any:
        self.catch_up()
        return self.views.read()

    def awards(self, **filters: Any) -> list[dict[str, Any]]:
        with self._read() as tx:
            return queries.awards(tx, **filters)

    def totals(self, **options: Any) -> list[dict[str, Any]]:
        with self._read() as tx:
            return queries.totals(tx, **options)

    def windows(self, **filters: Any) -> list[dict[str, Any]]:
        with self._read() as tx:
            return queries.windows(tx, **filters)

    def register_sizes(self) -> list[dict[str, Any]]:
        with self._read() as tx:
            return queries.register_sizes(tx)

    def register(self, year: int) -> list[dict[str, Any]]:
        """Who was on the register of `year`, with the kind of their presence."""
        with self._read() as tx:
            return queries.register(tx, year)

    def imported_years(self) -> list[dict[str, Any]]:
        with self._read() as tx:
            return queries.imported_years(tx)

    def audit_trail(self, uscc: str) -> list[dict[str, Any]]:
        """Every event of a firm in log order: position, commit time, actor, type, valid time and
        payload (dates as ISO strings)."""
        firm = self.app.get_enterprise(uscc)  # NotFoundError for a firm the ledger never saw
        recorder = cast(LedgerRecorder, self.app.recorder)
        trail = []
        for entry in recorder.select_trail(firm.id):
            event: Any = self.app.mapper.to_domain_event(entry.stored)
            fields = {
                k: v
                for k, v in vars(event).items()
                if k not in ("originator_id", "originator_version", "timestamp", "actor")
            }
            trail.append(
                {
                    "position": entry.position,
                    "recorded_at": entry.recorded_at.astimezone(UTC).isoformat()
                    if entry.recorded_at
                    else None,
                    "version": event.originator_version,
                    "type": type(event).__name__,
                    "actor": getattr(event, "actor", None),
                    "valid_from": valid_from(event).isoformat(),
                    "client_timestamp": event.timestamp.isoformat(),
                    "payload": {
                        k: v.isoformat() if isinstance(v, date) else v for k, v in fields.items()
                    },
                }
            )
        return trail

    def explain(self, entitlement_id: str) -> dict[str, Any]:
        """Why an entitlement is owed: the policy and clause, the register facts it derives from
        (with their log positions), and the payments against it."""
        firm, entitlement = self.app.get_entitlement(entitlement_id)
        book = self.app.get_book()
        assert book is not None  # an entitlement implies an imported register and a policy
        trail = self.audit_trail(firm.uscc)
        basis = set(entitlement.basis_years)
        facts = [e for e in trail if e["type"] in REGISTER_FACTS and e["payload"]["year"] in basis]
        payments = [
            e
            for e in trail
            if e["type"] == "PaymentRecorded" and e["payload"]["entitlement_id"] == entitlement_id
        ]
        paid = sum(p["payload"]["amount_fen"] for p in payments)
        known = {e["payload"]["year"] for e in facts}
        return {
            "entitlement_id": entitlement.entitlement_id,
            "uscc": firm.uscc,
            "kind": entitlement.kind,
            "clause": entitlement.clause,
            "policy": {"id": entitlement.policy_id, "content_hash": book.policy_hash},
            "amount_fen": entitlement.amount_fen,
            "decided_year": entitlement.decided_year,
            "due_fiscal_year": entitlement.due_fiscal_year,
            "basis_years": list(entitlement.basis_years),
            # Years before the baseline count as on the register when the baseline gave the first
            # entry year (DOMAIN.md default 5): no event of the ledger records them.
            "assumed_years": sorted(basis - known),
            "derives_from": [
                {k: e[k] for k in ("position", "recorded_at", "type", "actor", "valid_from")}
                | {"year": e["payload"]["year"], "source_sha256": e["payload"]["source_sha256"]}
                for e in facts
            ],
            "payments": [
                {k: p[k] for k in ("position", "recorded_at", "actor")}
                | {k: p["payload"][k] for k in ("payment_ref", "amount_fen", "paid_on")}
                for p in payments
            ],
            "paid_fen": paid,
            "status": award_status(paid, entitlement.amount_fen),
        }

    def verify(self, anchor: Anchor | None = None) -> Verification:
        """Recompute the log's hash chain from the stored events and compare it with the stored
        links, stopping at the first break.

        `anchor`: a head kept earlier (outside the database); the recomputed link at its position
        must equal it, which catches events changed before it even if every stored link after
        them was rewritten to match.
        """
        return cast(LedgerRecorder, self.app.recorder).verify_chain(anchor)

    def anchor(self, out: str | Path | None = None) -> tuple[Anchor, datetime]:
        """The stored head of the chain and when it was taken (UTC, this machine's clock).

        `out`: append `POSITION:HASH TAKEN_AT` to this file, the auditors' record outside the
        database. The head is read, not recomputed: an anchor that does not match the events
        shows up at the next `verify --anchor`, and reading it stays instant at any log size.
        """
        head = cast(LedgerRecorder, self.app.recorder).chain_head()
        taken_at = datetime.now(UTC).replace(microsecond=0)
        if out is not None:
            try:
                with open(out, "a", encoding="ascii") as kept:
                    kept.write(f"{head} {taken_at.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
            except OSError as e:
                raise RefusedError(
                    f"--out {out}: cannot append to it ({e.strerror}); give a writable file"
                ) from None
        return head, taken_at

    def commit_at(self, known_at: str | None = None) -> Commit | None:
        """The log commit a `--known-at` names: `@POSITION`, or an RFC 3339 instant with an offset
        (inclusive); the head of the log when None."""
        recorder = cast(LedgerRecorder, self.app.recorder)
        if known_at is None:
            return recorder.commit_at()
        if known_at.startswith("@"):
            if not known_at[1:].isdigit():
                raise RefusedError(f"--known-at {known_at!r}: a position is @ and a whole number")
            return recorder.commit_at(position=int(known_at[1:]))
        try:
            instant = datetime.fromisoformat(known_at)
        except ValueError:
            raise RefusedError(
                f"--known-at {known_at!r} is not an RFC 3339 instant, e.g. 2024-03-01T09:00:00+08:00"
            ) from None
        if instant.tzinfo is None:
            raise RefusedError(
                f"--known-at {known_at!r} has no offset: give one (+08:00 or Z), the ledger does "
                "not guess a time zone"
            )
        return recorder.commit_at(instant=instant)

    def enterprise(
        self, uscc: str, *, as_of: date | None = None, known_at: str | None = None
    ) -> dict[str, Any]:
        """A firm from its own events: identity, register years, entitlements, payments, windows.

        `known_at`: only the events the ledger had committed then (what it answered then);
        `as_of`: only the facts valid on that date (default today in Asia/Shanghai).
        """
        commit = self.commit_at(known_at)
        recorder = cast(LedgerRecorder, self.app.recorder)
        day = as_of or today_in_shanghai()
        entries = [
            e
            for e in recorder.select_trail(enterprise_id(uscc))
            if commit is not None and e.position <= commit.position
        ]
        events: list[Any] = [self.app.mapper.to_domain_event(e.stored) for e in entries]
        if not events or valid_from(events[0]) > day:
            when = f" as of {day}" + (f", known at {known_at}" if known_at else "")
            raise NotFoundError(f"no enterprise with USCC {uscc} in the ledger{when}")
        assert commit is not None
        first = events[0]
        s = FirmState(first.uscc, first.name, first.region_code, first.industry_code, None)
        for event in events:
            if valid_from(event) <= day:
                s.apply(event)
        policy = self.app.get_policy()
        division = divisions()[s.region_code]
        entitlements = []
        for e in rule_entitlements(s.history(), policy):
            paid = s.paid_fen(e.entitlement_id)
            entitlements.append(
                {
                    **{k: v for k, v in asdict(e).items() if k not in ("basis_years", "policy_id")},
                    "policy": e.policy_id,
                    "basis_years": list(e.basis_years),
                    "paid_fen": paid,
                    "status": award_status(paid, e.amount_fen),
                }
            )
        return {
            "as_of": day.isoformat(),
            "known_at": {
                "position": commit.position,
                "recorded_at": commit.recorded_at.astimezone(UTC).isoformat(),
            },
            "uscc": s.uscc,
            "name": s.name,
            "region_code": s.region_code,
            "region_name": division.name,
            "city_code": division.city_code,
            "city_name": divisions()[division.city_code].name,
            "industry_code": s.industry_code,
            "size_class": s.size_class,
            "register_years": sorted(s.years),
            "exit_years": sorted(s.exit_years),
            "re_entry_years": sorted(s.re_entry_years),
            "on_baseline": s.baseline_year is not None,
            "first_entry_year": s.first_entry_year,
            "first_entry_route": s.route,
            "entry_size_class": s.entry_size_class,
            "version": events[-1].originator_version,
            "entitlements": entitlements,
            "payments": [
                {
                    "payment_ref": p.ref,
                    "entitlement_id": p.entitlement_id,
                    "amount_fen": p.amount_fen,
                    "paid_on": p.paid_on.isoformat(),
                }
                for p in sorted(s.payments.values(), key=lambda p: (p.paid_on, p.ref))
            ],
            "windows": [
                {
                    "window": w.window,
                    "clause": w.clause,
                    "starts_on": w.starts_on.isoformat(),
                    "ends_on": w.ends_on.isoformat(),
                    **(
                        {"closed_on": w.closed_on.isoformat() if w.closed_on else None}
                        if w.window == "energy"
                        else {"fee_cap_bp": w.fee_cap_bp}
                    ),
                    "size_class": w.size_class,
                }
                for w in rule_windows(s.history(), policy)
            ],
        }
