"""Tamper evidence: the hash chain over the whole log, on both stores.

The chain is recomputed here from the issue's definition with plain SQL, as an auditor would, so
the stored links pin the specification and not the ledger's own code.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import Cli, Firm, ref_uscc, run_at_once, write_register
from hypothesis import given
from hypothesis import strategies as st

from adapters.chain import canonical_bytes
from adapters.service import LedgerService

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


def test_concurrent_payments_still_give_a_verifiable_chain(
    db_url: str, cli: Cli, tables: Tables, tmp_path: Path
) -> None:
    import_year(cli, tmp_path, 2020, BASE)
    import_year(cli, tmp_path, 2021, BASE + [Firm(u) for u in ENTRANTS])
    services = [LedgerService(db_url, actor="finance") for _ in ENTRANTS]

    def pay_three(svc: LedgerService, uscc: str) -> None:
        for n in range(3):
            svc.record_payment(f"{uscc}/first_entry/2021", f"{uscc}-{n}", 100, date(2022, 5, 1))

    errors = run_at_once(pay_three, list(zip(services, ENTRANTS, strict=True)))
    for s in services:
        s.close()
    assert errors == []

    assert tables.stored_links() == tables.recompute()


# The arithmetic (adapters/chain.py) --------------------------------------------------------------


@given(
    position=st.integers(-(2**63), 2**63 - 1),
    version=st.integers(0, 2**63 - 1),
    topic=st.text(),
    originator_id=st.uuids().map(str) | st.text(),
    sha=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_canonical_bytes_are_json_dumps_with_sorted_keys_and_no_spaces(
    position: int, version: int, topic: str, originator_id: str, sha: str
) -> None:
    obj = {
        "position": position,
        "originator_id": originator_id,
        "originator_version": version,
        "topic": topic,
        "state_sha256": sha,
    }
    expected = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert canonical_bytes((position, originator_id, version, topic, sha)) == expected
