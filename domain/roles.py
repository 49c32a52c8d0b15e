"""Who may do what: the roles a user of the ledger's services holds, and what each permits."""

from __future__ import annotations

PERMISSIONS: dict[str, frozenset[str]] = {
    "finance": frozenset({"read", "pay", "budget"}),
    "statistics": frozenset({"read", "import"}),
    "auditor": frozenset({"read", "audit"}),
    "certification": frozenset({"read", "designate"}),
    "review": frozenset({"read", "hold", "batch"}),
    "human_resources": frozenset({"read", "hires", "persons"}),
    "admin": frozenset(
        {
            "read",
            "pay",
            "import",
            "designate",
            "audit",
            "hold",
            "batch",
            "budget",
            "hires",
            "persons",
        }
    ),
}
"""Role -> what it may do: `read` the ledger's answers, `pay` (record payments and recoveries),
`import` registers, `designate` (import the designations a certifying authority grants: the
development and reform commission's strategic emerging industries, the science department's
tech-based SMEs; not the statistics bureau's), `audit` (the audit trail, verify, anchors), `hold`
(place, lift and import compliance holds), `budget` (appropriations and the switch to paying
released awards only: finance) and `batch` (propose, publish, object to and release
payment batches; approve one another user proposed): the `review` role is the province's SME
authority; `hires` (import the human-resources bureau's (九) hires and contributions) and
`persons` (show a person's details, erase a person): the `human_resources` role, the bureau's.
A payment of the (九) subsidy is `pay` (finance), as an award's is."""

ROLES = tuple(PERMISSIONS)
