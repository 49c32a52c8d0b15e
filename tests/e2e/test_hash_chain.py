"""Tamper evidence: the hash chain over the whole log, `verify` and `anchor`, on both stores.

The chain is recomputed here from the issue's definition with plain SQL, as an auditor would, so
the stored links pin the specification and not the ledger's own code. Tampering is done with plain
SQL on the tables, as someone with database access would.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.helpers import Cli, Firm, ref_uscc, run_at_once, write_register

from adapters.bootstrap import open_ledger, open_store
from domain.application import Ledger

ROOT = Path(__file__).resolve().parents[2]
ZEROS = "0" * 64
BASE = [Firm(ref_uscc(n)) for n in range(1, 6)]
ENTRANTS = [ref_uscc(n) for n in range(11, 17)]


class Tables:
    """Plain SQL on a ledger's own tables: the events table and the chain table."""

    def __init__(self, db_url: str):
        self.sqlite = db_url.startswith("sqlite:///")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(db_url[len("sqlite:///") :], isolation_level=None)
        else:
            self.conn = psycopg.connect(db_url, autocommit=True)
        self.names = {
            "events": "stored_events" if self.sqlite else "ledger_events",
            "position": "rowid" if self.sqlite else "notification_id",
            "chain": "ledger_chain",
        }

    def sql(self, statement: str, *params: Any) -> list[Any]:
        statement = statement.format(**self.names)
        cursor = self.conn.execute(
            statement if self.sqlite else statement.replace("?", "%s"), params
        )
        return cursor.fetchall() if cursor.description else []

    def uuid(self, value: uuid.UUID) -> Any:
        return value.hex if self.sqlite else value

    def positions(self) -> list[int]:
        return [r[0] for r in self.sql("SELECT {position} FROM {events} ORDER BY {position}")]

    def stored_links(self) -> dict[int, bytes]:
        return {p: bytes(link) for p, link in self.sql("SELECT position, link FROM {chain}")}

    def recompute(self) -> dict[int, bytes]:
        """The chain exactly as the issue defines it, from the events table alone."""
        rows = self.sql(
            "SELECT {position}, originator_id, originator_version, topic, state FROM {events} "
            "ORDER BY {position}"
        )
        links, link = {}, bytes(32)
        for position, originator_id, version, topic, state in rows:
            fields = {
                "position": position,
                "originator_id": str(uuid.UUID(str(originator_id))),
                "originator_version": version,
                "topic": topic,
                "state_sha256": hashlib.sha256(bytes(state)).hexdigest(),
            }
            text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
            links[position] = link = hashlib.sha256(link + text.encode("utf-8")).digest()
        return links

    def rewrite_links(self) -> None:
        """What an attacker who can write the chain table too does after editing events."""
        self.sql("DELETE FROM {chain}")
        for position, link in self.recompute().items():
            self.sql("INSERT INTO {chain} (position, link) VALUES (?, ?)", position, link)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


@pytest.fixture
def tables(db_url: str) -> Any:
    t = Tables(db_url)
    yield t
    t.close()


def pay(cli: Cli, uscc: str, ref: str, fen: int = 1_000_000) -> None:
    award = f"{uscc}/first_entry/2021"
    args = ["record-payment", award, "--ref", ref, "--amount-fen", str(fen)]
    result = cli.run(*args, "--paid-on", "2022-05-10")
    assert result.code == 0, result.err


def import_year(cli: Cli, tmp_path: Path, year: int, firms: list[Firm]) -> None:
    path = write_register(tmp_path / f"{year}.csv", firms)
    result = cli.import_year(path, year, baseline=year == 2020)
    assert result.code == 0, result.err


def build_ledger(cli: Cli, tmp_path: Path) -> None:
    """Imports (the stream path) and payments (the ordinary path), interleaved."""
    import_year(cli, tmp_path, 2020, BASE)
    import_year(cli, tmp_path, 2021, BASE + [Firm(u) for u in ENTRANTS[:3]])
    pay(cli, ENTRANTS[0], "GK1")
    pay(cli, ENTRANTS[1], "GK2")
    import_year(cli, tmp_path, 2022, BASE + [Firm(u) for u in ENTRANTS[:2]])
    pay(cli, ENTRANTS[0], "GK3")


