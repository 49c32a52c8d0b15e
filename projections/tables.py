"""The views' tables, declared once: the DDL, the insert column lists and the drift check's
expectations all come from here.

Register rows, awards and windows are bitemporal: each row is one version of a fact, known from
the log position that gave it (known_from) until the position that replaced it (known_to, NULL
while current). "What the ledger said at position P" reads the versions with
known_from <= P < known_to; nothing is updated in place but known_to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["firm", "versioned", "positioned", "year"]


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    """Its SQL type and constraints, e.g. `TEXT NOT NULL`."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    kind: Kind
    """How the drift check reads it at a position: versioned (known_from/known_to), positioned
    (a position column), firm (current rows) or year (a position column, its file correctable)."""
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key(self) -> tuple[int, ...]:
        """Indexes of the primary key's columns: a row's identity in the drift check."""
        return tuple(self.names.index(c) for c in self.primary_key)

    def ddl(self) -> list[str]:
        columns = ", ".join(f"{c.name} {c.sql}" for c in self.columns)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name} ({columns}, "
            f"PRIMARY KEY ({', '.join(self.primary_key)}))",
            *(
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.name} ({', '.join(on)})"
                for index, on in self.indexes
            ),
        ]


def _columns(spec: str) -> tuple[Column, ...]:
    """`name TYPE ...` pieces separated by commas."""
    return tuple(Column(*piece.strip().split(" ", 1)) for piece in spec.split(","))


KNOWN = ("known_from", "known_to")

FIRMS = Table(
    "lv_firms",
    _columns(
        "originator_id TEXT NOT NULL, uscc TEXT NOT NULL UNIQUE, version BIGINT NOT NULL, "
        "name TEXT NOT NULL, region_code TEXT NOT NULL, city_code TEXT NOT NULL, "
        "industry_code TEXT NOT NULL, size_class TEXT, first_entry_year INTEGER, route TEXT, "
        "entry_size_class TEXT, baseline_year INTEGER, last_year INTEGER, years TEXT NOT NULL, "
        "exit_years TEXT NOT NULL, re_entry_years TEXT NOT NULL, cities TEXT NOT NULL, "
        "designations TEXT NOT NULL, holds TEXT NOT NULL"
    ),
    ("originator_id",),
    "firm",
)
REGISTER = Table(
    "lv_register",
    _columns(
        "year INTEGER NOT NULL, uscc TEXT NOT NULL, kind TEXT NOT NULL, "
        "first_entry BOOLEAN NOT NULL, name TEXT NOT NULL, region_code TEXT NOT NULL, "
        "city_code TEXT NOT NULL, industry_code TEXT NOT NULL, size_class TEXT, "
        "known_from BIGINT NOT NULL, known_to BIGINT"
    ),
    ("year", "uscc", "known_from"),
    "versioned",
)
AWARDS = Table(
    "lv_awards",
    _columns(
        "entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL, kind TEXT NOT NULL, "
        "clause TEXT NOT NULL, policy_id TEXT NOT NULL, amount_fen BIGINT NOT NULL, "
        "decided_year INTEGER NOT NULL, due_fiscal_year INTEGER NOT NULL, "
        "city_code TEXT NOT NULL, base_fen BIGINT NOT NULL, bonuses TEXT NOT NULL, "
        "earned BOOLEAN NOT NULL, known_from BIGINT NOT NULL, "
        "known_to BIGINT"
    ),
    ("entitlement_id", "known_from"),
    "versioned",
    indexes=(
        ("lv_awards_due", ("due_fiscal_year", "city_code")),
        ("lv_awards_uscc", ("uscc",)),
    ),
)
PAYMENTS = Table(
    "lv_payments",
    _columns(
        "payment_ref TEXT NOT NULL, entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL, "
        "amount_fen BIGINT NOT NULL, paid_on TEXT NOT NULL, fiscal_year INTEGER NOT NULL, "
        "actor TEXT NOT NULL, position BIGINT NOT NULL"
    ),
    ("payment_ref",),
    "positioned",
    indexes=(("lv_payments_entitlement", ("entitlement_id",)),),
)
RECOVERIES = Table(
    "lv_recoveries",
    _columns(
        "recovery_ref TEXT NOT NULL, entitlement_id TEXT NOT NULL, uscc TEXT NOT NULL, "
        "amount_fen BIGINT NOT NULL, received_on TEXT NOT NULL, fiscal_year INTEGER NOT NULL, "
        "actor TEXT NOT NULL, position BIGINT NOT NULL"
    ),
    ("recovery_ref",),
    "positioned",
)
WINDOWS = Table(
    "lv_windows",
    _columns(
        "uscc TEXT NOT NULL, window_kind TEXT NOT NULL, clause TEXT NOT NULL, "
        "starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, closed_on TEXT, fee_cap_bp INTEGER, "
        "size_class TEXT, known_from BIGINT NOT NULL, known_to BIGINT"
    ),
    ("uscc", "window_kind", "known_from"),
    "versioned",
)
HOLDS = Table(
    "lv_holds",
    _columns(
        "uscc TEXT NOT NULL, document TEXT NOT NULL, reason TEXT NOT NULL, "
        "authority TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT, actor TEXT NOT NULL, "
        "position BIGINT NOT NULL"
    ),
    ("uscc", "document"),
    "positioned",
)
"""Holds placed, each known from its position."""
HOLD_LIFTS = Table(
    "lv_hold_lifts",
    _columns(
        "uscc TEXT NOT NULL, document TEXT NOT NULL, lifted_on TEXT NOT NULL, "
        "reason TEXT NOT NULL, actor TEXT NOT NULL, position BIGINT NOT NULL"
    ),
    ("uscc", "document"),
    "positioned",
)
"""Holds lifted (`lifted_on`: the first day free), each known from its position."""
YEARS = Table(
    "lv_years",
    _columns(
        "year INTEGER NOT NULL, baseline BOOLEAN NOT NULL, sha256 TEXT NOT NULL, "
        "row_count INTEGER NOT NULL, counts TEXT NOT NULL, actor TEXT NOT NULL, "
        "position BIGINT NOT NULL"
    ),
    ("year",),
    "year",
)
CORRECTIONS = Table(
    "lv_corrections",
    _columns(
        "position BIGINT NOT NULL, year INTEGER NOT NULL, sha256 TEXT NOT NULL, "
        "reason TEXT NOT NULL, row_count INTEGER NOT NULL, counts TEXT NOT NULL, "
        "actor TEXT NOT NULL"
    ),
    ("position",),
    "positioned",
)
POLICY = Table(
    "lv_policy",
    _columns(
        "policy_id TEXT NOT NULL, content_hash TEXT NOT NULL, content TEXT NOT NULL, "
        "position BIGINT NOT NULL"
    ),
    ("content_hash",),
    "positioned",
)

TABLES = (
    FIRMS,
    REGISTER,
    AWARDS,
    WINDOWS,
    PAYMENTS,
    RECOVERIES,
    HOLDS,
    HOLD_LIFTS,
    YEARS,
    CORRECTIONS,
    POLICY,
)
"""Every view table, in the order the drift check compares them."""

SCHEMA_TABLE = "CREATE TABLE IF NOT EXISTS lv_schema (version INTEGER NOT NULL)"
SCHEMA_VERSION = 6
"""Bumped when the views' tables change shape or what the fold puts in them (4: a firm keeps the
city of a register year a correction took away; 5: a firm's designations, an award's base and bonuses; 6: compliance holds): the views are then
dropped and rebuilt from the log."""
