"""The log's hash chain: its one definition, used by the recorders that extend it.

Over every event of the log in position order (the library's notification id):

    link_0 = 32 zero bytes
    link_n = SHA-256(link_{n-1} || canonical bytes of event n)

where link_{n-1} is the link of the previous event that exists (positions may skip numbers: a
sequence does on rollback) and the canonical bytes are the UTF-8 of

    json.dumps({"position": ..., "originator_id": str(uuid), "originator_version": ...,
                "topic": ..., "state_sha256": sha256(stored state bytes).hexdigest()},
               sort_keys=True, separators=(",", ":"))

No I/O here: the recorders read rows and write links, this module only does the arithmetic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring_ascii
from uuid import UUID

GENESIS = bytes(32)
"""link_0, the link "before" the first event; also the head of an empty log."""

EventRow = tuple[int, str, int, str, str]
"""An event as the chain sees it: position, originator_id (str(uuid)), originator_version, topic,
state_sha256 (lowercase hex)."""


def event_row(
    position: int,
    originator_id: str | UUID,
    originator_version: int,
    topic: object,
    state: object,
) -> EventRow:
    """An event as the chain sees it, from its columns as a store returns them (SQLite keeps an
    originator id as 32 hex digits; the state is hashed here).

    SQLite takes any value in any column, so a row edited by hand may hold text or NULL where
    bytes belong: text is hashed as its UTF-8 and NULL as empty, and the link simply does not
    match, instead of verify failing on it.
    """
    if not isinstance(state, bytes):
        state = ("" if state is None else str(state)).encode()
    return (
        position,
        _uuid_text(originator_id),
        originator_version,
        "" if topic is None else str(topic),
        hashlib.sha256(state).hexdigest(),
    )


def _uuid_text(stored_id: object) -> str:
    # Text that is not a UUID (a hand-edited row again) is hashed as it is.
    try:
        return str(stored_id if isinstance(stored_id, UUID) else UUID(str(stored_id)))
    except ValueError:
        return str(stored_id)


def canonical_bytes(row: EventRow) -> bytes:
    """The UTF-8 of `json.dumps(obj, sort_keys=True, separators=(",", ":"))` of the event's five
    fields, written out with the json module's own string encoder (the one json.dumps calls):
    the same bytes, ten times faster, which matters at a million events."""
    position, originator_id, version, topic, sha = row
    return (
        f'{{"originator_id":{encode_basestring_ascii(originator_id)},'
        f'"originator_version":{int(version)},"position":{int(position)},'
        f'"state_sha256":{encode_basestring_ascii(sha)},'
        f'"topic":{encode_basestring_ascii(topic)}}}'
    ).encode()


def next_link(previous: bytes, row: EventRow) -> bytes:
    return hashlib.sha256(previous + canonical_bytes(row)).digest()


def fold(previous: bytes, rows: Iterable[EventRow]) -> Iterator[tuple[int, bytes]]:
    """(position, link) of each row in turn, starting from the link before the first."""
    link = previous
    for row in rows:
        link = next_link(link, row)
        yield row[0], link
