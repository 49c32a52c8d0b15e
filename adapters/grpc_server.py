"""The gRPC service (`subsidy_ledger.v1.LedgerService`): the CLI's answers and commands over the
network, for users holding a bearer token, with health checking and reflection.

Every method names the permission it needs (`_ROLE_PERMISSIONS`); a city-scoped user sees and
pays only its city's firms. The user's name is the actor of every event a call causes. Errors map
to status codes a client can act on; a stack trace never reaches the client.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
import psycopg
from eventsourcing.persistence import PersistenceError
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.chain import parse_anchor
from adapters.group_commit import GroupCommit
from adapters.grpc_generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc_generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc
from adapters.register_csv import RegisterFileError
from adapters.service import LedgerService, Point
from adapters.synthetic import Row, write_csv
from adapters.tokens import User, load_users, token_hash
from domain.application import (
    ConcurrentWriteError,
    ConflictError,
    ImportRejectedError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    PaymentResult,
    RejectedFileError,
)
from domain.codes import divisions
from domain.register import COLUMNS, EARLIEST_YEAR
from domain.rules import parse_entitlement_id
from projections.queries import AWARD_STATUSES

log = logging.getLogger("subsidy_ledger.grpc")
SERVICE = pb.DESCRIPTOR.services_by_name["LedgerService"].full_name

_ROLE_PERMISSIONS = {
    "finance": {"read", "pay"},
    "statistics": {"read", "import"},
    "auditor": {"read", "audit"},
    "admin": {"read", "pay", "import", "audit"},
}

Request = TypeVar("Request")


class CallError(Exception):
    """A refusal with its status code, raised inside a method and sent to the client."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _status(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for an error (never a trace)."""
    match error:
        case CallError():
            return error.code, str(error)
        case RejectedFileError():
            return grpc.StatusCode.INVALID_ARGUMENT, "\n".join([str(error), *error.lines()])
        case InvalidInputError() | RegisterFileError():
            return grpc.StatusCode.INVALID_ARGUMENT, str(error)
        case NotFoundError():
            return grpc.StatusCode.NOT_FOUND, str(error)
        case ConflictError():
            return grpc.StatusCode.ALREADY_EXISTS, str(error)
        case LedgerError():
            return grpc.StatusCode.FAILED_PRECONDITION, str(error)
        case ConcurrentWriteError():
            return grpc.StatusCode.ABORTED, str(error)
        case PersistenceError() | OSError() | psycopg.OperationalError() | psycopg.InterfaceError():
            return grpc.StatusCode.UNAVAILABLE, f"the ledger's database is unavailable: {error}"
    return (
        grpc.StatusCode.INTERNAL,
        f"unexpected failure ({type(error).__name__}); see the server log",
    )


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    return _required_day(value, field)


def _required_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CallError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {value!r} is not a date YYYY-MM-DD"
        ) from None


