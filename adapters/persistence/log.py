"""The names and bounds both recorders of the log share."""

from __future__ import annotations

COMMITS_TABLE = "ledger_commits"
CHAIN_TABLE = "ledger_chain"
CHAIN_FETCH_ROWS = 10_000
"""Rows read at a time for the chain: memory stays bounded at any log size."""
MAX_POSITION = 2**63 - 1
MIN_POSITION = -(2**63)
"""Bounds of a position, for reads of the whole log (a row inserted by hand may lie anywhere)."""
