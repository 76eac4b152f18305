"""Shared fixtures: a real Strongroom server on loopback, and boto3 clients for it.

The server runs in-process (uvicorn in a thread, on a port the OS picks), so coverage sees
its code; one server per test session (per xdist worker). Tests stay independent by each
using its own region: secrets live per region, so a test's ListSecrets sees only its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config
from tests.postgres import fresh_postgres_database

from strongroom.app import build_app
from strongroom.installation import Installation, open_installation
from strongroom.settings import Settings

ACCOUNT_ID = "123456789012"
# alice: the account root, allowed everything (the only principal until IAM lands).
ROOT_KEY_ID = "AKIAROOTTESTKEY00001"
ROOT_SECRET = "root-secret-access-key-for-tests-only"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass
class Clock:
    """The operations' clock; tests move it forward instead of sleeping."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Server:
    url: str
    installation: Installation
    clock: Clock
    data_dir: Path
    app: Any = field(repr=False)
    uv: Any = field(default=None, repr=False)  # the uvicorn.Server, and its thread
    thread: threading.Thread | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop serving, wait for the app's shutdown (its background threads end with it),
        then close the installation: nothing of the server outlives its test's database."""
        self.uv.should_exit = True
        if self.thread is not None:
            self.thread.join(15)
        self.installation.close()

    @property
    def cli_args(self) -> list[str]:
        """What a ``strongroom`` command needs to reach this installation."""
        args = ["--data-dir", str(self.data_dir)]
        database_url = self.installation.settings.database_url
        return args if database_url is None else [*args, "--database-url", database_url]

    def settle_audit(self) -> None:
        """Move this server's audit journal (embedded SQLite) into the trail: the records
        of reads reach it from there a moment after their replies (audit/journal.py)."""
        audit = self.app.audit
        ingest = getattr(audit.committer, "ingest", None) if audit else None
        if ingest is not None:
            ingest()

    def service_client(
        self,
        service: str,
        region: str = "us-east-1",
        creds: dict[str, Any] | None = None,
        **config: Any,
    ) -> Any:
        """A boto3 client of any service served here (iam, sts, cloudtrail, ...), as the
        root or with ``creds`` as STS and IAM return them (SessionToken when there is one)."""
        creds = creds or {"AccessKeyId": ROOT_KEY_ID, "SecretAccessKey": ROOT_SECRET}
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken"),
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def client(self, region: str = "us-east-1", **kwargs: Any) -> Any:
        return boto3.client(
            "secretsmanager",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=kwargs.pop("key_id", ROOT_KEY_ID),
            aws_secret_access_key=kwargs.pop("secret", ROOT_SECRET),
            config=Config(retries={"max_attempts": 1}, **kwargs),
        )


def serve_in_thread(make_app: Any) -> tuple[str, uvicorn.Server, threading.Thread, Any]:
    """Serve ``make_app(url)`` (the app learns its own URL: rotation functions call it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = make_app(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return url, server, thread, app


def start_server(data_dir: Path, **settings: Any) -> Server:
    environ = {
        "STRONGROOM_ROOT_ACCESS_KEY_ID": ROOT_KEY_ID,
        "STRONGROOM_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
    }
    installation = open_installation(
        Settings(data_dir=data_dir, account_id=ACCOUNT_ID, **settings), environ
    )
    clock = Clock()
    url, uv, thread, app = serve_in_thread(
        lambda url: build_app(installation, clock=clock, endpoint_url=url)
    )
    return Server(
        url=url,
        installation=installation,
        clock=clock,
        data_dir=data_dir,
        app=app,
        uv=uv,
        thread=thread,
    )


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server every API test talks to, once per backend: SQLite in its data dir, and a
    PostgreSQL database of this session's own (``tests.postgres``)."""
    with contextlib.ExitStack() as stack:
        settings: dict[str, Any] = {}
        if request.param == "postgres":
            settings["database_url"] = stack.enter_context(fresh_postgres_database())
        srv = start_server(tmp_path_factory.mktemp("strongroom"), **settings)
        yield srv
        srv.stop()


_regions = itertools.count(1)


@pytest.fixture
def region() -> str:
    """A region of this test's own (secrets are per region), e.g. ``t3f9a1c2-east-1``."""
    return f"t{uuid.uuid4().hex[:7]}-east-{next(_regions)}"


@pytest.fixture
def client(server: Server, region: str) -> Any:
    return server.client(region)


@pytest.fixture
def clock(server: Server) -> Iterator[Clock]:
    yield server.clock
    server.clock.offset = 0.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
