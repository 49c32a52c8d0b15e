"""The reconciliation report page: self-contained, deterministic, escaped, exact money; and in a browser."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from helpers import ref_uscc

from adapters.report_html import MEASURES, render_html
from domain.money import yuan

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "test-artifacts" / "reconcile-report.png"
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

LEGEND_KEY_AREA = 12 * 12  # px of one legend key, drawn once in each chart


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "headless Chromium is not installed (neither `chromium` nor `chromium-browser` is on PATH), "
        "so the report page was not checked in a browser: install it with `apt-get install chromium`"
    )


def run_chromium(binary: str, profile: Path, *args: str, timeout: float = 120) -> str:
    """Chromium headless with root-safe flags; its stdout. A timeout kills its process group."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1280,2000",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium {' '.join(args)} did not finish within {timeout} s")
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{err[-3000:]}"
    return out


def bar_interior(html: str, measure: str) -> int:
    """Pixels surely inside the bars of one measure, in both charts.

    An edge at a fractional position is blended with the background, so of an extent of L px at
    least floor(L) - 1 pixels are solid; one more row goes to the zero axis drawn over the bars.
    """
    total = 0
    for chart_id in ("chart-fiscal-year", "chart-city"):
        for rect in svg(html, chart_id).iter("rect"):
            if f"bar-{measure.replace(' ', '-')}" in rect.get("class", "").split():
                width, height = float(rect.get("width", "0")), float(rect.get("height", "0"))
                total += max(0, int(width) - 1) * max(0, int(height) - 2)
    return total


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


def assert_bars_painted(screenshot: Path, html: str, measures: list[str]) -> None:
    """Each measure's colour covers at least its bars' solid interior in the screenshot, which
    is more than its legend keys alone could."""
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1280, 2000)
        colours = {rgb: n for n, rgb in image.convert("RGB").getcolors(1280 * 2000) or []}
    for _, measure, colour in MEASURES:
        if measure not in measures:
            continue
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        solid = bar_interior(html, measure)
        assert solid > 2 * LEGEND_KEY_AREA, f"the {measure} bars are too small to test"
        painted = colours.get(rgb, 0)
        assert painted >= solid, f"{measure} ({colour}): {painted} px painted, bars need {solid}"
