"""The budget forecast as one self-contained HTML page: a table and an SVG chart (a stacked bar
a fiscal year: decided, staying, new entries; a line from the low to the high bound)."""

from __future__ import annotations

from html import escape

from domain.money import yuan
from domain.payment_results import ForecastResult

PARTS = (
    ("decided_fen", "decided, unpaid", "#1f5fbf"),
    ("staying_fen", "staying (expected)", "#2e8b3e"),
    ("new_entries_fen", "new entries (expected)", "#e08a00"),
)
_CSS = """
body{margin:24px;color:#1b1f24;font:14px/1.45 system-ui,"Noto Sans CJK SC",sans-serif}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:12px}
"""


def render_forecast(r: ForecastResult) -> str:
    width, height, left, bottom = 640, 320, 90, 40
    top = max((y.high_fen for y in r.years), default=1) or 1
    slot = (width - left - 20) / max(1, len(r.years))
    bars = []
    for i, y in enumerate(r.years):
        x = left + i * slot + slot * 0.2
        base = height - bottom
        for key, label, colour in PARTS:
            value = getattr(y, key)
            h = (height - bottom - 20) * value / top
            bars.append(
                f'<rect class="part" x="{x:.1f}" y="{base - h:.1f}" width="{slot * 0.6:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {yuan(value)}</title></rect>'
            )
            base -= h
        lo = height - bottom - (height - bottom - 20) * y.low_fen / top
        hi = height - bottom - (height - bottom - 20) * y.high_fen / top
        mid = x + slot * 0.3
        bars.append(
            f'<line class="bound" x1="{mid:.1f}" x2="{mid:.1f}" y1="{lo:.1f}" y2="{hi:.1f}" '
            'stroke="#c0263a" stroke-width="2"/>'
        )
        bars.append(
            f'<text x="{mid:.1f}" y="{height - bottom + 16}" text-anchor="middle">{y.fiscal_year}</text>'
        )
    legend = "".join(f'<span style="color:{c}">■</span> {escape(label)} ' for _, label, c in PARTS)
    rows = "".join(
        "<tr>"
        f"<td>{y.fiscal_year}</td>"
        + "".join(
            f'<td class="num">{yuan(v)}</td>'
            for v in (
                y.decided_fen,
                y.staying_fen,
                y.new_entries_fen,
                y.total_fen,
                y.low_fen,
                y.high_fen,
            )
        )
        + "</tr>"
        for y in r.years
    )
    life = "".join(
        f"<tr><td>{t.age}</td><td class='num'>{t.at_risk}</td><td class='num'>{t.stayed}</td>"
        f"<td class='num'>{t.rate:.4f}</td><td class='num'>{t.low:.4f}–{t.high:.4f}</td></tr>"
        for t in r.life_table
    )
    scope = f"city {r.city}" if r.city else "the province"
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>Budget forecast</title><style>{_CSS}</style></head><body>"
        f"<h1>Budget forecast of the scale-up awards, {escape(scope)}</h1>"
        f"<p>From the log at position {r.known_at} (registers to {r.last_register_year}); amounts in "
        "yuan; the red line runs from the low to the high bound.</p>"
        f'<svg id="forecast-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<line x1="{left}" x2="{width - 10}" y1="{height - bottom}" y2="{height - bottom}" '
        'stroke="#57606a"/>' + "".join(bars) + "</svg>"
        f"<p>{legend}<span style='color:#c0263a'>|</span> low to high</p>"
        "<table id='years'><tr><th>fiscal year</th><th>decided</th><th>staying</th>"
        "<th>new entries</th><th>total</th><th>low</th><th>high</th></tr>"
        f"{rows}</table><h2>Life table</h2>"
        "<table id='life'><tr><th>years since entry</th><th>at risk</th><th>stayed</th>"
        f"<th>rate</th><th>cohorts' range</th></tr>{life}</table></body></html>\n"
    )
