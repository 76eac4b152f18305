"""The HTTP front end: one ASGI callable for ``POST /``, two AWS protocols.

Theory of operation
-------------------
1. Read the body, refusing it before parsing once it passes ``MAX_BODY`` bytes.
2. Pick the protocol: a form-encoded body without ``X-Amz-Target`` is the AWS Query
   protocol of IAM and STS (``QueryHandler``, XML replies); everything else is Secrets
   Manager's AWS JSON 1.1 (``Handler``).
3. Authenticate (SigV4 → principal and region). AWS checks credentials before it looks at
   the action, so an unsigned request never learns which actions exist.
4. Find the action in the service model (UnknownOperationException / InvalidAction), parse
   and validate the body against it (SerializationException / ValidationException;
   ValidationError for Query).
5. Run the operation in a worker thread: operations are synchronous and may wait on the
   database, which must not stall the event loop. The few read-only actions that can never
   wait (``Handler.lane`` → "inline") run on the event loop itself: for them the hand-off to
   a thread would cost more than the work.
6. Serialise the result per the model, or the ``ServiceError`` as ``{"__type", "Message"}``
   (JSON) or ``<ErrorResponse>`` (Query); anything unexpected is logged and answered as a
   500.

The routing and body handling are written against raw ASGI rather than a framework router:
the whole surface is one endpoint, and each layer of request objects costs measurable time
on the hot path (see bench/).
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Protocol

import anyio
import anyio.to_thread

from strongroom.errors import (
    InternalServiceError,
    InvalidAction,
    RequestEntityTooLargeException,
    ServiceError,
    UnknownOperationException,
)
from strongroom.protocol import query
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


Lane = Literal["inline", "read", "write"]


@dataclass(frozen=True, slots=True)
class Outcome:
    result: dict[str, Any]
    later: list[Callable[[], None]]  # run in a thread before the response is sent


class Handler(Protocol):
    """What the front end calls; built by ``app.build_app`` from the other layers."""

    @property
    def model(self) -> ServiceModel: ...

    def authenticate(self, request: HttpRequest) -> Any:
        """Verify the request's credentials; returns what ``run`` needs to act for the caller."""

    def lane(self, operation: str) -> Lane:
        """Where ``operation`` runs: "inline" (never blocks: on the event loop), "read" (a
        worker thread) or "write" (the one thread that writes at a time)."""

    def run(self, caller: Any, operation: str, request: dict[str, Any]) -> Outcome:
        """Run one validated action for ``caller``; raises ``ServiceError``."""


