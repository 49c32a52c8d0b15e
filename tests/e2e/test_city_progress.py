"""The city progress report (十四), on both stores, worked by hand.

2024 (the baseline): 太原 T1-T4, 大同 D1-D2, 阳泉 Y1 (7 firms). 2025: 太原 T1-T3 and T5 (T4
left, T5 first entered), 大同 D1-D4 (D3, D4 first entered), 阳泉 Y2 (Y1 left; Y2, absent from the
baseline, had been on the 2019 register: a re-entrant), 长治 C1 (first entered): 10 firms. The December 2025 below-scale file has a 太原 firm that reached the threshold
and a 大同 firm in the pool.

With the targets file (太原 5, 大同 4, 阳泉 2, 长治 1, 晋城 2; praise the top 1, criticise the bottom
2): shares 0.8, 1.0, 0.5, 1.0, 0; ranks 3, 1, 4, 1, 5; 大同 and 长治 share the top rank and are
both praised; 晋城 and 阳泉 are the bottom two and are criticised; 太原 is neither.

Without one, the goal of 10,000 is split by the 2024 register (4/7, 2/7, 1/7): 5,714.29,
2,857.14 and 1,428.57 give 5,714, 2,857 and 1,428 whole, and the firm left goes to the largest
remainder, 阳泉's: 5,714, 2,857, 1,429; 长治 (none in 2024) gets no target, share, rank or mark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

COUNTY = {"140100": "140105", "140200": "140212", "140300": "140302", "140400": "140403"}


def firm(n: int, city: str) -> Firm:
    return Firm(ref_uscc(n, COUNTY[city]), region_code=COUNTY[city])


T = [firm(n, "140100") for n in range(1, 6)]
D = [firm(n, "140200") for n in range(11, 15)]
Y1 = firm(21, "140300")
Y2 = Firm(ref_uscc(22, "140302"), region_code="140302", first_entry_year="2019")
C1 = firm(31, "140400")
REACHED = ref_uscc(501)
POOL = ref_uscc(502, "140212")
TARGETS = """\
# 2025年度各市规上工业企业目标
year = 2025
praise_top = 1
criticise_bottom = 2

