"""Policy versions: adopted into the log, each governing the firms whose first entry falls in
or after its `applies_from`; a version adopted after such firms' awards were decided re-derives
them, as a correction does, and says what changed."""

from __future__ import annotations

from domain.command_results import AdoptionResult, AmountChange, AwardChange
from domain.enterprise import Enterprise
from domain.errors import RefusedError
from domain.ledger_base import LedgerBase, amount_change, award_change
from domain.policy import Policy
from domain.rules import Entitlement, entitlements, governing
from domain.text import checked_text


class PolicyCommands(LedgerBase):
    """`adopt_policy` (the versions adopted are read by `domain.queries`)."""

    def adopt_policy(self, policy: Policy, *, actor: str, reason: str) -> AdoptionResult:
        """Record a policy version in the log. The same content under an adopted id changes
        nothing (a replay); another content under it, or a second version applying from the same
        year, is refused. Firms whose first entry the version now governs have their awards and
        windows re-derived (one `PolicyApplied` event each, in the same transaction as the
        version): what they newly earn (arrears), what they lose (revoked, or to be recovered
        if paid), and what changes amount or deciding version is reported.
        """
        checked_text(actor, "actor")
        checked_text(reason, "reason")
        if not reason.strip():
            raise RefusedError("say why the version is adopted (--reason)", field="reason")
        book = self.get_book()
        if book is None or not book.policy_versions:
            raise RefusedError(
                "no ledger here yet: import the baseline register first (it adopts the first "
                "version)"
            )
        adopted = book.policy_versions.get(policy.id)
        if adopted is not None:
            if adopted.content_hash != policy.content_hash:
                raise RefusedError(
                    f"policy {policy.id} was adopted with another content (sha256 "
                    f"{adopted.content_hash[:12]}…, this file {policy.content_hash[:12]}…): "
                    "a changed version needs a new id",
                    field="policy",
                )
            return AdoptionResult(
                policy.id, policy.content_hash, True, [], [], [], [], [], [], None
            )
        before = book.policies
        assert before is not None
        same_start = next((p for p in before.versions if p.starts == policy.starts), None)
        if same_start is not None:
            raise RefusedError(
                f"policy {same_start.id} already applies from "
                f"{policy.applies_from or 'the beginning'}: give this version another "
                "applies_from",
                field="policy",
            )
        after = before.with_version(policy)
        book.adopt_policy(policy, actor, reason)
        self.catch_up()
        candidates = sorted(
            uscc
            for uscc, prior in self._register().prior_firms().items()
            if prior.first_entry_year is not None
            and after.governing(prior.first_entry_year) is policy
        )
        result = _Report(policy)
        firms: list[Enterprise] = []
        for firm in self.get_enterprises(candidates):
            history = firm.state.history()
            if governing(history, after) is not policy:
                continue
            old = {e.entitlement_id: e for e in entitlements(history, before)}
            new = {e.entitlement_id: e for e in entitlements(history, after)}
            if not old and not new:
                continue
            assert history.first_entry_year is not None
            changed = sorted(
                eid
                for eid in old.keys() & new.keys()
                if (old[eid].amount_fen, old[eid].policy_hash)
                != (new[eid].amount_fen, new[eid].policy_hash)
            )
            firm.trigger_event(
                Enterprise.PolicyApplied,
                policy_id=policy.id,
                content_hash=policy.content_hash,
                year=history.first_entry_year,
                reason=reason,
                actor=actor,
                source_sha256=None,
                earned=sorted(new.keys() - old.keys()),
                revoked=sorted(old.keys() - new.keys()),
                changed=changed,
            )
            firms.append(firm)
            result.add(firm, old, new, changed)
        recordings = self.save_or_conflict(f"while policy {policy.id} was adopted", book, *firms)
        position = max(r.notification.id for r in recordings)
        return self.caught_up(result.outcome(position))


class _Report:
    """What an adoption changes, award by award."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.firms: list[str] = []
        self.arrears: list[AwardChange] = []
        self.revoked: list[AwardChange] = []
        self.recovery_due: list[AwardChange] = []
        self.amount_changed: list[AmountChange] = []
        self.version_changed: list[AmountChange] = []

    def add(
        self,
        firm: Enterprise,
        old: dict[str, Entitlement],
        new: dict[str, Entitlement],
        changed: list[str],
    ) -> None:
        self.firms.append(firm.uscc)
        for eid in sorted(new.keys() - old.keys()):
            self.arrears.append(award_change(firm, new[eid], earned=True))
        for eid in sorted(old.keys() - new.keys()):
            change = award_change(firm, old[eid], earned=False)
            (self.recovery_due if change.recover_fen else self.revoked).append(change)
        for eid in changed:
            row = amount_change(firm, old[eid], new[eid])
            same = old[eid].amount_fen == new[eid].amount_fen
            (self.version_changed if same else self.amount_changed).append(row)

    def outcome(self, position: int | None) -> AdoptionResult:
        return AdoptionResult(
            self.policy.id,
            self.policy.content_hash,
            False,
            self.firms,
            self.arrears,
            self.revoked,
            self.recovery_due,
            self.amount_changed,
            self.version_changed,
            position,
        )