def verify(cli: Cli, *args: str) -> tuple[int, Any]:
    result = cli.run("verify", *args, "--json")
    assert result.code in (0, 1), result.err
    return result.code, result.json()


# The chain as stored -----------------------------------------------------------------------------


def test_both_append_paths_store_the_chain_as_the_issue_defines_it(
    cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    import_year(cli, tmp_path, 2020, BASE)
    assert tables.stored_links() == tables.recompute() != {}
    entrants = [Firm(u) for u in ENTRANTS[:3]]
    import_year(cli, tmp_path, 2021, BASE + entrants)
    pay(cli, ENTRANTS[0], "GK1")
    pay(cli, ENTRANTS[1], "GK2")
    assert tables.stored_links() == tables.recompute()
    import_year(cli, tmp_path, 2022, BASE + entrants[:2])
    links = tables.recompute()
    assert tables.stored_links() == links
    assert list(links) == tables.positions()

    code, doc = verify(cli)

    last = max(links)
    assert code == 0 and doc["intact"] and doc["break"] is None
    assert doc["head"] == {"position": last, "hash": links[last].hex()} == doc["last_good"]
    assert doc["events"] == len(links)
    text = cli.run("verify")
    assert text.code == 0
    assert f"head {last}:{links[last].hex()}" in text.out


def test_an_empty_log_verifies_with_head_zero(cli: Cli) -> None:
    missing = cli.run("verify", "--json")
    assert missing.code == 2 and "no ledger at" in missing.err  # verify makes no ledger
    open_store(cli.db_url, create=True)[0].close()  # as a new server's first start makes one
    code, doc = verify(cli)
    assert code == 0
    assert doc["head"] == {"position": 0, "hash": ZEROS} and doc["events"] == 0
    assert cli.run("anchor").out.strip() == f"0:{ZEROS}"
    assert verify(cli, "--anchor", f"0:{ZEROS}")[0] == 0
    assert verify(cli, "--anchor", f"1:{ZEROS}")[1]["break"]["problem"] == "anchor_missing"


def test_concurrent_payments_still_give_a_verifiable_chain(
    db_url: str, cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    import_year(cli, tmp_path, 2020, BASE)
    import_year(cli, tmp_path, 2021, BASE + [Firm(u) for u in ENTRANTS])
    services = [open_ledger(db_url, create=True) for _ in ENTRANTS]

    def pay_three(ledger: Ledger, uscc: str) -> None:
        for n in range(3):
            ledger.record_payment(
                f"{uscc}/first_entry/2021", f"{uscc}-{n}", 100, date(2022, 5, 1), actor="finance"
            )

    errors = run_at_once(pay_three, list(zip(services, ENTRANTS, strict=True)))
    for s in services:
        s.close()
    assert errors == []

    code, doc = verify(cli)

    assert code == 0, doc
    links = tables.recompute()
    assert tables.stored_links() == links
    assert doc["head"]["position"] == max(links)


# Tampering ---------------------------------------------------------------------------------------


def _middle(tables: Tables) -> int:
    positions = tables.positions()
    return positions[len(positions) // 2]


def _update_state(tables: Tables) -> int:
    at = _middle(tables)
    tables.sql("UPDATE {events} SET state = ? WHERE {position} = ?", b'{"amount_fen":1}', at)
    return at


def _update_topic(tables: Tables) -> int:
    at = _middle(tables)
    topic = "domain.enterprise:Enterprise.LeftRegister"
    tables.sql("UPDATE {events} SET topic = ? WHERE {position} = ?", topic, at)
    return at


def _update_version(tables: Tables) -> int:
    at = _middle(tables)
    tables.sql(
        "UPDATE {events} SET originator_version = originator_version + 1000 WHERE {position} = ?",
        at,
    )
    return at


def _delete_event(tables: Tables) -> int:
    at = _middle(tables)
    tables.sql("DELETE FROM {events} WHERE {position} = ?", at)
    return at


def _delete_event_and_link(tables: Tables) -> int:
    at = _middle(tables)
    tables.sql("DELETE FROM {events} WHERE {position} = ?", at)
    tables.sql("DELETE FROM {chain} WHERE position = ?", at)
    return min(p for p in tables.positions() if p > at)  # the next link no longer matches


def _insert_event(tables: Tables) -> int:
    state = b'{"amount_fen":30000000}'
    topic = "domain.enterprise:Enterprise.PaymentRecorded"
    tables.sql(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, 1, ?, ?)",
        tables.uuid(uuid.uuid4()),
        topic,
        state,
    )
    return max(tables.positions())


def _insert_event_before_the_first(tables: Tables) -> int:
    tables.sql(
        "INSERT INTO {events} ({position}, originator_id, originator_version, topic, state) "
        "VALUES (0, ?, 1, 'x:Y', ?)",
        tables.uuid(uuid.uuid4()),
        b"{}",
    )
    return 0


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_update_state, "changed"),
        (_update_topic, "changed"),
        (_update_version, "changed"),
        (_delete_event, "deleted"),
        (_delete_event_and_link, "changed"),
        (_insert_event, "unlinked"),
        (_insert_event_before_the_first, "unlinked"),
    ],
)
def test_tampering_with_the_events_is_caught_at_its_first_position(
    cli: Cli, tables: Tables, tmp_path: Path, tamper: Any, problem: str
) -> None:
    build_ledger(cli, tmp_path)
    links = tables.recompute()
    at = tamper(tables)

    code, doc = verify(cli)

    assert code == 1
    assert doc["intact"] is False and doc["head"] is None
    assert doc["break"]["position"] == at and doc["break"]["problem"] == problem
    before = max((p for p in tables.positions() if p < at), default=0)
    assert doc["last_good"] == {
        "position": before,
        "hash": links[before].hex() if before else ZEROS,
    }
    text = cli.run("verify")
    assert text.code == 1
    assert f"chain broken at position {at} ({problem})" in text.out


