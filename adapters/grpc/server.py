"""`subsidy-ledger serve`: the gRPC server (the service, health and reflection on one port), its
processes, its settings, and a graceful shutdown.

Settings: `--tokens` or LEDGER_TOKENS_FILE, the users' token hashes (`subsidy-ledger token add`);
`--db` or LEDGER_DATABASE_URL, the ledger (LEDGER_DATABASE_PASSWORD_FILE, if set, holds the
PostgreSQL password: adapters.persistence.settings reads it, for every command); the rest
(`--listen`, TLS, pool, grace, workers, call bound) in adapters.grpc.settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from adapters.bootstrap import log_of, open_ledger, open_reader, read_wait_seconds
from adapters.files.tokens import tokens_path
from adapters.grpc.auth import Users, users_from_file
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.grpc.servicer import SERVICE, Servicer
from adapters.grpc.settings import ServeError, ServeSettings, parse_listen
from adapters.persistence.group_commit import GroupCommit
from adapters.persistence.metrics import LOG_POSITION, VIEWS_LAG, VIEWS_POSITION, watch_pool
from domain.application import Ledger

PROBE_SECONDS = 0.5
"""How often the server looks whether its database answers."""
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
log = logging.getLogger("subsidy_ledger.grpc")


class DatabaseWatch:
    """Whether the ledger's database answers, looked at every PROBE_SECONDS on a connection of
    its own: the health service says SERVING or NOT_SERVING, calls are refused at once
    (UNAVAILABLE) while it does not answer, and when it answers again the pool's connections
    are made anew, so that the first calls after it find it at once."""

    def __init__(self, ledger: Ledger, health_servicer: health.HealthServicer):
        self.ledger = ledger
        self.health = health_servicer
        self.available = threading.Event()
        self.available.set()
        self._say(True)

    def _say(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        for name in (SERVICE, ""):
            self.health.set(name, status)

    def start(self) -> None:
        threading.Thread(target=self._run, name="database-watch", daemon=True).start()

    def _run(self) -> None:
        recorder = log_of(self.ledger)
        while not self.ledger.closing.wait(PROBE_SECONDS):
            problem = recorder.probe(timeout=PROBE_SECONDS * 2)
            if problem is None and not self.available.is_set():
                recorder.renew_connections()
                self.available.set()
                self._say(True)
                log.info('{"event": "database answers again"}')
            elif problem is not None and self.available.is_set():
                self.available.clear()
                self._say(False)
                # Calls waiting for one of the old pool's connections are let go (UNAVAILABLE)
                # rather than left waiting out their deadline.
                recorder.renew_connections()
                log.warning(json.dumps({"event": "database does not answer", "why": problem}))


def build_server(
    ledger: Ledger,
    users: Users,
    listen: str,
    *,
    tls: tuple[bytes, bytes] | None = None,
    workers: int = 16,
    reuse_port: bool = False,
    call_seconds: float = ServeSettings().call_seconds,
    reader: Ledger | None = None,
    read_wait: float = 2.0,
) -> tuple[grpc.Server, int]:
    """A server with the ledger, health and reflection services bound to `listen`; returns it
    (not started) and the port bound. Without TLS only a loopback address is accepted
    (adapters.grpc.settings.parse_listen)."""
    parse_listen(listen, tls=tls is not None)
    recorder = log_of(ledger)
    if recorder.group_commit is None:
        # Concurrent payments are committed together, until the ledger closes.
        GroupCommit.attach(recorder, until=ledger.closing)
    health_servicer = health.HealthServicer()
    watch = DatabaseWatch(ledger, health_servicer)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        # several processes may share the port (LEDGER_WORKERS), never by accident otherwise
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    pb_grpc.add_LedgerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        Servicer(
            ledger,
            users,
            watch.available,
            call_seconds=call_seconds,
            reader=reader,
            read_wait=read_wait,
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    watch.start()
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
    interpreter, so calls use every core); the parent forwards SIGTERM and exits 0 when all have.
    Every setting is checked (adapters.grpc.settings) before anything starts."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    settings = ServeSettings.from_environment(listen)
    users = users_from_file(tokens_path(tokens))
    tls = settings.tls_files()
    if settings.workers > 1:
        if settings.address()[1] == 0:
            raise ServeError("LEDGER_WORKERS > 1 needs a fixed port to share")
        # The ledger is made (its tables, SQLite's journal mode) once, here, and closed before
        # the workers are forked: workers that each made it at the same moment raced ("database
        # is locked" from SQLite's switch to WAL).
        with open_ledger(db, pool_size=1, create=True):
            pass
        return _supervise(
            settings.workers,
            lambda worker: _serve_one(db, settings, users, tls, reuse_port=True, worker=worker),
        )
    return _serve_one(db, settings, users, tls, reuse_port=False)


def _supervise(workers: int, child: Callable[[int], int]) -> int:
    """Fork the workers (before any gRPC object exists) and wait for them.

    SIGTERM and SIGINT stay blocked while forking: a worker inherits the block and lifts it once
    its own handler is in place, so a signal that comes while it is starting up is handled (a
    graceful stop), never the default kill."""
    pids = []
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(worker)
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


def watch(ledger: Ledger) -> None:
    """The log's head, the views' position and the pool's use, for the metrics (looked at
    before the views catch up: how far behind they had fallen)."""
    head = ledger.recorder.max_notification_id() or 0
    views = ledger.views.position()
    LOG_POSITION.set(head)
    VIEWS_POSITION.set(views)
    VIEWS_LAG.set(max(head - views, 0))
    pool = getattr(getattr(ledger.recorder, "datastore", None), "pool", None)
    if pool is not None and hasattr(pool, "get_stats"):
        watch_pool(pool.get_stats())


def _serve_one(
    db: str | None,
    settings: ServeSettings,
    users: Users,
    tls: tuple[bytes, bytes] | None,
    *,
    reuse_port: bool,
    worker: int = 0,
) -> int:
    pool = settings.pool_size
    # The server makes the ledger if there is none: a new deployment's first baseline comes
    # through ImportRegister.
    reader = open_reader(pool_size=pool)
    with open_ledger(db, pool_size=pool, create=True) as ledger, reader or contextlib.nullcontext():
        server, port = build_server(
            ledger,
            users,
            settings.listen,
            tls=tls,
            workers=max(16, pool * 2),
            reuse_port=reuse_port,
            call_seconds=settings.call_seconds,
            reader=reader,
            read_wait=read_wait_seconds(),
        )
        stop = threading.Event()

        metrics = settings.metrics_address(worker)
        if metrics is not None:
            # Plain HTTP on loopback, in a thread of this process: this worker's figures.
            http, _thread = start_http_server(metrics[1], addr=metrics[0].strip("[]"))
            log.info(
                f'{{"event": "metrics", "listen": "{metrics[0]}:{http.server_port}", '
                f'"worker": {worker}}}'
            )

        def keep_up() -> None:
            # Queries catch up before they answer; this keeps that catch-up short between calls.
            failing = False
            while not stop.wait(1.0):
                try:
                    watch(ledger)
                    ledger.catch_up()
                    failing = False
                except Exception:
                    if not failing:  # once an outage, not once a second
                        log.exception("catching the views up failed; retrying")
                    failing = True

        stopping: list[int] = []

        def terminate(signum: int, frame: FrameType | None) -> None:
            # Nothing that takes a lock: the main thread may be interrupted while holding one.
            stopping.append(signum)

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by a supervisor
        server.start()
        host = settings.address()[0]
        log.info(
            f'{{"event": "serving", "listen": "{host}:{port}", "tls": {str(tls is not None).lower()}}}'
        )
        follower = threading.Thread(target=keep_up, name="views-follower", daemon=True)
        follower.start()
        while not stopping:
            time.sleep(0.2)
        stop.set()
        # In-flight calls finish (up to the grace period); new ones are refused.
        server.stop(settings.grace_seconds).wait()
        log.info('{"event": "stopped"}')
    return 0
