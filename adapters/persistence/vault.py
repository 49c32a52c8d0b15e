"""The vault of (九) hires' personal details, on both stores: a table the log does not chain
(`ledger_persons`), each person's details sealed with AES-GCM under a key of their own, and
that key kept wrapped under a key derived from the ledger's person secret.

The person secret (32 random bytes, hex, in a file outside the database: `--person-secret` or
LEDGER_PERSON_SECRET_FILE) derives, by HMAC-SHA256 under distinct labels, the pseudonym key
(a person's pseudonym is the HMAC of their identity number), the key-wrapping key and a
fingerprint the ledger records once. Erasing a person deletes their row's key and sealed
details, leaving the erasure's record (document, day): with the key gone the details cannot be
read by anyone, secret or not. On SQLite the delete runs with `secure_delete` and the WAL is
checkpointed and truncated, so that the key's bytes leave the database files; on PostgreSQL the
dead row remains in the table's pages until they are reused, and in the server's WAL and any
backup, each readable only with the ledger's secret (see the README's "Personal data").
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.rows import tuple_row
from psycopg.sql import SQL

from adapters.persistence.settings import SettingsError
from domain.persons import Erasure, PersonDetails

SECRET_ENV = "LEDGER_PERSON_SECRET_FILE"  # noqa: S105 (the variable naming the file, not a secret)
TABLE = "ledger_persons"
_NONCE = 12
_COLUMNS = "pseudonym, wrapped_key, sealed, erased_document, erased_on"


class PersonSecretError(SettingsError):
    """The person secret cannot be had: not given, unreadable, malformed, or open to others."""


class VaultDamagedError(Exception):
    """A sealed record that does not open: changed outside the ledger, or another secret."""


def secret_path(given: str | None) -> Path:
    path = given or os.environ.get(SECRET_ENV)
    if not path:
        raise PersonSecretError(
            "the (九) hires' commands need the ledger's person secret: give --person-secret FILE "
            f"or set {SECRET_ENV} (the first import makes the file if there is none)"
        )
    return Path(path)


def read_secret(path: Path) -> bytes | None:
    """The secret in the file (None: no such file); PersonSecretError if it is not a secret
    only its owner can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise PersonSecretError(f"person secret {path}: cannot read: {e}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PersonSecretError(
            f"person secret {path} can be read by others (mode {stat.S_IMODE(mode):o}): "
            f"`chmod 600 {path}`, and ask who else had it"
        )
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise PersonSecretError(f"person secret {path}: must be 64 hexadecimal digits (32 bytes)")
    return secret


def make_secret(path: Path) -> bytes:
    """A new secret, written to a new file only its owner can read."""
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise PersonSecretError(f"person secret {path}: cannot create: {e.strerror}") from e
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret.hex() + "\n")
    return secret


def _derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, f"subsidy-ledger {label} v1".encode(), hashlib.sha256).digest()


