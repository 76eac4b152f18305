"""The HTTP front end: one ASGI callable for ``POST /``, two AWS protocols.

Theory of operation
-------------------
1. Read the body, refusing it before parsing once it passes ``MAX_BODY`` bytes.
2. Pick the protocol: a form-encoded body without ``X-Amz-Target`` is the AWS Query
   protocol of IAM and STS (``QueryHandler``, XML replies); everything else is AWS JSON 1.1
   (``Handler``), routed by the target's prefix: Secrets Manager (tried first: it is the
   hot path) or CloudTrail. A target no handler claims is answered as Secrets Manager.
3. Authenticate (SigV4 → principal and region). AWS checks credentials before it looks at
   the action, so an unsigned request never learns which actions exist.
4. Find the action in the service model (UnknownOperationException / InvalidAction), parse
   and validate the body against it (SerializationException / ValidationException;
   ValidationError for Query).
5. Run the operation in a worker thread: operations are synchronous and may wait on the
   database, which must not stall the event loop. The few read-only actions that can never
   wait (``Handler.lane`` → "inline") run on the event loop itself: for them the hand-off to
   a thread would cost more than the work; on a server database the same actions run on the
   loop too, in a greenlet whose reads await the database ("awaited"). On embedded SQLite,
   write calls that queue meanwhile run together, one transaction and one COMMIT
   (``protocol.grouped_writes``).
6. Serialise the result per the model, or the ``ServiceError`` as ``{"__type", "Message"}``
   (JSON) or ``<ErrorResponse>`` (Query); anything unexpected is logged and answered as a
   500.
7. Record the call in the audit trail before replying (``strongroom.audit.trail``): a call
   that wrote has recorded itself in its own transaction; any other is group-committed
   here. A record that cannot be written turns the reply into an internal error.

The routing and body handling are written against raw ASGI rather than a framework router:
the whole surface is one endpoint, and each layer of request objects costs measurable time
on the hot path (see bench/).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Protocol

from sqlalchemy.util import greenlet_spawn

from strongroom.audit.trail import CallAudit, RecordCommitter
from strongroom.domain.ids import UuidShapedIds
from strongroom.errors import (
    InternalServiceError,
    InvalidAction,
    RequestEntityTooLargeException,
    ServiceError,
    UnknownOperationException,
)
from strongroom.protocol import query
from strongroom.protocol.grouped_writes import GroupedWrites
from strongroom.protocol.model import ServiceModel, error_body

logger = logging.getLogger("strongroom.http")

MAX_BODY = 512 * 1024  # the largest valid request (64 KiB binary in base64 + metadata) fits
JSON_CONTENT_TYPE = b"application/x-amz-json-1.1"
XML_CONTENT_TYPE = b"text/xml"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of a request that authentication and dispatch need."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client_ip: str | None
    secure: bool  # arrived over TLS (as uvicorn reports it, proxy headers included)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


Lane = Literal["inline", "awaited", "read", "write"]


@dataclass(frozen=True, slots=True)
class Outcome:
    result: dict[str, Any]
    later: list[Callable[[], None]]  # run in a thread once recorded, before the response
    recorded: bool = False  # the call's audit record was committed with its writes


@dataclass(frozen=True, slots=True)
class Audit:
    """The front end's part of the audit trail: who commits records, for which account."""

    committer: RecordCommitter
    account_id: str


class Handler(Protocol):
    """What the front end calls; built by ``app.build_app`` from the other layers."""

    @property
    def model(self) -> ServiceModel: ...

    @property
    def service(self) -> str:
        """The service's name in SigV4 scopes and audit records ("secretsmanager", ...)."""

    def authenticate(self, request: HttpRequest) -> Any:
        """Verify the request's credentials; returns what ``run`` needs to act for the caller."""

    def lane(self, operation: str) -> Lane:
        """Where ``operation`` runs: "inline" (never blocks: on the event loop), "awaited"
        (on the event loop in a greenlet, its reads awaiting the database: see
        ``SqlStore.awaiting_reads``), "read" (a worker thread) or "write" (the one thread
        that writes at a time)."""

    def run(
        self, caller: Any, operation: str, request: dict[str, Any], call: CallAudit | None
    ) -> Outcome:
        """Run one validated action for ``caller``; raises ``ServiceError``. With ``call``,
        a call that writes commits its audit record with its writes (``Outcome.recorded``)."""


