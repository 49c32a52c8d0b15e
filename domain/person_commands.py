"""A person's details shown, and a person erased (crypto-shredding): the (九) commands of the
human-resources bureau that read or destroy what the vault holds."""

from __future__ import annotations

from domain.errors import (
    ConflictError,
    NotFoundError,
    PersonErasedError,
)
from domain.persons import (
    Erasure,
    mask,
)
from domain.social_insurance import (
    PersonErased,
)
from domain.subsidy_commands import SubsidyCommands, erased_message, subsidy_of
from domain.subsidy_results import (
    ErasureResult,
    PersonHire,
    PersonView,
)
from domain.text import checked_text


class PersonCommands(SubsidyCommands):
    """`person`, `erase_person`."""

    def person(self, person_id: str) -> PersonView:
        """What the ledger holds of a person (the identity number): their details from the
        vault and their hires. PersonErasedError once they were erased."""
        book = self.si_book()
        vault = self._checked_vault(book)
        pid, person = self._pseudonym(vault, person_id)
        held = vault.read([person]).get(person)
        if held is None or book is None:
            raise NotFoundError(f"no person {mask(pid)} in the ledger", field="person_id")
        if isinstance(held, Erasure):
            raise PersonErasedError(
                f"person {person}: {erased_message(pid, held)}", field="person_id"
            )
        hires = []
        employers = sorted(book.employers_of.get(person, ()))
        for uscc, firm in self.find_enterprises(employers).items():
            hire = subsidy_of(firm).hires.get(person) if firm else None
            for c in hire.contracts if hire else []:
                category = held.categories.get(f"{uscc}/{c.start}")
                hires.append(PersonHire(uscc, c.start, c.end, category))
        return PersonView(person, held.person_id, held.name, hires)

    def erase_person(self, person_id: str, document: str, *, actor: str) -> ErasureResult:
        """Erase a person (the law requires it, under `document`): destroy their key and details
        in the vault, then record the erasure on each employer's stream (pseudonym and document
        only). What was owed and paid remains. The same erasure again completes one that was
        interrupted, or changes nothing."""
        checked_text(actor, "actor")
        checked_text(document, "document")
        book = self.si_book()
        vault = self._checked_vault(book)
        pid, person = self._pseudonym(vault, person_id)
        held = vault.read([person]).get(person)
        if held is None or book is None:
            raise NotFoundError(f"no person {mask(pid)} in the ledger", field="person_id")
        if isinstance(held, Erasure):
            if held.document != document:
                raise ConflictError(erased_message(pid, held), field="document")
            erasure = held
        else:
            erasure = Erasure(document, self.today())
            vault.erase(person, erasure)
        firms = self.get_enterprises(sorted(book.employers_of.get(person, ())))
        pending = [f for f in firms if person not in subsidy_of(f).erased]
        for firm in pending:
            firm.trigger_event(
                PersonErased,
                person=person,
                document=document,
                erased_on=erasure.erased_on,
                actor=actor,
                source_sha256=None,
            )
        position = None
        if pending:
            saved = self.save_or_conflict(f"while {person} was erased", *pending)
            position = max(r.notification.id for r in saved)
        return ErasureResult(
            person,
            document,
            erasure.erased_on,
            held is erasure and not pending,
            sorted(f.uscc for f in firms),
            position,
        )
