"""The server's PostgreSQL killed under it and started again: calls are answered UNAVAILABLE at
once while it is away (health NOT_SERVING), nothing a caller was told failed is committed later,
and the server answers again within two seconds of the database's return."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.grpc import serve_process
from support.ledgers import import_file, row, uscc, write_rows
from support.pg_server import ProvidedServer, start_cluster

from adapters.bootstrap import open_ledger
from adapters.files.tokens import add_user
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.faults]
ENTRANTS = 60


@pytest.fixture
def cluster() -> Iterator[ProvidedServer]:
    server = start_cluster(durable=True)  # a crash loses nothing committed
    try:
        yield server
    finally:
        server.close()


def _status(stub: health_pb2_grpc.HealthStub) -> str:
    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def _until(condition: object, limit: float) -> float:
    """Seconds until `condition()` holds, failing after `limit`."""
    t0 = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - t0 < limit, f"not within {limit} s"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_a_database_killed_and_restarted_under_serve(
    cluster: ProvidedServer, tmp_path: Path
) -> None:
    url = cluster.admin_url
    with open_ledger(url, create=True) as ledger:
        import_file(ledger, write_rows(tmp_path / "2020.csv", [row(1)]), 2020, baseline=True)
        on_2021 = [row(1)] + [row(100 + i) for i in range(ENTRANTS)]
        import_file(ledger, write_rows(tmp_path / "2021.csv", on_2021), 2021)
    token = add_user(tmp_path / "tokens", "财政", "finance", None)
    metadata = [("authorization", f"Bearer {token}")]
    acknowledged: list[str] = []
    with (
        (tmp_path / "serve.log").open("w") as log,
        serve_process(tmp_path, db=url, stderr=log) as (_, port),
    ):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub, health = pb_grpc.LedgerServiceStub(channel), health_pb2_grpc.HealthStub(channel)
            n = 0

            def pay() -> tuple[grpc.StatusCode, float]:
                nonlocal n
                ref, n = f"R{n}", n + 1
                request = pb.RecordPaymentRequest(
                    entitlement_id=f"{uscc(100 + n)}/first_entry/2021",
                    payment_ref=ref,
                    amount_fen=1,
                    paid_on="2022-03-01",
                )
                t0 = time.monotonic()
                try:
                    stub.RecordPayment(request, metadata=metadata, timeout=3)
                except grpc.RpcError as e:
                    return e.code(), time.monotonic() - t0
                acknowledged.append(ref)
                return grpc.StatusCode.OK, time.monotonic() - t0

            assert pay()[0] == grpc.StatusCode.OK and _status(health) == "SERVING"
            cluster.kill()
            noticed = _until(lambda: _status(health) == "NOT_SERVING", 2.0)
            during = [pay() for _ in range(10)]
            assert {code for code, _ in during} == {grpc.StatusCode.UNAVAILABLE}
            assert max(seconds for _, seconds in during) < 0.5  # at once, not at the deadline
            time.sleep(3)  # longer than any of those calls' deadlines
            cluster.restart()
            back = _until(lambda: _status(health) == "SERVING", 2.0)
            answered = _until(lambda: pay()[0] == grpc.StatusCode.OK, 2.0)
            assert noticed < 2.0 and back < 2.0 and answered < 2.0
            slowest = max(seconds for _, seconds in during)
            print(
                f"\nfaults: PostgreSQL killed under serve: NOT_SERVING after {noticed:.2f} s, "
                f"{len(during)} calls UNAVAILABLE in at most {slowest:.3f} s each, SERVING "
                f"{back:.2f} s and a payment answered {answered:.2f} s after its restart"
            )
        time.sleep(2)  # a payment committed late would be there by now
        with open_ledger(url) as ledger:
            assert sorted(p.ref for p in ledger.payments()) == sorted(acknowledged)
