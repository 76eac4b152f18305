"""``build_app(installation)``: the only place that wires the layers together.

HTTP (protocol.asgi) → SigV4 (auth.sigv4, auth.keys) → authorization (operations.access)
→ operations (Secrets Manager: operations.registry; IAM/STS: operations.iam, operations.sts;
CloudTrail: operations.cloudtrail)
→ storage/crypto
"""

from __future__ import annotations

import gc
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.audit.journal import JOURNAL_DIR, Journal
from strongroom.audit.sealing import AUDIT_DIR, SealPolicy, TrailSealer
from strongroom.audit.trail import CallAudit, CallStore, GroupCommitter, RecordCommitter
from strongroom.auth import sigv4
from strongroom.auth.keys import AccessKey, AccessKeys
from strongroom.domain.principal import Principal, root_principal
from strongroom.errors import (
    InvalidAction,
    InvalidParameterException,
    InvalidRequestException,
    ValidationError,
)
from strongroom.installation import Installation
from strongroom.operations import cloudtrail
from strongroom.operations.access import Access, RequestFacts, request_tag_keys
from strongroom.operations.context import Context
from strongroom.operations.iam.registry import IAM_OPERATIONS, IAM_READ_ONLY, iam_resource
from strongroom.operations.registry import NOT_YET, OPERATIONS, READ_ONLY, READ_ONLY_FAST
from strongroom.operations.sts import STS_OPERATIONS, STS_READ_ONLY, STS_SELF_AUTHORIZED
from strongroom.protocol.asgi import Audit, Frontend, HttpRequest, Lane, Outcome
from strongroom.protocol.model import ServiceModel
from strongroom.rotation.engine import RotationEngine
from strongroom.storage.base import Store, TextNotStorable, TransientConflict
from strongroom.storage.clock import DatabaseClock
from strongroom.worker import Worker

logger = logging.getLogger("strongroom")

_GIL_SWITCH_SECONDS = 0.001  # see start() in build_app


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    region: str
    facts: RequestFacts

    def access(self) -> Access | None:
        """The caller's authorization; None for the account root (allowed everything)."""
        return None if self.principal.is_root else Access(self.principal, self.facts)


class Authenticator:
    """SigV4 (auth.sigv4) against the installation's access keys (auth.keys)."""

    def __init__(
        self, installation: Installation, clock: Callable[[], float] | None = None
    ) -> None:
        self.installation = installation
        self.keys = AccessKeys(installation.store, installation.sealer)
        self.dev = installation.settings.dev
        # The database's clock (storage.clock): session expiry is compared with the time
        # the issuing node wrote. Never the tests' movable clock: signatures use real time.
        self.clock = clock or DatabaseClock(installation.store)

    def __call__(self, request: HttpRequest, service: str) -> Caller:
        now = self.clock()
        verified = sigv4.verify(
            method=request.method,
            raw_path=request.raw_path,
            query_string=request.query_string,
            headers=request.headers,
            body=request.body,
            now=now,
            lookup=self.keys.lookup,
            expected_service=service,
            verify_signature=not self.dev,
        )
        key: AccessKey | None = verified.key
        if key is None:  # dev mode: any well-formed credentials act as the account root
            principal = root_principal(self.installation.account_id, verified.access_key_id)
        else:
            principal = key.principal
        facts = RequestFacts(source_ip=request.client_ip, secure_transport=request.secure, time=now)
        return Caller(principal=principal, region=verified.region, facts=facts)


def _context(
    installation: Installation,
    caller: Caller,
    clock: Any,
    store: Store,
    wake_rotations: Callable[[], None] | None = None,
) -> Context:
    return Context(
        store=store,
        sealer=installation.sealer,
        account_id=installation.account_id,
        region=caller.region,
        principal=caller.principal,
        clock=clock,
        token_key=installation.token_key,
        access=caller.access(),
        wake_rotations=wake_rotations,
    )


