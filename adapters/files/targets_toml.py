"""A year's targets file for the city progress report (十四), in TOML:

year = 2025
province_goal = 10000   # optional: the province's total (default: the cities' added up)
praise_top = 3          # optional: the cities ranked this high are praised (default 3)
criticise_bottom = 3    # optional: the cities ranked this low are criticised (default 3)

[targets]               # city code = the firms its register should end the year with
140100 = 1900
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from pydantic import ValidationError

from adapters.files.csv_records import CsvFileError
from domain.city_progress import Targets
from domain.text import control_problem


def read_targets(path: str | Path) -> Targets:
    """Read and check a targets file; CsvFileError (a file the command cannot use) saying where
    and what is wrong otherwise."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CsvFileError(f"{name}: cannot read: {e.strerror or e}") from e
    return parse_targets(name, data)


def parse_targets(name: str, data: bytes) -> Targets:
    """A targets file's bytes checked (`name`: where they came from, for messages)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CsvFileError(f"{name}: not valid UTF-8 at byte {e.start + 1}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        problem = control_problem(line.replace("\t", " "))
        if problem is not None:
            raise CsvFileError(f"{name}:{number}: {problem}")
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CsvFileError(f"{name}: not valid TOML: {e}") from None
    if "source" in values:
        raise CsvFileError(f"{name}: source: not a key of a targets file")
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        return Targets.model_validate({**values, "source": f"{name} (sha256 {sha256})"})
    except ValidationError as e:
        lines = [
            f"{name}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in e.errors()
        ]
        raise CsvFileError("\n".join(lines)) from None
