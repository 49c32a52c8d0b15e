"""Bad gRPC input is INVALID_ARGUMENT naming the field, and writes nothing: control characters,
malformed codes and ids, filters of the wrong shape."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.grpc import DATONG, TAIYUAN, auth, code_of, load
from support.helpers import Firm

from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc


def _status(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        result = call()  # type: ignore[operator]
        if hasattr(result, "__iter__") and not isinstance(result, bytes | str):
            list(result)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def _head(stub: pb_grpc.LedgerServiceStub, token: str) -> int:
    return stub.VerifyLog(pb.VerifyLogRequest(), metadata=auth(token)).events


CASES = {
    "payment_ref": lambda s, m: s.RecordPayment(
        pb.RecordPaymentRequest(
            entitlement_id=f"{TAIYUAN}/first_entry/2021",
            payment_ref="GK\x00X",
            amount_fen=1,
            paid_on="2022-03-01",
        ),
        metadata=m,
    ),
    "entitlement_id": lambda s, m: s.RecordPayment(
        pb.RecordPaymentRequest(
            entitlement_id="abc/first_entry/2021",
            payment_ref="GK1",
            amount_fen=1,
            paid_on="2022-03-01",
        ),
        metadata=m,
    ),
    "uscc": lambda s, m: s.GetEnterprise(pb.GetEnterpriseRequest(uscc="abc"), metadata=m),
    "city_code": lambda s, m: s.ListAwards(pb.ListAwardsRequest(city_code="14\x000"), metadata=m),
    "kind": lambda s, m: s.ListAwards(pb.ListAwardsRequest(kind="first\x00"), metadata=m),
    "point.known_at": lambda s, m: s.ListAwards(
        pb.ListAwardsRequest(point=pb.Point(known_at="@1\x00")), metadata=m
    ),
    "id": lambda s, m: s.GetPolicy(pb.GetPolicyRequest(id="jinbanfa\x00"), metadata=m),
    "known_at": lambda s, m: list(
        s.ListPolicies(pb.ListPoliciesRequest(known_at="@1\x00"), metadata=m)
    ),
}


@pytest.mark.parametrize("field", list(CASES))
def test_bad_input_is_invalid_argument_naming_the_field_and_writes_nothing(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str], field: str
) -> None:
    before = _head(ledger, tokens["auditor"])
    code, details = _status(lambda: CASES[field](ledger, auth(tokens["admin"])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert details.startswith(f"{field}:"), details
    assert _head(ledger, tokens["auditor"]) == before


def test_an_empty_uscc_is_invalid_not_unknown(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    code, details = _status(
        lambda: ledger.GetEnterprise(
            pb.GetEnterpriseRequest(uscc=""), metadata=auth(tokens["admin"])
        )
    )
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "uscc")


def test_an_import_with_a_nul_in_a_row_or_its_reason_writes_nothing(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str]
) -> None:
    s, before = tokens["statistics"], _head(ledger, tokens["auditor"])
    code, details = _status(
        lambda: load(
            ledger, s, 2022, Firm(TAIYUAN), Firm(DATONG, region_code="140212", name="大\x00同")
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "row:2: name: contains a control character (U+0000 NUL)" in details
    code, details = _status(
        lambda: load(ledger, s, 2021, Firm(TAIYUAN), correction=True, reason="复核\x00")
    )
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "header.reason")
    assert _head(ledger, tokens["auditor"]) == before


def test_a_refused_call_is_logged_with_the_user_who_made_it(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="subsidy_ledger.grpc"):
        code = code_of(
            lambda: ledger.VerifyLog(pb.VerifyLogRequest(), metadata=auth(tokens["finance"]))
        )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    (line,) = [json.loads(r.message) for r in caplog.records if '"VerifyLog"' in r.message]
    assert (line["user"], line["status"]) == ("财政厅-张", "PERMISSION_DENIED")


# Fuzzing: any text in any field ------------------------------------------------------------------

# protobuf strings are UTF-8: every character but the surrogates, control characters included
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
TEXTISH = st.one_of(
    ANY_TEXT,
    st.sampled_from(["", " ", "\x00", "@1\x00", "2022-13-01", "@-1", "@99999999999999999999"]),
    st.builds(
        lambda a, b: a + b, st.sampled_from([TAIYUAN, f"{TAIYUAN}/first_entry/2021"]), ANY_TEXT
    ),
)
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
}
"""What a client may be told about its input: never INTERNAL, UNAVAILABLE or DATA_LOSS."""

FUZZED = {
    "RecordPayment": lambda s, m, t: s.RecordPayment(
        pb.RecordPaymentRequest(entitlement_id=t[0], payment_ref=t[1], amount_fen=1, paid_on=t[2]),
        metadata=m,
    ),
    "RecordRecovery": lambda s, m, t: s.RecordRecovery(
        pb.RecordRecoveryRequest(
            entitlement_id=t[0], recovery_ref=t[1], amount_fen=1, received_on=t[2]
        ),
        metadata=m,
    ),
    "GetEnterprise": lambda s, m, t: s.GetEnterprise(
        pb.GetEnterpriseRequest(uscc=t[0], point=pb.Point(as_of=t[1], known_at=t[2])), metadata=m
    ),
    "ListAwards": lambda s, m, t: s.ListAwards(
        pb.ListAwardsRequest(city_code=t[0], kind=t[1], status=t[2], point=pb.Point(known_at=t[3])),
        metadata=m,
    ),
    "ExplainEntitlement": lambda s, m, t: s.ExplainEntitlement(
        pb.ExplainEntitlementRequest(entitlement_id=t[0]), metadata=m
    ),
    "GetAuditTrail": lambda s, m, t: s.GetAuditTrail(
        pb.GetAuditTrailRequest(uscc=t[0]), metadata=m
    ),
    "VerifyLog": lambda s, m, t: s.VerifyLog(pb.VerifyLogRequest(anchor=t[0]), metadata=m),
    "GetPolicy": lambda s, m, t: s.GetPolicy(
        pb.GetPolicyRequest(id=t[0], known_at=t[1]), metadata=m
    ),
    "ImportRegister": lambda s, m, t: s.ImportRegister(
        iter(
            [
                pb.ImportRegisterRequest(
                    header=pb.ImportHeader(year=2022, correction=bool(t[5]), reason=t[5])
                ),
                pb.ImportRegisterRequest(
                    row=pb.RegisterRow(
                        uscc=t[0], name=t[1], region_code=t[2], industry_code=t[3], route=t[4]
                    )
                ),
            ]
        ),
        metadata=m,
    ),
    "ImportDesignations": lambda s, m, t: s.ImportDesignations(
        iter(
            [
                pb.ImportDesignationsRequest(
                    header=pb.DesignationsHeader(kind=t[5] or "tech_sme", source=t[4])
                ),
                pb.ImportDesignationsRequest(
                    row=pb.DesignationRow(uscc=t[0], valid_from=t[1], valid_to=t[2], document=t[3])
                ),
            ]
        ),
        metadata=m,
    ),
    "PlaceHold": lambda s, m, t: s.PlaceHold(
        pb.PlaceHoldRequest(
            uscc=t[0],
            reason=t[1] or "other",
            authority=t[2],
            document=t[3],
            valid_from=t[4],
            valid_to=t[5],
        ),
        metadata=m,
    ),
    "LiftHold": lambda s, m, t: s.LiftHold(
        pb.LiftHoldRequest(uscc=t[0], document=t[1], lifted_on=t[2], reason=t[3]), metadata=m
    ),
    "SetAppropriation": lambda s, m, t: s.SetAppropriation(
        pb.SetAppropriationRequest(
            fiscal_year=2022, fund=t[0], amount_fen=1, document=t[1], subject=t[2]
        ),
        metadata=m,
    ),
    "ProposeBatch": lambda s, m, t: s.ProposeBatch(
        pb.ProposeBatchRequest(fiscal_year=2022, city_code=t[0], fund=t[1]), metadata=m
    ),
    "PublishBatch": lambda s, m, t: s.PublishBatch(
        pb.PublishBatchRequest(batch_id=t[0], notice_from=t[1], objections_to=t[2]), metadata=m
    ),
    "ObjectToBatch": lambda s, m, t: s.ObjectToBatch(
        pb.ObjectToBatchRequest(batch_id=t[0], uscc=t[1], reason=t[2], received_on=t[3]),
        metadata=m,
    ),
    "GetBatch": lambda s, m, t: s.GetBatch(pb.BatchRequest(batch_id=t[0]), metadata=m),
    "ImportHolds": lambda s, m, t: s.ImportHolds(
        iter(
            [
                pb.ImportHoldsRequest(header=pb.HoldsHeader(source=t[5])),
                pb.ImportHoldsRequest(
                    row=pb.HoldRow(
                        uscc=t[0], reason=t[1], authority=t[2], document=t[3], valid_from=t[4]
                    )
                ),
            ]
        ),
        metadata=m,
    ),
}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(method=st.sampled_from(sorted(FUZZED)), texts=st.lists(TEXTISH, min_size=6, max_size=6))
def test_any_text_in_any_field_is_answered_and_breaks_nothing(
    ledger: pb_grpc.LedgerServiceStub, tokens: dict[str, str], method: str, texts: list[str]
) -> None:
    admin, auditor = auth(tokens["admin"]), tokens["auditor"]
    before = _head(ledger, auditor)
    code, details = _status(lambda: FUZZED[method](ledger, admin, texts))
    assert code in ANSWERS, (method, texts, code, details)
    if code != grpc.StatusCode.OK:
        assert details and _head(ledger, auditor) == before, (method, texts, details)
    # The views still answer, whatever was said or written.
    totals = ledger.GetFiscalTotals(pb.GetFiscalTotalsRequest(), metadata=admin)
    assert sum(t.entitled_fen for t in totals.totals) >= 2 * 30_000_000
