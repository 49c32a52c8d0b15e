"""The tokens file: the gRPC service's users and the SHA-256 hashes of their bearer tokens
(LEDGER_TOKENS_FILE), read by the server and written by `subsidy-ledger token`.

Each line of the file is one JSON object: `user`, `role`, `city` (a city code or null),
`sha256` (of the token) and `created` (UTC). A token is shown once, when it is added; the file never
holds it. Revoking a user removes their lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from domain.roles import ROLES
from domain.text import control_problem

TOKENS_FILE_ENV = "LEDGER_TOKENS_FILE"


class TokenFileError(ValueError):
    """A tokens file the service cannot use, or a bad token command."""


@dataclass(frozen=True)
class User:
    user: str
    role: str
    city: str | None
    sha256: str
    created: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_path(path: str | Path | None = None) -> Path:
    value = path or os.environ.get(TOKENS_FILE_ENV)
    if not value:
        raise TokenFileError(
            f"no tokens file: set {TOKENS_FILE_ENV} (or --tokens FILE) to the file that holds the "
            "users' token hashes"
        )
    return Path(value)


def load_users(path: Path) -> dict[str, User]:
    """Users by token hash; a missing file is no users (nobody can call)."""
    if not path.exists():
        return {}
    _private(path)
    users: dict[str, User] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            user = User(**json.loads(line))
        except (ValueError, TypeError) as e:
            raise TokenFileError(f"{path}:{number}: not a token line ({e})") from None
        if user.role not in ROLES:
            raise TokenFileError(f"{path}:{number}: role {user.role!r} is not one of {ROLES}")
        if (problem := _checked_user(user.user)) is not None:
            raise TokenFileError(f"{path}:{number}: user: {problem}")
        users[user.sha256] = user
    return users


def _private(path: Path) -> None:
    """Refuse a tokens file that others may read or write, as ssh refuses a key: whoever reads
    the hashes can try tokens against them offline, whoever writes it can add a user."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise TokenFileError(
            f"{path}: permissions {stat.S_IMODE(mode):04o} are too open: the tokens file must be "
            f"readable by its owner alone (chmod 600 {path})"
        )


def _checked_user(user: str) -> str | None:
    """What is wrong with a user's name, or None."""
    if not user or user != user.strip():
        return "must be a name without surrounding spaces"
    return control_problem(user)


def add_user(path: Path, user: str, role: str, city: str | None) -> str:
    """Add a token for `user`; return the token (shown once, never stored)."""
    problem = _checked_user(user)
    if problem is not None:
        raise TokenFileError(f"--user: {problem}")
    if path.exists():
        _private(path)
    if role not in ROLES:
        raise TokenFileError(f"--role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    entry = User(user, role, city, token_hash(token), datetime.now(UTC).isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:
        f.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
    return token


def revoke_user(path: Path, user: str) -> int:
    """Remove every token of `user`; return how many."""
    users = load_users(path)
    kept = [u for u in users.values() if u.user != user]
    removed = len(users) - len(kept)
    if removed:
        text = "".join(json.dumps(asdict(u), ensure_ascii=False) + "\n" for u in kept)
        temporary = path.with_suffix(path.suffix + ".new")
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(text)
        temporary.replace(path)
    return removed
