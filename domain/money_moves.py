"""The ledger's money commands: payments out and recoveries back, on one path."""

from __future__ import annotations

from datetime import date

from eventsourcing.persistence import IntegrityError

from domain.appropriations import refuse_unreleased
from domain.command_results import MoneyResult
from domain.enterprise import Enterprise, PaymentRef, payment_ref_id, recovery_ref_id
from domain.errors import ConcurrentWriteError, ConflictError, InvalidInputError, PreconditionError
from domain.holds import period
from domain.ledger_base import LedgerBase
from domain.text import checked_text

RETRIES = 20
"""Attempts of a payment or recovery that keeps meeting concurrent writes of its firm or ref."""


def _check_money(amount_fen: int, day: date, today: date, ref: str, day_field: str) -> None:
    """What every movement of money must satisfy, payment or recovery."""
    if type(amount_fen) is not int or amount_fen <= 0:
        raise InvalidInputError(
            f"must be a positive whole number of fen, got {amount_fen!r}", field="amount_fen"
        )
    if day > today:
        raise InvalidInputError(f"{day} is after today ({today}, Asia/Shanghai)", field=day_field)
    if not ref or ref != ref.strip():
        raise InvalidInputError(
            "must be the treasury voucher number, without surrounding spaces", field="ref"
        )
    checked_text(ref, "ref")


class MoneyCommands(LedgerBase):
    """Payments against entitlements and recoveries against revoked ones."""

    def record_payment(
        self,
        entitlement_id: str,
        ref: str,
        amount_fen: int,
        paid_on: date,
        *,
        actor: str,
        city: str | None = None,
    ) -> MoneyResult:
        """Record a treasury payment against an entitlement.

        Args:
            entitlement_id: USCC/KIND/DECIDED_YEAR.
            ref: the treasury's voucher number, unique ledger-wide.
            amount_fen: the amount paid, in fen; instalments allowed, never above the entitlement.
            paid_on: the payment date, not after today.
            actor: who records it.
            city: refuse unless the firm is in this city (a city-scoped user).

        Raises:
            RefusedError: non-positive amount, future date, overpayment, ref reused with other
                details; NotFoundError for an unknown entitlement; OutOfScopeError.
        """
        return self._move_money(False, entitlement_id, ref, amount_fen, paid_on, actor, city)

    def record_recovery(
        self,
        entitlement_id: str,
        ref: str,
        amount_fen: int,
        received_on: date,
        *,
        actor: str,
        city: str | None = None,
    ) -> MoneyResult:
        """Record money paid against a revoked entitlement coming back (追回).

        Same replay and refusal rules as a payment: a ref (of the recoveries' own namespace) is
        used once, a replay with the same details changes nothing, and never more comes back
        than was paid.
        """
        return self._move_money(True, entitlement_id, ref, amount_fen, received_on, actor, city)

    def _move_money(
        self,
        recovery: bool,
        entitlement_id: str,
        ref: str,
        amount_fen: int,
        day: date,
        actor: str,
        city: str | None,
    ) -> MoneyResult:
        """The one path money takes into the log, out (a payment) or back (a recovery)."""
        checked_text(actor, "actor")
        _check_money(amount_fen, day, self.today(), ref, "received_on" if recovery else "paid_on")
        for _attempt in range(RETRIES):
            # The firm first, then the ref: a concurrent movement with the same ref that commits
            # in between is then seen in one or the other, never mistaken for too much money.
            firm = self._firm_of(entitlement_id, city)
            claimed = self.get_payment_ref(ref, recovery=recovery)
            if claimed is not None:
                _refuse_other_details(claimed, entitlement_id, ref, amount_fen, day)
                # Read again: the movement may have committed after the firm was read above.
                again = self._firm_of(entitlement_id, None)
                total, limit = self._moved_against(again, entitlement_id, recovery)
                return MoneyResult(entitlement_id, ref, amount_fen, day, True, total, limit)
            total, limit = self._moved_against(firm, entitlement_id, recovery)
            if not recovery:
                refuse_if_held(firm, day)
                # `_moved_against` read the register book just now (the policies).
                release_from = self.release_required_from(fresh=False)
                if release_from is not None:
                    _firm, owed = self._entitlement_of(firm, entitlement_id)
                    refuse_unreleased(firm, entitlement_id, owed.due_fiscal_year, day, release_from)
            if total + amount_fen > limit:
                raise PreconditionError(
                    _too_much(recovery, entitlement_id, total, limit, amount_fen),
                    field="amount_fen",
                )
            if recovery:
                firm.record_recovery(entitlement_id, ref, amount_fen, day, actor)
            else:
                firm.record_payment(entitlement_id, ref, amount_fen, day, actor)
            claim: PaymentRef = PaymentRef._create(
                PaymentRef.Claimed,
                id=recovery_ref_id(ref) if recovery else payment_ref_id(ref),
                ref=ref,
                uscc=firm.uscc,
                entitlement_id=entitlement_id,
                amount_fen=amount_fen,
                paid_on=day,
                actor=actor,
            )
            try:
                recordings = self.save(firm, claim)
            except IntegrityError:
                continue  # a concurrent write of this firm or this ref: look again
            return MoneyResult(
                entitlement_id,
                ref,
                amount_fen,
                day,
                False,
                total + amount_fen,
                limit,
                max(r.notification.id for r in recordings),
            )
        raise ConcurrentWriteError(
            f"{'recovery' if recovery else 'payment'} {ref} kept conflicting with concurrent "
            "writes; try again"
        )

    def _moved_against(
        self, firm: Enterprise, entitlement_id: str, recovery: bool
    ) -> tuple[int, int]:
        """What has moved against the entitlement so far and what it may reach: paid of the
        award's amount (net of recoveries), or recovered of what was paid against an award taken
        away or paid above an award's amount."""
        s = firm.state
        paid, back = s.paid_fen(entitlement_id), s.recovered_fen(entitlement_id)
        if entitlement_id in s.revoked:
            if not recovery:
                self._entitlement_of(firm, entitlement_id)  # refused, naming what took it away
            return back, paid
        _firm, entitlement = self._entitlement_of(firm, entitlement_id)
        if not recovery:
            # What was paid net of what came back, against the award as it is now.
            return paid - back, entitlement.amount_fen
        if paid <= entitlement.amount_fen:
            raise PreconditionError(
                f"{entitlement_id} is owed {entitlement.amount_fen} fen and {paid} fen was paid "
                "against it: only money paid against an award taken away, or paid above an "
                "award's amount, is recovered",
                field="entitlement_id",
            )
        # The excess over the award's amount comes back.
        return back, paid - entitlement.amount_fen


