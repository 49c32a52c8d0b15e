"""`audit-trail`: a firm's events in log order, each with its position, commit time, actor, valid
time and payload, on both stores."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register

ENTRANT = ref_uscc(7)


def test_the_trail_lists_every_event_of_the_firm_in_log_order_with_who_and_when(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(db_url, capsys)
    base = write_register(tmp_path / "2020.csv", [Firm(ref_uscc(1))])
    entry = write_register(
        tmp_path / "2021.csv",
        [Firm(ref_uscc(1)), Firm(ENTRANT, size_class="small", route="merger")],
    )
    moved = write_register(
        tmp_path / "2022.csv", [Firm(ref_uscc(1)), Firm(ENTRANT, region_code="140212")]
    )
    assert (
        cli.run(
            "import-register", "--year", "2020", "--baseline", str(base), "--actor", "stats-a"
        ).code
        == 0
    )
    assert cli.run("import-register", "--year", "2021", str(entry), "--actor", "stats-b").code == 0
    assert cli.run("import-register", "--year", "2022", str(moved), "--actor", "stats-c").code == 0
    paid = cli.run(
        "record-payment",
        f"{ENTRANT}/first_entry/2021",
        "--ref",
        "GK1",
        "--amount-fen",
        "100",
        "--paid-on",
        "2022-04-01",
        "--actor",
        "finance-x",
    )
    assert paid.code == 0, paid.err

    trail = cli.ok_json("audit-trail", ENTRANT)

    assert [e["type"] for e in trail] == [
        "Registered",
        "EnteredRegister",
        "RegionChanged",
        "RetainedInRegister",
        "PaymentRecorded",
    ]
    assert [e["version"] for e in trail] == [1, 2, 3, 4, 5]
    positions = [e["position"] for e in trail]
    assert positions == sorted(set(positions))
    recorded = [datetime.fromisoformat(e["recorded_at"]) for e in trail]
    assert all(r.utcoffset() is not None and r.utcoffset().total_seconds() == 0 for r in recorded)
    assert recorded == sorted(recorded)
    # Events of one import share its commit; later commands commit later.
    assert recorded[0] == recorded[1] and recorded[2] == recorded[3] < recorded[4]
    assert [e["actor"] for e in trail] == ["stats-b", "stats-b", "stats-c", "stats-c", "finance-x"]
    assert [e["valid_from"] for e in trail] == [
        "2021-01-01",
        "2021-01-01",
        "2022-01-01",
        "2022-01-01",
        "2022-04-01",
    ]
    assert trail[0]["payload"]["source_sha256"] == hashlib.sha256(entry.read_bytes()).hexdigest()
    assert trail[1]["payload"]["route"] == "merger"
    assert trail[2]["payload"]["region_code"] == "140212"
    assert trail[4]["payload"] == {
        "source_sha256": None,
        "entitlement_id": f"{ENTRANT}/first_entry/2021",
        "payment_ref": "GK1",
        "amount_fen": 100,
        "paid_on": "2022-04-01",
    }


def test_the_trail_of_an_unknown_firm_is_refused(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli = Cli(db_url, capsys)
    base = write_register(tmp_path / "2020.csv", [Firm(ref_uscc(1))])
    assert cli.import_year(base, 2020, baseline=True).code == 0
    result = cli.run("audit-trail", ENTRANT, "--json")
    assert result.code == 2
    assert ENTRANT in result.err