[targets]
140100 = 5
140200 = 4
140300 = 2
140400 = 1
140500 = 2
"""


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def province(cli: Cli, tmp_path: Path) -> int:
    """The two registers and the December file; the position before that file."""
    for year, firms in ((2024, [*T[:4], *D[:2], Y1]), (2025, [*T[:3], T[4], *D, Y2, C1])):
        path = write_register(tmp_path / f"{year}.csv", firms)
        assert cli.import_year(path, year, baseline=year == 2024).code == 0
    before = int(cli.ok_json("awards")["known_at"]["position"])
    path = tmp_path / "2025-12.csv"
    path.write_text(
        "uscc,name,region_code,industry_code,revenue_ytd_fen,employees,source\n"
        f"{REACHED},太原规下,140105,C1311,2100000000,40,tax\n"
        f"{POOL},大同规下,140212,C1311,1600000000,30,statistics\n",
        encoding="utf-8",
    )
    cli.ok_json("import-below-scale", "--period", "2025-12", str(path))
    return before


def by_city(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["city_code"]: c for c in doc["cities"]}  # type: ignore[attr-defined, index]


def test_ranks_and_marks_by_a_targets_file(cli: Cli, tmp_path: Path) -> None:
    before = province(cli, tmp_path)
    targets = tmp_path / "targets-2025.toml"
    targets.write_text(TARGETS, encoding="utf-8")
    out = tmp_path / "report"
    doc = cli.ok_json("progress", "--year", "2025", "--targets", str(targets), "--out", str(out))
    cities = by_city(doc)
    assert len(cities) == 11
    expected = {
        # city: size, first, re-entries, exits, net, pipeline, target, share, rank, mark
        "140100": (4, 1, 0, 1, 0, 1, 5, 0.8, 3, None),
        "140200": (4, 2, 0, 0, 2, 1, 4, 1.0, 1, "praise"),
        "140300": (1, 0, 1, 1, 0, 0, 2, 0.5, 4, "criticise"),
        "140400": (1, 1, 0, 0, 1, 0, 1, 1.0, 1, "praise"),
        "140500": (0, 0, 0, 0, 0, 0, 2, 0.0, 5, "criticise"),
        "140600": (0, 0, 0, 0, 0, 0, None, None, None, None),
    }
    for code, want in expected.items():
        c = cities[code]
        got = tuple(
            c[k]
            for k in (
                "register_size",
                "first_entries",
                "re_entries",
                "exits",
                "net_change",
                "pipeline",
                "target",
                "share_of_target",
                "rank",
                "mark",
            )
        )
        assert got == want, code
    p = doc["province"]
    assert (p["register_size"], p["first_entries"], p["re_entries"]) == (10, 4, 1)
    assert (p["exits"], p["net_change"]) == (2, 3)
    assert (p["pipeline"], p["target"], p["share_of_target"]) == (2, 14, 0.7143)
    assert doc["trajectory"] == [
        {"year": 2024, "register_size": 7},
        {"year": 2025, "register_size": 10},
    ]
    assert str(targets) in doc["targets_from"]
    assert doc["rule"] == {"praise_top": 1, "criticise_bottom": 2}
    # The files written are the same report.
    assert json.loads((out / "progress-2025.json").read_text(encoding="utf-8")) == doc
    page = (out / "progress-2025.html").read_text(encoding="utf-8")
    assert 'id="chart-trajectory"' in page and page.count('<tr class="city') == 11

    # As issued before the December file: the same register, no pipeline.
    earlier = cli.ok_json(
        "progress", "--year", "2025", "--targets", str(targets), "--known-at", f"@{before}"
    )
    assert earlier["province"]["pipeline"] == 0
    assert earlier["known_at"]["position"] == before
    assert by_city(earlier)["140100"]["register_size"] == 4


def test_the_default_targets_split_the_goal_by_the_register_before(
    cli: Cli, tmp_path: Path
) -> None:
    province(cli, tmp_path)
    doc = cli.ok_json("progress", "--year", "2025")
    cities = by_city(doc)
    assert [cities[c]["target"] for c in ("140100", "140200", "140300", "140400")] == [
        5714,
        2857,
        1429,
        None,
    ]
    assert [cities[c]["rank"] for c in ("140100", "140200", "140300", "140400")] == [2, 1, 3, None]
    assert cities["140400"]["mark"] is None and cities["140400"]["share_of_target"] is None
    assert doc["province"]["target"] == 10_000 and "2024 register" in doc["targets_from"]
    # The baseline year has no year before: no exits, no net change.
    base = by_city(cli.ok_json("progress", "--year", "2024"))
    assert base["140100"]["exits"] is None and base["140100"]["net_change"] is None


def test_a_bad_targets_file_is_refused_saying_where(cli: Cli, tmp_path: Path) -> None:
    province(cli, tmp_path)
    for text, words in (
        (TARGETS.replace("140500 = 2", "149900 = 2"), "not Shanxi city codes: 149900"),
        (TARGETS.replace("140500 = 2", "140500 = -2"), "targets.140500"),
        (TARGETS.replace("year = 2025", "year = 2024"), "for 2024, not 2025"),
        (TARGETS + "colour = 1\n", "colour"),
        (TARGETS.replace("[targets]", "[targets"), "not valid TOML"),
        (TARGETS.replace("# 2025", "# \x1b2025"), ":1: contains a control character"),
    ):
        path = tmp_path / "targets.toml"
        path.write_text(text, encoding="utf-8")
        r = cli.run("progress", "--year", "2025", "--targets", str(path))
        assert r.code == 2, (text, r.out)
        assert words in r.err, r.err
    r = cli.run("progress", "--year", "2023")
    assert r.code == 2 and "2023 is not in the ledger" in r.err


@pytest.mark.slow
def test_the_page_renders_every_chart_in_chromium(cli: Cli, tmp_path: Path) -> None:
    """The page `progress --out` writes, in headless Chromium: the DOM has a chart per measure
    with a bar per city that has the figure, and the screenshot's pixels show each chart's
    colour over at least its bars' solid interior, and the trajectory and the goal's line."""
    from PIL import Image
    from support.browser import chromium_binary, run_chromium
    from support.helpers import ROOT
    from support.reports import svg

    from adapters.files.progress_html import GOAL_COLOUR, PROGRESS_MEASURES, TRAJECTORY_COLOUR

    binary = chromium_binary()
    province(cli, tmp_path)
    targets = tmp_path / "targets-2025.toml"
    targets.write_text(TARGETS, encoding="utf-8")
    out = tmp_path / "report"
    cli.ok_json("progress", "--year", "2025", "--targets", str(targets), "--out", str(out))
    page = out / "progress-2025.html"
    html = page.read_text(encoding="utf-8")
    shot = ROOT / "test-artifacts" / "progress-report.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", page.as_uri())
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", page.as_uri())

    report = json.loads((out / "progress-2025.json").read_text(encoding="utf-8"))
    for key, _, _ in PROGRESS_MEASURES:
        assert f'<svg id="chart-{key}" class="chart"' in dom
        with_figure = sum(1 for c in report["cities"] if c[key] is not None)
        assert dom.count(f'<rect class="bar bar-{key}"') == with_figure, key
    assert dom.count('<tr class="city') == 11 and "表扬 praise" in dom and "通报 criticise" in dom
    assert dom.count('<circle class="year"') == 2

    with Image.open(shot) as image:
        colours = {rgb: n for n, rgb in image.convert("RGB").getcolors(1280 * 2000) or []}

    def painted(colour: str) -> int:
        return colours.get(tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5)), 0)

    for key, _, colour in PROGRESS_MEASURES:
        solid = sum(
            max(0, int(float(r.get("width", "0"))) - 1)
            * max(0, int(float(r.get("height", "0"))) - 2)
            for r in svg(html, f"chart-{key}").iter("rect")
        )
        assert solid > 100, f"the {key} bars are too small to test"
        assert painted(colour) >= solid, f"{key} ({colour}): {painted(colour)} px, bars {solid}"
    assert painted(TRAJECTORY_COLOUR) > 500 and painted(GOAL_COLOUR) > 300
