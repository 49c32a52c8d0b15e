"""The demo's fiscal year through the payment workflow: appropriated, proposed by one user and
approved by another, published, one objection heard, released, its orders written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.bootstrap import today_in_shanghai
from adapters.files.notice import write_notice, write_orders
from domain.application import Ledger

NOTICES_DIRECTORY = "notices"
ORDERS_FILE = "payment-orders.csv"
REVIEWER = "demo-reviewer"
DEMO_FUND = "140000-XSG"
"""The demo's fund code: the province's scale-up award fund (小升规奖励资金)."""
APPROPRIATION_STEP = 1_000_000_000
"""The demo appropriates what its batch needs, rounded up to 10 million yuan."""
OBJECTIONS_TO = "山西省中小企业发展促进局 (the provincial SME authority), 0351-0000000"
WORKFLOW_REASON = (
    "晋财规建〔2025〕1号: 审核、公示、审批后拨付 (paid after review, notice and approval)"
)


def run_workflow(ledger: Ledger, d: Path, year: int, actor: str) -> dict[str, Any]:
    """The fiscal year after the data through the payment workflow: appropriated, proposed by
    one user and approved by another, published for 5 working days ending before today, one
    objection heard, released, and its payment orders written."""
    today = today_in_shanghai()
    due = sum(a.amount_fen for a in ledger.awards(fiscal_year=year) if a.earned and a.hold is None)
    appropriated = -(-due // APPROPRIATION_STEP) * APPROPRIATION_STEP  # rounded up
    ledger.set_appropriation(
        year, DEMO_FUND, appropriated, f"晋财建〔{year - 1}〕150号", actor=actor
    )
    batch = ledger.propose_batch(year, actor=actor)
    ledger.approve_batch(batch.batch_id, actor=REVIEWER)
    notice = ledger.publish_batch(
        batch.batch_id, today - timedelta(days=21), objections_to=OBJECTIONS_TO, actor=actor
    )
    page, lines = write_notice(notice, d / NOTICES_DIRECTORY)
    assert notice.notice_from is not None and notice.notice_to is not None
    objected = notice.awards[0]
    ledger.object_to_batch(
        batch.batch_id,
        objected.uscc,
        "群众来信反映该企业上年度产值数据存疑 (a letter questions last year's output)",
        notice.notice_from + timedelta(days=1),
        actor=REVIEWER,
    )
    released = ledger.release_batch(batch.batch_id, actor=actor)
    orders = d / ORDERS_FILE
    write_orders(ledger.batch_orders(batch.batch_id), orders)
    return {
        "fiscal_year": year,
        "fund": DEMO_FUND,
        "appropriated_fen": appropriated,
        "batch_id": batch.batch_id,
        "proposed": batch.awards_count,
        "released": released.awards_count,
        "released_fen": released.total_fen,
        "objected": objected.uscc,
        "notice_from": notice.notice_from.isoformat(),
        "notice_to": notice.notice_to.isoformat(),
        "files": {"notice_html": str(page), "notice_csv": str(lines), "orders_file": str(orders)},
    }