class Servicer(pb_grpc.LedgerServiceServicer):
    """Each method: authenticate and authorise (`_call`), then ask the LedgerService."""

    def __init__(self, ledger: LedgerService, users: Callable[[], dict[str, User]]):
        self.ledger = ledger
        self.users = users

    # Authentication, authorisation, errors and the log line ----------------------------------

    def _user(self, context: grpc.ServicerContext, permission: str) -> User:
        metadata = dict(context.invocation_metadata())
        header = str(metadata.get("authorization", ""))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise CallError(
                grpc.StatusCode.UNAUTHENTICATED,
                "send `authorization: Bearer TOKEN` (a token from `subsidy-ledger token add`)",
            )
        user = self.users().get(token_hash(token.strip()))
        if user is None:
            raise CallError(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked token")
        if permission not in _ROLE_PERMISSIONS[user.role]:
            raise CallError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"user {user.user} ({user.role}) may not {permission}",
            )
        return user

    def _as(self, user: User) -> LedgerService:
        """The ledger acting as this user: their name is the actor of what the call records."""
        acting = copy.copy(self.ledger)
        acting.actor = user.user
        return acting

    def _point(self, point: pb.Point) -> Point:
        return self.ledger.point(point.known_at or None, _day(point.as_of, "point.as_of"))

    def _answered(self, at: Point) -> pb.AnsweredAt:
        assert at.at.day is not None and at.at.position is not None
        return pb.AnsweredAt(
            as_of=at.at.day.isoformat(),
            position=at.at.position,
            recorded_at=_timestamp(at.recorded_at),
        )

    def _firm_city(self, uscc: str) -> str:
        try:
            firm = self.ledger.app.get_enterprise(uscc)
        except NotFoundError:
            raise CallError(
                grpc.StatusCode.NOT_FOUND, f"no enterprise with USCC {uscc} in the ledger"
            ) from None
        return divisions()[firm.state.region_code].city_code

    def _in_scope(self, user: User, uscc: str) -> None:
        """A city-scoped user sees and pays only its city's firms."""
        if user.city is not None and self._firm_city(uscc) != user.city:
            raise CallError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"user {user.user} is scoped to city {user.city}; {uscc} is not in it",
            )

    def _in_scope_of(self, user: User, entitlement_id: str) -> None:
        """The firm an entitlement id names must be in a scoped user's city."""
        try:
            uscc, _kind, _year = parse_entitlement_id(entitlement_id)
        except ValueError as e:
            raise CallError(grpc.StatusCode.NOT_FOUND, f"unknown entitlement: {e}") from None
        self._in_scope(user, uscc)

    def _city_filter(self, user: User, asked: str) -> str | None:
        if user.city is None:
            return asked or None
        if asked and asked != user.city:
            raise CallError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"user {user.user} is scoped to city {user.city}, not {asked}",
            )
        return user.city

    # Queries ----------------------------------------------------------------------------------

    def GetEnterprise(
        self, request: pb.GetEnterpriseRequest, context: grpc.ServicerContext
    ) -> pb.Enterprise:
        return _call(
            self, context, "GetEnterprise", "read", lambda user: self._enterprise(user, request)
        )

    def _enterprise(self, user: User, request: pb.GetEnterpriseRequest) -> pb.Enterprise:
        self._in_scope(user, request.uscc)
        doc = self.ledger.enterprise(
            request.uscc,
            as_of=_day(request.point.as_of, "point.as_of"),
            known_at=request.point.known_at or None,
        )
        recorded = datetime.fromisoformat(doc["known_at"]["recorded_at"])
        return pb.Enterprise(
            answered_at=pb.AnsweredAt(
                as_of=doc["as_of"],
                position=doc["known_at"]["position"],
                recorded_at=_timestamp(recorded),
            ),
            uscc=doc["uscc"],
            name=doc["name"],
            region_code=doc["region_code"],
            region_name=doc["region_name"],
            city_code=doc["city_code"],
            city_name=doc["city_name"],
            industry_code=doc["industry_code"],
            size_class=doc["size_class"] or "",
            register_years=doc["register_years"],
            exit_years=doc["exit_years"],
            re_entry_years=doc["re_entry_years"],
            on_baseline=doc["on_baseline"],
            first_entry_year=doc["first_entry_year"] or 0,
            first_entry_route=doc["first_entry_route"] or "",
            entry_size_class=doc["entry_size_class"] or "",
            version=doc["version"],
            entitlements=[
                pb.Entitlement(
                    **{k: e[k] for k in pb.Entitlement.DESCRIPTOR.fields_by_name if k in e}
                )
                for e in doc["entitlements"]
            ],
            payments=[pb.Payment(**p) for p in doc["payments"]],
            recoveries=[pb.Recovery(**r) for r in doc["recoveries"]],
            windows=[_window(w, None) for w in doc["windows"]],
        )

    def ListAwards(
        self, request: pb.ListAwardsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Award]:
        def rows(user: User) -> list[pb.Award]:
            if request.status and request.status not in AWARD_STATUSES:
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"status: {request.status!r} is not one of {', '.join(AWARD_STATUSES)}",
                )
            at = self._point(request.point)
            answered = self._answered(at)
            awards = self.ledger.awards(
                at=at,
                fiscal_year=request.fiscal_year or None,
                city=self._city_filter(user, request.city_code),
                status=request.status or None,
            )
            return [
                pb.Award(
                    **{k: a[k] for k in pb.Award.DESCRIPTOR.fields_by_name if k in a},
                    answered_at=answered,
                )
                for a in awards
                if not request.kind or a["kind"] == request.kind
            ]

        yield from _call(self, context, "ListAwards", "read", rows)

    def GetFiscalTotals(
        self, request: pb.GetFiscalTotalsRequest, context: grpc.ServicerContext
    ) -> pb.FiscalTotals:
        def totals(user: User) -> pb.FiscalTotals:
            at = self._point(request.point)
            by = "city" if request.group_by == pb.GetFiscalTotalsRequest.GROUP_BY_CITY else "kind"
            basis = "cash" if request.basis == pb.GetFiscalTotalsRequest.BASIS_CASH else "due"
            rows = self.ledger.totals(
                at=at,
                fiscal_year=request.fiscal_year or None,
                by=by,
                basis=basis,
                city=self._city_filter(user, ""),
            )
            return pb.FiscalTotals(
                answered_at=self._answered(at),
                totals=[
                    pb.FiscalTotal(
                        group=r["kind" if by == "kind" else "city_code"],
                        **{k: v for k, v in r.items() if k not in ("kind", "city_code")},
                    )
                    for r in rows
                ],
            )

        return _call(self, context, "GetFiscalTotals", "read", totals)

    def ListWindows(
        self, request: pb.ListWindowsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Window]:
        def rows(user: User) -> list[pb.Window]:
            if request.uscc:
                self._in_scope(user, request.uscc)
            at = self._point(request.point)
            answered = self._answered(at)
            found = self.ledger.windows(
                at=at,
                uscc=request.uscc or None,
                active_on=_day(request.active_on, "active_on"),
                city=self._city_filter(user, ""),
            )
            return [_window(w, answered) for w in found]

        yield from _call(self, context, "ListWindows", "read", rows)

    def ListRegister(
        self, request: pb.ListRegisterRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RegisterEntry]:
        def rows(user: User) -> list[pb.RegisterEntry]:
            if not request.year:
                raise CallError(grpc.StatusCode.INVALID_ARGUMENT, "year: give a register year")
            at = self._point(request.point)
            answered = self._answered(at)
            city = self._city_filter(user, "")
            return [
                pb.RegisterEntry(
                    uscc=r["uscc"],
                    name=r["name"],
                    kind=r["kind"],
                    first_entry=r["first_entry"],
                    region_code=r["region_code"],
                    city_code=r["city_code"],
                    industry_code=r["industry_code"],
                    size_class=r["size_class"] or "",
                    answered_at=answered,
                )
                for r in self.ledger.register(request.year, at=at)
                if city is None or r["city_code"] == city
            ]

        yield from _call(self, context, "ListRegister", "read", rows)

    def ExplainEntitlement(
        self, request: pb.ExplainEntitlementRequest, context: grpc.ServicerContext
    ) -> pb.Explanation:
        def explain(user: User) -> pb.Explanation:
            self._in_scope_of(user, request.entitlement_id)
            doc = self.ledger.explain(request.entitlement_id)
            return pb.Explanation(json=json.dumps(doc, ensure_ascii=False, default=str))

        return _call(self, context, "ExplainEntitlement", "read", explain)

    def GetAuditTrail(
        self, request: pb.GetAuditTrailRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TrailEvent]:
        def trail(user: User) -> list[pb.TrailEvent]:
            self._in_scope(user, request.uscc)
            return [
                pb.TrailEvent(
                    position=e["position"],
                    recorded_at=_timestamp(
                        datetime.fromisoformat(e["recorded_at"]) if e["recorded_at"] else None
                    ),
                    version=e["version"],
                    type=e["type"],
                    actor=e["actor"] or "",
                    valid_from=e["valid_from"],
                    payload_json=json.dumps(e["payload"], ensure_ascii=False, default=str),
                )
                for e in self.ledger.audit_trail(request.uscc)
            ]

        yield from _call(self, context, "GetAuditTrail", "audit", trail)

    def VerifyLog(
        self, request: pb.VerifyLogRequest, context: grpc.ServicerContext
    ) -> pb.Verification:
        def verify(user: User) -> pb.Verification:
            try:
                anchor = parse_anchor(request.anchor) if request.anchor else None
            except ValueError as e:
                raise CallError(grpc.StatusCode.INVALID_ARGUMENT, f"anchor: {e}") from None
            v = self.ledger.verify(anchor)
            return pb.Verification(
                intact=v.intact,
                events=v.events,
                head=f"{v.position}:{v.link.hex()}" if v.intact else "",
                problem=v.broken.problem if v.broken else "",
                position=v.broken.position if v.broken else v.position,
                message=v.broken.message if v.broken else "",
                anchor_held=bool(v.anchor_held),
            )

        return _call(self, context, "VerifyLog", "audit", verify)

    def GetAnchor(self, request: pb.GetAnchorRequest, context: grpc.ServicerContext) -> pb.Anchor:
        def anchor(user: User) -> pb.Anchor:
            head, taken_at = self.ledger.anchor()
            return pb.Anchor(anchor=str(head), taken_at=_timestamp(taken_at))

        return _call(self, context, "GetAnchor", "audit", anchor)

    # Commands ---------------------------------------------------------------------------------

    def RecordPayment(
        self, request: pb.RecordPaymentRequest, context: grpc.ServicerContext
    ) -> pb.MoneyRecorded:
        def pay(user: User) -> pb.MoneyRecorded:
            self._in_scope_of(user, request.entitlement_id)
            paid_on = _required_day(request.paid_on, "paid_on")
            r = self._as(user).record_payment(
                request.entitlement_id, request.payment_ref, request.amount_fen, paid_on
            )
            return _money(r)

        return _call(self, context, "RecordPayment", "pay", pay)

    def RecordRecovery(
        self, request: pb.RecordRecoveryRequest, context: grpc.ServicerContext
    ) -> pb.MoneyRecorded:
        def recover(user: User) -> pb.MoneyRecorded:
            self._in_scope_of(user, request.entitlement_id)
            received_on = _required_day(request.received_on, "received_on")
            r = self._as(user).record_recovery(
                request.entitlement_id, request.recovery_ref, request.amount_fen, received_on
            )
            return _money(r)

        return _call(self, context, "RecordRecovery", "pay", recover)

    def ImportRegister(
        self, request_iterator: Iterator[pb.ImportRegisterRequest], context: grpc.ServicerContext
    ) -> pb.ImportResult:
        def load(user: User) -> pb.ImportResult:
            if user.city is not None:
                raise CallError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"user {user.user} is scoped to city {user.city}; a register is province-wide",
                )
            first = next(request_iterator, None)
            if first is None or first.WhichOneof("item") != "header":
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the header"
                )
            header = first.header
            if not EARLIEST_YEAR <= header.year <= 9999:
                raise CallError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"header.year: {header.year} is not a year"
                )
            with tempfile.TemporaryDirectory(prefix="ledger-import-") as folder:
                path = Path(folder) / f"register-{header.year}.csv"
                rows = (
                    cast(Row, tuple(getattr(m.row, c) for c in COLUMNS))
                    for m in request_iterator
                    if m.WhichOneof("item") == "row"
                )
                write_csv(path, rows)
                acting = self._as(user)
                try:
                    if header.correction:
                        c = acting.correct_register(path, header.year, reason=header.reason)
                        counts = {
                            "firms": len(c.firms),
                            "arrears": len(c.arrears),
                            "revoked": len(c.revoked),
                            "recovery_due": len(c.recovery_due),
                        }
                        return pb.ImportResult(
                            year=c.year,
                            sha256=c.sha256,
                            rows=c.rows,
                            replay=c.replay,
                            position=c.position or 0,
                            counts_json=json.dumps(counts),
                        )
                    if header.reason:
                        raise CallError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "reason: goes with correction (a plain import needs none)",
                        )
                    r = acting.import_register(path, header.year, baseline=header.baseline)
                except ImportRejectedError as e:
                    # Name the rows as the client sent them: row N is line N + 1 of the file.
                    e.source = "row"
                    e.errors = [type(err)(err.line - 1, err.field, err.reason) for err in e.errors]
                    raise
            return pb.ImportResult(
                year=r.year,
                sha256=r.sha256,
                rows=r.rows,
                replay=r.replay,
                position=r.position or 0,
                counts_json=json.dumps(r.counts),
            )

        return _call(self, context, "ImportRegister", "import", load)