def test_values_of_the_wrong_type_in_sqlite_are_breaks_not_failures(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # SQLite keeps any value in any column: verify must report such a row, not fail on it.
    cli, tables = Cli(sqlite_url, capsys), Tables(sqlite_url)
    build_ledger(cli, tmp_path)
    first, second = tables.positions()[3:5]
    tables.sql("UPDATE {events} SET state = CAST(state AS TEXT) WHERE {position} = ?", first)
    assert verify(cli)[0] == 0  # the same bytes, now typed text: nothing changed
    tables.sql("UPDATE {events} SET originator_version = 'v2' WHERE {position} = ?", second)
    code, doc = verify(cli)
    assert (code, doc["break"]["position"], doc["break"]["problem"]) == (1, second, "changed")
    tables.sql("UPDATE {events} SET state = NULL, topic = NULL WHERE {position} = ?", first)
    assert verify(cli)[1]["break"]["position"] == first
    tables.close()


def test_a_sequence_gap_is_not_a_break(
    pg_database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Only PostgreSQL's sequence skips numbers; SQLite gives each new row the highest rowid + 1.
    cli, tables = Cli(pg_database_url, capsys), Tables(pg_database_url)
    build_ledger(cli, tmp_path)
    with pytest.raises(psycopg.errors.UniqueViolation), tables.conn.transaction():
        tables.sql(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM ledger_events LIMIT 1"
        )
    tables.sql(
        "SELECT setval(pg_get_serial_sequence('ledger_events', 'notification_id'), "
        "(SELECT max(notification_id) FROM ledger_events) + 100)"
    )
    before = max(tables.positions())
    pay(cli, ENTRANTS[1], "GK9")

    code, doc = verify(cli)

    assert code == 0, doc
    after = max(tables.positions())
    assert after > before + 100
    assert doc["head"] == {"position": after, "hash": tables.recompute()[after].hex()}
    tables.close()


def test_a_rewritten_chain_is_caught_only_with_an_anchor_taken_before(
    cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    anchor = cli.run("anchor").out.strip()
    at = _update_state(tables)
    tables.rewrite_links()

    # Without the anchor the rewritten chain holds together: it proves nothing on its own.
    code, doc = verify(cli)
    assert code == 0
    assert doc["head"]["position"] == int(anchor.split(":")[0])
    assert doc["head"]["hash"] != anchor.split(":")[1]

    code, doc = verify(cli, "--anchor", anchor)
    assert code == 1
    assert doc["break"]["position"] == int(anchor.split(":")[0]) >= at
    assert doc["break"]["problem"] == "anchor_mismatch"
    assert anchor in doc["break"]["message"]
    assert doc["anchor"]["held"] is False


def test_an_anchor_before_a_break_still_vouches_for_the_log_up_to_it(
    cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    anchor = cli.run("anchor").out.strip()
    pay(cli, ENTRANTS[1], "GK5")
    last = max(tables.positions())
    tables.sql("UPDATE {events} SET state = ? WHERE {position} = ?", b"{}", last)

    code, doc = verify(cli, "--anchor", anchor)

    assert code == 1
    assert doc["break"]["position"] == last > int(anchor.split(":")[0])
    assert doc["anchor"] == {
        "position": int(anchor.split(":")[0]),
        "hash": anchor.split(":")[1],
        "held": True,
    }
    text = cli.run("verify", "--anchor", anchor)
    assert text.code == 1
    assert f"anchor {anchor} matches" in text.out


def test_an_anchor_whose_event_was_deleted_is_a_break(
    cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    anchor = cli.run("anchor").out.strip()
    position = int(anchor.split(":")[0])
    tables.sql("DELETE FROM {events} WHERE {position} = ?", position)
    tables.rewrite_links()
    assert verify(cli)[0] == 0

    code, doc = verify(cli, "--anchor", anchor)

    assert code == 1
    assert doc["break"] == {
        "position": position,
        "problem": "anchor_missing",
        "message": doc["break"]["message"],
    }
    assert "no event" in doc["break"]["message"]


def test_anchor_out_appends_a_line_per_anchor_that_verify_accepts(
    cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    kept = tmp_path / "anchors.txt"
    first = cli.ok_json("anchor", "--out", str(kept))
    pay(cli, ENTRANTS[1], "GK4")
    second = cli.run("anchor", "--out", str(kept))
    assert second.code == 0

    lines = kept.read_text("ascii").splitlines()

    assert len(lines) == 2
    for line in lines:
        assert re.fullmatch(r"\d+:[0-9a-f]{64} \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line), line
    assert lines[0].split()[0] == first["anchor"] == f"{first['position']}:{first['hash']}"
    assert lines[1].split()[0] == second.out.strip()
    links = tables.recompute()
    assert first["hash"] == links[first["position"]].hex()
    assert first["position"] < max(links) == int(second.out.split(":")[0])
    for line in lines:
        code, doc = verify(cli, "--anchor", line.split()[0])
        assert code == 0 and doc["anchor"]["position"] == int(line.split(":")[0])
        assert doc["anchor"]["held"] is True


def test_anchor_out_to_a_file_that_cannot_be_written_is_refused(cli: Cli, tmp_path: Path) -> None:
    import_year(cli, tmp_path, 2020, BASE)
    result = cli.run("anchor", "--out", str(tmp_path / "no-such-folder" / "anchors.txt"))
    assert result.code == 2
    assert "no-such-folder" in result.err and "cannot append" in result.err


@pytest.mark.parametrize("anchor", ["12", "x:" + ZEROS, "12:" + ZEROS[:63], "-1:" + ZEROS, "1:xyz"])
def test_a_malformed_anchor_is_refused_before_the_database_is_opened(
    cli: Cli, capsys: pytest.CaptureFixture[str], anchor: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run("verify", f"--anchor={anchor}")
    assert exc.value.code == 2
    assert f"argument --anchor: anchor {anchor!r}" in capsys.readouterr().err


@pytest.mark.slow
def test_the_auditors_script_recomputes_the_head_verify_reports(
    cli: Cli, tables: Tables, db_url: str, tmp_path: Path
) -> None:
    build_ledger(cli, tmp_path)
    head = verify(cli)[1]["head"]
    script = [sys.executable, str(ROOT / "docs" / "recheck_chain.py"), db_url]

    whole = subprocess.run(script, capture_output=True, text=True, check=True)
    middle = _middle(tables)
    partial = subprocess.run([*script, str(middle)], capture_output=True, text=True, check=True)

    assert whole.stdout.strip() == f"{head['position']}:{head['hash']}"
    assert partial.stdout.strip() == f"{middle}:{tables.recompute()[middle].hex()}"
