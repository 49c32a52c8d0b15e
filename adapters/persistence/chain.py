"""The log's hash chain: its one definition, used by the recorders that extend it and by `verify`.

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
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, Literal
from uuid import UUID

from adapters.persistence.log import stored_bytes
from domain.progress import Bar, shown, stage

GENESIS = bytes(32)
PROGRESS_EVERY = 4096
"""Events between two steps of the progress bar (a step per event would cost more than it tells)."""
"""link_0, the link "before" the first event; also the head of an empty log."""

EventRow = tuple[int, str, int, str, str]
"""An event as the chain sees it: position, originator_id (str(uuid)), originator_version, topic,
state_sha256 (lowercase hex)."""

Problem = Literal["changed", "unlinked", "deleted", "anchor_mismatch", "anchor_missing"]


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
    return (
        position,
        _uuid_text(originator_id),
        originator_version,
        "" if topic is None else str(topic),
        hashlib.sha256(stored_bytes(state)).hexdigest(),
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


@dataclass(frozen=True)
class Anchor:
    """A head an auditor kept: the link the chain had at a position."""

    position: int
    link: bytes

    def __str__(self) -> str:
        return f"{self.position}:{self.link.hex()}"


def parse_anchor(text: str) -> Anchor:
    """`POSITION:HASH` (64 hex digits); ValueError saying what is wrong otherwise."""
    position, sep, digest = text.strip().partition(":")
    if not sep or not position.isdigit() or not position.isascii():
        raise ValueError(f"anchor {text!r}: expected POSITION:HASH, e.g. 1200:{'0' * 64}")
    if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise ValueError(f"anchor {text!r}: HASH must be 64 hexadecimal digits (a SHA-256)")
    return Anchor(int(position), bytes.fromhex(digest))


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold."""

    position: int
    problem: Problem
    message: str


@dataclass(frozen=True)
class Verification:
    """The chain recomputed from the events and compared with the stored links."""

    events: int
    """Events checked and found chained (all of them when intact)."""
    position: int
    link: bytes
    """The last position that checked out and its link: the head of the log when intact."""
    broken: Break | None
    anchor: Anchor | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    @property
    def anchor_held(self) -> bool | None:
        """Whether the link recomputed at the anchor's position was the anchor's (None without an
        anchor; False too when a break came before it). It can hold while the chain breaks
        later: the log up to the anchor is then as it was when the anchor was taken."""
        if self.anchor is None:
            return None
        if self.broken is not None and self.broken.problem.startswith("anchor"):
            return False
        return self.anchor.position <= self.position


def events_to_verify(recorder: Any, first: int, stop: int) -> int | None:
    """About how many events a verification from `first` to `stop` walks, if anyone looks at its
    progress (domain.progress); None otherwise, without asking the database."""
    if not shown():
        return None
    head = recorder.max_notification_id() or 0
    return max(0, min(stop, head) - max(first, 0))


def check(
    events: Iterable[EventRow],
    links: Iterable[tuple[int, bytes]],
    anchor: Anchor | None = None,
    since: Anchor | None = None,
    total: int | None = None,
) -> Verification:
    """Walk the events and the stored links, both in position order, and stop at the first break.

    A changed event (or stored link) gives a recomputed link that differs from the stored one; an
    event with no stored link was inserted; a stored link with no event is a deleted event (an
    event deleted together with its link shows as a mismatch at the next one). With an anchor,
    the recomputed link at its position must equal the anchor's, which holds even when the stored
    links were rewritten to match edited events.

    `since`: an anchor kept earlier to start from instead of the first event: `events` are then
    those after its position and `links` start with the stored link at its position, which must
    be the anchor's (the log up to it was checked when the anchor was kept). `total`: about how
    many events there are, for the progress bar.
    """
    with stage("verify the hash chain", total=total, unit="events") as bar:
        return _walk(events, links, anchor, since, bar)


def _walk(
    events: Iterable[EventRow],
    links: Iterable[tuple[int, bytes]],
    anchor: Anchor | None,
    since: Anchor | None,
    bar: Bar,
) -> Verification:
    stored = iter(links)
    link, position, count = GENESIS, 0, 0
    if since is not None and since.position > 0:
        kept = next(stored, None)
        if kept != (since.position, since.link):
            broken = Break(since.position, "anchor_mismatch", _SINCE.format(since))
            return Verification(0, 0, GENESIS, broken, since)
        link, position = since.link, since.position
    pending = next(stored, None)
    due = anchor if anchor is not None and anchor.position > position else None  # not reached

    def done(broken: Break | None = None) -> Verification:
        bar.advance(count % PROGRESS_EVERY)
        return Verification(count, position, link, broken, anchor or since)

    if anchor is not None and anchor.position == 0 and anchor.link != GENESIS:
        return done(Break(0, "anchor_mismatch", _ANCHOR_MISMATCH.format(anchor, GENESIS.hex())))
    for row in events:
        at = row[0]
        if pending is not None and pending[0] < at:
            return done(_missing(pending[0], due))
        if due is not None and due.position < at:
            return done(_no_event_at(due))
        try:
            computed = next_link(link, row)
        except (TypeError, ValueError) as e:  # a version that is not a number (SQLite)
            return done(Break(at, "changed", _MALFORMED.format(at, e)))
        if pending is None or pending[0] > at:
            return done(Break(at, "unlinked", _UNLINKED.format(at)))
        if pending[1] != computed:
            return done(Break(at, "changed", _CHANGED.format(at)))
        if due is not None and due.position == at:
            if computed != due.link:
                mismatch = _ANCHOR_MISMATCH.format(due, computed.hex())
                return done(Break(at, "anchor_mismatch", mismatch))
            due = None
        link, position, count = computed, at, count + 1
        pending = next(stored, None)
        if not count % PROGRESS_EVERY:
            bar.advance(PROGRESS_EVERY)
    if pending is not None:
        return done(_missing(pending[0], due))
    return done(None if due is None else _no_event_at(due))


def _missing(at: int, due: Anchor | None) -> Break:
    """A stored link at `at` with no event, unless an anchor not reached comes before it."""
    if due is not None and due.position < at:
        return _no_event_at(due)
    return Break(at, "deleted", _DELETED.format(at))


def _no_event_at(anchor: Anchor) -> Break:
    return Break(anchor.position, "anchor_missing", _ANCHOR_MISSING.format(anchor))


_CHANGED = (
    "the link recomputed from the event at position {0} differs from the stored link: the event "
    "(or its stored link) was changed, or an event just before it was deleted with its link"
)
_MALFORMED = (
    "the event at position {0} cannot be read as the chain defines it ({1}): it was changed"
)
_UNLINKED = (
    "the event at position {0} has no stored link: it was inserted outside the ledger "
    "(the ledger links every event it appends, in the same transaction)"
)
_DELETED = "a link is stored for position {0} but no event is there: the event was deleted"
_ANCHOR_MISMATCH = (
    "the link recomputed at the anchor's position differs from the anchor {0} (recomputed "
    "{1}): an event at or before that position was changed, inserted or deleted and the stored "
    "links were rewritten to match, or the anchor is not of this ledger"
)
_SINCE = (
    "the stored link at the kept anchor's position is not the anchor {0}: the log before it was "
    "rewritten since the anchor was kept, or the anchor is not of this ledger"
)
_ANCHOR_MISSING = (
    "there is no event at the anchor's position ({0}): the event was deleted, "
    "or the anchor is not of this ledger"
)
