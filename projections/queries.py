"""Questions answered from the views: awards, fiscal totals, windows, the register, imported years,
payments, and what the importer needs of the firms already known."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.correction import YearFact
from domain.enterprise import FirmState, Hold
from domain.reconciliation import LedgerPayment
from domain.register import PriorFirm
from domain.results import (
    AwardBonus,
    AwardHold,
    AwardRow,
    EnergyWindow,
    GuaranteeWindow,
    ImportedYearRow,
    Point,
    RegisterEntry,
    RegisterSize,
    TotalRow,
    WindowRow,
)
from domain.rules import award_status, to_recover
from projections.firm_rows import Firm, years_of
from projections.store import Tx
from projections.tables import FIRMS

GROUPS = {"kind": "kind", "city": "city_code"}


@dataclass(frozen=True)
class At:
    """A bitemporal point: the log position the answer is known at (None: the views' current
    rows) and the day it is valid on (None: any)."""

    position: int | None = None
    day: date | None = None

    @classmethod
    def of(cls, point: Point | None) -> At:
        return cls() if point is None else cls(point.position, point.as_of)

    def known(self, alias: str) -> tuple[str, list[Any]]:
        """The condition on a versioned table's rows known at the position."""
        if self.position is None:
            return f"{alias}.known_to IS NULL", []
        return (
            f"{alias}.known_from <= %s AND ({alias}.known_to IS NULL OR {alias}.known_to > %s)",
            [self.position, self.position],
        )

    def money(self, alias: str, day_column: str) -> tuple[str, list[Any]]:
        """The condition on payments or recoveries recorded by the position, dated by the day."""
        where, params = ["TRUE"], list[Any]()
        if self.position is not None:
            where.append(f"{alias}.position <= %s")
            params.append(self.position)
        if self.day is not None:
            where.append(f"{alias}.{day_column} <= %s")
            params.append(self.day.isoformat())
        return " AND ".join(where), params

    def year_valid(self, column: str) -> tuple[str, list[Any]]:
        """Facts of register year Y hold from 1 January of Y."""
        if self.day is None:
            return "TRUE", []
        return f"{column} <= %s", [self.day.year]


def _awards_at(at: At) -> tuple[str, list[Any]]:
    """Awards known at `at` and valid on its day, with what was paid and recovered by then."""
    paid, paid_params = at.money("p", "paid_on")
    back, back_params = at.money("b", "received_on")
    known, known_params = at.known("a")
    valid, valid_params = at.year_valid("a.decided_year")
    register, register_params = at.known("r")
    sql = (
        "SELECT a.entitlement_id, a.uscc, coalesce(r.name, f.name) AS name, a.city_code, a.kind, "
        "a.clause, a.policy_id AS policy, a.amount_fen, a.decided_year, a.due_fiscal_year, "
        "a.earned, coalesce(p.paid_fen, 0) AS paid_fen, coalesce(b.recovered_fen, 0) AS recovered_fen, "
        "v.content_hash AS policy_hash, a.base_fen, a.bonuses "
        "FROM lv_awards a "
        "JOIN lv_policy v ON v.policy_id = a.policy_id "
        "LEFT JOIN (SELECT p.entitlement_id, sum(p.amount_fen) AS paid_fen FROM lv_payments p "
        f"  WHERE {paid} GROUP BY p.entitlement_id) p ON p.entitlement_id = a.entitlement_id "
        "LEFT JOIN (SELECT b.entitlement_id, sum(b.amount_fen) AS recovered_fen FROM lv_recoveries b "
        f"  WHERE {back} GROUP BY b.entitlement_id) b ON b.entitlement_id = a.entitlement_id "
        f"LEFT JOIN lv_register r ON r.uscc = a.uscc AND r.year = a.decided_year AND {register} "
        "LEFT JOIN lv_firms f ON f.uscc = a.uscc "
        f"WHERE {known} AND {valid}"
    )
    return sql, paid_params + back_params + register_params + known_params + valid_params


