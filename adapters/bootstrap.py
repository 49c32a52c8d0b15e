"""The ledger opened over a store: the application on the recorder the database URL selects, with
its views, "today" in Asia/Shanghai, and the default actor. Every entry point opens it here."""

from __future__ import annotations

import getpass
import os
import time
from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError, InternalError, ProgrammingError

from adapters.persistence import LedgerRecorder
from adapters.persistence.settings import (
    DatabaseSettings,
    SettingsError,
    database_settings,
    read_database_settings,
    require_ledger,
)
from adapters.persistence.vault import open_vault
from domain.application import Ledger
from domain.ledger_base import LedgerBase
from domain.persons import PersonVault
from domain.ports import ReadModel
from projections.postgres import PostgresLedgerViews
from projections.sqlite import SQLiteLedgerViews

SHANGHAI = ZoneInfo("Asia/Shanghai")
OPEN_ATTEMPTS = 5


def today_in_shanghai() -> date:
    """'Today' for the rules: decided here, at the edge, in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


def default_actor() -> str:
    """Who acts when nobody is named: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def open_ledger(
    url: str | None = None, *, create: bool = False, pool_size: int | None = None
) -> Ledger:
    """The ledger of `url` (else LEDGER_DATABASE_URL, else the SQLite default), with its views.

    `create`: make the ledger if there is none (only what writes a baseline, the demo and the
    server do); otherwise a missing ledger is refused (NoLedgerError), so that a typo never
    creates an empty one."""
    return open_store(url, create=create, pool_size=pool_size)[0]


def open_store(
    url: str | None = None,
    *,
    create: bool = False,
    pool_size: int | None = None,
    person_secret: str | None = None,
) -> tuple[Ledger, DatabaseSettings]:
    """The ledger and the settings it was opened with. `person_secret`: the file of the secret
    the (九) hires' vault is opened under, when a command first needs it (default:
    LEDGER_PERSON_SECRET_FILE)."""
    settings = database_settings(url, pool_size=pool_size)
    if not create:
        require_ledger(settings)
    views_class = SQLiteLedgerViews if settings.kind == "sqlite" else PostgresLedgerViews

    def views(app: LedgerBase) -> ReadModel:
        # The library builds the views as a tracking recorder on the log's own datastore.
        return cast(ReadModel, app.factory.tracking_recorder(views_class))

    def persons(app: LedgerBase) -> PersonVault:
        return open_vault(app, settings.kind, person_secret)

    for attempt in range(OPEN_ATTEMPTS):
        try:
            ledger = Ledger(env=settings.env, today=today_in_shanghai, views=views, persons=persons)
            return ledger, settings
        except (InternalError, IntegrityError, ProgrammingError):
            # Processes creating a new database's tables at once collide in PostgreSQL's
            # catalogue ("tuple concurrently updated"); the tables exist after one try.
            if attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


READ_WAIT_SECONDS = 2.0
"""How long a query waits for the replica to reach the position it asks for (`--known-at @N`, the
gRPC `min-position` header) before it is answered by the primary instead (LEDGER_READ_WAIT_SECONDS)."""


def open_reader(*, pool_size: int | None = None) -> Ledger | None:
    """The ledger on LEDGER_READ_DATABASE_URL (a hot standby), for queries; None when it is not
    set. Its views are the primary's as replicated: it never catches them up, and refuses any
    command."""
    settings = read_database_settings()
    if settings is None:
        return None
    if pool_size is not None:
        settings = DatabaseSettings(
            settings.url, settings.kind, {**settings.env, "POSTGRES_POOL_SIZE": str(pool_size)}
        )
    require_ledger(settings, replica=True)

    def views(app: LedgerBase) -> ReadModel:
        return cast(ReadModel, app.factory.tracking_recorder(PostgresLedgerViews))

    return Ledger(env=settings.env, today=today_in_shanghai, views=views, replica=True)


def read_wait_seconds() -> float:
    text = os.environ.get("LEDGER_READ_WAIT_SECONDS", "")
    try:
        seconds = float(text) if text else READ_WAIT_SECONDS
    except ValueError:
        raise SettingsError(f"LEDGER_READ_WAIT_SECONDS={text!r}: a number of seconds") from None
    if not 0 <= seconds <= 60:
        raise SettingsError(f"LEDGER_READ_WAIT_SECONDS={text!r}: 0 to 60 seconds")
    return seconds


def caught_up_to(reader: Ledger, position: int, seconds: float) -> bool:
    """Whether the replica's views reach `position` within `seconds` (looked at every 50 ms)."""
    deadline = time.monotonic() + seconds
    while reader.views.position() < position:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def log_of(ledger: Ledger) -> LedgerRecorder:
    """The ledger's recorder, with what the ledger adds: the chain, streams, commit times."""
    return cast(LedgerRecorder, ledger.recorder)
