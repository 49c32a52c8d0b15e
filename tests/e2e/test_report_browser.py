"""The reconciliation report page in headless Chromium: its charts and findings render (the DOM,
and the bars' colours in the screenshot's pixels)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import assert_bars_painted, chromium_binary, run_chromium
from support.helpers import ROOT
from support.reports import sample_report

from adapters.files.report_html import MEASURES, render_html

SCREENSHOT = ROOT / "test-artifacts" / "reconcile-report.png"


@pytest.mark.slow
def test_the_page_renders_its_charts_and_findings_in_chromium(tmp_path: Path) -> None:
    binary = chromium_binary()
    report = sample_report()
    html = render_html(report)
    page = tmp_path / "reconcile-report.html"
    page.write_text(html, encoding="utf-8")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)

    run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={SCREENSHOT}", page.as_uri())
    print(f"screenshot of the reconciliation report: {SCREENSHOT}")
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", page.as_uri())

    # The browser built the document we meant: both charts with all their bars, every finding a row.
    assert '<svg id="chart-fiscal-year" class="chart"' in dom
    assert '<svg id="chart-city" class="chart"' in dom
    groups = len(report["totals"]["by_fiscal_year"]) + len(report["totals"]["by_city"])
    assert dom.count('<rect class="bar bar-') == groups * len(MEASURES)
    assert dom.count('<tr class="finding"') == len(report["findings"])
    for finding in report["findings"]:
        assert finding["subject"] in dom

    # And painted the bars: each measure's colour covers at least the bars' solid interior, which
    # is more than its legend keys alone could.
    assert_bars_painted(SCREENSHOT, html, [measure for _, measure, _ in MEASURES])


@pytest.mark.slow
def test_a_batch_s_public_notice_renders_in_chromium(tmp_path: Path) -> None:
    """The notice page of a published batch, as `batch publish` writes it: Chromium builds the
    table of every award with the period and where to object."""
    from datetime import date

    from adapters.files.notice import render_notice
    from domain.payment_results import BatchAward, BatchView

    binary = chromium_binary()
    awards = [
        BatchAward(
            f"{u}/first_entry/2025",
            u,
            f"山西{n}号制造有限公司",
            "140100",
            "first_entry",
            "(四)",
            "jinbanfa-2020-38",
            30_000_000,
            "in_batch",
        )
        for n, u in enumerate(("91140100MA0000001X", "91140100MA0000002X"), start=1)
    ]
    batch = BatchView(
        "B2026-140100-01",
        2026,
        "140100",
        "F",
        "published",
        2,
        60_000_000,
        date(2026, 9, 1),
        "maker",
        date(2026, 9, 2),
        "checker",
        date(2026, 9, 30),
        date(2026, 10, 12),
        5,
        "太原市工信局 <0351>",
        None,
        None,
        [],
        awards,
    )
    page = tmp_path / "notice.html"
    page.write_text(render_notice(batch), encoding="utf-8")
    dom = run_chromium(binary, tmp_path / "profile-notice", "--dump-dom", page.as_uri())
    assert dom.count("<tr>") == 1 + len(awards) + 1  # the head, an award a row, the total
    assert "2026-09-30 至 2026-10-12" in dom and "600,000.00" in dom
    assert "太原市工信局 &lt;0351&gt;" in dom  # escaped, never markup
