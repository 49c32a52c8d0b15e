"""The ledger's domain: enterprises, their register history, the policy and the rules that decide money."""
