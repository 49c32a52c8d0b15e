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
