"""The nightly reconciliation report as one self-contained HTML page: inline CSS and SVG, no script."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from typing import Any

from domain.money import yuan

# The four measures of the totals tables and charts: key in the report, label, bar colour. The colours
# are distinctive on purpose: the browser test looks for them in the screenshot's pixels.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("entitled_fen", "entitled", "#1f5fbf"),
    ("paid_fen", "paid", "#2e8b3e"),
    ("outstanding_fen", "outstanding", "#e08a00"),
    ("to_recover_fen", "to recover", "#c0263a"),
)
EXIT_MEANINGS = {0: "clean", 1: "findings"}
MISSING = "—"

_CSS = """
body{margin:24px;color:#1b1f24;background:#fff;
font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif}
h1{font-size:22px;margin:0 0 12px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.facts dt{color:#57606a}
dl.facts dd{margin:0}
.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
table{border-collapse:collapse;margin:4px 0 8px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tfoot td{font-weight:600;background:#f6f8fa}
.status{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600}
.status-clean,.ok{color:#116329}
.status-clean{background:#dafbe1}
.status-findings,.status-other,.problem{color:#a40e26}
.status-findings,.status-other{background:#ffebe9}
.empty{color:#57606a;font-style:italic}
.row{display:flex;flex-wrap:wrap;gap:8px 40px;align-items:flex-start}
.row>section{min-width:280px}
svg.chart{display:block;max-width:100%;height:auto}
svg.chart text{font-size:12px;fill:#1b1f24}
svg.chart .axis{stroke:#57606a;stroke-width:1}
svg.chart .grid{stroke:#d0d7de;stroke-width:1}
#findings td{font-size:13px}
#findings td.nowrap{white-space:nowrap;word-break:normal}
details pre{margin:4px 0 0;white-space:pre-wrap}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page; the same report gives the same bytes.

    Every part but `date` is optional: a missing part is shown as missing, never guessed.
    """
    if report.get("date") is None:
        raise ValueError(
            "the report has no `date`: the page is titled with the reconciliation date"
        )
    date = str(report["date"])
    totals: Mapping[str, Any] = report.get("totals") or {}
    by_year = totals.get("by_fiscal_year") or []
    by_city = totals.get("by_city") or []
    grand = totals.get("all")
    parts = [
        "<!doctype html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>Reconciliation report {_e(date)}</title>\n",
        f"<style>{_CSS}{_bar_css()}</style>\n</head>\n<body>\n",
        f"<h1>Reconciliation report {_e(date)}</h1>\n",
        _header(report),
        '<div class="row">\n',
        _outcome(report.get("outcome")),
        _matching(report.get("matching")),
        "</div>\n",
        '<h2>Totals by fiscal year</h2>\n<div class="row">\n',
        _chart("chart-fiscal-year", "fiscal year", by_year, _year_label),
        _totals_table("totals-fiscal-year", "fiscal year", by_year, grand, _year_cell),
        '</div>\n<h2>Totals by city</h2>\n<div class="row">\n',
        _chart("chart-city", "city", by_city, _city_label),
        _totals_table("totals-city", "city", by_city, grand, _city_cell),
        "</div>\n",
        _integrity(report.get("integrity")),
        _findings(report.get("findings")),
        "</body>\n</html>\n",
    ]
    return "".join(parts)


def _text(value: object) -> str:
    return MISSING if value is None else str(value)


def _e(value: object) -> str:
    return escape(_text(value))


def _bar_css() -> str:
    return "".join(
        f".bar-{_slug(label)},.key-{_slug(label)}{{fill:{colour}}}\n"
        for _, label, colour in MEASURES
    )


def _slug(label: str) -> str:
    return label.replace(" ", "-")


def _words(key: str) -> str:
    return key.replace("_", " ")


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already escaped HTML."""
    body = "".join(f"<dt>{_e(term)}</dt><dd>{value}</dd>\n" for term, value in rows)
    return f'<dl class="facts">\n{body}</dl>\n'


def _mono(value: object) -> str:
    return f'<span class="mono">{_e(value)}</span>'


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _e(value)


def _header(report: Mapping[str, Any]) -> str:
    log: Mapping[str, Any] = report.get("log") or {}
    inputs: Mapping[str, Any] = report.get("inputs") or {}
    treasury: Mapping[str, Any] = inputs.get("treasury") or {}
    policy: Mapping[str, Any] = inputs.get("policy") or {}
    options: Mapping[str, Any] = inputs.get("options") or {}
    rows = [
        ("log position", _count(log.get("position"))),
        ("recorded at", _e(log.get("recorded_at"))),
        ("chain anchor", _mono(log.get("anchor"))),
        ("treasury file sha256", _mono(treasury.get("sha256"))),
        ("treasury file encoding", _e(treasury.get("encoding"))),
        ("treasury file rows", _count(treasury.get("rows"))),
        ("policy", _e(policy.get("id"))),
        ("policy content hash", _mono(policy.get("content_hash"))),
    ]
    rows += [(_words(k), _option(k, v)) for k, v in options.items()]
    if "format" in report:
        rows.append(("format", _e(report["format"])))
    return f'<section id="header">\n{_facts(rows)}</section>\n'


def _option(key: str, value: object) -> str:
    return f"{_count(value)} days" if key.endswith("_days") else _e(value)


def _outcome(outcome: Mapping[str, Any] | None) -> str:
    if outcome is None:
        return (
            '<section id="outcome">\n<h2>Outcome</h2>\n'
            '<p class="empty">The report has no outcome.</p>\n</section>\n'
        )
    status = outcome.get("exit_status")
    meaning = EXIT_MEANINGS.get(status, "other") if isinstance(status, int) else "other"
    found = outcome.get("findings")
    by_code: Mapping[str, Any] = outcome.get("by_code") or {}
    codes = "".join(
        f'<tr><td class="mono">{_e(code)}</td><td class="num">{_count(n)}</td></tr>\n'
        for code, n in by_code.items()
    )
    table = (
        f'<table id="findings-by-code">\n<thead><tr><th>code</th><th class="num">findings</th>'
        f"</tr></thead>\n<tbody>\n{codes}</tbody>\n</table>\n"
        if codes
        else ""
    )
    return (
        '<section id="outcome">\n<h2>Outcome</h2>\n'
        f'<p><span class="status status-{meaning}">exit status {_e(status)}: {meaning}</span> '
        f"({_count(found)} finding{'' if found == 1 else 's'})</p>\n{table}</section>\n"
    )


def _matching(matching: Mapping[str, Any] | None) -> str:
    if not matching:
        return (
            '<section id="matching">\n<h2>Matching of payment references</h2>\n'
            '<p class="empty">The report has no matching counts.</p>\n</section>\n'
        )
    rows = "".join(
        f'<tr><td>{_e(_words(k))}</td><td class="num">{_count(v)}</td></tr>\n'
        for k, v in matching.items()
    )
    return (
        '<section id="matching">\n<h2>Matching of payment references</h2>\n'
        '<table id="matching-counts">\n<thead><tr><th>class</th><th class="num">count</th></tr>'
        f"</thead>\n<tbody>\n{rows}</tbody>\n</table>\n</section>\n"
    )


def _year_label(row: Mapping[str, Any]) -> str:
    return _text(row.get("fiscal_year"))


def _year_cell(row: Mapping[str, Any]) -> str:
    return escape(_year_label(row))


def _city_label(row: Mapping[str, Any]) -> str:
    return _text(row.get("city_name") or row.get("city_code"))


def _city_cell(row: Mapping[str, Any]) -> str:
    return f'{_e(row.get("city_name"))} <span class="mono">{_e(row.get("city_code"))}</span>'


def _money_cells(row: Mapping[str, Any]) -> str:
    cells = [f'<td class="num">{_count(row.get("awards"))}</td>']
    for key, _, _ in MEASURES:
        value = row.get(key)
        cells.append(f'<td class="num">{MISSING if value is None else yuan(value)}</td>')
    return "".join(cells)


def _totals_table(
    table_id: str,
    first: str,
    rows: Sequence[Mapping[str, Any]],
    grand: Mapping[str, Any] | None,
    first_cell: Callable[[Mapping[str, Any]], str],
) -> str:
    if not rows and grand is None:
        return f'<p class="empty">No totals by {_e(first)}.</p>\n'
    head = "".join(f'<th class="num">{_e(label)} (yuan)</th>' for _, label, _ in MEASURES)
    body = "".join(f"<tr><td>{first_cell(r)}</td>{_money_cells(r)}</tr>\n" for r in rows)
    if not rows:
        body = f'<tr><td class="empty" colspan="{2 + len(MEASURES)}">no rows</td></tr>\n'
    foot = "" if grand is None else f"<tfoot><tr><td>all</td>{_money_cells(grand)}</tr></tfoot>\n"
    return (
        f'<table id="{table_id}" class="totals">\n<thead><tr><th>{_e(first)}</th>'
        f'<th class="num">awards</th>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n{foot}</table>\n'
    )


def _axis(low: int, high: int) -> tuple[int, int, int]:
    """An axis for values from `low` to `high` fen (low <= 0 <= high): bottom, top and a 1-2-5 step."""
    span = max(high - low, 1)
    decade = 1
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * decade
            if step * 5 >= span:
                bottom, top = low // step * step, -(-high // step) * step
                return bottom, max(top, bottom + step), step
        decade *= 10


# Chart geometry in px: pixels are layout, not money, so floats are fine here.
_LEFT, _RIGHT, _TOP, _PLOT_H, _BOTTOM = 100, 16, 44, 220, 52
# A group is at least 80 px (four 14 px bars and a gap); a few groups spread over 480 px.
_GROUP_W, _PLOT_MIN_W, _GROUP_GAP, _MAX_BAR_W, _KEY_W = 80, 480, 24, 28, 120


def _px(value: float) -> str:
    return f"{value:.1f}"


def _chart(
    chart_id: str,
    dimension: str,
    rows: Sequence[Mapping[str, Any]],
    label_of: Callable[[Mapping[str, Any]], str],
) -> str:
    """Grouped bars, the four measures for each row, on one yuan axis through zero."""
    if not rows:
        return ""
    values = [r[key] for r in rows for key, _, _ in MEASURES if r.get(key) is not None]
    for value in values:
        yuan(value)  # refuses anything but integer fen before it is drawn
    bottom, top, step = _axis(min([0, *values]), max([0, *values]))
    group_w = max(_GROUP_W, _PLOT_MIN_W / len(rows))
    bar_w = min(_MAX_BAR_W, (group_w - _GROUP_GAP) / len(MEASURES))
    width = round(_LEFT + len(rows) * group_w + _RIGHT)
    height = _TOP + _PLOT_H + _BOTTOM

    def y(fen: int) -> float:
        return _TOP + (top - fen) * _PLOT_H / (top - bottom)

    plot_right = width - _RIGHT
    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">\n',
        f"<title>Entitled, paid, outstanding and to recover by {_e(dimension)}, in yuan</title>\n",
    ]
    for tick in range(bottom, top + 1, step):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{plot_right}" y1="{_px(y(tick))}" '
            f'y2="{_px(y(tick))}"/><text x="{_LEFT - 6}" y="{_px(y(tick) + 4)}" '
            f'text-anchor="end">{yuan(tick).removesuffix(".00")}</text>\n'
        )
    for i, row in enumerate(rows):
        label = label_of(row)
        x0 = _LEFT + i * group_w + (group_w - len(MEASURES) * bar_w) / 2
        for j, (key, measure, _) in enumerate(MEASURES):
            value = row.get(key)
            if value is None:
                continue
            upper, lower = y(max(value, 0)), y(min(value, 0))
            parts.append(
                f'<rect class="bar bar-{_slug(measure)}" x="{_px(x0 + j * bar_w)}" '
                f'y="{_px(upper)}" width="{_px(bar_w)}" height="{_px(lower - upper)}">'
                f"<title>{_e(label)} · {measure}: {yuan(value)} yuan</title></rect>\n"
            )
        parts.append(
            f'<text x="{_px(x0 + len(MEASURES) * bar_w / 2)}" y="{_TOP + _PLOT_H + 18}" '
            f'text-anchor="middle">{_e(label)}</text>\n'
        )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_TOP + _PLOT_H}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{plot_right}" y1="{_px(y(0))}" y2="{_px(y(0))}"/>\n'
        f'<text x="{(_LEFT + plot_right) // 2}" y="{height - 8}" text-anchor="middle">'
        f"{_e(dimension)}</text>\n"
        f'<text transform="rotate(-90)" x="{-(_TOP + _PLOT_H // 2)}" y="16" '
        'text-anchor="middle">yuan</text>\n'
    )
    for j, (_, measure, _) in enumerate(MEASURES):
        x = _LEFT + j * _KEY_W
        parts.append(
            f'<rect class="key key-{_slug(measure)}" x="{x}" y="12" width="12" height="12"/>'
            f'<text x="{x + 18}" y="22">{measure}</text>\n'
        )
    parts.append("</svg>\n")
    return "".join(parts)


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _rest(mapping: Mapping[str, Any], known: Iterable[str]) -> list[tuple[str, str]]:
    """Parts of a section this page does not know yet, shown plainly rather than dropped."""
    return [(_words(k), _e(_compact(v))) for k, v in mapping.items() if k not in known]


def _integrity(integrity: Mapping[str, Any] | None) -> str:
    head = '<section id="integrity">\n<h2>Integrity</h2>\n'
    if not integrity:
        return f'{head}<p class="empty">The report has no integrity checks.</p>\n</section>\n'
    parts = [head]
    chain: Mapping[str, Any] | None = integrity.get("chain")
    if chain is not None:
        intact = chain.get("intact")
        result = (
            '<span class="ok">intact</span>'
            if intact is True
            else '<span class="problem">BROKEN</span>'
            if intact is False
            else MISSING
        )
        broken: Mapping[str, Any] | None = chain.get("break")
        where = (
            "none"
            if broken is None
            else f'<span class="problem">at position {_count(broken.get("position"))}: '
            f"{_e(broken.get('problem'))}: {_e(broken.get('message'))}</span>"
        )
        rows = [
            ("result", result),
            ("verified from", _mono(chain.get("verified_from"))),
            ("head", _mono(chain.get("head"))),
            ("events", _count(chain.get("events"))),
            ("break", where),
        ]
        rows += _rest(chain, ("intact", "verified_from", "head", "events", "break"))
        parts += ["<h3>Hash chain</h3>\n", _facts(rows)]
    projections: Mapping[str, Any] | None = integrity.get("projections")
    if projections is not None:
        drifted = projections.get("drifted")
        tables = ", ".join(projections.get("tables") or [])
        rows = [
            ("tables", _mono(tables)),
            ("rows compared", _count(projections.get("rows"))),
            (
                "drifted",
                f'<span class="{"ok" if drifted == 0 else "problem"}">{_count(drifted)}</span>',
            ),
        ]
        rows += _rest(projections, ("tables", "rows", "drifted"))
        parts += ["<h3>Projections against a rebuild from the log</h3>\n", _facts(rows)]
    parts.append("</section>\n")
    return "".join(parts)


def _evidence(evidence: object) -> str:
    if not evidence:
        return ""
    summary = ", ".join(map(str, evidence)) if isinstance(evidence, dict) else "evidence"
    pretty = json.dumps(evidence, ensure_ascii=False, indent=2, default=str)
    return (
        f'<details><summary>{_e(summary)}</summary><pre class="mono">{_e(pretty)}</pre></details>'
    )


def _finding_row(f: Mapping[str, Any]) -> str:
    code, category = _e(f.get("code")), _e(f.get("category"))
    return (
        f'<tr class="finding" data-code="{code}" data-category="{category}">'
        f'<td class="mono nowrap">{code}</td><td>{category}</td>'
        f'<td class="mono">{_e(f.get("subject"))}</td>'
        f'<td class="mono nowrap">{_e(f.get("uscc"))}</td>'
        f'<td class="mono">{_e(f.get("entitlement_id"))}</td><td>{_e(f.get("message"))}</td>'
        f"<td>{_evidence(f.get('evidence'))}</td></tr>\n"
    )


def _findings(findings: Sequence[Mapping[str, Any]] | None) -> str:
    if findings is None:
        content = '<h2>Findings</h2>\n<p class="empty">The report has no findings list.</p>\n'
    elif not findings:
        content = '<h2>Findings</h2>\n<p id="no-findings" class="empty">No findings</p>\n'
    else:
        columns = ("code", "category", "subject", "USCC", "entitlement id", "message", "evidence")
        header = "".join(f"<th>{c}</th>" for c in columns)
        body = "".join(map(_finding_row, findings))
        content = (
            f'<h2>Findings ({len(findings):,})</h2>\n<table id="findings">\n'
            f"<thead><tr>{header}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"
        )
    return f'<section id="findings-section">\n{content}</section>\n'
