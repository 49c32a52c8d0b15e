"""A person erased (crypto-shredding), on both stores: P is hired by A and, later, by B; after
`person erase`, the identity and the name are in no output and were never in the database's
bytes, the key that sealed them is gone from it, every total and the hash chain are as before
(the events table's rows before the erasure are unchanged: it only appends), `verify` passes,
`person show` exits 2 naming the erasure's document, and both employers' audit trails show it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.helpers import Cli, Firm, ref_uscc, write_register
from support.persons import (
    CONTRIBUTIONS_HEADER,
    HIRES_HEADER,
    Database,
    ref_person_id,
    write_lines,
)

BASE, A, B = (ref_uscc(n) for n in (1, 601, 602))
P = ref_person_id("140105", "19880808", "201")
Q = ref_person_id("140403", "19920229", "318")
NAME = "赵六"
DOCUMENT = "晋人社个保〔2026〕12号"


@pytest.fixture
def cli(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Cli:
    monkeypatch.setenv("LEDGER_PERSON_SECRET_FILE", str(tmp_path / "person.secret"))
    return Cli(db_url, capsys)


def build(cli: Cli, tmp_path: Path) -> None:
    for year, firms in ((2021, [BASE]), (2022, [BASE, A, B])):
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        assert cli.import_year(path, year, baseline=year == 2021).code == 0
    path = write_lines(
        tmp_path / "hires.csv",
        HIRES_HEADER,
        f"{A},{P},{NAME},残疾人,2022-05-01,2023-04-30",
        f"{B},{P},{NAME},残疾人,2023-06-01,",
        f"{A},{Q},钱七,长期失业人员,2022-07-01,2024-06-30",
    )
    assert cli.ok_json("import-hires", str(path))["recorded"] == 3
    for month, lines in (
        ("2023-01", [f"{A},{P},120000", f"{A},{Q},110000"]),
        ("2023-07", [f"{B},{P},125000", f"{A},{Q},110000"]),
    ):
        c = write_lines(tmp_path / f"{month}.csv", CONTRIBUTIONS_HEADER, *lines)
        assert cli.run("import-contributions", "--month", month, str(c)).code == 0, month


def outputs(cli: Cli) -> str:
    """Everything the read commands print, text and JSON."""
    runs = [
        ("si-claims",),
        ("si-claims", "--json"),
        ("audit-trail", A, "--json"),
        ("audit-trail", B),
        ("enterprise", A, "--json"),
        ("totals", "--json"),
    ]
    return "\n".join(cli.run(*args).out for args in runs)


def test_an_erased_person_is_gone_and_every_total_and_the_chain_stay(
    cli: Cli, tmp_path: Path
) -> None:
    build(cli, tmp_path)
    db = Database(cli.db_url)
    shown = cli.ok_json("person", "show", P)
    assert (shown["person_id"], shown["person_name"]) == (P, NAME)
    assert [(h["uscc"], h["category"]) for h in shown["hires"]] == [(A, "残疾人"), (B, "残疾人")]
    pseudonym = shown["person"]
    # Before: never in clear in the database, nor in any read command's output.
    for text in (P, NAME, "残疾人"):
        assert not db.holds(text), text
        assert text not in outputs(cli)
    (key,) = [row[1] for row in db.vault() if row[0] == pseudonym]
    assert db.holds(key.hex()) or key in db.everything()
    claims_before = cli.ok_json("si-claims")
    totals_before = cli.ok_json("totals")
    events_before = db.events()
    verified = cli.ok_json("verify")
    assert verified["intact"] is True

    erased = cli.ok_json("person", "erase", P, "--document", DOCUMENT)
    assert (erased["person"], erased["firms"], erased["replay"]) == (pseudonym, [A, B], False)

    # After: the key is gone from the vault (and, on SQLite, from the file's bytes); the
    # identity, the name and the category are nowhere.
    assert [row for row in db.vault() if row[0] == pseudonym] == [(pseudonym, None, None, DOCUMENT)]
    if db.sqlite:
        assert key not in db.everything()
    for text in (P, NAME, "残疾人"):
        assert not db.holds(text), text
        assert text not in outputs(cli)
    refused = cli.run("person", "show", P)
    assert refused.code == 2 and DOCUMENT in refused.err and "erased" in refused.err
    assert P not in refused.err
    # The other person is untouched.
    assert cli.ok_json("person", "show", Q)["person_name"] == "钱七"
    # Every total and row as before; the log only appended the two erasure events.
    after = cli.ok_json("si-claims")
    assert after["claims"] == claims_before["claims"] and after["totals"] == claims_before["totals"]
    assert cli.ok_json("totals")["totals"] == totals_before["totals"]
    events_after = db.events()
    assert events_after[: len(events_before)] == events_before
    assert len(events_after) == len(events_before) + 2
    again = cli.ok_json("verify")
    assert again["intact"] is True and again["events"] == verified["events"] + 2
    for uscc in (A, B):
        trail: list[dict[str, Any]] = cli.ok_json("audit-trail", uscc)
        last = trail[-1]
        assert last["type"] == "PersonErased"
        assert (last["payload"]["person"], last["payload"]["document"]) == (pseudonym, DOCUMENT)
    # The same erasure again changes nothing; under another document it is refused; the person
    # cannot be hired again.
    assert cli.ok_json("person", "erase", P, "--document", DOCUMENT)["replay"] is True
    assert cli.run("person", "erase", P, "--document", "另一文号").code == 2
    rehire = write_lines(
        tmp_path / "rehire.csv", HIRES_HEADER, f"{A},{P},{NAME},残疾人,2024-01-01,"
    )
    refused_hire = cli.run("import-hires", str(rehire))
    assert refused_hire.code == 2 and "erased" in refused_hire.err
    assert db.events() == events_after


def test_a_secret_other_than_the_ledger_s_is_refused(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(cli, tmp_path)
    monkeypatch.setenv("LEDGER_PERSON_SECRET_FILE", str(tmp_path / "missing.secret"))
    lost = cli.run("person", "show", P)
    assert lost.code == 2 and "restore the ledger's secret" in lost.err
    assert not (tmp_path / "missing.secret").exists()
    other = tmp_path / "other.secret"
    other.write_text("ab" * 32 + "\n")
    other.chmod(0o600)
    wrong = cli.run("person", "show", P, "--person-secret", str(other))
    assert wrong.code == 2 and "not the one this ledger's pseudonyms were made under" in wrong.err
    other.chmod(0o644)
    open_to_all = cli.run("person", "show", P, "--person-secret", str(other))
    assert open_to_all.code == 2 and "chmod 600" in open_to_all.err
