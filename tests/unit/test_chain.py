"""The hash chain's arithmetic (adapters/persistence/chain.py): the canonical bytes, the links,
and what `check` makes of gaps, deletions and anchors."""

from __future__ import annotations

import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from adapters.persistence.chain import GENESIS, Anchor, canonical_bytes, check, fold, parse_anchor

ZEROS = "0" * 64


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


def _rows(positions: list[int]) -> list[tuple[int, str, int, str, str]]:
    return [(p, str(uuid.UUID(int=p)), 1, "m:T", ZEROS) for p in positions]


def test_gaps_in_positions_are_not_breaks_and_the_head_is_the_last_event() -> None:
    rows = _rows([3, 4, 9, 20])
    links = list(fold(GENESIS, rows))
    result = check(rows, links, Anchor(9, links[2][1]))
    assert result.intact and (result.position, result.link) == links[-1] and result.events == 4


def test_a_stored_link_beyond_the_last_event_is_a_deleted_event() -> None:
    rows = _rows([1, 2, 3])
    links = list(fold(GENESIS, rows))
    result = check(rows[:2], links)
    assert result.broken is not None and result.broken.position == 3
    assert result.broken.problem == "deleted" and (result.position, result.events) == (2, 2)


def test_an_anchor_between_events_is_reported_before_a_later_break() -> None:
    rows = _rows([1, 2, 5, 6])
    links = list(fold(GENESIS, rows))
    result = check(rows, links[:3], Anchor(4, GENESIS))
    assert result.broken is not None
    assert (result.broken.position, result.broken.problem) == (4, "anchor_missing")


def test_parse_anchor_accepts_upper_case_hex() -> None:
    assert parse_anchor(f"7:{'AB' * 32}") == Anchor(7, bytes.fromhex("ab" * 32))
