"""The award policy as data: 晋办发〔2020〕38号 and later versions, validated with pydantic."""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)


class Route(StrEnum):
    """How a firm first entered the register: (一) growth, merger, individual conversion,
    (二) new build, (三) sector conversion."""

    GROWTH = "growth"
    NEW_BUILD = "new_build"
    SECTOR_CONVERSION = "sector_conversion"
    MERGER = "merger"
    INDIVIDUAL_CONVERSION = "individual_conversion"


class SizeClass(StrEnum):
    """NBS size class of an industrial enterprise (国统字〔2017〕213号)."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


Fen = Annotated[StrictInt, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirstEntryRule(_Model):
    clause: str
    kind: Literal["first_entry"] = "first_entry"
    amount_fen: Fen


class RetentionAward(_Model):
    kind: str = Field(pattern=r"^retention_[a-z0-9]+$")
    consecutive_years: Annotated[StrictInt, Field(ge=1, le=10)]
    amount_fen: Fen


class RetentionRule(_Model):
    clause: str
    counting: Literal["years_after_entry", "entry_year_counts"]
    awards: tuple[RetentionAward, ...]

    @field_validator("awards")
    @classmethod
    def _distinct(cls, awards: tuple[RetentionAward, ...]) -> tuple[RetentionAward, ...]:
        if len({a.kind for a in awards}) != len(awards):
            raise ValueError("retention award kinds must be distinct")
        if len({a.consecutive_years for a in awards}) != len(awards):
            raise ValueError("two retention awards count the same number of years")
        return awards


class PaymentRule(_Model):
    lag_years: Annotated[StrictInt, Field(ge=0, le=5)]


class GuaranteeWindow(_Model):
    clause: str
    years: Annotated[StrictInt, Field(ge=1, le=10)]
    size_classes: tuple[SizeClass, ...]
    fee_cap_bp: Annotated[StrictInt, Field(ge=0, le=10_000)]


class EnergyWindow(_Model):
    clause: str
    years: Annotated[StrictInt, Field(ge=1, le=10)]


class Windows(_Model):
    guarantee: GuaranteeWindow
    energy: EnergyWindow


class Policy(_Model):
    """One version of the award rules. Its content hash identifies it in the log."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    issued_on: date
    eligible_routes: tuple[Route, ...]
    first_entry: FirstEntryRule
    retention: RetentionRule
    payment: PaymentRule
    windows: Windows

    @model_validator(mode="after")
    def _kinds_distinct(self) -> Policy:
        if self.first_entry.kind in {a.kind for a in self.retention.awards}:
            raise ValueError("award kinds must be distinct")
        return self

    def canonical_json(self) -> str:
        """The policy content as canonical JSON (sorted keys, no spaces): what the hash covers."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.first_entry.kind, *(a.kind for a in self.retention.awards))

    def clause_of(self, kind: str) -> str:
        return self.first_entry.clause if kind == self.first_entry.kind else self.retention.clause


DEFAULT_POLICY_FILE = "jinbanfa-2020-38.toml"


class PolicyFileError(ValueError):
    """A policy file that cannot be read or is not a valid policy; the message says where."""


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (TOML); the packaged 38号 policy when no path is given."""
    name = str(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        if path is None:
            packaged = resources.files("domain").joinpath("policies", DEFAULT_POLICY_FILE)
            text = packaged.read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        return Policy.model_validate(tomllib.loads(text))
    except OSError as e:
        raise PolicyFileError(f"{name}: cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise PolicyFileError(f"{name}: not valid TOML: {e}") from e
    except ValidationError as e:
        lines = [
            f"{name}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in e.errors()
        ]
        raise PolicyFileError("\n".join(lines)) from e


def policy_from_json(content: str) -> Policy:
    """Rebuild a policy from the canonical JSON recorded in the log."""
    return Policy.model_validate_json(content)
