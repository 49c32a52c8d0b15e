"""The suite's shared fixtures (tests/support/fixtures.py), and each test marked with its level by
the folder it is in: `unit` (pure rules, formats, the application in memory), `integration` (each
store, the views), `e2e` (the real command line, gRPC server, demo, browser and Docker checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("support.fixtures", "support.grpc")

LEVELS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        level = item.path.relative_to(here).parts[0]
        if level in LEVELS:
            item.add_marker(getattr(pytest.mark, level))
