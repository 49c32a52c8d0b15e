"""Compliance holds in a ledger, on both stores, worked by hand:

- A entered in 2024 (entry award 300,000 yuan due in fiscal 2025) is on the credit platform's
  serious-default list from 2025-03-01 to 2025-12-31: a payment on 2025-05-01 is refused naming
  the list's document, one on 2026-01-05 (after the last day in force) is accepted;
- B entered in 2024 is on the work-safety list from 2025-06-01 until lifted; lifted from
  2025-09-01 (the first day free): refused on 2025-08-31, accepted on 2025-09-01;
- C entered in 2024 and is never held; D is on the list but on no register (identified);
- `awards --held/--not-held` and each award's `hold` at `--as-of` days and `--known-at` before
  the list was imported; `enterprise`, `explain` and `audit-trail` show the holds;
- the refusals: every bad line of a file listed and nothing recorded, the same file again a
  no-op, another hold under a document already used, a lift of a hold the firm does not have.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

BASE, A, B, C, D = (ref_uscc(n) for n in (1, 301, 302, 303, 304))
HEADER = "uscc,reason,authority,document,from,to"
CREDIT = "信用中国（山西）2025-严重失信-031"
SAFETY = "晋应急〔2025〕55号"


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


def entry(uscc: str) -> str:
    return f"{uscc}/first_entry/2024"


def holds_file(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def ledger(cli: Cli, tmp_path: Path) -> None:
    for year, firms in ((2023, [BASE]), (2024, [BASE, A, B, C])):
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        assert cli.import_year(path, year, baseline=year == 2023).code == 0


def payment(cli: Cli, uscc: str, ref: str, day: str, fen: int = 10_000_000) -> object:
    return cli.run(
        "record-payment", entry(uscc), "--ref", ref, "--amount-fen", str(fen), "--paid-on", day
    )


def the_list(tmp_path: Path) -> Path:
    return holds_file(
        tmp_path,
        "credit.csv",
        f"{A},credit_default,信用中国（山西）,{CREDIT},2025-03-01,2025-12-31",
        f"{B},work_safety,山西省应急管理厅,{SAFETY},2025-06-01,",
        f"{D},credit_default,信用中国（山西）,{CREDIT},2025-03-01,",
    )


def test_holds_refuse_payments_while_in_force_and_show_where_asked(
    cli: Cli, tmp_path: Path
) -> None:
    ledger(cli, tmp_path)
    before = cli.ok_json("awards", "--as-of", "2025-07-01")["known_at"]["position"]
    imported = cli.ok_json("import-holds", str(the_list(tmp_path)))
    assert (imported["placed"], imported["held"], imported["identified"]) == (3, 0, [D])
    again = cli.ok_json("import-holds", str(the_list(tmp_path)))
    assert again["replay"] is True and again["held"] == 3 and again["position"] is None

    # A: refused while on the list, accepted after its last day in force.
    refused = payment(cli, A, "V-A-1", "2025-05-01")
    assert refused.code == 2, refused.out  # type: ignore[attr-defined]
    assert CREDIT in refused.err and "credit_default" in refused.err  # type: ignore[attr-defined]
    assert payment(cli, A, "V-A-2", "2026-01-05").code == 0  # type: ignore[attr-defined]

    # B: refused up to the day before the lift, accepted from the first day free.
    assert payment(cli, B, "V-B-1", "2025-07-01").code == 2  # type: ignore[attr-defined]
    lifted = cli.ok_json(
        "hold", "lift", B, "--document", SAFETY, "--on", "2025-09-01", "--reason", "整改验收"
    )
    assert lifted["lifted"] == 1
    assert payment(cli, B, "V-B-2", "2025-08-31").code == 2  # type: ignore[attr-defined]
    assert payment(cli, B, "V-B-3", "2025-09-01").code == 0  # type: ignore[attr-defined]
    # C was never held: paid on a day A and B were.
    assert payment(cli, C, "V-C-1", "2025-07-01").code == 0  # type: ignore[attr-defined]

    # Awards: the hold in force on the --as-of day.
    on_july = cli.awards_by_id("--as-of", "2025-07-01")
    assert on_july[entry(A)]["hold"] == {
        "reason": "credit_default",
        "authority": "信用中国（山西）",
        "document": CREDIT,
        "since": "2025-03-01",
    }
    assert on_july[entry(B)]["hold"]["document"] == SAFETY
    assert on_july[entry(C)]["hold"] is None
    held = {a["entitlement_id"] for a in cli.awards("--as-of", "2025-07-01", "--held")}
    assert held == {entry(A), entry(B)}
    free = {a["entitlement_id"] for a in cli.awards("--as-of", "2025-07-01", "--not-held")}
    assert entry(C) in free and not free & held
    # On 2025-10-01 B's hold is lifted and A's stands; in 2026 neither.
    assert {a["entitlement_id"] for a in cli.awards("--as-of", "2025-10-01", "--held")} == {
        entry(A)
    }
    assert cli.awards("--as-of", "2026-01-01", "--held") == []
    # Known before the list was imported: nobody was held.
    assert cli.awards("--as-of", "2025-07-01", "--held", "--known-at", f"@{before}") == []

    # The firm's own answers.
    firm = cli.ok_json("enterprise", B, "--as-of", "2025-07-01")
    (hold,) = firm["holds"]
    assert (hold["document"], hold["in_force"], hold["lifted_on"]) == (SAFETY, True, "2025-09-01")
    assert cli.ok_json("enterprise", B, "--as-of", "2025-09-01")["holds"][0]["in_force"] is False
    known_then = cli.ok_json("enterprise", B, "--as-of", "2025-07-01", "--known-at", f"@{before}")
    assert known_then["holds"] == []
    explained = cli.ok_json("explain", entry(A))
    assert [h["document"] for h in explained["holds"]] == [CREDIT]
    types = [e["type"] for e in cli.ok_json("audit-trail", B)]
    assert types[-3:] == ["HoldPlaced", "HoldLifted", "PaymentRecorded"]
    identified = cli.ok_json("enterprise", D, "--as-of", "2025-07-01")
    assert identified["holds"][0]["in_force"] is True and identified["register_years"] == []


def test_bad_holds_are_refused_and_change_nothing(cli: Cli, tmp_path: Path) -> None:
    ledger(cli, tmp_path)
    head = cli.ok_json("awards")["known_at"]["position"]
    bad = holds_file(
        tmp_path,
        "bad.csv",
        f"{A},credit_default,信用中国,DOC-1,2025-03-01,2025-12-31",
        f"{A},blacklisted,信用中国,DOC-2,2025-03-01,",
        f"{B},work_safety,,DOC-3,2025-06-01,",
        f"{C},other,x,DOC-4,2025-06-01,2025-05-01",
        "91140105MA0000000X,other,x,DOC-5,2025-06-01,",
        f"{C},other,x,DOC-6,2025/06/01,",
        f"{A},credit_default,信用中国,DOC-1,2025-03-01,2025-12-31",
        f"{C},other,x\u0007,DOC-7,2025-06-01,",
    )
    result = cli.run("import-holds", str(bad))
    assert result.code == 2
    for line, field in (
        (3, "reason"),
        (4, "authority"),
        (5, "to"),
        (6, "uscc"),
        (7, "from"),
        (8, "document"),
        (9, "authority"),
    ):
        assert f"bad.csv:{line}: {field}:" in result.err, (line, field, result.err)
    assert "nothing was recorded" in result.err
    assert cli.ok_json("awards")["known_at"]["position"] == head

    place = ["hold", "place", C, "--reason", "objection", "--authority", "省中小企业局"]
    assert cli.run(*place, "--document", "OBJ-1", "--from", "2025-04-01", "--json").code == 0
    replay = cli.ok_json(*place, "--document", "OBJ-1", "--from", "2025-04-01")
    assert replay["replay"] is True
    other = cli.run(*place, "--document", "OBJ-1", "--from", "2025-05-01")
    assert other.code == 2 and "a document places one hold" in other.err
    unknown = cli.run(
        "hold", "lift", C, "--document", "NOPE", "--on", "2025-05-01", "--reason", "r"
    )
    assert unknown.code == 2 and "OBJ-1" in unknown.err
    empty = cli.run("hold", "lift", C, "--document", "OBJ-1", "--on", "2025-05-01", "--reason", " ")
    assert empty.code == 2 and "reason" in empty.err
    backwards = cli.run(*place, "--document", "OBJ-2", "--from", "2025-05-01", "--to", "2025-04-01")
    assert backwards.code == 2 and "to" in backwards.err