class SecretsManager:
    """The ``protocol.asgi.Handler`` for the Secrets Manager API."""

    service = "secretsmanager"

    def __init__(
        self,
        installation: Installation,
        authenticator: Authenticator,
        *,
        clock: Any = time.time,
        wake_rotations: Callable[[], None] | None = None,
    ) -> None:
        self.installation = installation
        self.model = ServiceModel.load("secretsmanager")
        self._authenticate = authenticator
        self.clock = clock
        self.wake_rotations = wake_rotations

    def authenticate(self, request: HttpRequest) -> Caller:
        return self._authenticate(request, "secretsmanager")

    def lane(self, operation: str) -> Lane:
        if operation in READ_ONLY_FAST:
            store = self.installation.store
            if store.reads_never_wait:
                return "inline"
            if store.awaiting_reads:
                return "awaited"
        return "read" if operation in READ_ONLY else "write"

    def run(
        self, caller: Caller, operation: str, request: dict[str, Any], call: CallAudit | None
    ) -> Outcome:
        function = OPERATIONS.get(operation)
        if function is None:
            reason = NOT_YET.get(operation, "it is not supported")
            raise InvalidRequestException(f"Strongroom does not support {operation}: {reason}.")

        def attempt() -> Outcome:
            store = self.installation.store if call is None else CallStore(self.installation.store)
            ctx = _context(self.installation, caller, self.clock, store, self.wake_rotations)
            if ctx.access is not None:
                ctx.access.check(ctx, operation, request)
            return _audited(ctx, call, lambda: function(ctx, request))

        try:
            return retrying(attempt)
        except TextNotStorable as exc:
            raise InvalidParameterException(NUL_REFUSED) from exc


class CloudTrail:
    """The ``protocol.asgi.Handler`` for CloudTrail: LookupEvents over the audit trail."""

    service = "cloudtrail"

    def __init__(
        self,
        installation: Installation,
        authenticator: Authenticator,
        *,
        clock: Any = time.time,
        before_lookup: Callable[[], object] | None = None,
    ) -> None:
        self.installation = installation
        self.model = cloudtrail.service_model()
        self._authenticate = authenticator
        self.clock = clock
        # Moves this process's journal in first, so a caller finds its own earlier calls.
        self._before_lookup = before_lookup

    def authenticate(self, request: HttpRequest) -> Caller:
        return self._authenticate(request, "cloudtrail")

    def lane(self, operation: str) -> Lane:  # noqa: ARG002 - every served action reads
        return "read"

    def run(
        self, caller: Caller, operation: str, request: dict[str, Any], call: CallAudit | None
    ) -> Outcome:
        if operation != "LookupEvents":
            raise cloudtrail.UnsupportedOperationException(
                f"Strongroom does not support CloudTrail {operation}: only LookupEvents is served."
            )

        if self._before_lookup is not None:
            self._before_lookup()

        def attempt() -> Outcome:
            store = self.installation.store if call is None else CallStore(self.installation.store)
            ctx = _context(self.installation, caller, self.clock, store)
            return _audited(ctx, call, lambda: cloudtrail.lookup_events(ctx, request))

        return retrying(attempt)


