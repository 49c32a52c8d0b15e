"""The server's settings, read from the environment once and checked before anything starts: a
value that cannot be used is a ServeError naming the variable (exit 2), never a trace.

- LEDGER_LISTEN: HOST:PORT to bind (default 127.0.0.1:50051). HOST is an IP address or
  `localhost`; without TLS only a loopback address (127.0.0.0/8, ::1, localhost) is accepted,
  decided from the address itself (`ipaddress`), never by asking DNS about a name;
- LEDGER_TLS_CERT and LEDGER_TLS_KEY: PEM files; with both the server speaks TLS;
- LEDGER_POOL_SIZE: database connections kept open (default 8);
- LEDGER_GRACE_SECONDS: how long SIGTERM waits for calls in flight (default 20);
- LEDGER_WORKERS: server processes sharing the port (default 1);
- LEDGER_METRICS_LISTEN: a loopback HOST:PORT where the Prometheus metrics are served (default:
  none); worker N of LEDGER_WORKERS serves them on PORT + N;
- LEDGER_CALL_SECONDS: the longest a call may take (default 30; the client's own deadline, when
  shorter, wins): a write that cannot commit by then is not made.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.text import control_problem

DEFAULT_LISTEN = "127.0.0.1:50051"


class ServeError(ValueError):
    """Settings the server cannot start with; the message says which."""


ENVIRONMENT = {
    "listen": "LEDGER_LISTEN",
    "tls_cert": "LEDGER_TLS_CERT",
    "tls_key": "LEDGER_TLS_KEY",
    "pool_size": "LEDGER_POOL_SIZE",
    "grace_seconds": "LEDGER_GRACE_SECONDS",
    "workers": "LEDGER_WORKERS",
    "call_seconds": "LEDGER_CALL_SECONDS",
    "metrics_listen": "LEDGER_METRICS_LISTEN",
}


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    listen: str = DEFAULT_LISTEN
    tls_cert: Path | None = None
    tls_key: Path | None = None
    pool_size: int = Field(8, ge=1, le=512)
    grace_seconds: float = Field(20.0, ge=0, le=3600)
    workers: int = Field(1, ge=1, le=256)
    call_seconds: float = Field(30.0, gt=0, le=3600)
    metrics_listen: str | None = None
    """Where the Prometheus metrics are served over HTTP (a loopback HOST:PORT; None: not)."""

    @classmethod
    def from_environment(cls, listen: str | None = None) -> ServeSettings:
        """The settings in the environment; `listen` (the --listen flag), when given, wins."""
        given = {
            field: os.environ[name] for field, name in ENVIRONMENT.items() if os.environ.get(name)
        }
        if listen is not None:
            given["listen"] = listen
        try:
            settings = cls.model_validate(given)
        except ValidationError as e:
            problem = e.errors()[0]
            field = str(problem["loc"][0])
            where = "--listen" if field == "listen" and listen is not None else ENVIRONMENT[field]
            raise ServeError(f"{where}={given.get(field)!r}: {problem['msg']}") from None
        settings.address()  # checked now, not when the port is bound
        settings.metrics_address()
        return settings

    @property
    def tls(self) -> bool:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ServeError("TLS needs both LEDGER_TLS_CERT and LEDGER_TLS_KEY")
        return self.tls_cert is not None

    def tls_files(self) -> tuple[bytes, bytes] | None:
        """(key, certificate) as PEM bytes, or None without TLS."""
        if not self.tls or self.tls_key is None or self.tls_cert is None:
            return None
        try:
            return self.tls_key.read_bytes(), self.tls_cert.read_bytes()
        except OSError as e:
            raise ServeError(f"cannot read a TLS file: {e}") from None

    def metrics_address(self, worker: int = 0) -> tuple[str, int] | None:
        """(host, port) of the metrics for worker N (the port after the last for each), checked:
        always a loopback address (the metrics are plain HTTP), a fixed port with workers."""
        if self.metrics_listen is None:
            return None
        host, port = parse_listen(self.metrics_listen, tls=False)
        where = f"LEDGER_METRICS_LISTEN={self.metrics_listen!r}"
        if self.workers > 1 and port == 0:
            raise ServeError(f"{where}: with LEDGER_WORKERS > 1 give a fixed port (one a worker)")
        if port + self.workers - 1 > 65535:
            raise ServeError(f"{where}: the workers' ports would pass 65535")
        return host, port + worker if port else 0

    def address(self) -> tuple[str, int]:
        """(host, port) of `listen`, checked: a malformed address, or one that is not loopback
        without TLS, is a ServeError."""
        return parse_listen(self.listen, tls=self.tls)


def parse_listen(listen: str, *, tls: bool) -> tuple[str, int]:
    where = f"--listen {listen!r}"
    problem = control_problem(listen)
    if problem is not None:
        raise ServeError(f"{where}: {problem}")
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit():
        raise ServeError(f"{where}: expected HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051")
    port = int(port_text)
    if port > 65535:
        raise ServeError(f"{where}: the port must be 0 to 65535")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if bare == "localhost":
        return host, port
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if tls:
            return host, port  # a name the certificate carries
        raise ServeError(
            f"{where}: {host!r} is a name, not an address; without TLS give a loopback address "
            "(127.0.0.1, [::1] or localhost)"
        ) from None
    if ":" in bare and host == bare:
        raise ServeError(f"{where}: an IPv6 address is written in brackets, e.g. [::1]:50051")
    if not tls and not address.is_loopback:
        raise ServeError(
            f"{where}: without TLS (LEDGER_TLS_CERT and LEDGER_TLS_KEY) the server binds only a "
            "loopback address (127.0.0.1, [::1] or localhost)"
        )
    return host, port
