"""The Docker deployment, checked without a container engine (none runs where it is developed):
compose.yaml and the Dockerfile name services, commands, files, volumes, secrets and ports that
exist, and the container's health check works against a gRPC server with the README's TLS pair."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path, PurePosixPath
from typing import Any

import dockerfile
import pytest
import yaml

from adapters.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SECRETS = DOCKER / "secrets"
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text("utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKER_README = (DOCKER / "README.md").read_text("utf-8")


def commands() -> set[str]:
    parser = build_parser()
    return set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def ledger_services() -> dict[str, dict[str, Any]]:
    """The services that run the ledger's image (the ones it builds)."""
    return {name: service for name, service in SERVICES.items() if "build" in service}


def build_context(service: dict[str, Any]) -> Path:
    return (DOCKER / service["build"]["context"]).resolve()


def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(DOCKER / "Dockerfile")))


def stages() -> list[tuple[str, list[dockerfile.Command]]]:
    """The Dockerfile's stages in order: (name, instructions after its FROM)."""
    found: list[tuple[str, list[dockerfile.Command]]] = []
    for command in instructions():
        if command.cmd.upper() == "FROM":
            words = command.value
            assert len(words) == 3 and words[1].upper() == "AS", command.original
            found.append((words[2], []))
        else:
            assert found, f"{command.original}: before the first FROM"
            found[-1][1].append(command)
    return found


def copies() -> Iterator[tuple[str, dockerfile.Command]]:
    """(stage name, COPY or ADD) for every file the Dockerfile copies in."""
    for stage, commands_ in stages():
        for command in commands_:
            if command.cmd.upper() in ("COPY", "ADD"):
                yield stage, command


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative to the context) out: a pattern matches it or
    a folder above it, `**` standing for any number of folders; the last matching line wins."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for line in dockerignore():
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            verdict = not negated
    return verdict


def test_the_compose_file_has_the_database_the_server_and_the_nightly_job() -> None:
    assert set(SERVICES) == {"db", "ledger", "nightly", "prometheus", "db-standby"}
    # The optional standby: not started by `up`, made from `db` by pg_basebackup.
    assert SERVICES["db-standby"]["profiles"] == ["replica"]
    assert "pg_basebackup -h db" in SERVICES["db-standby"]["command"][0]
    assert SERVICES["nightly"]["profiles"] == ["nightly"], "a one-shot job: not started by `up`"
    # The scrape example: optional, in the server's network namespace (its metrics are loopback).
    assert SERVICES["prometheus"]["profiles"] == ["monitoring"]
    assert SERVICES["prometheus"]["network_mode"] == "service:ledger"
    assert "LEDGER_METRICS_LISTEN" in SERVICES["ledger"]["environment"]
    assert "profiles" not in SERVICES["db"] and "profiles" not in SERVICES["ledger"]
    assert set(ledger_services()) == {"ledger", "nightly"}
    assert {service["image"] for service in ledger_services().values()} == {"subsidy-ledger"}
    assert SERVICES["ledger"]["restart"] == SERVICES["db"]["restart"] == "unless-stopped"
    assert SERVICES["nightly"]["restart"] == "no"


def test_builds_name_the_repository_root_and_the_dockerfile() -> None:
    for name, service in ledger_services().items():
        context = build_context(service)
        assert context == ROOT, name
        assert (context / service["build"]["dockerfile"]).is_file(), name
        assert (context / ".dockerignore").is_file(), "the build context's root has .dockerignore"


def test_every_command_is_a_subsidy_ledger_command() -> None:
    known = commands()
    entry = next(c for c in instructions() if c.cmd.upper() == "ENTRYPOINT")
    assert entry.json and list(entry.value) == ["subsidy-ledger"]
    default = next(c for c in instructions() if c.cmd.upper() == "CMD")
    run = [list(default.value)]
    for name, service in ledger_services().items():
        assert "entrypoint" not in service, f"{name}: the image's entry point is the command line"
        assert isinstance(service["command"], list), f"{name}: exec form, no shell"
        run.append(service["command"])
    named = set(re.findall(r"subsidy-ledger ([a-z][a-z-]+)", DOCKER_README))
    named |= {args[0] for args in run}
    assert named <= known, named - known
    for args in run:
        build_parser().parse_args(args)  # the parser checks the options too


def test_named_volumes_are_declared_and_the_database_keeps_its_data_in_one() -> None:
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["db"]["volumes"]


