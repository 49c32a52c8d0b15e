"""Recompute the ledger's hash chain from its events table alone, without the ledger's code.

python recheck_chain.py sqlite:///ledger.db|postgresql://USER@HOST:PORT/DB [POSITION]
prints POSITION:HASH, the link at POSITION (default: the last event), to compare with an anchor."""

import hashlib
import json
import sys
import uuid

url = sys.argv[1].split("?")[0]  # the ledger's own URL options are not the driver's
stop = int(sys.argv[2]) if len(sys.argv) > 2 else None
if url.startswith("sqlite:///"):
    import sqlite3

    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    # SQLite keeps any value in any column: CAST gives a state edited into text back as bytes
    rows = db.execute(
        "SELECT rowid, originator_id, originator_version, topic, CAST(state AS BLOB) "
        "FROM stored_events ORDER BY rowid"
    )
else:
    import psycopg

    db = psycopg.connect(url)  # a server-side cursor: rows come a batch at a time
    rows = db.cursor("chain").execute(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM ledger_events ORDER BY notification_id"
    )
link, at = bytes(32), 0
for position, originator_id, version, topic, state in rows:
    if stop is not None and position > stop:
        break
    event = {
        "position": position,
        "originator_id": str(uuid.UUID(str(originator_id))),
        "originator_version": version,
        "topic": topic,
        "state_sha256": hashlib.sha256(state or b"").hexdigest(),  # NULL: empty
    }
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    link, at = hashlib.sha256(link + canonical).digest(), position
print(f"{at}:{link.hex()}")
