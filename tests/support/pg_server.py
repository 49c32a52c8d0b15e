"""Find or start a PostgreSQL server for the tests, and make and drop throwaway databases on it."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ENV_URL = "LEDGER_TEST_DATABASE_URL"
ENV_PROVIDER = "LEDGER_TEST_PG_PROVIDER"
PROVIDERS = ("url", "local", "cluster")

# TCP first: it is what a developer's or CI's server normally offers, and a URL
# with a host and port is the one other code can most easily take apart.
LOCAL_URLS: tuple[str, ...] = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://postgres@/postgres?host=/var/run/postgresql",
)
# Debian/Ubuntu, then the PGDG layout of RHEL-like systems; PATH comes last.
BIN_DIR_GLOBS: tuple[str, ...] = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
CLUSTER_USER = "ledgertest"
# Names created here start with this, so drop_database can refuse anything else on
# a server that LEDGER_TEST_DATABASE_URL may share with real data.
TEST_DB_PREFIX = "ledger_test_"

CONNECT_TIMEOUT = 3
START_TIMEOUT = 60.0

HOW_TO_PROVIDE = (
    "Provide a PostgreSQL server for the tests in one of these ways:\n"
    f"  - set {ENV_URL}=postgresql://USER@HOST:PORT/DB (USER must be allowed to "
    "CREATE/DROP DATABASE there: the tests create and drop their own databases);\n"
    "  - or start a local server on 127.0.0.1:5432 that lets user postgres in "
    "without a password (trust auth);\n"
    "  - or install PostgreSQL server binaries (Debian: `apt-get install postgresql`) "
    "so that the tests can start a throwaway cluster of their own."
)


class NoPostgresError(RuntimeError):
    """No PostgreSQL server could be had; the message says how to provide one."""


@dataclass(eq=False)
class ProvidedServer:
    """A server the tests may CREATE/DROP DATABASE on; close() stops what was started for it."""

    admin_url: str
    kind: str  # "url" | "local" | "cluster"
    directory: Path | None = None  # the throwaway cluster's temp dir, if one was started
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    _kill: Callable[[], None] | None = field(default=None, repr=False)
    _start: Callable[[], None] | None = field(default=None, repr=False)

    def kill(self) -> None:
        """A throwaway cluster stopped at once, as a crash would (immediate shutdown)."""
        assert self._kill is not None, "only a throwaway cluster is killed"
        self._kill()

    def restart(self) -> None:
        """A killed throwaway cluster started again on its port, with its data."""
        assert self._start is not None, "only a throwaway cluster is restarted"
        self._start()

    def close(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            atexit.unregister(self.close)
            stop()

    def __enter__(self) -> ProvidedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def provide_postgres(provider: str | None = None) -> ProvidedServer:
    """Return a server: env URL, else a local server, else a throwaway cluster.

    `provider` (or env LEDGER_TEST_PG_PROVIDER) = "url" | "local" | "cluster" tries that
    path only. Raises NoPostgresError, saying what was tried and how to provide a server.
    """
    choice = provider if provider is not None else os.environ.get(ENV_PROVIDER) or None
    if choice is not None and choice not in PROVIDERS:
        raise NoPostgresError(
            f"{ENV_PROVIDER}={choice!r} is not one of {', '.join(PROVIDERS)} "
            "(leave it unset to try them in that order)."
        )

    tried: list[str] = []
    env_url = os.environ.get(ENV_URL)
    if choice == "url" or (choice is None and env_url):
        if not env_url:
            tried.append(f"url: {ENV_URL} is not set")
        else:
            problem = _probe(env_url)
            if problem is None:
                return ProvidedServer(admin_url=env_url, kind="url")
            # An explicit URL that does not work is a mistake to report, not a
            # reason to quietly test against some other server instead.
            raise NoPostgresError(
                f"{ENV_URL}={_redact(env_url)} does not work: {problem}\n\n{HOW_TO_PROVIDE}"
            )

    if choice in (None, "local"):
        for url in LOCAL_URLS:
            problem = _probe(url)
            if problem is None:
                return ProvidedServer(admin_url=url, kind="local")
            tried.append(f"local {url}: {problem}")

    if choice in (None, "cluster"):
        try:
            return start_cluster()
        except NoPostgresError as exc:
            tried.append(f"throwaway cluster: {exc}")

    only = f" ({ENV_PROVIDER}={choice}: only that was tried)" if choice else ""
    raise NoPostgresError(
        f"No PostgreSQL server for the tests{only}. Tried:\n"
        + "".join(f"  - {line}\n" for line in tried)
        + "\n"
        + HOW_TO_PROVIDE
    )


def create_database(admin_url: str) -> str:
    """Create a uniquely named empty database on admin_url's server and return its URL."""
    name = f"{TEST_DB_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_dbname(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database that `url` names (made by create_database), closing its sessions."""
    name = conninfo_to_dict(url).get("dbname")
    if not isinstance(name, str) or not name.startswith(TEST_DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a database made by create_database")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        # A test that leaked a connection must not make the drop fail or hang.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        drop = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
        if conn.info.server_version >= 130000:
            # FORCE also covers sessions that connected after the terminate above.
            drop = sql.SQL("{} WITH (FORCE)").format(drop)
        conn.execute(drop)


def start_cluster(*, durable: bool = False) -> ProvidedServer:
    """initdb and start a throwaway server on 127.0.0.1 on a free port; close() removes it.

    `durable`: keep fsync and synchronous commits, so that a crash (`kill`) loses nothing
    committed; otherwise they are off, for speed."""
    bindir = find_server_binaries()
    if bindir is None:
        patterns = ", ".join(BIN_DIR_GLOBS)
        raise NoPostgresError(f"no initdb and pg_ctl in {patterns} or on PATH")
    runner = _Runner.for_current_user()

    directory = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    datadir, sockdir, logfile = directory / "data", directory / "socket", directory / "server.log"

    def stop() -> None:
        _stop_cluster(runner, bindir, datadir)
        shutil.rmtree(directory, ignore_errors=True)

    try:
        sockdir.mkdir()
        runner.give(directory, sockdir)
        runner.run(
            [bindir / "initdb", "-D", datadir, "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-locale", "--no-sync"],
            cwd=directory,
        )  # fmt: skip
        with (datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # Durability is worthless for a cluster deleted at the end of the run.
            conf.write(
                "\n# ledger tests: throwaway cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{sockdir}'\n"
                + (
                    ""
                    if durable
                    else "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                )
            )
        port = _start_on_free_port(runner, bindir, datadir, logfile, directory)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_until_answers(url, logfile)
    except BaseException as exc:
        stop()
        if isinstance(exc, subprocess.SubprocessError | OSError):
            raise NoPostgresError(str(exc)) from exc
        raise

    def kill() -> None:
        runner.run(
            [bindir / "pg_ctl", "-D", datadir, "-m", "immediate", "-w", "-t", "30", "stop"],
            cwd=directory,
        )

    def start() -> None:
        runner.run(
            [bindir / "pg_ctl", "-D", datadir, "-l", logfile, "-w", "-t", str(int(START_TIMEOUT)),
             "-o", f"-p {port}", "start"],
            cwd=directory,
        )  # fmt: skip
        _wait_until_answers(url, logfile)

    server = ProvidedServer(
        admin_url=url, kind="cluster", directory=directory, _stop=stop, _kill=kill, _start=start
    )
    # Stop it even if the caller never gets to close(), e.g. pytest aborted by Ctrl-C.
    atexit.register(server.close)
    return server


def start_standby(primary: ProvidedServer) -> ProvidedServer:
    """A hot standby of a throwaway primary (one `start_cluster` made, durable: a base backup
    needs full-page writes): `pg_basebackup -R` of it into a new throwaway directory, started
    on a free port, streaming from it. close() removes it."""
    assert primary.kind == "cluster", "a standby is made of a throwaway primary only"
    bindir = find_server_binaries()
    assert bindir is not None
    runner = _Runner.for_current_user()
    parts = urlsplit(primary.admin_url)
    directory = Path(tempfile.mkdtemp(prefix="ledger-standby-"))
    datadir, sockdir, logfile = directory / "data", directory / "socket", directory / "server.log"

    def stop() -> None:
        _stop_cluster(runner, bindir, datadir)
        shutil.rmtree(directory, ignore_errors=True)

    try:
        sockdir.mkdir()
        runner.give(directory, sockdir)
        runner.run(
            [bindir / "pg_basebackup", "-h", "127.0.0.1", "-p", str(parts.port), "-U",
             "postgres", "-D", datadir, "-R", "-X", "stream", "--no-sync"],
            cwd=directory,
        )  # fmt: skip
        with (datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# ledger tests: the throwaway standby\n"
                f"unix_socket_directories = '{sockdir}'\n"
                "hot_standby = on\n"
            )
        port = _start_on_free_port(runner, bindir, datadir, logfile, directory)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_until_answers(url, logfile)
    except BaseException as exc:
        stop()
        if isinstance(exc, subprocess.SubprocessError | OSError):
            raise NoPostgresError(str(exc)) from exc
        raise
    server = ProvidedServer(admin_url=url, kind="standby", directory=directory, _stop=stop)
    atexit.register(server.close)
    return server


def find_server_binaries() -> Path | None:
    """Directory with initdb, pg_ctl and postgres: highest installed version, else PATH."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for pattern in BIN_DIR_GLOBS:
        for candidate in glob.glob(pattern):
            path = Path(candidate)
            match = re.search(r"(\d+(?:\.\d+)*)", path.parent.name)
            if match and _has_server_binaries(path):
                found.append((tuple(int(p) for p in match.group(1).split(".")), path))
    if found:
        return max(found)[1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


@dataclass(frozen=True)
class _Runner:
    """Runs the server's commands, as an unprivileged user when we are root."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_current_user(cls) -> _Runner:
        if os.geteuid() != 0:
            return cls()
        # initdb and postgres refuse to run as root.
        account = _unprivileged_account()
        return cls(uid=account.pw_uid, gid=account.pw_gid)

    def give(self, *paths: Path) -> None:
        if self.uid is not None and self.gid is not None:
            for path in paths:
                os.chown(path, self.uid, self.gid)

    def run(
        self, args: Sequence[str | Path], cwd: Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["HOME"] = str(cwd)
        command = [str(a) for a in args]
        as_user: dict[str, Any] = {}
        if self.uid is not None:
            setpriv = shutil.which("setpriv")
            if setpriv is not None:
                # The user is changed by setpriv after exec, so subprocess can vfork: a plain
                # fork of this process (gRPC's threads running in it) has been seen to die of
                # SIGBUS before it could exec pg_ctl.
                command = [
                    setpriv,
                    f"--reuid={self.uid}",
                    f"--regid={self.gid}",
                    "--clear-groups",
                    *command,
                ]
            else:
                as_user = {"user": self.uid, "group": self.gid, "extra_groups": []}
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            **as_user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=START_TIMEOUT * 2,
            check=False,
        )
        if check and result.returncode != 0:
            raise subprocess.SubprocessError(
                f"{Path(str(args[0])).name} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result


def _unprivileged_account() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(CLUSTER_USER)
    # Another test process may create it at the same moment: look it up again either way.
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home",
         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", CLUSTER_USER],
        capture_output=True,
        check=False,
    )  # fmt: skip
    for name in (CLUSTER_USER, "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise NoPostgresError(
        f"running as root, and neither user {CLUSTER_USER} (useradd failed) nor nobody "
        "exists to run initdb/postgres as"
    )


def _start_on_free_port(
    runner: _Runner, bindir: Path, datadir: Path, logfile: Path, cwd: Path
) -> int:
    # The port is free when picked but may be taken before postgres binds it: retry.
    problem = ""
    for _ in range(3):
        port = _free_port()
        result = runner.run(
            [bindir / "pg_ctl", "-D", datadir, "-l", logfile, "-w", "-t", str(int(START_TIMEOUT)),
             "-o", f"-p {port}", "start"],
            cwd=cwd,
            check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return port
        problem = (result.stderr or result.stdout).strip() + "\n" + _tail(logfile)
    raise NoPostgresError(f"pg_ctl start failed: {problem}")


def _stop_cluster(runner: _Runner, bindir: Path, datadir: Path) -> None:
    pidfile = datadir / "postmaster.pid"
    if not pidfile.exists():
        return
    result = runner.run(
        [bindir / "pg_ctl", "-D", datadir, "-m", "fast", "-w", "-t", "30", "stop"],
        cwd=datadir.parent,
        check=False,
    )
    if result.returncode == 0:
        return
    # pg_ctl could not stop it cleanly: immediate shutdown, so no server outlives its files.
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)


def _probe(url: str) -> str | None:
    """None if url answers and may create databases, else why not."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as exc:
        return _one_line(str(exc)) or type(exc).__name__
    if not row or not row[0]:
        return "connected, but the user may not CREATE DATABASE"
    return None


def _wait_until_answers(url: str, logfile: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise NoPostgresError(
                    f"started, but does not answer at {url}: {_one_line(str(exc))}\n"
                    + _tail(logfile)
                ) from exc
            time.sleep(0.2)


def _with_dbname(url: str, dbname: str) -> str:
    if "://" not in url:
        return make_conninfo(url, dbname=dbname)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def _redact(url: str) -> str:
    if "://" not in url:
        return re.sub(r"(password\s*=\s*)\S+", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "server log:\n" + "\n".join(text.splitlines()[-lines:])


def _one_line(text: str) -> str:
    return " ".join(text.split())
