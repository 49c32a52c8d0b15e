"""What operations watch, as Prometheus metrics (the `prometheus-client` library): the gRPC
calls by method and status and their latency, how far the views lag the log (in positions),
the database pool's use, the group commit's batch sizes; and the nightly reconciliation's
figures, written where node_exporter's textfile collector reads them.

`serve` exposes them over HTTP on a loopback port of its own (LEDGER_METRICS_LISTEN; each of
LEDGER_WORKERS processes on the port after the last, a target each, labelled `worker`). The
metrics name no user, token, firm or person.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile

CALLS = Counter(
    "ledger_grpc_calls", "gRPC calls answered, by method and status code", ["method", "status"]
)
CALL_SECONDS = Histogram(
    "ledger_grpc_call_seconds",
    "How long a gRPC call took, by method",
    ["method"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LOG_POSITION = Gauge("ledger_log_position", "The log's last position (its head)")
VIEWS_POSITION = Gauge("ledger_views_position", "The log position the views are caught up to")
VIEWS_LAG = Gauge(
    "ledger_views_lag_positions", "How many log positions the views were behind, last looked"
)
POOL_SIZE = Gauge("ledger_pool_connections", "Database connections the pool holds")
POOL_IN_USE = Gauge("ledger_pool_connections_in_use", "Of them, those lent to a call")
POOL_WAITING = Gauge("ledger_pool_requests_waiting", "Calls waiting for a connection")
GROUP_COMMIT = Histogram(
    "ledger_group_commit_batch_payments",
    "Payments committed together in one transaction by the group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


def watch_pool(stats: Mapping[str, int]) -> None:
    """The pool's figures (psycopg_pool's `get_stats()`)."""
    size = stats.get("pool_size", 0)
    POOL_SIZE.set(size)
    POOL_IN_USE.set(size - stats.get("pool_available", size))
    POOL_WAITING.set(stats.get("requests_waiting", 0))


def write_reconciliation(
    path: Path,
    *,
    day: str,
    exit_status: int,
    by_code: Mapping[str, int],
    seconds: float,
    position: int,
    vouchers: int,
    matched: int,
) -> None:
    """The nightly run's figures as a textfile collector's file (written whole, then renamed
    into place by the library, so a scrape never reads half of it)."""
    registry = CollectorRegistry()
    labels = {"date": day}
    Gauge(
        "ledger_reconcile_last_run_timestamp_seconds", "When the last run ended", registry=registry
    ).set(time.time())
    Gauge(
        "ledger_reconcile_exit_status",
        "The last run's exit status (0 clean, 1 findings)",
        registry=registry,
    ).set(exit_status)
    Gauge("ledger_reconcile_duration_seconds", "How long the last run took", registry=registry).set(
        seconds
    )
    Gauge(
        "ledger_reconcile_log_position",
        "The log position the last run reconciled at",
        registry=registry,
    ).set(position)
    Gauge(
        "ledger_reconcile_vouchers", "Treasury vouchers the last run read", registry=registry
    ).set(vouchers)
    Gauge("ledger_reconcile_vouchers_matched", "Of them, those matched", registry=registry).set(
        matched
    )
    findings = Gauge(
        "ledger_reconcile_findings",
        "The last run's findings, by code",
        ["code", "date"],
        registry=registry,
    )
    for code, n in by_code.items():
        findings.labels(code, labels["date"]).set(n)
    write_to_textfile(str(path), registry)