class QueryHandler(Protocol):
    """IAM and STS behind the same endpoint (AWS Query protocol)."""

    def authenticate(self, request: HttpRequest, service: str) -> Any:
        """Verify the request's SigV4 credentials scoped to ``service`` ("iam" or "sts")."""

    def lane(self, service: str, action: str) -> Lane:
        """ "read" or "write" (see ``Handler.lane``)."""

    def run(
        self,
        caller: Any,
        service: str,
        action: str,
        request: dict[str, Any],
        call: CallAudit | None,
    ) -> Outcome:
        """Run one validated IAM or STS action for ``caller``; raises ``ServiceError``."""


class Frontend:
    def __init__(
        self,
        handler: Handler,
        *,
        on_startup: Callable[[], None] | None = None,
        on_shutdown: Callable[[], None] | None = None,
        threads: int = 4,
        writers: int = 1,
        write_group: Callable[[], AbstractContextManager[object]] | None = None,
        query_handler: QueryHandler | None = None,
        audit: Audit | None = None,
        more_handlers: Sequence[Handler] = (),
    ) -> None:
        self.handler = handler
        self.query = query_handler
        self.audit = audit
        # What runs beside the front end (the rotation engine, ...), by name: for tools and tests.
        self.services: dict[str, Any] = {}
        # Few threads on purpose: writes are serialised anyway and reads are short, so more
        # threads only contend for the GIL (and each keeps its own database connection). A
        # server database is different: each statement waits on the network, and writers
        # take row locks rather than one database lock, so build_app asks for more of both.
        # Plain executors rather than anyio.to_thread: with 16 calls in flight a hop to a
        # thread and back cost about 68 µs of CPU there and 22 µs here (bench/micro_get.py
        # has the no-load figure), which on PostgreSQL every GetSecretValue pays.
        self.threads = threads
        self.writers = writers
        self._readers = ThreadPoolExecutor(threads, thread_name_prefix="strongroom-read")
        # Writes queue here rather than on the store's write lock: on SQLite one writing
        # thread at a time hands the GIL and the database lock around far less.
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="strongroom-write")
        # Embedded SQLite: write calls are group-committed (protocol.grouped_writes).
        self._grouped = None if write_group is None else GroupedWrites(write_group)
        self.prefix = handler.model.target_prefix + "."
        # X-Amz-Target prefix -> its handler, ``handler`` first (dicts keep their order): a
        # Secrets Manager request, the hot path, is routed by a single startswith.
        self.routes: dict[str, Handler] = {self.prefix: handler}
        for other in more_handlers:
            self.routes.setdefault(other.model.target_prefix + ".", other)
        self._request_ids = UuidShapedIds()
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.audit is None:
                await self._http(scope, receive, send)
                return
            # Records are batched better knowing how many calls may still bring one.
            gathering = self.audit.committer.gathering
            gathering.call_started()
            try:
                await self._http(scope, receive, send)
            finally:
                gathering.call_ended()
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._on_startup is not None:
                        self._on_startup()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._on_shutdown is not None:
                    self._on_shutdown()
                for pool in (self._readers, self._writers):
                    pool.shutdown(wait=False)  # every request has had its answer by now
                if self._grouped is not None:
                    self._grouped.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._request_ids()
        try:
            request = await _read(scope, receive)
        except ServiceError as exc:
            status, body = exc.status, error_body(exc.code, exc.message)
            unread = _unread(scope)
            handler, _ = self._route(_target_of(unread))
            call = self._call(unread, request_id, handler.service)
            if call is not None and not await self._record(call, None, exc.code, exc.message):
                status, body = _unrecorded(request_id)
            await _reply(send, status, body, request_id)
            return
        if self.query is not None and _is_query(request):
            status, body, content_type = await self._query_call(self.query, request, request_id)
        else:
            status, body = await self._json_call(scope, request, request_id)
            content_type = JSON_CONTENT_TYPE
        await _reply(send, status, body, request_id, content_type)

    async def _json_call(
        self, scope: Scope, request: HttpRequest, request_id: str
    ) -> tuple[int, bytes]:
        started = time.perf_counter()
        operation = "-"
        target = _target_of(request)
        handler, prefix = self._route(target)
        call = self._call(request, request_id, handler.service)
        if call is not None:
            call.event_name = target.removeprefix(prefix) or "-"
            # readOnly describes the action, so it holds even when authentication fails.
            call.read_only = handler.lane(call.event_name) != "write"
        response: dict[str, Any] | None = None
        code: str | None = None
        message: str | None = None
        later: list[Callable[[], None]] = []
        try:
            caller = handler.authenticate(request)
            operation = _operation(target, prefix)
            _identify(call, caller, operation)
            model_op = handler.model.operation(operation)
            if model_op is None or scope["method"] != "POST":
                raise UnknownOperationException("")  # noqa: TRY301 - answered like any error
            parsed = model_op.parse_input(request.body)
            lane = handler.lane(operation)
            if call is not None:
                call.request, call.read_only = parsed, lane != "write"
            if lane == "inline":
                outcome = handler.run(caller, operation, parsed, call)
            else:
                outcome = await self._run(lane, handler.run, caller, operation, parsed, call)
            later = outcome.later
            status, body = 200, model_op.serialize_output(outcome.result)
            if outcome.recorded:
                call = None
            response = outcome.result
        except ServiceError as exc:
            status, body = exc.status, error_body(exc.code, exc.message)
            code, message = exc.code, exc.message
        except Exception:
            logger.exception("request %s (%s) failed", request_id, operation)
            error = InternalServiceError("An internal error occurred. Request id: " + request_id)
            status, body = error.status, error_body(error.code, error.message)
            code, message = error.code, error.message
        if call is not None and not await self._record(call, response, code, message):
            status, body = _unrecorded(request_id)
        else:
            # Only once the call is on record: a call that fails for want of its record
            # must change nothing, not even LastAccessedDate.
            await self._run_later(later, request_id)
        _log(request_id, operation, status, code or "-", started)
        return status, body

    async def _run(self, lane: Lane, function: Callable[..., Outcome], *args: Any) -> Outcome:
        """A call's operation in a worker thread, or on the loop in a greenlet ("awaited"); a
        write in the next write group, if any."""
        call = functools.partial(function, *args)
        if lane == "awaited":
            awaited: Outcome = await greenlet_spawn(call)
            return awaited
        if lane == "write" and self._grouped is not None:
            outcome: Outcome = await self._grouped.run(call)
            return outcome
        pool = self._writers if lane == "write" else self._readers
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    async def _run_later(self, jobs: list[Callable[[], None]], request_id: str) -> None:
        """Work a call leaves for after its result (LastAccessedDate, waking the rotation
        engine): still before the reply, so the next request sees it, but its failure does
        not undo an answer already on record."""
        for job in jobs:
            try:
                await asyncio.get_running_loop().run_in_executor(self._writers, job)
            except Exception:
                logger.exception("request %s: follow-up work failed", request_id)

    def _route(self, target: str) -> tuple[Handler, str]:
        """The handler whose prefix ``target`` starts with, and that prefix; else Secrets
        Manager's (which answers an unknown target as the Secrets Manager endpoint does)."""
        for prefix, handler in self.routes.items():
            if target.startswith(prefix):
                return handler, prefix
        return self.handler, self.prefix

    def _call(self, request: HttpRequest, request_id: str, service: str) -> CallAudit | None:
        """The call's audit facts as far as the raw request tells them (None: audit off)."""
        if self.audit is None:
            return None
        agent = request.header(b"user-agent")
        return CallAudit(
            service=service,
            request_id=request_id,
            event_time=time.time(),
            source_ip=request.client_ip,
            user_agent=None if agent is None else agent.decode("latin-1"),
            authorization=request.header(b"authorization"),
            account_id=self.audit.account_id,
        )

    async def _record(
        self,
        call: CallAudit,
        response: dict[str, Any] | None,
        code: str | None,
        message: str | None,
    ) -> bool:
        """Commit the call's record; False (and logged) when it could not be written."""
        assert self.audit is not None  # noqa: S101 - calls exist only with the audit on
        record = functools.partial(
            call.row, response=response, error_code=code, error_message=message
        )
        try:
            await self.audit.committer.commit(record)
        except Exception:
            logger.exception("request %s: its audit record could not be written", call.request_id)
            return False
        return True

    def _query_audit(
        self,
        request: HttpRequest,
        request_id: str,
        handler: QueryHandler,
        service: str,
        action: str,
    ) -> CallAudit | None:
        call = self._call(request, request_id, service)
        if call is not None:
            call.event_name = action or "-"
            # readOnly describes the action, so it holds even when authentication fails.
            call.read_only = handler.lane(service, action) != "write"
        return call

    async def _query_call(
        self, handler: QueryHandler, request: HttpRequest, request_id: str
    ) -> tuple[int, bytes, bytes]:
        """IAM and STS: the AWS Query protocol (form-encoded ``Action=...``, XML replies)."""
        started = time.perf_counter()
        action = "-"
        service = query.QueryService.load("sts")  # what answers until the service is known
        call: CallAudit | None = None
        response: dict[str, Any] | None = None
        message: str | None = None
        try:
            form = query.decode_form(request.body, request.query_string)
            service = query.QueryService.load(_query_service(request, form))
            action = form.get("Action", "")
            call = self._query_audit(request, request_id, handler, service.name, action)
            caller = handler.authenticate(request, service.name)
            form.pop("Action", None)
            form.pop("Version", None)
            _identify(call, caller, action)
            operation = service.operation(action)
            if operation is None:
                version = _QUERY_API_VERSIONS[service.name]
                raise InvalidAction(  # noqa: TRY301 - answered like any error
                    f"Could not find operation {action} for version {version}"
                )
            parsed = operation.parse_input(form)
            lane = handler.lane(service.name, action)
            if call is not None:
                call.request, call.read_only = parsed, lane != "write"
                call.response_view = operation.typed_output  # its dates, as dates
            outcome = await self._run(lane, handler.run, caller, service.name, action, parsed, call)
            status, body = 200, operation.serialize_output(outcome.result, request_id)
            code = "-"
            if outcome.recorded:
                call = None
            response = outcome.result
        except ServiceError as exc:
            code, status = _QUERY_ERRORS.get(exc.code, (exc.code, exc.status))
            message = exc.message
            body = query.error_xml(
                service,
                code,
                exc.message,
                request_id,
                fault=status >= HTTPStatus.INTERNAL_SERVER_ERROR,
            )
        except Exception:
            logger.exception("request %s (%s) failed", request_id, action)
            code, status, message = "ServiceFailure", 500, "An internal error occurred."
            body = query.error_xml(service, code, message, request_id, fault=True)
        if self.audit is not None:
            if call is None and response is None:  # the form itself was refused
                call = self._call(request, request_id, service.name)
            failed = None if code == "-" else code
            if call is not None and not await self._record(call, response, failed, message):
                code, status = "ServiceFailure", 500
                body = query.error_xml(
                    service, code, "An internal error occurred.", request_id, fault=True
                )
        _log(request_id, action, status, code, started)
        return status, body, XML_CONTENT_TYPE


