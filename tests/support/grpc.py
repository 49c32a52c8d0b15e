"""The gRPC tests' server and clients: users with tokens, a real server on 127.0.0.1:0 over each
store, stubs, a small ledger imported through ImportRegister, and how a call's status is read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.bootstrap import open_ledger
from adapters.files.tokens import add_user
from adapters.grpc.auth import users_from_file
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.grpc.server import build_server
from support.helpers import Firm, ref_uscc

TAIYUAN = ref_uscc(501)  # 小店区, Taiyuan 140100
DATONG = ref_uscc(502, division="140212")  # 新荣区, Datong 140200
FE = 30_000_000


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "tokens"
    return {
        "finance": add_user(path, "财政厅-张", "finance", None),
        "statistics": add_user(path, "统计局", "statistics", None),
        "auditor": add_user(path, "审计厅-李", "auditor", None),
        "certification": add_user(path, "发改委-高技术处", "certification", None),
        "review": add_user(path, "省中小企业局-王", "review", None),
        "review2": add_user(path, "省中小企业局-赵", "review", None),
        "admin": add_user(path, "admin", "admin", None),
        "human_resources": add_user(path, "省人社厅-就业处", "human_resources", None),
        "datong": add_user(path, "大同财政局", "finance", "140200"),
        "taiyuan": add_user(path, "太原财政局", "finance", "140100"),
        "changzhi": add_user(path, "长治财政局", "finance", "140400"),
    }


@pytest.fixture
def channel(db_url: str, tmp_path: Path, tokens: dict[str, str]) -> Iterator[grpc.Channel]:
    with open_ledger(db_url, create=True) as ledger:
        server, port = build_server(ledger, users_from_file(tmp_path / "tokens"), "127.0.0.1:0")
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield channel
        finally:
            server.stop(None)


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.LedgerServiceStub:
    return pb_grpc.LedgerServiceStub(channel)


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def rows(*firms: Firm) -> list[pb.ImportRegisterRequest]:
    return [
        pb.ImportRegisterRequest(
            row=pb.RegisterRow(
                uscc=f.uscc,
                name=f.name,
                region_code=f.region_code,
                industry_code=f.industry_code,
                size_class=f.size_class,
                route=f.route,
                first_entry_year=f.first_entry_year,
            )
        )
        for f in firms
    ]


def load(
    stub: pb_grpc.LedgerServiceStub, token: str, year: int, *firms: Firm, **header: Any
) -> pb.ImportResult:
    messages = [
        pb.ImportRegisterRequest(header=pb.ImportHeader(year=year, **header)),
        *rows(*firms),
    ]
    result: pb.ImportResult = stub.ImportRegister(iter(messages), metadata=auth(token))
    return result


@pytest.fixture
def ledger(stub: pb_grpc.LedgerServiceStub, tokens: dict[str, str]) -> pb_grpc.LedgerServiceStub:
    s = tokens["statistics"]
    load(stub, s, 2020, Firm(ref_uscc(500)), baseline=True)
    load(stub, s, 2021, Firm(ref_uscc(500)), Firm(TAIYUAN), Firm(DATONG, region_code="140212"))
    return stub


def code_of(call: Any) -> grpc.StatusCode:
    try:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    except grpc.RpcError as e:
        return e.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@contextmanager
def serve_process(
    tmp_path: Path, db: str | None = None, stderr: Any = subprocess.PIPE, **settings: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`subsidy-ledger serve` as its own process on a free loopback port, over `db` (default a
    new SQLite ledger in tmp_path), with the users of tmp_path/tokens and these settings."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "LEDGER_TOKENS_FILE": str(tmp_path / "tokens"),
        "LEDGER_LISTEN": f"127.0.0.1:{port}",
        **settings,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.main",
            "serve",
            "--db",
            db or f"sqlite:///{tmp_path}/l.db",
        ],
        env=env,
        stderr=stderr,
        text=True,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