class IdentityServices:
    """The ``protocol.asgi.QueryHandler`` for IAM and STS (principals, policies, sessions)."""

    def __init__(
        self, installation: Installation, authenticator: Authenticator, *, clock: Any = time.time
    ) -> None:
        self.installation = installation
        self._authenticate = authenticator
        self.clock = clock

    def authenticate(self, request: HttpRequest, service: str) -> Caller:
        return self._authenticate(request, service)

    def lane(self, service: str, action: str) -> Lane:
        read_only = IAM_READ_ONLY if service == "iam" else STS_READ_ONLY
        return "read" if action in read_only else "write"

    def run(
        self,
        caller: Caller,
        service: str,
        action: str,
        request: dict[str, Any],
        call: CallAudit | None,
    ) -> Outcome:
        operations = IAM_OPERATIONS if service == "iam" else STS_OPERATIONS
        function = operations.get(action)
        if function is None:
            raise InvalidAction(f"Strongroom does not support {service}:{action}.")
        try:
            return retrying(
                lambda: self._run(caller, service, action, request, function, call=call)
            )
        except TextNotStorable as exc:
            raise ValidationError(NUL_REFUSED) from exc

    def _run(
        self,
        caller: Caller,
        service: str,
        action: str,
        request: dict[str, Any],
        function: Any,
        *,
        call: CallAudit | None,
    ) -> Outcome:
        store = self.installation.store if call is None else CallStore(self.installation.store)
        ctx = _context(self.installation, caller, self.clock, store)
        # GetCallerIdentity needs no permission; AssumeRole weighs the role's trust policy
        # together with the caller's own policies itself (STS_SELF_AUTHORIZED).
        if ctx.access is not None and not (service == "sts" and action in STS_SELF_AUTHORIZED):
            with ctx.store.read() as tx:
                resource = iam_resource(
                    action,
                    request,
                    ctx.account_id,
                    ctx.partition,
                    tx=tx,
                    principal_arn=caller.principal.arn,
                )
                ctx.access.require(
                    tx,
                    f"{service}:{action}",
                    resource,
                    ctx.account_id,
                    keys=request_tag_keys(request),
                )
        return _audited(ctx, call, lambda: function(ctx, request))


def _audited(
    ctx: Context, call: CallAudit | None, operation: Callable[[], dict[str, Any]]
) -> Outcome:
    """Run an operation; if it wrote, commit its writes together with the call's record."""
    store = ctx.store
    if not isinstance(store, CallStore) or call is None:
        return Outcome(operation(), ctx.later)
    try:
        result = operation()
    except BaseException:
        store.rollback()
        raise
    if not store.wrote:
        store.done()
        return Outcome(result, ctx.later)
    store.commit(call.row(response=result))
    return Outcome(result, ctx.later, recorded=True)


def build_app(
    installation: Installation, *, clock: Any = None, endpoint_url: str | None = None
) -> Frontend:
    """The ASGI app. ``clock``: the operations' time (default: the database's clock, so that
    every node agrees on deletion dates, expiry and leases; tests pass one they can move).
    ``endpoint_url``: where rotation functions reach this server (default: the host and port
    of the settings)."""
    database_clock = DatabaseClock(installation.store)
    clock = clock or database_clock
    authenticator = Authenticator(installation, database_clock)
    rotations = RotationEngine(
        installation.store,
        installation.sealer,
        clock=clock,
        endpoint_url=endpoint_url
        or _own_url(installation.settings.host, installation.settings.port),
    )
    handler = SecretsManager(
        installation, authenticator, clock=clock, wake_rotations=rotations.wake
    )
    identity = IdentityServices(installation, authenticator, clock=clock)
    worker = Worker(installation.store, clock=clock)
    stop = threading.Event()
    settings = installation.settings
    audit, journal = None, None
    if settings.audit:
        committer: RecordCommitter
        if installation.store.reads_never_wait:  # embedded SQLite: see audit/journal.py
            committer = journal = Journal(installation.store, settings.data_dir / JOURNAL_DIR)
        else:
            committer = GroupCommitter(installation.store)
        audit = Audit(committer, installation.account_id)
    sealer = TrailSealer(
        installation.store,
        installation.audit_key,
        account_id=installation.account_id,
        clock=database_clock,
        policy=SealPolicy(
            max_seconds=settings.audit_seal_seconds, retention_days=settings.audit_retention_days
        ),
        mirror=settings.data_dir / AUDIT_DIR,
    )

    def start() -> None:
        threading.Thread(target=worker.run_forever, args=(stop,), daemon=True).start()
        threading.Thread(target=rotations.run_forever, args=(stop,), daemon=True).start()
        threading.Thread(target=sealer.run_forever, args=(stop,), daemon=True).start()
        if journal is not None:
            threading.Thread(target=journal.run_forever, args=(stop,), daemon=True).start()
        # Everything loaded so far (the service model, SQLAlchemy's tables, ...) lives as long
        # as the process: keep it out of the collector's full passes, whose pauses otherwise
        # show up as the slowest responses.
        gc.collect()
        gc.freeze()
        # The background threads (moving the journal in, sealing) run Python in stretches;
        # when the event loop wants the GIL back it waits up to this long for it. 1 ms
        # instead of CPython's 5: 21 interleaved rounds each (5-6 s, 32 connections), 6,816
        # against 6,746 GetSecretValue/s, p99 11.05 against 11.44 ms; small, but three
        # sets of rounds in four agreed.
        sys.setswitchinterval(_GIL_SWITCH_SECONDS)

    embedded = installation.store.reads_never_wait  # SQLite: one writer at a time anyway
    frontend = Frontend(
        handler,
        on_startup=start,
        on_shutdown=lambda: _shut_down(stop, audit),
        query_handler=identity,
        more_handlers=[
            CloudTrail(
                installation,
                authenticator,
                clock=clock,
                before_lookup=None if journal is None else journal.ingest,
            )
        ],
        audit=audit,
        threads=4 if embedded else SERVER_DATABASE_THREADS,
        writers=1 if embedded else SERVER_DATABASE_WRITERS,
        # A server database commits each call on its own: its writers take row locks, not
        # one lock for the database, and it flushes concurrent commits together itself.
        write_group=installation.store.write_group if embedded else None,
    )
    frontend.services.update(rotations=rotations, worker=worker, audit_sealer=sealer)
    return frontend


