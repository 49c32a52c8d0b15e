"""How every method of the gRPC service is called: authentication and authorisation, the database's
availability, the call's deadline, errors mapped to status codes, one log line a call.

Every method names the permission it needs (`domain.roles`); a city-scoped user sees and pays only
its city's firms. The user's name is the actor of every event a call causes. Errors map to status
codes a client can act on; a stack trace never reaches the client.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import psycopg
from eventsourcing.persistence import PersistenceError

from adapters.bootstrap import caught_up_to
from adapters.files.csv_records import CsvFileError
from adapters.files.tokens import User
from adapters.grpc import messages
from adapters.grpc.auth import CallError, Users, authorise, caller
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.persistence.group_commit import CALL_DEADLINE
from adapters.persistence.metrics import CALL_SECONDS, CALLS
from adapters.persistence.vault import PersonSecretError, VaultDamagedError
from domain.application import Ledger
from domain.errors import (
    ConcurrentWriteError,
    ConflictError,
    DamagedLogError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    NotPermittedError,
    OutOfScopeError,
    RejectedFileError,
    ReplicaBehindError,
)
from domain.results import Point

log = logging.getLogger("subsidy_ledger.grpc")
_ASKED: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar("asked", default=None)
"""The ledger the call in this thread asks (Calls.ledger)."""
POINT_FIELDS = {"known_at": "point.known_at", "as_of": "point.as_of"}

Result = TypeVar("Result")


def status_of(error: Exception, fields: dict[str, str]) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for an error (never a trace); `fields` names
    the request's field for an argument of the application where the two differ."""
    if isinstance(error, LedgerError) and error.field is not None:
        message = f"{fields.get(error.field, error.field)}: {error}"
    else:
        message = str(error)
    match error:
        case CallError():
            return error.code, message
        case RejectedFileError():
            return grpc.StatusCode.INVALID_ARGUMENT, "\n".join([message, *error.lines()])
        case InvalidInputError() | CsvFileError():
            return grpc.StatusCode.INVALID_ARGUMENT, message
        case NotFoundError():
            return grpc.StatusCode.NOT_FOUND, message
        case OutOfScopeError() | NotPermittedError():
            return grpc.StatusCode.PERMISSION_DENIED, message
        case ConflictError():
            return grpc.StatusCode.ALREADY_EXISTS, message
        case LedgerError():
            return grpc.StatusCode.FAILED_PRECONDITION, message
        case ConcurrentWriteError():
            return grpc.StatusCode.ABORTED, message
        case DamagedLogError() | VaultDamagedError():
            return grpc.StatusCode.DATA_LOSS, message
        case PersonSecretError():
            # The server was started without the (九) person secret: the call cannot be served
            # here until it is given (LEDGER_PERSON_SECRET_FILE).
            return (
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the server cannot open people's details: {message}",
            )
        case PersistenceError() | OSError() | psycopg.OperationalError() | psycopg.InterfaceError():
            return grpc.StatusCode.UNAVAILABLE, f"the ledger's database is unavailable: {error}"
    return (
        grpc.StatusCode.INTERNAL,
        f"unexpected failure ({type(error).__name__}); see the server log",
    )


class Calls:
    """What every method of the service stands on: the ledger, the users, whether the database
    answers, and `_call` (authenticate, authorise, run, map errors, log one line)."""

    def __init__(
        self,
        ledger: Ledger,
        users: Users,
        available: threading.Event,
        *,
        call_seconds: float,
        reader: Ledger | None = None,
        read_wait: float = 2.0,
    ):
        self._primary = ledger
        self.reader = reader
        """The ledger on the read replica (LEDGER_READ_DATABASE_URL), which answers the `read`
        calls; None: the primary answers every call."""
        self.read_wait = read_wait
        """How long a read call asking for a position (`min-position`) waits for the replica."""
        self.users = users
        self.available = available
        """Set while the ledger's database answers (adapters.grpc.server.DatabaseWatch)."""
        self.call_seconds = call_seconds
        """The longest a call may take (its own deadline, when shorter, wins): a write that
        cannot commit by then is not made."""

    @property
    def ledger(self) -> Ledger:
        """The ledger this call asks: the replica for a read call (when there is one and it has
        the position the call asked for), else the primary."""
        return _ASKED.get() or self._primary

    def _asked(self, context: grpc.ServicerContext, permission: str) -> Ledger:
        """Who answers a call: a read call the replica, if it has reached the `min-position` the
        call names (read your own writes) within `read_wait`, else the primary."""
        if permission != "read" or self.reader is None:
            return self._primary
        wanted = dict(context.invocation_metadata()).get("min-position", "0")
        if not (isinstance(wanted, str) and wanted.isascii() and wanted.isdigit()):
            raise CallError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"min-position: {wanted!r} is not a log position (a whole number)",
            )
        if caught_up_to(self.reader, int(wanted), self.read_wait):
            return self.reader
        log.info(json.dumps({"event": "replica behind", "min_position": int(wanted)}))
        return self._primary

    def _call(
        self,
        context: grpc.ServicerContext,
        method: str,
        permission: str,
        body: Callable[[User], Result],
        fields: dict[str, str] = POINT_FIELDS,
    ) -> Result:
        """Authenticate, authorise, run, map errors to status codes, and log one line."""
        started = time.perf_counter()
        user: User | None = None
        code = grpc.StatusCode.OK
        remaining = context.time_remaining()
        bound = self.call_seconds if remaining is None else min(remaining, self.call_seconds)
        deadline = CALL_DEADLINE.set(time.monotonic() + bound)
        try:
            user = caller(context, self.users)
            authorise(user, permission)
            if not self.available.is_set():
                raise CallError(
                    grpc.StatusCode.UNAVAILABLE,
                    "the ledger's database does not answer; nothing was done: retry later",
                )
            asked = _ASKED.set(self._asked(context, permission))
            try:
                return body(user)
            except ReplicaBehindError:
                # A point the replica's views have not reached (a known_at after them).
                _ASKED.set(self._primary)
                return body(user)
            finally:
                _ASKED.reset(asked)
        except Exception as error:
            code, message = status_of(error, fields)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("unexpected failure in %s", method)
            context.abort(code, message)
            raise AssertionError("abort raises") from error
        finally:
            CALL_DEADLINE.reset(deadline)
            seconds = time.perf_counter() - started
            CALLS.labels(method, code.name).inc()
            CALL_SECONDS.labels(method).observe(seconds)
            log.info(
                json.dumps(
                    {
                        "method": method,
                        "user": user.user if user else None,
                        "status": code.name,
                        "ms": round(seconds * 1000, 2),
                    }
                )
            )

    def _point(self, point: pb.Point) -> Point:
        return self.ledger.point(
            point.known_at or None, messages.optional_day(point.as_of, "point.as_of")
        )


def province_wide(user: User, what: str) -> None:
    if user.city is not None:
        raise CallError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"user {user.user} is scoped to city {user.city}; {what}",
        )


def import_header(user: User, messages: Iterator[Any], what: str) -> Any:
    """The first message of a province-wide import, which must be its header; a city-scoped user
    is refused (`what`: why the import is province-wide)."""
    province_wide(user, what)
    first = next(messages, None)
    if first is None or first.WhichOneof("item") != "header":
        raise CallError(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the header")
    return first
