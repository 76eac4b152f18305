"""What one GetSecretValue costs, layer by layer, in CPU microseconds.

    .venv/bin/python bench/micro_get.py [--iterations 2000]

In-process and single-connection: no sockets, no load client. Each step is timed with
``time.process_time`` (CPU of every thread of this process), so the figures hold on a busy
machine where wall-clock rates do not. The steps are the pieces ``protocol.asgi.Frontend``
runs for a request, called the way it calls them, and the whole Frontend call at the end
(everything Strongroom does for a request, without uvicorn and the socket). One Python
process serves all requests, so 1,000,000 / (µs per request) is the most requests per
second one core can serve; the GetSecretValue target of 5,000/s needs <= 200 µs in all,
uvicorn's share included (bench/run.py's ceiling row shows that share).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

SECRETS = 1000
TOGETHER = 16  # calls in flight in each of two workers at 32 connections
_RAW_SECRET = "SELECT pk FROM secrets WHERE account_id = ? AND region = ? AND name = ?"
_RAW_VERSION = (
    "SELECT v.pk, v.version_id, v.sealed, group_concat(l2.stage) FROM version_stages l "
    "JOIN secret_versions v ON v.pk = l.version_pk "
    "JOIN version_stages l2 ON l2.version_pk = v.pk "
    "WHERE l.secret_pk = ? AND l.stage = ? GROUP BY v.pk"
)


def _nothing() -> None:
    pass


def cpu_us(fn: Callable[[], Any], iterations: int) -> float:
    fn()  # warm caches (compiled statements, signing keys)
    started = time.process_time()
    for _ in range(iterations):
        fn()
    return (time.process_time() - started) / iterations * 1e6


def cpu_us_async(make: Callable[[], Any], iterations: int, *, together: int = 1) -> float:
    """CPU per call of ``make()``; ``together`` calls at a time, as a busy server has them
    (then an audited call's record shares its journal write with the others')."""

    async def once() -> None:
        if together == 1:
            await make()
        else:
            await asyncio.gather(*(make() for _ in range(together)))

    async def loop() -> float:
        await once()
        rounds = max(1, iterations // together)
        started = time.process_time()
        for _ in range(rounds):
            await once()
        return (time.process_time() - started) / (rounds * together) * 1e6

    try:  # the loop uvicorn picks when uvloop is installed, as it is with uvicorn[standard]
        import uvloop  # noqa: PLC0415

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(loop())


def split_raw(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return headers, body


class Fixture:
    """An installation with SECRETS secrets and one signed GetSecretValue for one of them."""

    def __init__(self, workdir: Path) -> None:
        from strongroom.app import Authenticator, Caller, SecretsManager  # noqa: PLC0415
        from strongroom.audit.journal import Journal  # noqa: PLC0415
        from strongroom.domain.principal import root_principal  # noqa: PLC0415
        from strongroom.installation import open_installation  # noqa: PLC0415
        from strongroom.operations.access import RequestFacts  # noqa: PLC0415
        from strongroom.operations.context import Context  # noqa: PLC0415
        from strongroom.protocol.asgi import Audit, Frontend, HttpRequest  # noqa: PLC0415
        from strongroom.settings import Settings  # noqa: PLC0415

        self.hop_pool = ThreadPoolExecutor(4)

        self.workdir = workdir
        self.installation = open_installation(
            Settings(data_dir=workdir / "data", account_id=h.ACCOUNT_ID),
            environ={
                "STRONGROOM_ROOT_ACCESS_KEY_ID": h.ROOT_KEY_ID,
                "STRONGROOM_ROOT_SECRET_ACCESS_KEY": h.ROOT_SECRET,
            },
        )
        self.store = self.installation.store
        self.handler = SecretsManager(self.installation, Authenticator(self.installation))
        self.caller = Caller(
            root_principal(h.ACCOUNT_ID, h.ROOT_KEY_ID),
            h.REGION,
            RequestFacts(source_ip=None, secure_transport=False, time=0.0),
        )
        create = self.handler.model.operation("CreateSecret")
        assert create is not None
        for operation, body in h.create_items(0, SECRETS):
            self.handler.run(
                self.caller, operation, create.parse_input(json.dumps(body).encode()), None
            )
        self.name = h.secret_name(SECRETS // 2)
        raw = h.Signer(8855).sign("GetSecretValue", {"SecretId": self.name})
        self.headers, self.body = split_raw(raw)
        self.request = HttpRequest(
            "POST", b"/", b"", self.headers, self.body, "127.0.0.1", secure=False
        )
        model_op = self.handler.model.operation("GetSecretValue")
        assert model_op is not None
        self.model_op = model_op
        self.parsed = model_op.parse_input(self.body)
        self.result = self.handler.run(self.caller, "GetSecretValue", self.parsed, None).result
        self.ctx = Context(
            store=self.store,
            sealer=self.installation.sealer,
            account_id=self.installation.account_id,
            region=h.REGION,
            principal=self.caller.principal,
            clock=time.time,
            token_key=self.installation.token_key,
        )
        with self.store.read() as tx:
            self.secret = tx.secret_by_name(h.ACCOUNT_ID, h.REGION, self.name)
            self.version = tx.version_by_stage(self.secret.pk, "AWSCURRENT")
        self.frontend = Frontend(self.handler)
        self.journal = Journal(self.store, workdir / "journal")
        self.audited = Frontend(
            SecretsManager(self.installation, Authenticator(self.installation)),
            audit=Audit(self.journal, self.installation.account_id),
        )
        self.db = sqlite3.connect(workdir / "data" / "strongroom.db")

    def close(self) -> None:
        self.journal.close()
        self.db.close()
        self.installation.close()

    def empty_transaction(self) -> None:
        with self.store.read():
            pass

    def read_rows(self) -> None:
        with self.store.read() as tx:
            secret = tx.secret_by_name(h.ACCOUNT_ID, h.REGION, self.name)
            tx.version_by_stage(secret.pk, "AWSCURRENT")

    def raw_lookup(self) -> None:
        # Reference only: the same two lookups as hand-written SQL on the sqlite3 module.
        row = self.db.execute(_RAW_SECRET, (h.ACCOUNT_ID, h.REGION, self.name)).fetchone()
        self.db.execute(_RAW_VERSION, (row[0], "AWSCURRENT")).fetchone()

    def open_value(self) -> None:
        from strongroom.operations.context import open_value  # noqa: PLC0415

        open_value(self.ctx, self.secret.arn, self.version.version_id, self.version.sealed)

    def get_secret_value(self) -> None:
        from strongroom.operations.values import get_secret_value  # noqa: PLC0415

        get_secret_value(self.ctx, self.parsed)

    async def thread_hop(self) -> None:
        """A hop to a worker thread and back, as the front end makes one for an operation
        that may wait (GetSecretValue on PostgreSQL; on SQLite it runs on the loop)."""
        await asyncio.get_running_loop().run_in_executor(self.hop_pool, _nothing)

    def record(self) -> None:
        """A GetSecretValue's CloudTrail record, built as the front end builds it."""
        call = self.audited._call(self.request, "0" * 36, "secretsmanager")  # noqa: SLF001
        assert call is not None
        call.event_name, call.request, call.read_only = "GetSecretValue", self.parsed, True
        call.principal, call.region = self.caller.principal, h.REGION
        call.row(response=self.result)

    async def asgi_call(self, frontend: Any = None) -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": self.body, "more_body": False}

        async def send(_message: dict[str, Any]) -> None:
            return None

        await (frontend or self.frontend)(scope, receive, send)

    async def audited_call(self) -> None:
        await self.asgi_call(self.audited)


