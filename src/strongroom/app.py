"""``build_app(installation)``: the only place that wires the layers together.

HTTP (protocol.asgi) → SigV4 (auth.sigv4, auth.keys) → operations.registry → storage/crypto
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from strongroom.auth import sigv4
from strongroom.auth.keys import AccessKey, AccessKeys
from strongroom.domain.principal import Principal, root_principal
from strongroom.errors import InvalidRequestException
from strongroom.installation import Installation
from strongroom.operations.context import Context
from strongroom.operations.registry import NOT_YET, OPERATIONS, READ_ONLY, READ_ONLY_FAST
from strongroom.protocol.asgi import Frontend, HttpRequest, Lane, Outcome
from strongroom.protocol.model import ServiceModel
from strongroom.worker import Worker

logger = logging.getLogger("strongroom")


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    region: str


class SecretsManager:
    """The ``protocol.asgi.Handler`` for the Secrets Manager API."""

    def __init__(self, installation: Installation, *, clock: Any = time.time) -> None:
        self.installation = installation
        self.model = ServiceModel.load("secretsmanager")
        self.keys = AccessKeys(installation.store, installation.sealer)
        self.clock = clock
        self.dev = installation.settings.dev

    def authenticate(self, request: HttpRequest) -> Caller:
        verified = sigv4.verify(
            method=request.method,
            raw_path=request.raw_path,
            query_string=request.query_string,
            headers=request.headers,
            body=request.body,
            now=time.time(),  # real time: tests move the operations' clock, not the signer's
            lookup=self.keys.lookup,
            expected_service="secretsmanager",
            verify_signature=not self.dev,
        )
        key: AccessKey | None = verified.key
        if key is None:  # dev mode: any well-formed credentials act as the account root
            principal = root_principal(self.installation.account_id, verified.access_key_id)
        else:
            principal = key.principal
        return Caller(principal=principal, region=verified.region)

    def lane(self, operation: str) -> Lane:
        if operation in READ_ONLY_FAST and self.installation.store.reads_never_wait:
            return "inline"
        return "read" if operation in READ_ONLY else "write"

    def run(self, caller: Caller, operation: str, request: dict[str, Any]) -> Outcome:
        function = OPERATIONS.get(operation)
        if function is None:
            reason = NOT_YET.get(operation, "it is not supported")
            raise InvalidRequestException(f"Strongroom does not support {operation}: {reason}.")
        ctx = Context(
            store=self.installation.store,
            sealer=self.installation.sealer,
            account_id=self.installation.account_id,
            region=caller.region,
            principal=caller.principal,
            clock=self.clock,
            token_key=self.installation.token_key,
        )
        return Outcome(function(ctx, request), ctx.later)


def build_app(installation: Installation, *, clock: Any = time.time) -> Frontend:
    handler = SecretsManager(installation, clock=clock)
    worker = Worker(installation.store, clock=clock)
    stop = threading.Event()

    def start() -> None:
        threading.Thread(target=worker.run_forever, args=(stop,), daemon=True).start()
        # Everything loaded so far (the service model, SQLAlchemy's tables, ...) lives as long
        # as the process: keep it out of the collector's full passes, whose pauses otherwise
        # show up as the slowest responses.
        gc.collect()
        gc.freeze()

    return Frontend(handler, on_startup=start, on_shutdown=stop.set)


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