def test_secrets_are_declared_files_under_docker_secrets_that_git_ignores() -> None:
    declared = COMPOSE["secrets"]
    listed = (SECRETS / "README.md").read_text("utf-8")
    for secret, spec in declared.items():
        path = (DOCKER / spec["file"]).resolve()
        assert path.parent == SECRETS, f"{secret}: {spec['file']} is not in docker/secrets/"
        assert f"`{path.name}`" in listed, f"docker/secrets/README.md does not say what {secret} is"
        ignored_by_git = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", str(path)], cwd=ROOT, check=False
        )
        assert ignored_by_git.returncode == 0, f"git would commit {path}"
        assert ignored(f"docker/secrets/{path.name}"), f"{path} would be in the build context"
    for name, service in SERVICES.items():
        mounted = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        assert mounted <= set(declared), f"{name}: undeclared {mounted - set(declared)}"
        # every setting that names a secret's file names one the service mounts
        for variable, value in service.get("environment", {}).items():
            if str(value).startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in mounted, f"{name}: {variable}"


def test_the_ledger_waits_for_a_healthy_database_and_serves_tls_on_the_published_port() -> None:
    check = SERVICES["db"]["healthcheck"]["test"]
    assert check[0] == "CMD" and check[1] == "pg_isready"
    assert SERVICES["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    for name, service in ledger_services().items():
        assert service["depends_on"]["db"]["condition"] == "service_healthy", name
        url = service["environment"]["LEDGER_DATABASE_URL"]
        assert re.fullmatch(r"postgresql://ledger@db:5432/ledger", url), f"{name}: {url}"
    ledger = SERVICES["ledger"]
    settings = ledger["environment"]
    host, _, port = settings["LEDGER_LISTEN"].rpartition(":")
    assert host == "0.0.0.0", "reachable from outside the container"
    assert settings["LEDGER_TLS_CERT"] and settings["LEDGER_TLS_KEY"], "the server needs TLS there"
    published = []
    for mapping in ledger["ports"]:
        target = mapping["target"] if isinstance(mapping, dict) else mapping.split(":")[-1]
        published.append(str(target).split("/")[0])
    assert published == [port]
    exposed = [c.value for c in instructions() if c.cmd.upper() == "EXPOSE"]
    assert exposed == [(port,)]
    assert ledger["stop_grace_period"] and ledger["init"] is True


def test_the_health_check_runs_a_script_the_image_has() -> None:
    check = SERVICES["ledger"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"]
    copied = {
        c.value[-1]: c.value[0] for stage, c in copies() if stage == stages()[-1][0] and not c.flags
    }
    assert check[2] in copied, f"{check[2]} is not copied into the runtime stage"
    assert (ROOT / copied[check[2]]).resolve() == DOCKER / "healthcheck.py"


def test_the_dockerfile_builds_in_one_stage_and_runs_as_non_root_in_another() -> None:
    found = stages()
    assert len(found) >= 2 and found[0][0] == "build", [name for name, _ in found]
    runtime = found[-1][1]
    users = [c.value[0] for c in runtime if c.cmd.upper() == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    base = {c.value[0] for c in instructions() if c.cmd.upper() == "FROM"}
    assert base == {"python:3.11-slim-bookworm"}


def test_every_copy_source_exists_and_leaves_venv_and_secrets_out() -> None:
    names = [name for name, _ in stages()]
    kept_out = [".venv", "docker/secrets", ".git", "adapters/grpc/generated", "ledger.db"]
    for stage, command in copies():
        assert command.cmd.upper() == "COPY", f"{command.original}: ADD fetches and unpacks; COPY"
        origin = [f.removeprefix("--from=") for f in command.flags if f.startswith("--from=")]
        if origin:
            assert origin[0] in names[: names.index(stage)], command.original
            continue
        for source in command.value[:-1]:
            relative = PurePosixPath(os.path.normpath(source))
            assert not relative.is_absolute() and ".." not in relative.parts, command.original
            assert (ROOT / relative).exists(), f"{command.original}: {source} does not exist"
            assert not ignored(str(relative)), f"{command.original}: .dockerignore drops {source}"
            for path in kept_out:  # copied with a folder above it, or by name
                if PurePosixPath(path).is_relative_to(relative) or relative.is_relative_to(path):
                    assert ignored(path), f"{command.original} copies {path}"


def test_the_dockerignore_leaves_out_what_the_image_must_not_have_and_only_that() -> None:
    for path in [".venv/bin/python", ".git/HEAD", "docker/secrets/db_password", "ledger.db",
                 "tests/x.db-wal", "adapters/__pycache__/cli.cpython-311.pyc", ".mypy_cache",
                 "adapters/grpc/generated/subsidy_ledger/v1/ledger_pb2.py"]:  # fmt: skip
        assert ignored(path), path
    # what pip install . reads: the metadata, the readme it names, the packages, the contract
    for path in ["pyproject.toml", "README.md", "domain/policies", "domain/data", "projections",
                 "adapters/cli/commands.py", "protos", "docker/healthcheck.py"]:  # fmt: skip
        assert not ignored(path), path


def openssl_recipe(out: Path) -> list[str]:
    """docker/README.md's `openssl req` command, writing into `out` instead of docker/secrets."""
    match = re.search(r"^openssl req (?:.*\\\n)*.*$", DOCKER_README, re.M)
    assert match, "docker/README.md shows no `openssl req` command"
    command = match.group(0).replace("\\\n", " ").replace("docker/secrets/", f"{out}/")
    return shlex.split(command)


SERVING, NOT_SERVING = b"\x08\x01", b"\x08\x02"


@pytest.mark.slow
def test_the_health_check_asks_the_servers_health_service_over_tls(tmp_path: Path) -> None:
    import grpc

    subprocess.run(openssl_recipe(tmp_path), check=True, capture_output=True)
    cert, key = tmp_path / "ledger_tls_cert", tmp_path / "ledger_tls_key"

    def health(answer: bytes, secure: bool) -> tuple[Any, str]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        check = grpc.unary_unary_rpc_method_handler(lambda request, context: answer)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": check})]
        )
        if secure:
            pair = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
            port = server.add_secure_port("127.0.0.1:0", pair)
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, f"127.0.0.1:{port}"

    def healthcheck(listen: str, **settings: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env |= {"LEDGER_LISTEN": listen, **settings}
        script = str(DOCKER / "healthcheck.py")
        return subprocess.run(
            [sys.executable, script], env=env, capture_output=True, text=True, timeout=60
        )

    tls = {"LEDGER_TLS_CERT": str(cert), "LEDGER_TLS_KEY": str(key)}
    server, listen = health(SERVING, secure=True)
    try:
        # the container's setting: every interface; the check asks 127.0.0.1 on that port
        result = healthcheck("0.0.0.0:" + listen.rpartition(":")[2], **tls)
        assert result.returncode == 0, result.stderr
        wrong_name = healthcheck(listen, **tls, LEDGER_HEALTHCHECK_NAME="elsewhere.example")
        assert wrong_name.returncode == 1 and "UNAVAILABLE" in wrong_name.stderr
        assert healthcheck(listen).returncode == 1, "plain text to a TLS server"
    finally:
        server.stop(None)

    server, listen = health(NOT_SERVING, secure=True)
    try:
        result = healthcheck(listen, **tls)
        assert result.returncode == 1 and "not serving" in result.stderr
    finally:
        server.stop(None)

    server, listen = health(SERVING, secure=False)
    try:
        assert healthcheck(listen).returncode == 0, "a loopback server without TLS"
    finally:
        server.stop(None)
    server.wait_for_termination(timeout=5)
    nobody = healthcheck(listen)  # that server has stopped
    assert nobody.returncode == 1 and "UNAVAILABLE" in nobody.stderr


def test_the_database_password_comes_from_its_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.persistence.settings import SettingsError, database_settings

    secret = tmp_path / "db_password"
    secret.write_text("s3cret:/@\n", "utf-8")
    monkeypatch.setenv("LEDGER_DATABASE_PASSWORD_FILE", str(secret))
    settings = database_settings("postgresql://ledger@db:5432/ledger")
    assert (settings.env["POSTGRES_USER"], settings.env["POSTGRES_PASSWORD"]) == (
        "ledger",
        "s3cret:/@",
    )
    assert "s3cret" not in settings.display
    monkeypatch.setenv("LEDGER_DATABASE_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="LEDGER_DATABASE_PASSWORD_FILE"):
        database_settings("postgresql://ledger@db:5432/ledger")


def test_the_nightly_job_reconciles_the_treasury_file_into_reports_on_the_host() -> None:
    nightly = SERVICES["nightly"]
    args = build_parser().parse_args(nightly["command"])
    assert args.command == "reconcile" and args.date is None  # yesterday, Asia/Shanghai
    assert args.treasury == "/treasury/payments.csv" and args.out == "/reports"
    assert "./treasury:/treasury:ro" in nightly["volumes"]
    assert "./reports:/reports" in nightly["volumes"]  # written: the image itself is read-only
