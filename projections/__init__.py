"""Read models derived from the ledger's log, kept in the same database as the log."""
