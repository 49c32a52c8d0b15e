"""`subsidy-ledger serve`: the gRPC server (the service, health and reflection on one port), its
processes, its settings, and a graceful shutdown.

Settings (environment; `--listen`, `--tokens`, `--db` override the first three):
- LEDGER_LISTEN: HOST:PORT to bind (default 127.0.0.1:50051); anything but loopback needs TLS;
- LEDGER_TOKENS_FILE: the users' token hashes (`subsidy-ledger token add`);
- LEDGER_DATABASE_URL: the ledger (default sqlite:///ledger.db); LEDGER_DATABASE_PASSWORD_FILE, if
  set, holds the PostgreSQL password (a mounted secret; adapters.persistence.settings reads it, for
  every command);
- LEDGER_TLS_CERT and LEDGER_TLS_KEY: PEM files; with them the server speaks TLS;
- LEDGER_POOL_SIZE: database connections kept open (default 8);
- LEDGER_GRACE_SECONDS: how long SIGTERM waits for calls in flight (default 20);
- LEDGER_WORKERS: server processes sharing the port (default 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.bootstrap import log_of, open_ledger
from adapters.files.tokens import tokens_path
from adapters.grpc.auth import Users, users_from_file
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.grpc.servicer import SERVICE, Servicer
from adapters.persistence.group_commit import GroupCommit
from domain.application import Ledger

DEFAULT_LISTEN = "127.0.0.1:50051"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
log = logging.getLogger("subsidy_ledger.grpc")


class ServeError(ValueError):
    """Settings the server cannot start with; the message says which."""


def is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1", "[::1]") or host.startswith("127.")


def build_server(
    ledger: Ledger,
    users: Users,
    listen: str,
    *,
    tls: tuple[bytes, bytes] | None = None,
    workers: int = 16,
    reuse_port: bool = False,
) -> tuple[grpc.Server, int]:
    """A server with the ledger, health and reflection services bound to `listen`; returns it
    (not started) and the port bound. Without TLS only a loopback address is accepted."""
    host, _, _port = listen.rpartition(":")
    if tls is None and not is_loopback(host):
        raise ServeError(
            f"--listen {listen}: without TLS (LEDGER_TLS_CERT and LEDGER_TLS_KEY) the server "
            "binds only a loopback address"
        )
    recorder = log_of(ledger)
    if recorder.group_commit is None:
        # Concurrent payments are committed together, until the ledger closes.
        GroupCommit.attach(recorder, until=ledger.closing)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        # several processes may share the port (LEDGER_WORKERS), never by accident otherwise
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    pb_grpc.add_LedgerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        Servicer(ledger, users), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (SERVICE, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if tls is None:
        bound = server.add_insecure_port(listen)
    else:
        key, cert = tls
        bound = server.add_secure_port(listen, grpc.ssl_server_credentials([(key, cert)]))
    if not bound:
        raise OSError(f"cannot bind {listen}")
    return server, bound


def serve(db: str | None, *, listen: str | None = None, tokens: str | None = None) -> int:
    """Serve until SIGTERM; with LEDGER_WORKERS=N > 1, N processes share the port (each its own
    interpreter, so calls use every core); the parent forwards SIGTERM and exits 0 when all have."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    listen = listen or os.environ.get("LEDGER_LISTEN") or DEFAULT_LISTEN
    workers = int(os.environ.get("LEDGER_WORKERS", "1"))
    if workers > 1:
        if listen.endswith(":0"):
            raise ServeError("LEDGER_WORKERS > 1 needs a fixed port to share")
        return _supervise(workers, lambda: _serve_one(db, listen, tokens, reuse_port=True))
    return _serve_one(db, listen, tokens, reuse_port=False)


def _supervise(workers: int, child: Callable[[], int]) -> int:
    """Fork the workers (before any gRPC object exists) and wait for them.

    SIGTERM and SIGINT stay blocked while forking: a worker inherits the block and lifts it once
    its own handler is in place, so a signal that comes while it is starting up is handled (a
    graceful stop), never the default kill."""
    pids = []
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child()
            except BaseException:
                log.exception("a server worker failed")
            finally:
                os._exit(code)
        pids.append(pid)

    def forward(signum: int, frame: FrameType | None) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    return 0 if all(c == 0 for c in codes) else 1


def _serve_one(db: str | None, listen: str, tokens: str | None, *, reuse_port: bool) -> int:
    cert, key = os.environ.get("LEDGER_TLS_CERT"), os.environ.get("LEDGER_TLS_KEY")
    if bool(cert) != bool(key):
        raise ServeError("TLS needs both LEDGER_TLS_CERT and LEDGER_TLS_KEY")
    tls = (Path(key).read_bytes(), Path(cert).read_bytes()) if cert and key else None
    users = users_from_file(tokens_path(tokens))
    pool = int(os.environ.get("LEDGER_POOL_SIZE", "8"))
    grace = float(os.environ.get("LEDGER_GRACE_SECONDS", "20"))
    # The server makes the ledger if there is none: a new deployment's first baseline comes
    # through ImportRegister.
    with open_ledger(db, pool_size=pool, create=True) as ledger:
        server, port = build_server(
            ledger, users, listen, tls=tls, workers=max(16, pool * 2), reuse_port=reuse_port
        )
        stop = threading.Event()

        def keep_up() -> None:
            # Queries catch up before they answer; this keeps that catch-up short between calls.
            while not stop.wait(1.0):
                try:
                    ledger.catch_up()
                except Exception:
                    log.exception("catching the views up failed; retrying")

        stopping: list[int] = []

        def terminate(signum: int, frame: FrameType | None) -> None:
            # Nothing that takes a lock: the main thread may be interrupted while holding one.
            stopping.append(signum)

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by a supervisor
        server.start()
        host = listen.rpartition(":")[0]
        log.info(
            f'{{"event": "serving", "listen": "{host}:{port}", "tls": {str(tls is not None).lower()}}}'
        )
        follower = threading.Thread(target=keep_up, name="views-follower", daemon=True)
        follower.start()
        while not stopping:
            time.sleep(0.2)
        stop.set()
        # In-flight calls finish (up to the grace period); new ones are refused.
        server.stop(grace).wait()
        log.info('{"event": "stopped"}')
    return 0