def measure(f: Fixture, n: int) -> list[tuple[str, float]]:
    try:
        f.raw_lookup()
        reference = cpu_us(f.raw_lookup, n)
    except sqlite3.Error:  # the schema moved on: the reference SQL no longer fits
        reference = float("nan")
    return [
        ("SigV4: authenticate (verify)", cpu_us(lambda: f.handler.authenticate(f.request), n)),
        ("model: parse_input", cpu_us(lambda: f.model_op.parse_input(f.body), n)),
        ("operation: get_secret_value (all of it)", cpu_us(f.get_secret_value, n)),
        ("  storage: empty read transaction", cpu_us(f.empty_transaction, n)),
        ("  storage: transaction + secret_by_name + version_by_stage", cpu_us(f.read_rows, n)),
        ("  (reference: the same lookups as raw SQL on sqlite3)", reference),
        ("  crypto: open_value (unwrap + AES-GCM)", cpu_us(f.open_value, n)),
        ("model: serialize_output", cpu_us(lambda: f.model_op.serialize_output(f.result), n)),
        ("thread hop: run_in_executor, one at a time (no work)", cpu_us_async(f.thread_hop, n)),
        ("uuid4 (request id)", cpu_us(uuid.uuid4, n)),
        ("Frontend: the whole ASGI call (no uvicorn, no socket)", cpu_us_async(f.asgi_call, n)),
        ("audit: the call's record (CallAudit.row)", cpu_us(f.record, n)),
        (
            f"Frontend, {TOGETHER} calls at once (the audit trail off)",
            cpu_us_async(f.asgi_call, n, together=TOGETHER),
        ),
        (
            (
                f"Frontend with the audit trail, {TOGETHER} calls at once: records share "
                "journal writes (the syncer's process not counted)"
            ),
            cpu_us_async(f.audited_call, n, together=TOGETHER),
        ),
        (
            "Frontend with the audit trail: one journal write + fdatasync per call (no batching)",
            cpu_us_async(f.audited_call, n),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-micro-"))
    fixture = Fixture(workdir)
    try:
        steps = measure(fixture, args.iterations)
    finally:
        fixture.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"CPU per call, {args.iterations} calls each, {SECRETS:,} secrets (SQLite)")
    for label, micros in steps:
        print(f"  {micros:8.1f} µs  {label}")
    whole = steps[-1][1]
    print(f"=> at most {1e6 / whole:,.0f} GetSecretValue/s per core, before uvicorn's share")
    return 0


if __name__ == "__main__":
    sys.exit(main())
