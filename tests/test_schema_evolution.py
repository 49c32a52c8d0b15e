"""Events are kept for decades: an event stored in an older shape is upcast when read."""

from __future__ import annotations

import json
from dataclasses import replace

from helpers import ref_uscc

from adapters.service import LedgerService
from domain.enterprise import Enterprise, enterprise_id
from domain.register import ENTERPRISE_TOPIC

USCC = ref_uscc(5, division="140202")  # first registered in 140202, now elsewhere


def v1_registered(svc: LedgerService):  # type: ignore[no-untyped-def]
    """A `Registered` event as version 1 stored it: no class_version, no registration_division."""
    event = Enterprise.Registered(
        originator_id=enterprise_id(USCC),
        originator_version=1,
        timestamp=Enterprise.Registered.create_timestamp(),
        originator_topic=ENTERPRISE_TOPIC,
        uscc=USCC,
        name="山西旧事件有限公司",
        region_code="140105",
        industry_code="1311",
        size_class="small",
        year=2020,
        actor="old-ledger",
        source_sha256=None,
        registration_division="ignored",
    )
    stored = svc.app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2  # what the current version writes
    del state["registration_division"]
    return replace(stored, state=json.dumps(state, separators=(",", ":")).encode())


def test_a_version_1_registration_is_read_as_version_2(db_url: str) -> None:
    with LedgerService(db_url) as svc:
        old = v1_registered(svc)
        event = svc.app.mapper.to_domain_event(old)
        assert event.registration_division == "140202"  # type: ignore[attr-defined]
        assert event.region_code == "140105"  # type: ignore[attr-defined]

        # Stored as an old ledger would have, it still rebuilds the aggregate.
        svc.app.recorder.insert_events([old])
        firm = svc.app.get_enterprise(USCC)
        assert (firm.registration_division, firm.state.region_code) == ("140202", "140105")
        assert svc.audit_trail(USCC)[0]["payload"]["registration_division"] == "140202"


def test_new_registrations_are_stored_as_version_2(db_url: str) -> None:
    with LedgerService(db_url) as svc:
        event = svc.app.mapper.to_domain_event(v1_registered(svc))
        stored = json.loads(svc.app.mapper.to_stored_event(event).state)
        assert stored["class_version"] == 2
        assert stored["registration_division"] == "140202"
