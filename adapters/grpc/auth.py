"""Who is calling: the bearer token of a call, the user it belongs to, what the user's role permits,
and the city a scoped user is limited to."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from adapters.files.tokens import User, load_users, token_hash
from domain.roles import PERMISSIONS

Users = Callable[[], dict[str, User]]


class CallError(Exception):
    """A refusal with its status code, raised inside a method and sent to the client."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def caller(context: grpc.ServicerContext, users: Users) -> User:
    """The user whose bearer token the call carries."""
    metadata = dict(context.invocation_metadata())
    header = str(metadata.get("authorization", ""))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise CallError(
            grpc.StatusCode.UNAUTHENTICATED,
            "send `authorization: Bearer TOKEN` (a token from `subsidy-ledger token add`)",
        )
    user = users().get(token_hash(token.strip()))
    if user is None:
        raise CallError(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked token")
    return user


def authorise(user: User, permission: str) -> None:
    """Refused unless the user's role permits `permission`."""
    if permission not in PERMISSIONS[user.role]:
        raise CallError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"user {user.user} ({user.role}) may not {permission}",
        )


def city_filter(user: User, asked: str) -> str | None:
    """The city a listing is limited to: the user's own if scoped (asking for another is refused),
    else the one asked for (none: every city)."""
    if user.city is None:
        return asked or None
    if asked and asked != user.city:
        raise CallError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"user {user.user} is scoped to city {user.city}, not {asked}",
        )
    return user.city


def users_from_file(path: Path) -> Users:
    """The users of a tokens file, read again when the file changes (a revoked token stops
    working without a restart)."""
    cache: dict[str, Any] = {"mtime": None, "users": {}}

    def users() -> dict[str, User]:
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime != cache["mtime"]:
            cache["users"], cache["mtime"] = load_users(path), mtime
        found: dict[str, User] = cache["users"]
        return found

    return users
