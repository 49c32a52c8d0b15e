"""Benchmark: the gRPC service on PostgreSQL, client and server on this machine.

Builds the demo's synthetic Shanxi on a throwaway database (as bench/audit_queries.py does), starts
`subsidy-ledger serve` as its own process, then measures from client threads:
- GetEnterprise, one client: p50/p99;
- GetEnterprise, 16 concurrent clients: calls/s, p50/p99;
- RecordPayment, 16 concurrent clients, distinct payments (1 fen instalments on due awards): payments/s.

Usage: python bench/grpc_service.py [--pg URL] [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from audit_queries import build
from throwaway_db import throwaway_database

from adapters.files.tokens import add_user
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.2f} ms"


def quantiles(timings: list[float]) -> str:
    q = statistics.quantiles(timings, n=100)
    return f"p50 {ms(q[49])}  p99 {ms(q[98])}"


def run_clients(
    target: str, clients: int, work: list[list[object]], call: object
) -> tuple[float, list[float]]:
    """Each client thread, on its own connection (as separate finance systems would be), makes
    its calls; returns the wall time and every call's latency."""
    timings: list[float] = []
    lock = threading.Lock()

    def client(items: list[object]) -> None:
        mine = []
        # A channel of its own, not one sharing the process's connection to the target.
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            stub = pb_grpc.LedgerServiceStub(ch)
            for item in items:
                t0 = time.perf_counter()
                call(stub, item)  # type: ignore[operator]
                mine.append(time.perf_counter() - t0)
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=client, args=(work[i],)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="server processes (LEDGER_WORKERS)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ledger-grpc-bench-"))
    try:
        with throwaway_database(args.pg) as url:
            _early, firms = build(url, folder, 1.0)
            tokens = folder / "tokens"
            token = add_user(tokens, "bench", "admin", None)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = {
                **os.environ,
                "LEDGER_DATABASE_URL": url,
                "LEDGER_TOKENS_FILE": str(tokens),
                "LEDGER_LISTEN": f"127.0.0.1:{port}",
                "LEDGER_POOL_SIZE": "8",
                "LEDGER_WORKERS": str(args.workers),
            }
            server = subprocess.Popen(
                [sys.executable, "-m", "adapters.main", "serve"], env=env, stderr=subprocess.DEVNULL
            )
            try:
                metadata = [("authorization", f"Bearer {token}")]
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    grpc.channel_ready_future(channel).result(timeout=60)
                    stub = pb_grpc.LedgerServiceStub(channel)
                    rng = random.Random(3)
                    print(f"server: {args.workers} process(es)")

                    def enterprise(client: pb_grpc.LedgerServiceStub, uscc: object) -> None:
                        try:
                            client.GetEnterprise(
                                pb.GetEnterpriseRequest(uscc=str(uscc)), metadata=metadata
                            )
                        except grpc.RpcError as e:  # a firm not on any register today: answered
                            if e.code() != grpc.StatusCode.NOT_FOUND:
                                raise

                    target = f"127.0.0.1:{port}"
                    for uscc in rng.sample(firms, 200):  # warm up
                        enterprise(stub, uscc)
                    wall, timings = run_clients(
                        target, 1, [rng.choices(firms, k=args.calls)], enterprise
                    )
                    print(
                        f"GetEnterprise, 1 client, {args.calls} calls: {args.calls / wall:,.0f} calls/s  {quantiles(timings)}"
                    )
                    work = [rng.choices(firms, k=args.calls // 4) for _ in range(16)]
                    wall, timings = run_clients(target, 16, work, enterprise)
                    print(
                        f"GetEnterprise, 16 clients, {len(timings)} calls: {len(timings) / wall:,.0f} calls/s  "
                        f"{quantiles(timings)}"
                    )
                    due = [
                        a.entitlement_id
                        for a in stub.ListAwards(
                            pb.ListAwardsRequest(status="due"), metadata=metadata
                        )
                    ]
                    rng.shuffle(due)
                    per_client = 60
                    work = [
                        [(eid, f"B{c}-{i}") for i, eid in enumerate(due[c::16][:per_client])]
                        for c in range(16)
                    ]

                    def pay(client: pb_grpc.LedgerServiceStub, item: object) -> None:
                        eid, ref = item  # type: ignore[misc]
                        client.RecordPayment(
                            pb.RecordPaymentRequest(
                                entitlement_id=eid,
                                payment_ref=ref,
                                amount_fen=1,
                                paid_on="2026-01-05",
                            ),
                            metadata=metadata,
                        )

                    wall, timings = run_clients(target, 16, work, pay)
                    print(
                        f"RecordPayment, 16 clients, {len(timings)} distinct payments: "
                        f"{len(timings) / wall:,.0f} payments/s  {quantiles(timings)}"
                    )
            finally:
                server.terminate()
                server.wait(timeout=60)
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
