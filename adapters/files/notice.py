"""A payment batch's public notice (公示) as a self-contained HTML page (inline CSS, no script) and
a CSV of the same lines, and its payment orders for the budget-management system (预算管理一体化).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from html import escape
from pathlib import Path

from domain.codes import divisions
from domain.money import yuan
from domain.payment_results import BatchView, PaymentOrder

NOTICE_COLUMNS = (
    "firm_name",
    "uscc",
    "city",
    "award_kind",
    "clause",
    "amount_yuan",
    "notice_period",
    "objections_to",
)
ORDER_COLUMNS = (
    "order_no",
    "payee_uscc",
    "payee_name",
    "amount_yuan",
    "budget_subject",
    "fund_code",
    "purpose",
)
KIND_NAMES = {
    "first_entry": "首次入规奖励",
    "retention_2y": "连续两年在库奖励",
    "retention_3y": "连续三年在库奖励",
}

_CSS = """
body{margin:32px;color:#1b1f24;background:#fff;
font:15px/1.6 system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif}
h1{font-size:22px;margin:0 0 8px;text-align:center}
p.period{font-size:16px;background:#fff4d6;border:2px solid #d08700;padding:8px 12px}
table{border-collapse:collapse;margin:12px 0;width:100%}
th,td{border:1px solid #8c959f;padding:4px 8px;text-align:left}
th{background:#eaeef2}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tfoot td{font-weight:600}
.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
"""


def _plain(fen: int) -> str:
    """Yuan with two decimals and no grouping, as the budget system and the treasury read it."""
    return yuan(fen).replace(",", "")


def _city(code: str) -> str:
    division = divisions().get(code)
    return division.name if division else code


def notice_rows(batch: BatchView) -> list[list[str]]:
    """The notice's lines: the awards left in the batch, one a line."""
    assert batch.notice_from is not None and batch.notice_to is not None
    period = f"{batch.notice_from.isoformat()} 至 {batch.notice_to.isoformat()}"
    return [
        [
            a.name,
            a.uscc,
            _city(a.city_code),
            KIND_NAMES.get(a.kind, a.kind),
            a.clause,
            _plain(a.amount_fen),
            period,
            batch.objections_to or "",
        ]
        for a in batch.awards
        if a.status == "in_batch"
    ]


def render_notice(batch: BatchView) -> str:
    """The notice as one HTML page; the same batch gives the same bytes."""
    rows = notice_rows(batch)
    assert batch.notice_from is not None and batch.notice_to is not None
    total = sum(a.amount_fen for a in batch.awards if a.status == "in_batch")
    scope = _city(batch.city) if batch.city else "山西省"
    body = "".join(
        "<tr>"
        f'<td>{escape(a.name)}</td><td class="mono">{escape(a.uscc)}</td>'
        f"<td>{escape(_city(a.city_code))}</td><td>{escape(KIND_NAMES.get(a.kind, a.kind))}</td>"
        f'<td>{escape(a.clause)}</td><td class="num">{escape(yuan(a.amount_fen))}</td>'
        "</tr>"
        for a in batch.awards
        if a.status == "in_batch"
    )
    head = "".join(
        f"<th>{escape(h)}</th>"
        for h in (
            "企业名称 firm",
            "统一社会信用代码 USCC",
            "市 city",
            "奖励类别 award",
            "依据 clause",
            "金额（元）yuan",
        )
    )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(batch.batch_id)} 公示</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(scope)} {batch.fiscal_year} 年度小升规奖励资金拟拨付名单公示</h1>"
        f'<p>Payment batch <span class="mono">{escape(batch.batch_id)}</span>, fiscal year '
        f"{batch.fiscal_year}, fund {escape(batch.fund)}: {len(rows)} awards, "
        f"{escape(yuan(total))} yuan.</p>"
        f'<p class="period" id="period">公示期 notice period: {batch.notice_from.isoformat()} 至 '
        f"{batch.notice_to.isoformat()}（{batch.working_days} 个工作日 working days, by the "
        "State Council's calendar）</p>"
        f"<p>如有异议，请在公示期内向 {escape(batch.objections_to or '')} 书面反映。 Objections, in "
        f"writing during the notice period, to: {escape(batch.objections_to or '')}.</p>"
        f'<table id="awards"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        f'<tfoot><tr><td colspan="5">合计 total</td><td class="num">{escape(yuan(total))}</td></tr>'
        "</tfoot></table></body></html>\n"
    )


def write_notice(batch: BatchView, directory: Path) -> tuple[Path, Path]:
    """Write `BATCH.html` and `BATCH.csv` (UTF-8) in `directory`; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / f"{batch.batch_id}.html"
    csv_path = directory / f"{batch.batch_id}.csv"
    html_path.write_text(render_notice(batch), encoding="utf-8")
    csv_path.write_bytes(_csv(NOTICE_COLUMNS, notice_rows(batch), "utf-8"))
    return html_path, csv_path


def order_rows(orders: Sequence[PaymentOrder]) -> list[list[str]]:
    return [
        [o.order_no, o.payee_uscc, o.payee_name, _plain(o.amount_fen), o.subject, o.fund, o.purpose]
        for o in orders
    ]


def write_orders(orders: Sequence[PaymentOrder], path: Path, encoding: str = "utf-8") -> int:
    """Write the payment orders (one line an award) in UTF-8 or GB18030; return the lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_csv(ORDER_COLUMNS, order_rows(orders), encoding))
    return len(orders)


def _csv(columns: Sequence[str], rows: list[list[str]], encoding: str) -> bytes:
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(columns)
    out.writerows(rows)
    return text.getvalue().encode(encoding)