class Vault:
    """`domain.persons.PersonVault` over the log's own datastore (SQLite or PostgreSQL)."""

    def __init__(self, secret: bytes, datastore: Any, kind: str) -> None:
        self._pseudonyms = _derive(secret, "person pseudonym")
        self._wrap = AESGCM(_derive(secret, "person key wrap"))
        self._fingerprint = _derive(secret, "person secret fingerprint").hex()[:16]
        self._store = datastore
        self._kind = kind
        # The schema's name is checked where the URL is read (adapters.persistence.settings).
        self._table = TABLE if kind == "sqlite" else f'"{datastore.schema}"."{TABLE}"'
        blob = "BLOB" if kind == "sqlite" else "bytea"
        with self._cursor() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} (pseudonym TEXT PRIMARY KEY, "
                f"wrapped_key {blob}, sealed {blob}, erased_document TEXT, erased_on TEXT, "
                "CHECK ((wrapped_key IS NULL) = (erased_document IS NOT NULL)))"
            )

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def is_empty(self) -> bool:
        with self._cursor() as c:
            c.execute(f"SELECT 1 FROM {self._table} LIMIT 1")
            return c.fetchone() is None

    def pseudonym(self, person_id: str) -> str:
        return hmac.new(self._pseudonyms, person_id.encode(), hashlib.sha256).hexdigest()[:32]

    def read(self, pseudonyms: Sequence[str]) -> dict[str, PersonDetails | Erasure]:
        found: dict[str, PersonDetails | Erasure] = {}
        for row in self._rows(pseudonyms):
            person, wrapped, sealed, document, erased_on = row
            if document is not None:
                found[person] = Erasure(document, date.fromisoformat(erased_on))
                continue
            details = json.loads(self._open(AESGCM(self._unwrap(person, wrapped)), person, sealed))
            found[person] = PersonDetails(
                details["person_id"], details["name"], details["categories"]
            )
        return found

    def keep(self, people: Mapping[str, PersonDetails]) -> None:
        if not people:
            return
        keys = {r[0]: r[1] for r in self._rows(sorted(people)) if r[3] is None}
        rows = []
        for person, details in people.items():
            key = self._unwrap(person, keys[person]) if person in keys else AESGCM.generate_key(256)
            plain = json.dumps(
                {
                    "person_id": details.person_id,
                    "name": details.name,
                    "categories": dict(details.categories),
                },
                ensure_ascii=False,
                sort_keys=True,
            ).encode()
            rows.append(
                (
                    person,
                    self._seal(self._wrap, person, key),
                    self._seal(AESGCM(key), person, plain),
                )
            )
        mark = "?" if self._kind == "sqlite" else "%s"
        with self._cursor() as c:
            c.executemany(
                f"INSERT INTO {self._table} (pseudonym, wrapped_key, sealed) "
                f"VALUES ({mark}, {mark}, {mark}) ON CONFLICT (pseudonym) DO UPDATE SET "
                "sealed = excluded.sealed, wrapped_key = excluded.wrapped_key "
                f"WHERE {self._table}.erased_document IS NULL",
                rows,
            )

    def erase(self, pseudonym: str, erasure: Erasure) -> None:
        mark = "?" if self._kind == "sqlite" else "%s"
        with self._cursor(secure_delete=True) as c:
            c.execute(f"DELETE FROM {self._table} WHERE pseudonym = {mark}", (pseudonym,))
            c.execute(
                f"INSERT INTO {self._table} (pseudonym, erased_document, erased_on) "
                f"VALUES ({mark}, {mark}, {mark})",
                (pseudonym, erasure.document, erasure.erased_on.isoformat()),
            )
        if self._kind == "sqlite":
            # The deleted page's old image leaves the WAL once checkpointed and truncated.
            with contextlib.closing(sqlite3.connect(self._store.pool.db_name, timeout=30)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # The seal ---------------------------------------------------------------------------------

    @staticmethod
    def _seal(aead: AESGCM, person: str, plain: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + aead.encrypt(nonce, plain, person.encode())

    def _open(self, aead: AESGCM, person: str, sealed: bytes) -> bytes:
        try:
            return aead.decrypt(bytes(sealed[:_NONCE]), bytes(sealed[_NONCE:]), person.encode())
        except InvalidTag:
            raise VaultDamagedError(
                f"the vault's record of person {person} does not open: it was changed outside "
                "the ledger"
            ) from None

    def _unwrap(self, person: str, wrapped: bytes) -> bytes:
        return self._open(self._wrap, person, wrapped)

    # The table --------------------------------------------------------------------------------

    def _rows(self, pseudonyms: Sequence[str]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        people = list(pseudonyms)
        with self._cursor() as c:
            for start in range(0, len(people), 500):
                chunk = people[start : start + 500]
                if self._kind == "sqlite":
                    c.execute(
                        f"SELECT {_COLUMNS} FROM {self._table} WHERE pseudonym IN "
                        f"({', '.join('?' * len(chunk))})",
                        chunk,
                    )
                else:
                    c.execute(
                        f"SELECT {_COLUMNS} FROM {self._table} WHERE pseudonym = ANY(%s)", (chunk,)
                    )
                found += [tuple(r) for r in c.fetchall()]
        return found

    @contextlib.contextmanager
    def _cursor(self, *, secure_delete: bool = False) -> Iterator[Any]:
        """A cursor in a transaction of its own, committed on leaving."""
        if self._kind == "sqlite":
            with self._store.transaction(commit=True) as c:
                if secure_delete:
                    c.execute("PRAGMA secure_delete = ON")
                yield c
            return
        with (
            self._store.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            yield _PgCursor(curs)


class _PgCursor:
    """A psycopg cursor taking the vault's statements (composed as text)."""

    def __init__(self, curs: Any) -> None:
        self._curs = curs

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self._curs.execute(SQL(statement), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self._curs.executemany(SQL(statement), rows)

    def fetchone(self) -> Any:
        return self._curs.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._curs.fetchall())


def open_vault(app: Any, kind: str, given: str | None) -> Vault:
    """The vault of the application's datastore under the person secret of `given` (else
    LEDGER_PERSON_SECRET_FILE), made on first use when the vault holds no one yet."""
    path = secret_path(given)
    secret = read_secret(path)
    datastore = app.recorder.datastore
    if secret is None:
        probe = Vault(secrets.token_bytes(32), datastore, kind)
        if not probe.is_empty():
            raise PersonSecretError(
                f"no person secret at {path}, and the vault holds people sealed under one: "
                "restore the ledger's secret file from safe keeping (a new one cannot open them)"
            )
        secret = make_secret(path)
    return Vault(secret, datastore, kind)
