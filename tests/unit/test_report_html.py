"""The reconciliation report page: self-contained, deterministic, escaped, exact money (in a browser:
tests/e2e/test_report_browser.py)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from support.reports import sample_report, svg

from adapters.files.report_html import MEASURES, render_html
from domain.money import yuan


def findings_table(html: str) -> ET.Element:
    match = re.search(r'<table id="findings">.*?</table>', html, re.DOTALL)
    assert match, "no <table id='findings'> in the page"
    return ET.fromstring(match.group(0))


# -- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (100, "1.00"),
        (30_000_000, "300,000.00"),
        (123_456_789_012, "1,234,567,890.12"),
        (-1, "-0.01"),
        (-30_000_050, "-300,000.50"),
    ],
)
def test_fen_are_shown_as_yuan_with_separators_and_two_decimals(fen: int, shown: str) -> None:
    assert yuan(fen) == shown


@pytest.mark.parametrize("fen", [1.5, "100", True, None])
def test_only_whole_fen_are_money(fen: Any) -> None:
    with pytest.raises(TypeError, match="whole number of fen"):
        yuan(fen)


def test_a_float_amount_in_the_report_is_refused_not_rounded() -> None:
    report = sample_report()
    report["totals"]["by_fiscal_year"][0]["paid_fen"] = 90_000_000.5
    with pytest.raises(TypeError, match="whole number of fen"):
        render_html(report)


# -- the page ----------------------------------------------------------------------------------


def test_the_same_report_gives_the_same_bytes() -> None:
    report = sample_report()
    first = render_html(report)
    assert render_html(copy.deepcopy(report)) == first
    assert render_html(sample_report()) == first


def test_the_page_fetches_nothing_and_runs_nothing() -> None:
    html = render_html(sample_report()).lower()
    for forbidden in ("<script", "http://", "https://", "<link", "@import", "url(", "src="):
        assert forbidden not in html, forbidden


def test_the_page_declares_utf8_and_keeps_chinese_text_as_is() -> None:
    html = render_html(sample_report())
    assert '<meta charset="utf-8">' in html
    assert "太原市" in html and "太原重工测试有限公司" in html


def test_the_title_and_header_name_the_date_and_every_input() -> None:
    report = sample_report()
    html = render_html(report)
    assert "<title>Reconciliation report 2026-11-26</title>" in html
    assert "<h1>Reconciliation report 2026-11-26</h1>" in html
    for text in (
        "4,385",
        "2026-11-26T15:02:11.123456+00:00",
        report["log"]["anchor"],
        report["inputs"]["treasury"]["sha256"],
        "gb18030",
        "1,234",
        "jinbanfa-2020-38",
        report["inputs"]["policy"]["content_hash"],
        "<dt>recovery grace days</dt><dd>90 days</dd>",
        "<dt>overdue grace days</dt><dd>90 days</dd>",
    ):
        assert text in html, text


def test_the_outcome_says_what_the_exit_status_means() -> None:
    report = sample_report()
    assert "exit status 1: findings" in render_html(report)
    report["outcome"] = {"exit_status": 0, "findings": 0, "by_code": {}}
    report["findings"] = []
    assert "exit status 0: clean" in render_html(report)


def test_the_outcome_and_matching_counts_are_all_shown() -> None:
    html = render_html(sample_report())
    assert '<td class="mono">amount_mismatch</td><td class="num">1</td>' in html
    assert '<td>matched</td><td class="num">1,230</td>' in html
    assert '<td>paid on mismatch</td><td class="num">1</td>' in html


def test_totals_tables_show_each_year_city_and_the_grand_total_in_yuan() -> None:
    report = sample_report()
    html = render_html(report)
    year_table = re.search(r'<table id="totals-fiscal-year".*?</table>', html, re.DOTALL)
    assert year_table
    assert (
        '<tr><td>2022</td><td class="num">310</td><td class="num">93,000,000.00</td>'
        '<td class="num">90,000,000.00</td><td class="num">3,000,000.00</td>'
        '<td class="num">0.00</td></tr>'
    ) in year_table.group(0)
    grand = report["totals"]["all"]
    assert f'<tfoot><tr><td>all</td><td class="num">{grand["awards"]:,}</td>' in html
    assert yuan(grand["entitled_fen"]) in year_table.group(0)
    city_table = re.search(r'<table id="totals-city".*?</table>', html, re.DOTALL)
    assert city_table and "晋中市" in city_table.group(0) and "140700" in city_table.group(0)


def test_the_fiscal_year_chart_has_one_bar_per_year_and_measure_with_its_exact_figure() -> None:
    report = sample_report()
    chart = svg(render_html(report), "chart-fiscal-year")
    bars = [r for r in chart.iter("rect") if "bar" in r.get("class", "").split()]
    years = report["totals"]["by_fiscal_year"]
    assert len(bars) == len(years) * len(MEASURES)
    titles = {bar.findtext("title") for bar in bars}
    for row in years:
        for key, measure, _ in MEASURES:
            assert f"{row['fiscal_year']} · {measure}: {yuan(row[key])} yuan" in titles
    for _, measure, _ in MEASURES:
        assert sum(f"bar-{measure.replace(' ', '-')}" in b.get("class", "") for b in bars) == 3


def test_bar_heights_follow_the_amounts_and_negative_bars_hang_below_zero() -> None:
    report = sample_report()
    report["totals"]["by_fiscal_year"][0]["outstanding_fen"] = -3_000_000_000
    chart = svg(render_html(report), "chart-fiscal-year")
    height = {b.findtext("title"): float(b.get("height", "nan")) for b in chart.iter("rect")}
    entitled = [
        height[f"{y} · entitled: {yuan(v)} yuan"]
        for y, v in ((2022, 9_300_000_000), (2024, 12_800_000_000))
    ]
    assert entitled[0] / entitled[1] == pytest.approx(93 / 128, rel=0.01)
    assert height["2022 · to recover: 0.00 yuan"] == 0
    zero_line = [
        ln
        for ln in chart.iter("line")
        if ln.get("class") == "axis" and ln.get("y1") == ln.get("y2")
    ]
    negative = next(
        b
        for b in chart.iter("rect")
        if b.findtext("title") == "2022 · outstanding: -30,000,000.00 yuan"
    )
    assert float(negative.get("height", "nan")) > 0
    assert float(negative.get("y", "nan")) == pytest.approx(
        float(zero_line[0].get("y1", "nan")), abs=0.1
    )


def test_charts_have_axis_labels_and_a_legend() -> None:
    html = render_html(sample_report())
    for chart_id, dimension in (("chart-fiscal-year", "fiscal year"), ("chart-city", "city")):
        chart = svg(html, chart_id)
        assert chart.get("class") == "chart"
        texts = [t.text for t in chart.iter("text")]
        assert dimension in texts and "yuan" in texts
        keys = [r.get("class") for r in chart.iter("rect") if "key" in r.get("class", "").split()]
        assert len(keys) == len(MEASURES)
        assert [m for _, m, _ in MEASURES] == [t for t in texts if t in {m for _, m, _ in MEASURES}]
    assert "太原市" in [t.text for t in svg(html, "chart-city").iter("text")]


def test_every_finding_is_a_row_with_its_subject_and_evidence() -> None:
    report = sample_report()
    table = findings_table(render_html(report))
    rows = table.findall("./tbody/tr")
    assert len(rows) == len(report["findings"])
    for row, finding in zip(rows, report["findings"], strict=True):
        cells = [cell.text for cell in row.findall("td")]
        assert cells[:3] == [finding["code"], finding["category"], finding["subject"]]
        assert row.get("data-category") == finding["category"]
        pre = row.find(".//details/pre")
        assert pre is not None and pre.text is not None
        assert json.loads(pre.text) == finding["evidence"]


def test_html_in_a_finding_is_shown_as_text() -> None:
    report = sample_report()
    report["findings"][0]["message"] = "paid < entitled & <b>bold</b>"
    report["findings"][0]["subject"] = "<script>alert(1)</script>"
    html = render_html(report)
    assert "paid &lt; entitled &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "paid < entitled" not in html and "<b>" not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_findings_says_so() -> None:
    report = sample_report()
    report["findings"] = []
    html = render_html(report)
    assert '<p id="no-findings" class="empty">No findings</p>' in html
    assert '<table id="findings"' not in html


def test_thousands_of_findings_are_all_rendered() -> None:
    report = sample_report()
    base = report["findings"][1]
    report["findings"] = [{**base, "subject": f"GK2024-{n:06d}"} for n in range(5000)]
    html = render_html(report)
    rows = findings_table(html).findall("./tbody/tr")
    assert len(rows) == 5000
    assert all(f"GK2024-{n:06d}" in html for n in (0, 2500, 4999))


def test_a_report_without_a_date_is_refused() -> None:
    report = sample_report()
    del report["date"]
    with pytest.raises(ValueError, match="no `date`"):
        render_html(report)


def test_missing_optional_parts_are_shown_as_missing() -> None:
    html = render_html({"date": "2026-11-26", "totals": {"by_fiscal_year": [], "by_city": []}})
    assert "<h1>Reconciliation report 2026-11-26</h1>" in html
    assert "No totals by fiscal year." in html and "No totals by city." in html
    assert "<svg" not in html
    assert "The report has no findings list." in html
    assert "No findings" not in html  # an absent list is not a clean night
    assert "The report has no integrity checks." in html
    assert "<script" not in html


# -- in a browser ------------------------------------------------------------------------------
