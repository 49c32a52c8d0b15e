"""The demo: a synthetic Shanxi (the only user of the synthetic generator in adapters/) imported,
paid and summarised in a fresh SQLite ledger."""
