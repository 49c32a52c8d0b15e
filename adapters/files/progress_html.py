"""The city progress report (十四) as one self-contained HTML page: a table of the cities, a bar
chart per measure (inline SVG, no script, no fetch) and the province's trajectory toward the
goal."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

PROGRESS_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("register_size", "register at the year's end", "#0969da"),
    ("first_entries", "first entries", "#1a7f37"),
    ("re_entries", "re-entries", "#8250df"),
    ("exits", "exits", "#cf222e"),
    ("net_change", "net change", "#9a6700"),
    ("pipeline", "pipeline (reached and pool)", "#bf3989"),
    ("share_of_target", "share of target", "#0550ae"),
)
"""Each chart: the row's key, its title, its bars' colour (distinct: the browser test finds each
chart's bars by it)."""
TRAJECTORY_COLOUR = "#116329"
GOAL_COLOUR = "#d1242f"
MARK_WORDS = {"praise": "表扬 praise", "criticise": "通报 criticise"}

_CSS = """
body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;margin:24px;color:#1b1f24}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th:first-child,td:first-child,td.name{text-align:left}
tr.praise td{background:#dafbe1}tr.criticise td{background:#ffebe9}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{display:block}svg.chart text{font-size:11px;fill:#1b1f24}
svg.chart .axis{stroke:#57606a;stroke-width:1}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _bar_chart(key: str, title: str, colour: str, cities: Sequence[Mapping[str, Any]]) -> str:
    """One measure across the cities: a bar each (none for a city without the figure), drawn
    from a zero line so that a negative net change goes down."""
    width, height, left, top, bottom = 560, 220, 44, 28, 40
    values = [c.get(key) for c in cities]
    known = [float(v) for v in values if v is not None]
    high = max([0.0, *known]) or 1.0
    low = min([0.0, *known])
    span = high - low or 1.0
    plot = height - top - bottom
    step = (width - left - 8) / max(1, len(cities))

    def y(v: float) -> float:
        return top + (high - v) / span * plot

    parts = [
        f'<svg id="chart-{key}" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
        f'<text x="{left}" y="16" font-weight="bold">{_e(title)}</text>',
        f'<line class="axis" x1="{left}" x2="{width - 8}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>',
        f'<text x="4" y="{top + 10}">{_e(_short(high))}</text>',
    ]
    for i, (city, value) in enumerate(zip(cities, values, strict=True)):
        x = left + i * step + step * 0.15
        if value is not None:
            y0, y1 = sorted((y(0), y(float(value))))
            parts.append(
                f'<rect class="bar bar-{key}" x="{x:.1f}" y="{y0:.1f}" width="{step * 0.7:.1f}" '
                f'height="{max(y1 - y0, 0):.1f}" fill="{colour}"><title>'
                f"{_e(city['city_code'])}: {_e(value)}</title></rect>"
            )
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 14}">'
            f"{_e(str(city.get('city_name', city['city_code'])).removesuffix('市'))}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _short(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:.2f}"


def _trajectory(report: Mapping[str, Any]) -> str:
    """The province's register size each year, and the goal's line."""
    points = report["trajectory"]
    goal, goal_year = int(report["province_goal"]), int(report["goal_year"])
    width, height, left, top, bottom = 560, 240, 56, 28, 36
    years = [p["year"] for p in points] + [goal_year]
    first, last = min(years), max(years)
    high = float(max([goal, *(p["register_size"] for p in points)])) * 1.1
    plot = height - top - bottom

    def x(year: int) -> float:
        return float(left + (year - first) / max(1, last - first) * (width - left - 16))

    def y(v: float) -> float:
        return top + (high - v) / high * plot

    line = " ".join(f"{x(p['year']):.1f},{y(p['register_size']):.1f}" for p in points)
    parts = [
        f'<svg id="chart-trajectory" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="the province toward the goal">',
        f'<text x="{left}" y="16" font-weight="bold">the province: register size and the goal of '
        f"{goal:,} by {goal_year}</text>",
        f'<line class="axis" x1="{left}" x2="{width - 16}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>',
        f'<line class="goal" x1="{left}" x2="{width - 16}" y1="{y(goal):.1f}" y2="{y(goal):.1f}" '
        f'stroke="{GOAL_COLOUR}" stroke-width="3" stroke-dasharray="8 4"/>',
        f'<polyline class="trajectory" points="{line}" fill="none" stroke="{TRAJECTORY_COLOUR}" '
        'stroke-width="4"/>',
    ]
    for p in points:
        parts.append(
            f'<circle class="year" cx="{x(p["year"]):.1f}" cy="{y(p["register_size"]):.1f}" r="6" '
            f'fill="{TRAJECTORY_COLOUR}"><title>{p["year"]}: {p["register_size"]}</title></circle>'
        )
    for year in range(first, last + 1):
        parts.append(f'<text x="{x(year) - 14:.1f}" y="{height - 12}">{year}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_progress(report: Mapping[str, Any]) -> str:
    """The page of a progress report's JSON (`ProgressReport.to_json()`)."""
    cities = report["cities"]
    columns = [c for c, _, _ in PROGRESS_MEASURES[:-1]] + ["target", "share_of_target", "rank"]
    head = "".join(f"<th>{_e(c)}</th>" for c in ["city", *columns, "mark"])
    rows = []
    for c in cities:
        cells = "".join(f"<td>{_e(c[k])}</td>" for k in columns)
        mark = c["mark"]
        rows.append(
            f'<tr class="city{" " + mark if mark else ""}" id="city-{_e(c["city_code"])}">'
            f'<td class="name">{_e(c["city_code"])} {_e(c["city_name"])}</td>{cells}'
            f"<td>{_e(MARK_WORDS.get(mark, ''))}</td></tr>"
        )
    p = report["province"]
    province = "".join(f"<td>{_e(p.get(k))}</td>" for k in columns)
    known = report["known_at"]
    charts = "\n".join(
        _bar_chart(key, title, colour, cities) for key, title, colour in PROGRESS_MEASURES
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{report["year"]} 小升规 progress by city</title><style>{_CSS}</style></head>
<body>
<h1>{report["year"]} 规上工业企业 progress by city {_e(report["clause"])}</h1>
<p>Known at log position {_e(known["position"])} (committed {_e(known["recorded_at"])}); targets:
{_e(report["targets_from"])}; marks: the top {_e(report["rule"]["praise_top"])} by share of target
praised, the bottom {_e(report["rule"]["criticise_bottom"])} criticised.</p>
<table id="cities"><thead><tr>{head}</tr></thead><tbody>
{"".join(rows)}
<tr class="province"><td class="name">140000 山西省</td>{province}<td></td></tr>
</tbody></table>
<h2>The province toward the goal</h2>
{_trajectory(report)}
<h2>By city</h2>
<div class="charts">
{charts}
</div>
</body></html>
"""