def placed_holds(tx: Tx, at: At = At()) -> dict[str, list[tuple[Hold, int, str]]]:
    """Every firm's holds as known at the position (lifts known by then applied), each with the
    position and actor of its placing, the longest-standing first."""
    known, params = ("h.position <= %s", [at.position]) if at.position is not None else ("TRUE", [])
    lifts = "AND l.position <= %s" if at.position is not None else ""
    rows = tx.rows(
        "SELECT h.uscc, h.reason, h.authority, h.document, h.valid_from, h.valid_to, "
        "l.lifted_on, l.reason, h.position, h.actor FROM lv_holds h "
        f"LEFT JOIN lv_hold_lifts l ON l.uscc = h.uscc AND l.document = h.document {lifts} "
        f"WHERE {known} ORDER BY h.uscc, h.valid_from, h.document",
        params + params,
    )
    found: dict[str, list[tuple[Hold, int, str]]] = defaultdict(list)
    for firm, reason, authority, document, start, end, lifted, why, position, actor in rows:
        held = Hold(
            reason,
            authority,
            document,
            date.fromisoformat(start),
            date.fromisoformat(end) if end else None,
            date.fromisoformat(lifted) if lifted else None,
            why,
        )
        found[firm].append((held, int(position), actor))
    return found


def awards(
    tx: Tx,
    *,
    fiscal_year: int | None = None,
    city: str | None = None,
    status: str | None = None,
    held: bool | None = None,
    at: At = At(),
) -> list[AwardRow]:
    """One row per entitlement, filtered by due fiscal year, city, status, or whether a hold on
    the firm is in force on the day (`held`)."""
    base, params = _awards_at(at)
    where = []
    for column, value in (("due_fiscal_year", fiscal_year), ("city_code", city)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    rows = tx.rows(
        f"SELECT * FROM ({base}) q "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + "ORDER BY due_fiscal_year, city_code, uscc, decided_year, kind",
        params,
    )
    result = []
    in_force = {
        firm: AwardHold(first.reason, first.authority, first.document, first.valid_from)
        for firm, placed in placed_holds(tx, at).items()
        if at.day is not None
        and (first := next((h for h, _, _ in placed if h.in_force(at.day)), None)) is not None
    }
    for r in rows:
        eid, uscc, name, city_code, kind, clause, policy, _, decided, due, earned = r[:11]
        hold = in_force.get(uscc)
        if held is not None and held != (hold is not None):
            continue
        amount, paid, back = int(r[7]), int(r[11]), int(r[12])
        found = award_status(paid, amount, earned=bool(earned), recovered_fen=back)
        if status is None or found == status:
            row = (eid, uscc, name, city_code, kind, clause, policy, amount, decided, due)
            bonuses = [AwardBonus(d, int(pct)) for d, pct in (b.split(":") for b in r[15].split())]
            result.append(
                AwardRow(*row, paid, back, found, bool(earned), r[13], int(r[14]), bonuses, hold)
            )
    return result


def ledger_payments(tx: Tx, at: At) -> list[LedgerPayment]:
    """Every payment recorded by the position, whatever its date, in log order."""
    where, params = ("p.position <= %s", [at.position]) if at.position is not None else ("TRUE", [])
    return [
        LedgerPayment(ref, eid, uscc, int(fen), date.fromisoformat(day), int(position))
        for ref, eid, uscc, fen, day, position in tx.rows(
            "SELECT p.payment_ref, p.entitlement_id, p.uscc, p.amount_fen, p.paid_on, p.position "
            f"FROM lv_payments p WHERE {where} ORDER BY p.position",
            params,
        )
    ]


def revocations(tx: Tx, at: At) -> dict[str, int]:
    """Entitlements revoked as known at the position, with the position of the correction."""
    known, params = at.known("a")
    return {
        eid: int(position)
        for eid, position in tx.rows(
            f"SELECT a.entitlement_id, a.known_from FROM lv_awards a WHERE {known} AND NOT a.earned",
            params,
        )
    }


@dataclass
class _Total:
    count: int = 0
    entitled_fen: int = 0
    paid_fen: int = 0
    outstanding_fen: int = 0
    other_fen: int = 0
    """recovery_due_fen (due basis) or recovered_fen (cash basis)."""


def totals(
    tx: Tx,
    *,
    fiscal_year: int | None = None,
    by: str = "kind",
    basis: str = "due",
    city: str | None = None,
    at: At = At(),
    known_awards: list[AwardRow] | None = None,
) -> list[TotalRow]:
    """Fiscal totals grouped by kind or city.

    Basis `due`: entitlements by the fiscal year they are due in, with all paid against them;
    `recovery_due_fen` is what is still to come back on awards a correction revoked.
    Basis `cash`: payments by the fiscal year of their date; `count` and `entitled_fen` are of the
    entitlements paid that year, `outstanding_fen` what remained on them at that year's end;
    `recovered_fen` is money that came back that year. `city`: only awards counted for that city.
    `known_awards`: `awards(tx, city=city, at=at)` if the caller has them already.
    """
    groups: dict[tuple[int, str], _Total] = defaultdict(_Total)

    def group_of(a: AwardRow) -> str:
        return a.kind if by == "kind" else a.city_code

    if known_awards is None:
        known_awards = awards(tx, city=city, at=at)
    awards_by_id = {a.entitlement_id: a for a in known_awards}
    if basis == "due":
        for a in awards_by_id.values():
            if fiscal_year is not None and a.due_fiscal_year != fiscal_year:
                continue
            g = groups[(a.due_fiscal_year, group_of(a))]
            if a.earned:
                g.count += 1
                g.entitled_fen += a.amount_fen
                g.paid_fen += a.paid_fen - a.recovered_fen
                g.outstanding_fen += max(0, a.amount_fen - (a.paid_fen - a.recovered_fen))
            g.other_fen += to_recover(
                a.paid_fen, a.amount_fen, earned=a.earned, recovered_fen=a.recovered_fen
            )
    else:
        money, params = at.money("p", "paid_on")
        paid_by_year: dict[tuple[int, str], int] = defaultdict(int)
        for eid, year, fen in tx.rows(
            f"SELECT p.entitlement_id, p.fiscal_year, p.amount_fen FROM lv_payments p WHERE {money}",
            params,
        ):
            paid_by_year[(int(year), eid)] += int(fen)
        to_date: dict[str, int] = defaultdict(int)
        for (year, eid), fen in sorted(paid_by_year.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            to_date[eid] += fen
            paid_award = awards_by_id.get(eid)
            if paid_award is None or (fiscal_year is not None and year != fiscal_year):
                continue
            g = groups[(year, group_of(paid_award))]
            g.count += 1
            g.entitled_fen += paid_award.amount_fen
            g.paid_fen += fen
            g.outstanding_fen += paid_award.amount_fen - to_date[eid]
        money, params = at.money("b", "received_on")
        for eid, year, fen in tx.rows(
            f"SELECT b.entitlement_id, b.fiscal_year, b.amount_fen FROM lv_recoveries b WHERE {money}",
            params,
        ):
            recovered = awards_by_id.get(eid)
            if recovered is not None and (fiscal_year is None or int(year) == fiscal_year):
                groups[(int(year), group_of(recovered))].other_fen += int(fen)
    due = basis == "due"
    return [
        TotalRow(
            year,
            key,
            g.count,
            g.entitled_fen,
            g.paid_fen,
            g.outstanding_fen,
            g.other_fen if due else None,
            None if due else g.other_fen,
        )
        for (year, key), g in sorted(groups.items())
    ]


def windows(
    tx: Tx,
    *,
    uscc: str | None = None,
    active_on: date | None = None,
    city: str | None = None,
    at: At = At(),
) -> list[WindowRow]:
    """Windows known at `at`; on its day, only those begun, and a closure only once it happened.
    `city`: only firms now in that city."""
    known, params = at.known("w")
    where = [known]
    if city is not None:
        where.append("w.uscc IN (SELECT f.uscc FROM lv_firms f WHERE f.city_code = %s)")
        params.append(city)
    if uscc is not None:
        where.append("w.uscc = %s")
        params.append(uscc)
    if at.day is not None:
        where.append("w.starts_on <= %s")
        params.append(at.day.isoformat())
    if active_on is not None:
        day = active_on.isoformat()
        where.append(
            "w.starts_on <= %s AND w.ends_on >= %s AND (w.closed_on IS NULL OR w.closed_on > %s)"
        )
        params += [day, day, day]
    found: list[WindowRow] = []
    for firm, kind, clause, starts, ends, closed, fee_cap, size in tx.rows(
        "SELECT w.uscc, w.window_kind, w.clause, w.starts_on, w.ends_on, w.closed_on, "
        f"w.fee_cap_bp, w.size_class FROM lv_windows w WHERE {' AND '.join(where)} "
        "ORDER BY w.uscc, w.window_kind",
        params,
    ):
        starts_on, ends_on = date.fromisoformat(starts), date.fromisoformat(ends)
        if kind == "energy":
            closed_on = date.fromisoformat(closed) if closed else None
            if at.day is not None and closed_on is not None and closed_on > at.day:
                closed_on = None  # not closed yet on that day
            found.append(EnergyWindow(firm, kind, clause, starts_on, ends_on, closed_on, size))
        else:
            found.append(GuaranteeWindow(firm, kind, clause, starts_on, ends_on, fee_cap, size))
    return found


def register_sizes(tx: Tx, at: At = At()) -> list[RegisterSize]:
    """Register size and first entries per register year and city."""
    known, params = at.known("r")
    valid, valid_params = at.year_valid("r.year")
    rows = tx.rows(
        "SELECT r.year, r.city_code, count(*) AS size, "
        "sum(CASE WHEN r.first_entry THEN 1 ELSE 0 END) AS first_entries, "
        "sum(CASE WHEN r.kind = 're_entered' THEN 1 ELSE 0 END) AS re_entries "
        f"FROM lv_register r WHERE {known} AND {valid} GROUP BY r.year, r.city_code "
        "ORDER BY r.year, r.city_code",
        params + valid_params,
    )
    return [RegisterSize(int(y), c, int(n), int(f), int(r)) for y, c, n, f, r in rows]


def first_entrants(tx: Tx, entered_from: int, entered_to: int, city: str | None) -> list[FirmState]:
    """The firms the ledger knows now as first entrants of those register years (of `city`, the
    firm's city now, if given)."""
    where = "first_entry_year BETWEEN %s AND %s AND route IS NOT NULL"
    params: list[Any] = [entered_from, entered_to]
    if city is not None:
        where += " AND city_code = %s"
        params.append(city)
    return [
        Firm.from_row(r).state
        for r in tx.rows(
            f"SELECT {','.join(FIRMS.names)} FROM lv_firms WHERE {where} ORDER BY uscc", params
        )
    ]


def register(tx: Tx, year: int, at: At = At()) -> list[RegisterEntry]:
    """Who was on the register of `year`, as known at `at` (nobody before 1 January of it)."""
    if at.day is not None and at.day.year < year:
        return []
    known, params = at.known("r")
    return [
        RegisterEntry(uscc, name, kind, bool(first), region, city, industry, size)
        for uscc, name, kind, first, region, city, industry, size in tx.rows(
            "SELECT r.uscc, r.name, r.kind, r.first_entry, r.region_code, r.city_code, "
            f"r.industry_code, r.size_class FROM lv_register r WHERE r.year = %s AND {known} "
            "ORDER BY r.uscc",
            [year, *params],
        )
    ]


def imported_years(tx: Tx) -> list[ImportedYearRow]:
    return [
        ImportedYearRow(year, bool(baseline), sha, rows, json.loads(counts), actor, position)
        for year, baseline, sha, rows, counts, actor, position in tx.rows(
            "SELECT year, baseline, sha256, row_count, counts, actor, position FROM lv_years "
            "ORDER BY year"
        )
    ]


def year_facts(tx: Tx, year: int) -> dict[str, YearFact]:
    """Each firm's current row of register year `year`."""
    rows = tx.rows(
        "SELECT uscc, name, region_code, industry_code, size_class FROM lv_register "
        "WHERE year = %s AND known_to IS NULL",
        (year,),
    )
    return {r[0]: YearFact(*r[1:]) for r in rows}


def firm_sizes(tx: Tx, usccs: Sequence[str]) -> dict[str, dict[int, str | None]]:
    """The size class of each firm in each register year it is on, as currently known."""
    result: dict[str, dict[int, str | None]] = defaultdict(dict)
    for condition, params in tx.matching("uscc", list(usccs)):
        for uscc, year, size in tx.rows(
            f"SELECT uscc, year, size_class FROM lv_register WHERE {condition} AND known_to IS NULL",
            params,
        ):
            result[uscc][year] = size
    return result


def prior_firms(tx: Tx) -> dict[str, PriorFirm]:
    """Every firm the ledger knows, as the register diff needs it."""
    rows = tx.rows(
        "SELECT uscc, originator_id, version, name, region_code, industry_code, "
        "size_class, years, first_entry_year, baseline_year, route FROM lv_firms"
    )
    return {
        uscc: PriorFirm(
            uscc,
            uuid.UUID(oid),
            version,
            name,
            region,
            industry,
            size,
            frozenset(years_of(years)),
            first_entry,
            base,
            route,
        )
        for uscc, oid, version, name, region, industry, size, years, first_entry, base, route in rows
    }