def _identify(call: CallAudit | None, caller: Any, operation: str) -> None:
    """Once the caller is authenticated: who it is and what it asked for, for its record."""
    if call is None:
        return
    call.event_name = operation
    principal = getattr(caller, "principal", None)
    if principal is not None:
        call.principal = principal
        call.region = getattr(caller, "region", call.region)


# The JSON protocol's codes for the errors both front ends raise, as Query services name them.
# IAM and STS answer credential problems with 403 where JSON services use 400 (botocore's
# tests and SDK issues quoting STS: InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken).
_QUERY_ERRORS: dict[str, tuple[str, int]] = {
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
    "RequestEntityTooLargeException": ("RequestEntityTooLarge", 413),
}
_SCOPE_SERVICE = re.compile(rb"Credential=[^/,\s]*/[^/,\s]*/[^/,\s]*/([a-z0-9-]+)/")
# Without a signature the form's Version tells IAM (2010-05-08) from STS (2011-06-15).
_QUERY_VERSIONS = {"2010-05-08": "iam", "2011-06-15": "sts"}
_QUERY_API_VERSIONS = {service: version for version, service in _QUERY_VERSIONS.items()}


def _is_query(request: HttpRequest) -> bool:
    """A Query-protocol request: no X-Amz-Target, and a form body (or a GET with Action=).

    Anything else without a target stays with the JSON front end, which answers it as the
    Secrets Manager endpoint does (UnknownOperationException, or the authentication error).
    """
    if request.header(b"x-amz-target") is not None:
        return False
    content_type = request.header(b"content-type") or b""
    if content_type.lower().startswith(b"application/x-www-form-urlencoded"):
        return True
    return request.method == "GET" and b"Action=" in request.query_string


