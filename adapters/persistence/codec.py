"""The events' JSON codec: the library's `JSONTranscoder`, with orjson doing the encoding and the
decoding (the largest single cost of an import and of a replay was the standard library's JSON
both ways).

It writes what the library's transcoder writes: compact UTF-8 JSON, and the types orjson does
not know as JSON (`date`, `datetime`) as the library's `{"_type_": NAME, "_data_": VALUE}`
objects, through the same registered transcodings. So an event written by either codec reads
back the same through either, and the log's bytes, which the hash chain covers, are never
rewritten: events stored before it read, verify and hash as they did. The ledger's events hold
strings, whole numbers, booleans, None, lists, dicts with string keys (orjson refuses any other
key) and dates: for those both codecs write the same bytes, which a test checks over every event
of a demo ledger, and reads a ledger the previous codec wrote. (A UUID, which orjson would write
as a plain string, is in no event's state: the ids are the log's own columns.)
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_CONTAINERS = (dict, list)


class OrjsonTranscoder(JSONTranscoder):
    """`JSONTranscoder` with orjson: the same bytes out for the ledger's events, the same values
    in."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_obj, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        value = orjson.loads(data)
        made = data.count(b'"_type_"')  # a string's own quotes are escaped: never counted
        if not made:
            return value  # nothing the transcodings made: the values as they are
        if type(value) is dict and "_type_" not in value:
            # Most events: the transcodings' objects (the timestamp, the dates) are the state's
            # own values; when those are all of them, nothing deeper needs a look.
            top = [k for k, v in value.items() if type(v) is dict and "_type_" in v]
            if len(top) == made:
                for key in top:
                    value[key] = self._revive(value[key])
                return value
        return self._revive(value)

    def _revive(self, value: Any) -> Any:
        """The library's `object_hook`, applied innermost first as its decoder applies it."""
        if type(value) is dict:
            for key, item in value.items():
                if type(item) in _CONTAINERS:
                    value[key] = self._revive(item)
            return self._decode_obj(value)
        for i, item in enumerate(value):
            if type(item) in _CONTAINERS:
                value[i] = self._revive(item)
        return value
