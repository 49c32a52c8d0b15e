"""Reads from a streaming replica: a throwaway primary and a hot standby made of it with
`pg_basebackup -R`, streaming. Queries (LEDGER_READ_DATABASE_URL) are served by the standby,
at the position its views reached (a standby whose replay is paused answers at the position it
had); a query asking for a position the standby has not reached (`--known-at @N`, read your own
writes) waits LEDGER_READ_WAIT_SECONDS, then is answered by the primary, and says so; once
replay resumes the standby answers it; a command pointed at the standby is refused, naming it,
and a ledger opened on the standby refuses to write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from support.helpers import Firm, ref_uscc, write_register
from support.pg_server import ProvidedServer, create_database, start_cluster, start_standby

from adapters.bootstrap import caught_up_to, open_reader
from adapters.main import main
from domain.errors import RefusedError

ENTRANT = ref_uscc(901)
AWARD = f"{ENTRANT}/first_entry/2024"


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[ProvidedServer, ProvidedServer]]:
    primary = start_cluster(durable=True)
    try:
        standby = start_standby(primary)
        try:
            yield primary, standby
        finally:
            standby.close()
    finally:
        primary.close()


def on(server: ProvidedServer, url: str) -> str:
    """The database of `url` on another server (the standby holds the primary's databases)."""
    port = urlsplit(server.admin_url).port
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{port}"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def standby_sql(standby_url: str, statement: str) -> None:
    with psycopg.connect(standby_url, autocommit=True) as conn:
        conn.execute(statement)


def test_queries_read_the_standby_and_a_reader_of_its_own_writes_is_answered(
    clusters: tuple[ProvidedServer, ProvidedServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, standby = clusters
    url = create_database(primary.admin_url)
    replica = on(standby, url)
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    for year, firms in ((2023, [ref_uscc(1)]), (2024, [ref_uscc(1), ENTRANT])):
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        args = ["import-register", "--year", str(year), str(path), "--json"]
        code, out, err = run(capsys, *args, *(["--baseline"] if year == 2023 else []))
        assert code == 0, err
    imported = json.loads(out)["position"]

    monkeypatch.setenv("LEDGER_READ_DATABASE_URL", replica)
    monkeypatch.setenv("LEDGER_READ_WAIT_SECONDS", "1")
    reader = open_reader()
    assert reader is not None
    with reader:
        assert caught_up_to(reader, imported, 30), "the standby never replayed the imports"
        # A ledger on the standby answers and refuses to write.
        with pytest.raises(RefusedError, match="read-only replica"):
            reader.record_payment(AWARD, "GK-R-0", 1, reader.today(), actor="t")

    code, out, err = run(capsys, "awards", "--json")
    assert code == 0 and err == "", err
    assert json.loads(out)["known_at"]["position"] == imported

    # Replay paused: the primary moves on, the standby answers where it stood.
    standby_sql(on(standby, standby.admin_url), "SELECT pg_wal_replay_pause()")
    code, out, err = run(
        capsys, "record-payment", AWARD, "--ref", "GK-R-1", "--amount-fen", "10000000",
        "--paid-on", "2025-03-01", "--json",
    )  # fmt: skip
    assert code == 0, err
    paid = json.loads(out)["position"]
    assert paid > imported
    code, out, err = run(capsys, "awards", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["known_at"]["position"] == imported  # served by the standby
    assert {a["entitlement_id"]: a["paid_fen"] for a in doc["awards"]}[AWARD] == 0

    # Its own write: the standby is not there within the wait, so the primary answers.
    code, out, err = run(capsys, "awards", "--known-at", f"@{paid}", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["known_at"]["position"] == paid
    assert {a["entitlement_id"]: a["paid_fen"] for a in doc["awards"]}[AWARD] == 10_000_000
    assert "answered from the primary" in err and f"@{paid}" in err

    # Replay resumed: the standby reaches it and answers, with no note.
    standby_sql(on(standby, standby.admin_url), "SELECT pg_wal_replay_resume()")
    monkeypatch.setenv("LEDGER_READ_WAIT_SECONDS", "30")
    code, out, err = run(capsys, "awards", "--known-at", f"@{paid}", "--json")
    assert code == 0 and err == "", err
    assert json.loads(out)["known_at"]["position"] == paid

    # A command pointed at the standby is refused before anything is tried.
    code, out, err = run(
        capsys, "record-payment", AWARD, "--ref", "GK-R-2", "--amount-fen", "1",
        "--paid-on", "2025-03-02", "--db", replica,
    )  # fmt: skip
    assert code == 2 and "read-only standby" in err and "LEDGER_READ_DATABASE_URL" in err


def test_the_grpc_service_reads_the_standby_and_honours_min_position(
    clusters: tuple[ProvidedServer, ProvidedServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import grpc

    from adapters.bootstrap import open_ledger
    from adapters.files.tokens import add_user
    from adapters.grpc.auth import users_from_file
    from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
    from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
    from adapters.grpc.server import build_server

    primary, standby = clusters
    url = create_database(primary.admin_url)
    replica = on(standby, url)
    monkeypatch.setenv("LEDGER_READ_DATABASE_URL", replica)
    finance = add_user(tmp_path / "tokens", "财政厅", "finance", None)
    statistics = add_user(tmp_path / "tokens", "统计局", "statistics", None)
    with open_ledger(url, create=True) as ledger:
        for year, firms in ((2023, [ref_uscc(1)]), (2024, [ref_uscc(1), ENTRANT])):
            path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
            from adapters.files.register_csv import CsvRegister

            ledger.import_register(year, CsvRegister(path, year), actor="t", baseline=year == 2023)
        imported = ledger.views.position()
        reader = open_reader()
        assert reader is not None
        with reader:
            assert caught_up_to(reader, imported, 30)
            server, port = build_server(
                ledger,
                users_from_file(tmp_path / "tokens"),
                "127.0.0.1:0",
                reader=reader,
                read_wait=1.0,
            )
            server.start()
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = pb_grpc.LedgerServiceStub(channel)
                    metadata = [("authorization", f"Bearer {finance}")]
                    standby_sql(on(standby, standby.admin_url), "SELECT pg_wal_replay_pause()")
                    paid = stub.RecordPayment(
                        pb.RecordPaymentRequest(
                            entitlement_id=AWARD,
                            payment_ref="GK-G-1",
                            amount_fen=5_000_000,
                            paid_on="2025-03-01",
                        ),
                        metadata=metadata,
                    )
                    assert paid.position > imported
                    request = pb.GetFiscalTotalsRequest()
                    stale = stub.GetFiscalTotals(request, metadata=metadata)
                    assert stale.answered_at.position == imported  # the standby, paused
                    mine = stub.GetFiscalTotals(
                        request, metadata=[*metadata, ("min-position", str(paid.position))]
                    )
                    assert mine.answered_at.position == paid.position  # the primary answered
                    standby_sql(on(standby, standby.admin_url), "SELECT pg_wal_replay_resume()")
                    assert caught_up_to(reader, paid.position, 30)
                    fresh = stub.GetFiscalTotals(
                        request, metadata=[*metadata, ("min-position", str(paid.position))]
                    )
                    assert fresh.answered_at.position == paid.position
                    bad = [*metadata, ("min-position", "soon")]
                    with pytest.raises(grpc.RpcError) as refused:
                        stub.GetFiscalTotals(request, metadata=bad)
                    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                    # Writes go to the primary whatever the reader: an import is one.
                    header = pb.ImportRegisterRequest(header=pb.ImportHeader(year=2025))
                    rows = [
                        pb.ImportRegisterRequest(
                            row=pb.RegisterRow(
                                uscc=u, name="山西测试制造有限公司", region_code="140105",
                                industry_code="C1311",
                            )
                        )
                        for u in (ref_uscc(1), ENTRANT)
                    ]  # fmt: skip
                    done = stub.ImportRegister(
                        iter([header, *rows]), metadata=[("authorization", f"Bearer {statistics}")]
                    )
                    assert done.position > paid.position
            finally:
                server.stop(None)
