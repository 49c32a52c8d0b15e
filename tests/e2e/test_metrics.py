"""What operations watch: `serve`'s Prometheus metrics scraped from a running server (calls by
method and status, latency, the log's and the views' positions, no token on the page), two
workers each on its own port, and the nightly reconciliation's textfile."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.grpc import TAIYUAN, auth, code_of, rows, serve_process
from support.helpers import Cli, Firm, ref_uscc, write_register

from adapters.files.tokens import add_user
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The page, and each sample by name and labels."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                page = r.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }
    return page, samples


@pytest.mark.slow
def test_a_running_server_is_scraped(tmp_path: Path) -> None:
    statistics = add_user(tmp_path / "tokens", "统计局", "statistics", None)
    finance = add_user(tmp_path / "tokens", "财政厅", "finance", None)
    port = free_port()
    with serve_process(tmp_path, LEDGER_METRICS_LISTEN=f"127.0.0.1:{port}") as (proc, grpc_port):
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            stub = pb_grpc.LedgerServiceStub(channel)
            header = pb.ImportRegisterRequest(header=pb.ImportHeader(year=2023, baseline=True))
            imported = stub.ImportRegister(
                iter([header, *rows(Firm(TAIYUAN), Firm(ref_uscc(7)))]), metadata=auth(statistics)
            )
            request = pb.GetEnterpriseRequest(uscc=TAIYUAN)
            for _ in range(3):
                stub.GetEnterprise(request, metadata=auth(finance))
            missing = pb.GetEnterpriseRequest(uscc=ref_uscc(8))
            assert code_of(lambda: stub.GetEnterprise(missing, metadata=auth(finance))) == (
                grpc.StatusCode.NOT_FOUND
            )
            assert code_of(lambda: stub.GetEnterprise(request, metadata=auth("nope"))) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
        time.sleep(2.5)  # the follower looks at the log and the views once a second
        page, samples = scrape(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    def calls(method: str, status: str) -> float:
        key = ("ledger_grpc_calls_total", (("method", method), ("status", status)))
        return samples.get(key, 0.0)

    assert calls("ImportRegister", "OK") == 1
    assert calls("GetEnterprise", "OK") == 3
    assert calls("GetEnterprise", "NOT_FOUND") == 1
    assert calls("GetEnterprise", "UNAUTHENTICATED") == 1
    assert samples[("ledger_grpc_call_seconds_count", (("method", "GetEnterprise"),))] == 5
    buckets = [
        v
        for (name, labels), v in samples.items()
        if name == "ledger_grpc_call_seconds_bucket" and ("method", "GetEnterprise") in labels
    ]
    assert max(buckets) == 5 and buckets == sorted(buckets)  # cumulative, to le="+Inf"
    assert samples[("ledger_log_position", ())] == imported.position
    assert samples[("ledger_views_position", ())] == imported.position
    assert samples[("ledger_views_lag_positions", ())] == 0
    for token in (statistics, finance):
        assert token not in page
    assert TAIYUAN not in page and "财政厅" not in page


@pytest.mark.slow
def test_two_workers_serve_their_metrics_each_on_its_port(tmp_path: Path) -> None:
    token = add_user(tmp_path / "tokens", "运维", "admin", None)
    port = free_port()
    with serve_process(tmp_path, LEDGER_WORKERS="2", LEDGER_METRICS_LISTEN=f"127.0.0.1:{port}") as (
        proc,
        grpc_port,
    ):
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            stub = pb_grpc.LedgerServiceStub(channel)
            for _ in range(4):
                code_of(
                    lambda: stub.GetEnterprise(
                        pb.GetEnterpriseRequest(uscc=TAIYUAN), metadata=auth(token)
                    )
                )
        answered = 0.0
        for worker_port in (port, port + 1):
            _page, samples = scrape(worker_port)
            answered += samples.get(
                ("ledger_grpc_calls_total", (("method", "GetEnterprise"), ("status", "NOT_FOUND"))),
                0.0,
            )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert answered == 4  # the two workers' counts add up to the calls made


def test_the_nightly_job_writes_its_figures_for_the_textfile_collector(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli = Cli(db_url, capsys)
    for year, firms in ((2023, [ref_uscc(1)]), (2024, [ref_uscc(1), TAIYUAN])):
        path = write_register(tmp_path / f"{year}.csv", [Firm(u) for u in firms])
        assert cli.import_year(path, year, baseline=year == 2023).code == 0
    treasury = tmp_path / "treasury.csv"
    treasury.write_text("voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose\n", "utf-8")
    textfile = tmp_path / "ledger_reconcile.prom"
    r = cli.run(
        "reconcile",
        "--treasury",
        str(treasury),
        "--date",
        "2026-06-30",
        "--out",
        str(tmp_path / "reports"),
        "--metrics-file",
        str(textfile),
        "--json",
    )
    summary = json.loads(r.out)
    assert r.code == summary["exit_status"] == 1  # the 2025 entry award unpaid: overdue
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(textfile.read_text())
        for s in family.samples
    }
    assert samples[("ledger_reconcile_exit_status", ())] == 1
    assert samples[("ledger_reconcile_log_position", ())] == summary["position"]
    for code, n in summary["by_code"].items():
        assert samples[("ledger_reconcile_findings", (("code", code), ("date", "2026-06-30")))] == n
    assert samples[("ledger_reconcile_vouchers", ())] == 0


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("10.1.2.3:9464", "binds only a loopback address"),
        ("127.0.0.1:x", "expected HOST:PORT"),
    ],
)
def test_a_metrics_address_the_server_cannot_use_is_refused_before_it_starts(
    tmp_path: Path, value: str, words: str
) -> None:
    add_user(tmp_path / "tokens", "运维", "admin", None)
    with serve_process(tmp_path, LEDGER_METRICS_LISTEN=value) as (proc, _port):
        assert proc.wait(timeout=30) == 2
        err = proc.stderr.read() if proc.stderr else ""
    assert words in err and not (tmp_path / "l.db").exists()