def _query_service(request: HttpRequest, form: dict[str, str]) -> str:
    match = _SCOPE_SERVICE.search(request.header(b"authorization") or b"")
    if match is not None and match[1] in (b"iam", b"sts"):
        return match[1].decode()
    return _QUERY_VERSIONS.get(form.get("Version", ""), "sts")


def _log(request_id: str, operation: str, status: int, code: str, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s %d %s %.1fms",
            request_id,
            operation,
            status,
            code,
            (time.perf_counter() - started) * 1000,
        )


async def _reply(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    content_type: bytes = JSON_CONTENT_TYPE,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-amzn-requestid", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read(scope: Scope, receive: Receive) -> HttpRequest:
    headers: list[tuple[bytes, bytes]] = list(scope["headers"])
    for key, value in headers:
        if key == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    client = scope.get("client")
    return HttpRequest(
        method=scope["method"],
        raw_path=scope.get("raw_path") or scope["path"].encode(),
        query_string=scope.get("query_string", b""),
        headers=headers,
        body=b"".join(chunks),
        client_ip=client[0] if client else None,
        secure=scope.get("scheme") == "https",
    )


def _unrecorded(request_id: str) -> tuple[int, bytes]:
    """The reply to a call whose audit record could not be written (fail closed)."""
    error = InternalServiceError("An internal error occurred. Request id: " + request_id)
    return error.status, error_body(error.code, error.message)


def _target_of(request: HttpRequest) -> str:
    return (request.header(b"x-amz-target") or b"").decode("latin-1")


def _unread(scope: Scope) -> HttpRequest:
    """What is known of a request whose body was refused: its headers and client."""
    client = scope.get("client")
    return HttpRequest(
        method=scope["method"],
        raw_path=b"/",
        query_string=b"",
        headers=list(scope["headers"]),
        body=b"",
        client_ip=client[0] if client else None,
        secure=scope.get("scheme") == "https",
    )


def _too_large() -> RequestEntityTooLargeException:
    return RequestEntityTooLargeException(f"Request body is larger than {MAX_BODY} bytes.")


def _operation(target: str, prefix: str) -> str:
    if not target.startswith(prefix):
        raise UnknownOperationException("")
    return target[len(prefix) :]
