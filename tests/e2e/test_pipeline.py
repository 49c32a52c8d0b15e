"""The below-scale database (十七) and its pipeline, on both stores, worked by hand.

The threshold is 20,000,000 yuan = 2,000,000,000 fen; the pool starts at 75% of it,
1,500,000,000 fen. The December 2024 file names:

- UNDER at 1,999,999,999 fen (one fen under): pool; AT at 2,000,000,000: reached; OVER (大同) at
  2,000,000,001: reached; EDGE at 1,500,000,000 (the pool's first fen): pool; LOW at
  1,499,999,999: in neither; ON (on the 2024 register) at 3,000,000,000: left out; E1 at
  2,500,000,000: reached, and first enters in 2025.
- The June 2025 file names MID at 1,000,000,000 year to date (× 12 / 6 = 2,000,000,000: reached)
  and MID2 at 999,999,999 (× 12 / 6 = 1,999,999,998: pool).

The 2025 register's first entrants are E1 (in the pipeline at the end of 2024) and E2 (not):
the pipeline of 2024-12-31 (5 firms) converted 1 of 5, and covered 1 of 2 first entries.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

HEADER = "uscc,name,region_code,industry_code,revenue_ytd_fen,employees,source"
BASE = ref_uscc(1)
UNDER, AT, EDGE, LOW, ON, E1, E2, MID, MID2 = (
    ref_uscc(n) for n in (401, 402, 404, 405, 406, 407, 408, 409, 410)
)
OVER = ref_uscc(403, "140212")


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def line(uscc: str, fen: int, region: str = "140105", name: str = "山西规下制造有限公司") -> str:
    return f"{uscc},{name},{region},C1311,{fen},25,tax"


def below_scale(tmp_path: Path, name: str, *lines: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode(encoding))
    return path


def december(tmp_path: Path, under: int = 1_999_999_999, name: str = "2024-12.csv") -> Path:
    return below_scale(
        tmp_path,
        name,
        line(UNDER, under),
        line(AT, 2_000_000_000),
        line(OVER, 2_000_000_001, "140212"),
        line(EDGE, 1_500_000_000),
        line(LOW, 1_499_999_999),
        line(ON, 3_000_000_000),
        line(E1, 2_500_000_000),
    )


def registers(cli: Cli, tmp_path: Path, *, with_2025: bool = True) -> None:
    years = [(2024, [BASE, ON])] + ([(2025, [BASE, ON, E1, E2])] if with_2025 else [])
    for year, firms in years:
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        assert cli.import_year(path, year, baseline=year == 2024).code == 0


def lists(doc: dict[str, object]) -> tuple[list[str], list[str]]:
    return (
        [r["uscc"] for r in doc["reached"]],  # type: ignore[attr-defined, index]
        [r["uscc"] for r in doc["pool"]],  # type: ignore[attr-defined, index]
    )


def test_the_pipeline_at_the_threshold_s_edge_and_its_conversion(cli: Cli, tmp_path: Path) -> None:
    registers(cli, tmp_path, with_2025=False)
    imported = cli.ok_json("import-below-scale", "--period", "2024-12", str(december(tmp_path)))
    assert imported["counts"] == {"rows": 7, "on_register": 1}
    assert imported["replay"] is False and imported["corrected"] is False

    doc = cli.ok_json("pipeline", "--on", "2024-12-31")
    assert doc["on"] == "2024-12-31" and doc["threshold_fen"] == 2_000_000_000
    assert doc["pool_from_fen"] == 1_500_000_000 and doc["register_year"] == 2024
    reached, pool = lists(doc)
    assert sorted(reached) == sorted([AT, E1, OVER]) and sorted(pool) == sorted([UNDER, EDGE])
    assert doc["on_register"] == 1
    at = next(r for r in doc["reached"] if r["uscc"] == AT)
    assert (at["period"], at["annualised_revenue_fen"], at["rule"]) == (
        "2024-12",
        2_000_000_000,
        "full year",
    )
    assert next(r for r in doc["reached"] if r["uscc"] == OVER)["city_code"] == "140200"
    # One city: 大同's only firm.
    assert lists(cli.ok_json("pipeline", "--on", "2024-12-31", "--city", "140200")) == ([OVER], [])
    # Another pool share: from 99.99...% only UNDER stays in the pool.
    assert lists(cli.ok_json("pipeline", "--on", "2024-12-31", "--pool-percent", "99"))[1] == [
        UNDER
    ]

    # June 2025: MID's half-year 1,000,000,000 stands for 2,000,000,000 (reached).
    june = below_scale(tmp_path, "2025-06.csv", line(MID, 1_000_000_000), line(MID2, 999_999_999))
    cli.ok_json("import-below-scale", "--period", "2025-06", str(june))
    registers_2025 = write_register(tmp_path / "2025.csv", [Firm(u) for u in (BASE, ON, E1, E2)])
    assert cli.import_year(registers_2025, 2025).code == 0
    doc = cli.ok_json("pipeline", "--on", "2025-07-01")
    assert doc["register_year"] == 2025
    mid = next(r for r in doc["reached"] if r["uscc"] == MID)
    assert (mid["annualised_revenue_fen"], mid["rule"], mid["period"]) == (
        2_000_000_000,
        "ytd × 12 / 6",
        "2025-06",
    )
    mid2 = next(r for r in doc["pool"] if r["uscc"] == MID2)
    assert mid2["annualised_revenue_fen"] == 1_999_999_998
    assert E1 not in lists(doc)[0]  # on the 2025 register now: left out
    # Before the June file, June was not known: @position reproduces the pipeline as it was.
    june_position = next(p for p in doc["periods"] if p["period"] == "2025-06")["position"]
    earlier = cli.ok_json("pipeline", "--on", "2025-07-01", "--known-at", f"@{june_position - 1}")
    assert MID not in lists(earlier)[0] and [p["period"] for p in earlier["periods"]] == ["2024-12"]

    conversion = cli.ok_json("pipeline", "--year", "2025", "--conversion")
    taiyuan = next(c for c in conversion["cities"] if c["city_code"] == "140100")
    datong = next(c for c in conversion["cities"] if c["city_code"] == "140200")
    assert conversion["pipeline_on"] == "2024-12-31"
    assert (taiyuan["pipeline"], taiyuan["reached"], taiyuan["pool"]) == (4, 2, 2)
    assert (taiyuan["entered"], taiyuan["first_entries"], taiyuan["outside_pipeline"]) == (1, 2, 1)
    assert (taiyuan["conversion"], taiyuan["coverage"]) == (0.25, 0.5)
    assert (datong["pipeline"], datong["entered"], datong["conversion"]) == (1, 0, 0.0)
    province = conversion["province"]
    assert (province["pipeline"], province["entered"], province["first_entries"]) == (5, 1, 2)

    csv = cli.run("pipeline", "--on", "2024-12-31", "--csv")
    assert csv.code == 0 and csv.out.splitlines()[0].startswith("list,uscc,name,city_code")
    assert sum(1 for row in csv.out.splitlines()[1:] if row.startswith("reached,")) == 3


def test_a_period_re_issued_is_a_correction_and_the_same_rows_a_no_op(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli, tmp_path)
    first = cli.ok_json("import-below-scale", "--period", "2024-12", str(december(tmp_path)))
    again = cli.ok_json("import-below-scale", "--period", "2024-12", str(december(tmp_path)))
    assert again["replay"] is True and again["position"] is None
    # The same rows in GB18030, reordered: the same period, nothing recorded.
    text = december(tmp_path).read_text(encoding="utf-8").splitlines()
    gb = below_scale(tmp_path, "gb.csv", *reversed(text[1:]), encoding="gb18030")
    same = cli.ok_json(
        "import-below-scale", "--period", "2024-12", str(gb), "--encoding", "gb18030"
    )
    assert same["replay"] is True

    reissued = december(tmp_path, under=2_000_000_000, name="2024-12-v2.csv")
    corrected = cli.ok_json(
        "import-below-scale", "--period", "2024-12", str(reissued), "--reason", "税务局更正"
    )
    assert corrected["corrected"] is True
    assert corrected["counts"] == {
        "rows": 7,
        "added": 0,
        "removed": 0,
        "changed": 1,
        "unchanged": 6,
        "on_register": 1,
    }
    assert UNDER in lists(cli.ok_json("pipeline", "--on", "2024-12-31"))[0]
    before = cli.ok_json("pipeline", "--on", "2024-12-31", "--known-at", f"@{first['position']}")
    assert UNDER in lists(before)[1]


def test_a_bad_file_is_refused_whole_every_line_named(cli: Cli, tmp_path: Path) -> None:
    registers(cli, tmp_path)
    bad = below_scale(
        tmp_path,
        "bad.csv",
        line(AT, 2_000_000_000),
        line(AT, 2_000_000_000),  # named twice
        line(ref_uscc(499)[:-1] + "0", 1),  # a wrong check character
        f"{LOW},名称,140100,C1311,1,2,tax",  # a city, not a county
        f"{EDGE},名称,140105,A0111,1,2,tax",  # agriculture is not industry
        f"{MID},名称,140105,C1311,-5,2,tax",
        f"{MID2},名称,140105,C1311,5,2,税务",
        f"{E2},名\x07称,140105,C1311,5,2,tax",
    )
    position = cli.ok_json("awards")["known_at"]["position"]
    r = cli.run("import-below-scale", "--period", "2024-12", str(bad))
    assert r.code == 2, r.out
    for n, field in (
        (3, "uscc"),
        (4, "uscc"),
        (5, "region_code"),
        (6, "industry_code"),
        (7, "revenue_ytd_fen"),
        (8, "source"),
        (9, "name"),
    ):
        assert f"{bad}:{n}: {field}:" in r.err, r.err
    assert "nothing was recorded" in r.err
    assert cli.ok_json("awards")["known_at"]["position"] == position
    future = cli.run("import-below-scale", "--period", "2099-01", str(december(tmp_path)))
    assert future.code == 2 and "--period" in future.err and "has not begun" in future.err
    month = cli.run("import-below-scale", "--period", "2024-13", str(december(tmp_path)))
    assert month.code == 2 and "YYYY-MM" in month.err
    assert cli.run("pipeline", "--year", "2025").code == 2
    unknown = cli.run("pipeline", "--year", "2031", "--conversion")
    assert unknown.code == 2 and "2031 is not in the ledger" in unknown.err


def test_a_position_past_any_log_is_refused_not_a_crash(cli: Cli, tmp_path: Path) -> None:
    """`--known-at @N` with N beyond a 64-bit position (found by the gRPC fuzz test): exit 2,
    saying so, on every query that takes it."""
    registers(cli, tmp_path, with_2025=False)
    huge = f"@{2**63}"
    for args in (["awards"], ["pipeline", "--on", "2024-12-31"], ["policy", "list"]):
        r = cli.run(*args, "--known-at", huge)
        assert r.code == 2, (args, r.err)
        assert "past any log position" in r.err
    assert cli.run("awards", "--known-at", f"@{2**63 - 1}").code == 0