def _money(r: PaymentResult) -> pb.MoneyRecorded:
    """A payment or a recovery as recorded (the recovery's totals are what came back of what
    was paid)."""
    return pb.MoneyRecorded(
        entitlement_id=r.entitlement_id,
        ref=r.payment_ref,
        amount_fen=r.amount_fen,
        date=r.paid_on.isoformat(),
        replay=r.replay,
        total_fen=r.paid_fen,
        limit_fen=r.entitlement_amount_fen,
    )


def _window(w: dict[str, Any], answered: pb.AnsweredAt | None) -> pb.Window:
    return pb.Window(
        uscc=w.get("uscc", ""),
        window=w["window"],
        clause=w["clause"],
        starts_on=w["starts_on"],
        ends_on=w["ends_on"],
        closed_on=w.get("closed_on") or "",
        fee_cap_bp=w.get("fee_cap_bp") or 0,
        size_class=w.get("size_class") or "",
        answered_at=answered,
    )


Result = TypeVar("Result")


def _call(
    servicer: Servicer,
    context: grpc.ServicerContext,
    method: str,
    permission: str,
    body: Callable[[User], Result],
) -> Result:
    """Authenticate, authorise, run, map errors to status codes, and log one line."""
    started = time.perf_counter()
    user: User | None = None
    code = grpc.StatusCode.OK
    try:
        user = servicer._user(context, permission)
        return body(user)
    except Exception as error:
        code, message = _status(error)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("unexpected failure in %s", method)
        context.abort(code, message)
        raise AssertionError("abort raises") from error
    finally:
        log.info(
            json.dumps(
                {
                    "method": method,
                    "user": user.user if user else None,
                    "status": code.name,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
            )
        )


def is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1", "[::1]") or host.startswith("127.")


def build_server(
    ledger: LedgerService,
    users: Callable[[], dict[str, User]],
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
        raise ValueError(
            f"--listen {listen}: without TLS (LEDGER_TLS_CERT and LEDGER_TLS_KEY) the server "
            "binds only a loopback address"
        )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        # several processes may share the port (LEDGER_WORKERS), never by accident otherwise
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    if ledger.group is None:
        ledger.group = GroupCommit(ledger.app)
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


def users_from_file(path: Path) -> Callable[[], dict[str, User]]:
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