def _shut_down(stop: threading.Event, audit: Audit | None) -> None:
    stop.set()
    if audit is not None:
        audit.committer.close()  # its thread ends once the records in hand are committed


MAX_ATTEMPTS = 5
# Only on PostgreSQL, whose text cannot hold U+0000 (SQLite stores it); Strongroom's text.
NUL_REFUSED = "Strongroom cannot store the NUL character (U+0000) in this database."
# On a server database every statement waits on the network: more threads keep the CPU busy
# meanwhile (each holds a pooled connection: SqlStore's pool has 8 + 24 overflow). The reads
# of GetSecretValue and DescribeSecret run on the event loop instead (SqlStore.awaiting_reads):
# these threads serve the other reads, so a few do, and each process holds fewer connections.
SERVER_DATABASE_THREADS = 4
# More writers only contend for the GIL: PutSecretValue on PostgreSQL did 812-858/s with 4,
# 700-764/s with 6 (2 workers; it is CPU-bound, not waiting on the database).
SERVER_DATABASE_WRITERS = 4


def retrying(attempt: Callable[[], Outcome]) -> Outcome:
    """Run an operation again when its transaction lost a race (``TransientConflict``): each
    operation is one transaction, so a new attempt starts from the winner's result. Clients
    never see the conflict; after MAX_ATTEMPTS it is an internal error."""
    for n in range(1, MAX_ATTEMPTS + 1):
        try:
            return attempt()
        except TransientConflict:
            if n == MAX_ATTEMPTS:
                raise
            # Only server databases conflict, and there operations run in worker threads:
            # a short randomised pause does not hold up the event loop.
            time.sleep(random.uniform(0, 0.005 * 2**n))  # noqa: S311 - jitter, not a secret
    raise AssertionError  # unreachable


def _own_url(host: str, port: int) -> str:
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - listening everywhere: call loopback
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def app_from_environment() -> Frontend:
    """ASGI factory for multi-process serving: each worker process opens the installation
    from the ``STRONGROOM_*`` variables that ``strongroom serve`` exported for it."""
    from strongroom import settings as settings_module  # noqa: PLC0415 - factory-only path
    from strongroom.installation import open_installation  # noqa: PLC0415

    settings = settings_module.load({})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    return build_app(open_installation(settings, migrate_schema=False))
