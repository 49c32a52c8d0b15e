"""The events' codec (orjson, as the library's transcoder): a ledger the previous codec (the
standard library's JSON) wrote reads back the same values, and its events encode again to the
very bytes stored, so the hash chain over them holds; the transcodings' objects are found at any
depth; a string that spells the marker is left a string."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from support.helpers import ROOT

from adapters.persistence.codec import OrjsonTranscoder
from domain.ledger_base import DateAsISO

BEFORE = ROOT / "tests" / "data" / "ledger-before-versions" / "ledger.db"


def codecs() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    old, new = JSONTranscoder(), OrjsonTranscoder()
    for t in (old, new):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
            t.register(transcoding)
    return old, new


def test_a_ledger_the_previous_codec_wrote_reads_the_same_and_encodes_to_its_bytes() -> None:
    old, new = codecs()
    with sqlite3.connect(f"file:{BEFORE}?mode=ro", uri=True) as db:
        states = [bytes(r[0]) for r in db.execute("SELECT state FROM stored_events")]
    assert len(states) >= 16  # the registers, the policy, the payments of its README
    for state in states:
        value = new.decode(state)
        assert value == old.decode(state)
        assert new.encode(value) == state  # the bytes the chain hashed


def test_the_transcodings_objects_are_found_at_any_depth() -> None:
    old, new = codecs()
    when = datetime(2026, 12, 4, 8, 30, tzinfo=UTC)
    value = {
        "timestamp": when,
        "paid_on": date(2026, 3, 1),
        "items": [{"released_on": date(2026, 4, 2), "rows": [[1, "a"], [date(2026, 1, 5)]]}],
        "note": 'a "_type_" in a string',
        "fake": {"_type_": "not a marker alone", "other": 1},
        "counts": {"rows": 3},
    }
    data = new.encode(value)
    assert data == old.encode(value)
    assert new.decode(data) == old.decode(data) == value
    only_top = {"timestamp": when, "year": 2025, "rows": [["x", 1, True, None]]}
    assert new.decode(new.encode(only_top)) == only_top
