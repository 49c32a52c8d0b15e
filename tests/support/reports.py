"""A reconciliation report made by hand for the report page's tests, and how they read its charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from adapters.files.report_html import MEASURES
from support.helpers import ref_uscc

MEASURE_KEYS = [key for key, _, _ in MEASURES]
HEX = "0123456789abcdef" * 4
TAIYUAN = ref_uscc(123, "140105")
DATONG = ref_uscc(456, "140213")


def totals_row(awards: int, entitled: int, paid: int, recovered_due: int = 0) -> dict[str, int]:
    return {
        "awards": awards,
        "entitled_fen": entitled,
        "paid_fen": paid,
        "outstanding_fen": entitled - paid,
        "to_recover_fen": recovered_due,
    }


def sample_report() -> dict[str, Any]:
    """A realistic night with findings: three fiscal years, four cities, one finding of each kind."""
    by_year = [
        {"fiscal_year": 2022, **totals_row(310, 9_300_000_000, 9_000_000_000)},
        {"fiscal_year": 2023, **totals_row(402, 11_550_000_000, 11_300_000_000, 900_000_000)},
        {"fiscal_year": 2024, **totals_row(455, 12_800_000_000, 7_250_000_000, 1_560_000_000)},
    ]
    grand = {k: sum(r[k] for r in by_year) for k in ("awards", *MEASURE_KEYS)}
    cities = [
        ("140100", "太原市", totals_row(480, 13_440_000_000, 11_040_000_000, 1_200_000_000)),
        ("140200", "大同市", totals_row(260, 7_280_000_000, 5_980_000_000, 600_000_000)),
        ("140400", "长治市", totals_row(250, 7_000_000_000, 5_750_000_000)),
    ]
    by_city = [{"city_code": code, "city_name": name, **row} for code, name, row in cities]
    # the last city takes the rest, so that both breakdowns add up to the grand total
    rest = {k: grand[k] - sum(r[k] for r in by_city) for k in ("awards", *MEASURE_KEYS)}
    by_city.append({"city_code": "140700", "city_name": "晋中市", **rest})
    findings = [
        {
            "code": "amount_mismatch",
            "category": "treasury",
            "subject": "GK2023-000123",
            "uscc": TAIYUAN,
            "entitlement_id": f"{TAIYUAN}/first_entry/2022",
            "message": "treasury paid 350,000.00 yuan on voucher GK2023-000123, "
            "the ledger records 300,000.00",
            "evidence": {
                "treasury": [
                    {"line": 17, "amount_fen": 35_000_000, "payee": "太原重工测试有限公司"}
                ],
                "ledger": {"position": 812, "amount_fen": 30_000_000},
            },
        },
        {
            "code": "award_overdue",
            "category": "audit",
            "subject": f"{DATONG}/retention_2y/2023",
            "uscc": DATONG,
            "entitlement_id": f"{DATONG}/retention_2y/2023",
            "message": "decided on 2023 and unpaid 95 days after the grace of 90 days",
            "evidence": {"decided_on": "2023-12-31", "due_fiscal_year": 2024},
        },
        {
            "code": "chain_break",
            "category": "integrity",
            "subject": "17",
            "uscc": None,
            "entitlement_id": None,
            "message": "event 17 was changed after it was recorded",
            "evidence": {"position": 17, "problem": "changed"},
        },
    ]
    return {
        "format": "subsidy-ledger reconciliation report, version 1",
        "date": "2026-11-26",
        "log": {
            "position": 4385,
            "recorded_at": "2026-11-26T15:02:11.123456+00:00",
            "anchor": f"4385:{HEX}",
        },
        "inputs": {
            "treasury": {"sha256": HEX[::-1], "encoding": "gb18030", "rows": 1234},
            "policy": {"id": "jinbanfa-2020-38", "content_hash": HEX.upper()},
            "options": {"recovery_grace_days": 90, "overdue_grace_days": 90},
        },
        "outcome": {
            "exit_status": 1,
            "findings": 3,
            "by_code": {"amount_mismatch": 1, "award_overdue": 1, "chain_break": 1},
        },
        "matching": {
            "refs": 1236,
            "matched": 1230,
            "duplicate_in_treasury": 1,
            "missing_in_ledger": 1,
            "missing_in_treasury": 1,
            "payee_mismatch": 1,
            "amount_mismatch": 1,
            "paid_on_mismatch": 1,
        },
        "totals": {"by_fiscal_year": by_year, "by_city": by_city, "all": grand},
        "integrity": {
            "chain": {
                "intact": False,
                "verified_from": f"0:{'0' * 64}",
                "head": f"4385:{HEX}",
                "events": 4385,
                "break": {"position": 17, "problem": "changed", "message": "hash differs"},
            },
            "projections": {"tables": ["lv_awards", "lv_firms"], "rows": 12345, "drifted": 0},
        },
        "findings": findings,
    }


def svg(html: str, chart_id: str) -> ET.Element:
    """The chart as XML: the page writes its SVG well formed, so a strict parser reads it."""
    match = re.search(rf'<svg id="{chart_id}".*?</svg>', html, re.DOTALL)
    assert match, f"no <svg id={chart_id!r}> in the page"
    return ET.fromstring(match.group(0))
