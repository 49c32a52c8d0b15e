"""The log's persistence: settings (LEDGER_DATABASE_URL), the recorders for SQLite and PostgreSQL,
the hash chain and group commit.

Both recorders subclass the library's application recorders, so every append still takes the
library's table lock (PostgreSQL) or the single writer lock (SQLite) that makes commit order equal
position order. They add three things:

- each transaction records its commit time from the database clock, taken under that lock, in
  `ledger_commits` (position = the highest notification id of the transaction), so "what the
  ledger knew at T" follows commit order, not the client's event timestamps;
- `insert_event_stream` appends a long stream of events (a register year) in one transaction,
  chunk by chunk (COPY on PostgreSQL, the library's executemany on SQLite), so an interrupted
  import leaves nothing behind;
- both append paths extend the log's hash chain (`adapters/persistence/chain.py`) in `ledger_chain(position,
  link)`, in the same transaction and under the same lock, from the last stored link: nothing is
  recomputed from the start on an append, and `verify_chain` recomputes it all to compare.

On PostgreSQL the inserts run in an ordinary transaction, not psycopg's pipeline mode, which hangs
on large saves (../shared/eventsourcing-notes.md).
"""

from __future__ import annotations

from adapters.persistence.postgres import LedgerPostgresRecorder
from adapters.persistence.sqlite import LedgerSQLiteRecorder

LedgerRecorder = LedgerSQLiteRecorder | LedgerPostgresRecorder
"""Either store's recorder of the log."""
