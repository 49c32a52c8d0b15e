"""The nightly reconciliation job: the ledger against the treasury's payments, the audit rules and
the integrity checks, written as a report and recorded in the log."""
