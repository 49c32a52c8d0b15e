"""What the (九) tests share: identity numbers made by hand from DOMAIN.md (not from the code), the
bureau's files, and the raw bytes of a ledger's database, to look for personal data in."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

# GB 11643 as DOMAIN.md states it: ISO 7064 MOD 11-2, the weights and the characters written out.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECKS = "10X98765432"
HIRES_HEADER = "uscc,person_id,person_name,category,contract_start,contract_end"
CONTRIBUTIONS_HEADER = "uscc,person_id,employer_paid_fen"


def ref_person_id(division: str, born: str, sequence: str) -> str:
    """A valid identity number: 6-digit division, YYYYMMDD, 3-digit sequence, check character."""
    body = division + born + sequence
    return body + ID_CHECKS[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def wrong_check(person_id: str) -> str:
    """The same number with another check character."""
    other = "1" if person_id[-1] != "1" else "2"
    return person_id[:-1] + other


def write_lines(path: Path, header: str, *lines: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def forms(text: str) -> list[bytes]:
    """The ways a text may sit in a database's bytes: UTF-8, JSON's \\u escapes, UTF-16."""
    escaped = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in text)
    return [text.encode(), escaped.encode(), text.encode("utf-16-le")]


class Database:
    """A ledger's database read below the ledger: every byte it holds, and the events table."""

    def __init__(self, db_url: str):
        self.sqlite = db_url.startswith("sqlite:///")
        self.url = db_url
        self.path = Path(db_url[len("sqlite:///") :]) if self.sqlite else None

    def _query(self, statement: str) -> list[tuple[Any, ...]]:
        if self.path is not None:
            with sqlite3.connect(self.path) as conn:
                return conn.execute(statement).fetchall()
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement).fetchall()  # type: ignore[arg-type]

    def everything(self) -> bytes:
        """SQLite: the database file and its WAL, as on disk. PostgreSQL: every value of every
        table of the ledger's schema, bytea as its bytes and the rest as text."""
        if self.path is not None:
            wal = self.path.with_name(self.path.name + "-wal")
            return self.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        names = [
            r[0]
            for r in self._query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        assert "ledger_events" in names and "ledger_persons" in names, names
        chunks = []
        for name in names:
            for row in self._query(f'SELECT * FROM public."{name}"'):
                for value in row:
                    chunks.append(
                        bytes(value)
                        if isinstance(value, bytes | memoryview)
                        else str(value).encode()
                    )
        return b"\x00".join(chunks)

    def holds(self, text: str) -> bool:
        data = self.everything()
        return any(form in data for form in forms(text))

    def events(self) -> list[tuple[Any, ...]]:
        """The events table's rows, in position order, as stored."""
        if self.sqlite:
            rows = self._query(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                "ORDER BY rowid"
            )
        else:
            rows = self._query(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM ledger_events ORDER BY notification_id"
            )
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]

    def vault(self) -> list[tuple[Any, ...]]:
        rows = self._query(
            "SELECT pseudonym, wrapped_key, sealed, erased_document FROM ledger_persons "
            "ORDER BY pseudonym"
        )
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
