"""Who may do what: the roles a user of the ledger's services holds, and what each permits."""

from __future__ import annotations

PERMISSIONS: dict[str, frozenset[str]] = {
    "finance": frozenset({"read", "pay"}),
    "statistics": frozenset({"read", "import"}),
    "auditor": frozenset({"read", "audit"}),
    "admin": frozenset({"read", "pay", "import", "audit"}),
}
"""Role -> what it may do: `read` the ledger's answers, `pay` (record payments and recoveries),
`import` registers, `audit` (the audit trail, verify, anchors)."""

ROLES = tuple(PERMISSIONS)