class QueryHandler(Protocol):
    """IAM and STS behind the same endpoint (AWS Query protocol)."""

    def authenticate(self, request: HttpRequest, service: str) -> Any:
        """Verify the request's SigV4 credentials scoped to ``service`` ("iam" or "sts")."""

    def lane(self, service: str, action: str) -> Lane:
        """ "read" or "write" (see ``Handler.lane``)."""

    def run(self, caller: Any, service: str, action: str, request: dict[str, Any]) -> Outcome:
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
        query_handler: QueryHandler | None = None,
    ) -> None:
        self.handler = handler
        self.query = query_handler
        # What runs beside the front end (the rotation engine, ...), by name: for tools and tests.
        self.services: dict[str, Any] = {}
        # Few threads on purpose: writes are serialised anyway and reads are short, so more
        # threads only contend for the GIL (and each keeps its own database connection). A
        # server database is different: each statement waits on the network, and writers
        # take row locks rather than one database lock, so build_app asks for more of both.
        self.threads = threads
        self.writers = writers
        self._writer: anyio.CapacityLimiter | None = None
        self.prefix = handler.model.target_prefix + "."
        self._request_ids = _request_ids()
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
                # Writes queue here rather than on the store's write lock: on SQLite one
                # writing thread at a time hands the GIL and the database lock around far less.
                self._writer = anyio.CapacityLimiter(self.writers)
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
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = next(self._request_ids)
        try:
            request = await _read(scope, receive)
        except ServiceError as exc:
            await _reply(send, exc.status, error_body(exc.code, exc.message), request_id)
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
        try:
            caller = self.handler.authenticate(request)
            operation = _target(request, self.prefix)
            model_op = self.handler.model.operation(operation)
            if model_op is None or scope["method"] != "POST":
                raise UnknownOperationException("")  # noqa: TRY301 - answered like any error
            parsed = model_op.parse_input(request.body)
            lane = self.handler.lane(operation)
            if lane == "inline":
                outcome = self.handler.run(caller, operation, parsed)
            else:
                limiter = self._writer if lane == "write" else None
                outcome = await anyio.to_thread.run_sync(
                    self.handler.run, caller, operation, parsed, limiter=limiter
                )
            for job in outcome.later:
                await anyio.to_thread.run_sync(job, limiter=self._writer)
            status, body = 200, model_op.serialize_output(outcome.result)
        except ServiceError as exc:
            status, body = exc.status, error_body(exc.code, exc.message)
            code = exc.code
        except Exception:
            logger.exception("request %s (%s) failed", request_id, operation)
            error = InternalServiceError("An internal error occurred. Request id: " + request_id)
            status, body, code = error.status, error_body(error.code, error.message), error.code
        else:
            code = "-"
        _log(request_id, operation, status, code, started)
        return status, body

    async def _query_call(
        self, handler: QueryHandler, request: HttpRequest, request_id: str
    ) -> tuple[int, bytes, bytes]:
        """IAM and STS: the AWS Query protocol (form-encoded ``Action=...``, XML replies)."""
        started = time.perf_counter()
        action = "-"
        service = query.QueryService.load("sts")  # what answers until the service is known
        try:
            form = query.decode_form(request.body, request.query_string)
            service = query.QueryService.load(_query_service(request, form))
            caller = handler.authenticate(request, service.name)
            action = form.pop("Action", "")
            form.pop("Version", None)
            operation = service.operation(action)
            if operation is None:
                version = _QUERY_API_VERSIONS[service.name]
                raise InvalidAction(  # noqa: TRY301 - answered like any error
                    f"Could not find operation {action} for version {version}"
                )
            parsed = operation.parse_input(form)
            limiter = self._writer if handler.lane(service.name, action) == "write" else None
            outcome = await anyio.to_thread.run_sync(
                handler.run, caller, service.name, action, parsed, limiter=limiter
            )
            status, body = 200, operation.serialize_output(outcome.result, request_id)
            code = "-"
        except ServiceError as exc:
            code, status = _QUERY_ERRORS.get(exc.code, (exc.code, exc.status))
            body = query.error_xml(
                service,
                code,
                exc.message,
                request_id,
                fault=status >= HTTPStatus.INTERNAL_SERVER_ERROR,
            )
        except Exception:
            logger.exception("request %s (%s) failed", request_id, action)
            code, status = "ServiceFailure", 500
            body = query.error_xml(
                service, code, "An internal error occurred.", request_id, fault=True
            )
        _log(request_id, action, status, code, started)
        return status, body, XML_CONTENT_TYPE


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


def _request_ids() -> Iterator[str]:
    """Request ids shaped like AWS's (UUIDs): a random UUID per process, then a counter in its
    last 48 bits — unique across processes and restarts, without a uuid4() per request."""
    base = uuid.uuid4().hex[:20]
    prefix = f"{base[:8]}-{base[8:12]}-{base[12:16]}-{base[16:20]}-"
    for n in itertools.count():
        yield f"{prefix}{n & 0xFFFFFFFFFFFF:012x}"


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


def _too_large() -> RequestEntityTooLargeException:
    return RequestEntityTooLargeException(f"Request body is larger than {MAX_BODY} bytes.")


def _target(request: HttpRequest, prefix: str) -> str:
    target = (request.header(b"x-amz-target") or b"").decode("latin-1")
    if not target.startswith(prefix):
        raise UnknownOperationException("")
    return target[len(prefix) :]