def refuse_if_held(firm: Enterprise, day: date) -> None:
    """No payment to a firm on a day a hold is in force (a recovery is never held back)."""
    holds = firm.state.holds_in_force(day)
    if holds:
        h = holds[0]
        more = f" (and {len(holds) - 1} more)" if len(holds) > 1 else ""
        raise PreconditionError(
            f"{firm.uscc} is on hold on {day}: {h.reason} by {h.authority} under document "
            f"{h.document!r}, in force {period(h)}{more}; nothing is paid to it while a hold is "
            "in force (`hold lift` once the authority lifts it)",
            field="paid_on",
        )


def _too_much(recovery: bool, entitlement_id: str, total: int, limit: int, amount: int) -> str:
    if recovery:
        return (
            f"over-recovery: {limit} fen is to come back on {entitlement_id} and {total} fen "
            f"already came back, so at most {limit - total} fen can be recovered, not {amount}"
        )
    return (
        f"overpayment: {entitlement_id} is {limit} fen, {total} fen already paid, so at most "
        f"{limit - total} fen can be paid, not {amount}"
    )


def _refuse_other_details(
    claimed: PaymentRef, entitlement_id: str, ref: str, amount_fen: int, day: date
) -> None:
    """A ref already used: a replay only if it records the same entitlement, amount and day."""
    if (claimed.entitlement_id, claimed.amount_fen, claimed.paid_on) != (
        entitlement_id,
        amount_fen,
        day,
    ):
        raise ConflictError(
            f"{ref} already records {claimed.amount_fen} fen on {claimed.paid_on} against "
            f"{claimed.entitlement_id}; a voucher number is used once",
            field="ref",
        )
