"""`subsidy-ledger serve`: the gRPC server process, its settings, and a graceful shutdown.

Settings (environment; `--listen`, `--tokens`, `--db` override the first three):
- LEDGER_LISTEN: HOST:PORT to bind (default 127.0.0.1:50051); anything but loopback needs TLS;
- LEDGER_TOKENS_FILE: the users' token hashes (`subsidy-ledger token add`);
- LEDGER_DATABASE_URL: the ledger (default sqlite:///ledger.db); LEDGER_DATABASE_PASSWORD_FILE, if
  set, holds the PostgreSQL password (a mounted secret; adapters.persistence reads it, for every
  command);
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
from pathlib import Path
from types import FrameType

from adapters.grpc_server import build_server, users_from_file
from adapters.service import LedgerService
from adapters.tokens import tokens_path

DEFAULT_LISTEN = "127.0.0.1:50051"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
log = logging.getLogger("subsidy_ledger.grpc")


def serve(db: str | None, *, listen: str | None = None, tokens: str | None = None) -> int:
    """Serve until SIGTERM; with LEDGER_WORKERS=N > 1, N processes share the port (each its own
    interpreter, so calls use every core); the parent forwards SIGTERM and exits 0 when all have."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    listen = listen or os.environ.get("LEDGER_LISTEN") or DEFAULT_LISTEN
    workers = int(os.environ.get("LEDGER_WORKERS", "1"))
    if workers > 1:
        if listen.endswith(":0"):
            raise ValueError("LEDGER_WORKERS > 1 needs a fixed port to share")
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
        raise ValueError("TLS needs both LEDGER_TLS_CERT and LEDGER_TLS_KEY")
    tls = (Path(key).read_bytes(), Path(cert).read_bytes()) if cert and key else None
    users = users_from_file(tokens_path(tokens))
    pool = int(os.environ.get("LEDGER_POOL_SIZE", "8"))
    grace = float(os.environ.get("LEDGER_GRACE_SECONDS", "20"))
    with LedgerService(db, pool_size=pool) as ledger:
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
