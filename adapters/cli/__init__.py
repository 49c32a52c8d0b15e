"""The command line: its parser, the commands on a ledger, and what they print."""
