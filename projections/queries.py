"""Questions answered from the views: awards, fiscal totals, windows, register sizes, imported years."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from projections.store import Tx

AWARD_STATUSES = ("due", "partially_paid", "paid")
GROUPS = {"kind": "kind", "city": "city_code"}


def awards(
    tx: Tx,
    *,
    fiscal_year: int | None = None,
    city: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """One row per entitlement, filtered by due fiscal year, city or status."""
    where, params = [], []
    for column, value in (
        ("a.due_fiscal_year", fiscal_year),
        ("a.city_code", city),
        ("a.status", status),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    rows = tx.execute(
        "SELECT a.entitlement_id, a.uscc, f.name, a.city_code, a.kind, a.clause, a.policy_id AS policy, "
        "a.amount_fen, a.decided_year, a.due_fiscal_year, a.paid_fen, a.status "
        "FROM lv_awards a JOIN lv_firms f ON f.uscc = a.uscc "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + "ORDER BY a.due_fiscal_year, a.city_code, a.uscc, a.decided_year, a.kind",
        params,
    )
    for r in rows:
        r["amount_fen"], r["paid_fen"] = int(r["amount_fen"]), int(r["paid_fen"])
    return rows


def totals(
    tx: Tx, *, fiscal_year: int | None = None, by: str = "kind", basis: str = "due"
) -> list[dict[str, Any]]:
    """Fiscal totals grouped by kind or city.

    Basis `due`: entitlements by the fiscal year they are due in, with all paid against them.
    Basis `cash`: payments by the fiscal year of their date; `count` and `entitled_fen` are of the
    entitlements paid that year, `outstanding_fen` what remained on them at that year's end.
    """
    group = GROUPS[by]
    label = "kind" if by == "kind" else "city_code"
    if basis == "due":
        sql = (
            f"SELECT a.due_fiscal_year AS fiscal_year, a.{group} AS grp, count(*) AS count, "
            "sum(a.amount_fen) AS entitled_fen, sum(a.paid_fen) AS paid_fen "
            "FROM lv_awards a "
            + ("WHERE a.due_fiscal_year = %s " if fiscal_year is not None else "")
            + f"GROUP BY a.due_fiscal_year, a.{group} ORDER BY 1, 2"
        )
    else:
        sql = (
            "WITH pe AS (SELECT fiscal_year, entitlement_id, sum(amount_fen) AS paid_fen, "
            "  (SELECT sum(q.amount_fen) FROM lv_payments q WHERE q.entitlement_id = p.entitlement_id "
            "   AND q.fiscal_year <= p.fiscal_year) AS paid_to_date "
            "  FROM lv_payments p "
            + ("WHERE fiscal_year = %s " if fiscal_year is not None else "")
            + "  GROUP BY fiscal_year, entitlement_id) "
            f"SELECT pe.fiscal_year, a.{group} AS grp, count(*) AS count, sum(a.amount_fen) AS entitled_fen, "
            "sum(pe.paid_fen) AS paid_fen, sum(pe.paid_to_date) AS paid_to_date "
            "FROM pe JOIN lv_awards a ON a.entitlement_id = pe.entitlement_id "
            f"GROUP BY pe.fiscal_year, a.{group} ORDER BY 1, 2"
        )
    rows = tx.execute(sql, [fiscal_year] if fiscal_year is not None else [])
    result = []
    for r in rows:
        entitled, paid = int(r["entitled_fen"]), int(r["paid_fen"])
        settled = int(r["paid_to_date"]) if basis == "cash" else paid
        result.append(
            {
                "fiscal_year": int(r["fiscal_year"]),
                label: r["grp"],
                "count": int(r["count"]),
                "entitled_fen": entitled,
                "paid_fen": paid,
                "outstanding_fen": entitled - settled,
            }
        )
    return result


def windows(
    tx: Tx, *, uscc: str | None = None, active_on: date | None = None
) -> list[dict[str, Any]]:
    where, params = [], []
    if uscc is not None:
        where.append("uscc = %s")
        params.append(uscc)
    if active_on is not None:
        day = active_on.isoformat()
        where.append("starts_on <= %s AND ends_on >= %s AND (closed_on IS NULL OR closed_on > %s)")
        params += [day, day, day]
    rows = tx.execute(
        "SELECT uscc, window_kind AS window, clause, starts_on, ends_on, closed_on, fee_cap_bp, size_class "
        "FROM lv_windows "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + "ORDER BY uscc, window_kind",
        params,
    )
    for r in rows:
        if r["window"] == "energy":
            r.pop("fee_cap_bp")
        else:
            r.pop("closed_on")
    return rows


def register_sizes(tx: Tx) -> list[dict[str, Any]]:
    """Register size and first entries per register year and city."""
    rows = tx.execute(
        "SELECT year, city_code, count(*) AS size, "
        "sum(CASE WHEN first_entry THEN 1 ELSE 0 END) AS first_entries, "
        "sum(CASE WHEN kind = 're_entered' THEN 1 ELSE 0 END) AS re_entries "
        "FROM lv_register GROUP BY year, city_code ORDER BY year, city_code"
    )
    return [{k: (int(v) if k != "city_code" else v) for k, v in r.items()} for r in rows]


def register(tx: Tx, year: int) -> list[dict[str, Any]]:
    """Who was on the register of `year`."""
    rows = tx.execute(
        "SELECT uscc, name, kind, first_entry, region_code, city_code, industry_code, size_class "
        "FROM lv_register WHERE year = %s ORDER BY uscc",
        (year,),
    )
    for r in rows:
        r["first_entry"] = bool(r["first_entry"])
    return rows


def imported_years(tx: Tx) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT year, baseline, sha256, row_count, counts, actor, position FROM lv_years ORDER BY year"
    )
    return [
        {
            "year": r["year"],
            "baseline": bool(r["baseline"]),
            "sha256": r["sha256"],
            "rows": r["row_count"],
            "counts": json.loads(r["counts"]),
            "actor": r["actor"],
            "position": r["position"],
        }
        for r in rows
    ]
