"""Three ``strongroom serve`` processes on one PostgreSQL database, as an operator runs them.

Each node is the console script from the virtualenv, in its own process group, with a data
dir of its own but one shared master key file and the same root key and account id. The
database is new for every cluster (see ``tests/postgres.py``: ``TEST_POSTGRES_URL``,
skipped without it, a failure under ``CI=true``) and is migrated once, by ``strongroom
migrate``, before any node starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
import sqlalchemy as sa
from botocore.config import Config
from tests.conftest import ACCOUNT_ID, ROOT_KEY_ID, ROOT_SECRET
from tests.postgres import fresh_postgres_database

STRONGROOM = Path(sys.executable).parent / "strongroom"
REGION = "us-east-1"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_env() -> dict[str, str]:
    """This process's environment without STRONGROOM_*/AWS_* variables, plus the root key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    return env | {
        "STRONGROOM_ROOT_ACCESS_KEY_ID": ROOT_KEY_ID,
        "STRONGROOM_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
    }


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    # time.monotonic() just before SIGKILL was sent, and once the process was reaped: an
    # error after the first is expected; an answer to a request sent after the second is not.
    killing_at: float | None = None
    killed_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_9(self) -> None:
        """SIGKILL the server: no shutdown handler runs, no connection is closed cleanly."""
        assert self.process is not None
        self.killing_at = time.monotonic()
        self.process.kill()
        self.process.wait(timeout=10)
        self.killed_at = time.monotonic()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own group: see Cluster.launch
            self.process.wait()


@dataclass
class Cluster:
    database_url: str  # as given to --database-url
    master_key_file: Path
    root: Path
    nodes: list[Node] = field(default_factory=list)
    # One boto3 session makes every client: a session per client reloads the service model
    # (~0.1 s each). Making clients from one session is not thread-safe, hence the lock; the
    # clients themselves are each used by one thread.
    _session: boto3.session.Session = field(default_factory=boto3.session.Session)
    _session_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dsn(self) -> str:
        """The database for psycopg (a libpq URL, without SQLAlchemy's driver name)."""
        return (
            sa.engine.make_url(self.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)

    def settings_flags(self, data_dir: Path) -> list[str]:
        return [
            "--data-dir", str(data_dir),
            "--database-url", self.database_url,
            "--master-key-file", str(self.master_key_file),
        ]  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command that exits on its own (``migrate``, ``functions add``)."""
        return subprocess.run(  # noqa: S603 - our own CLI
            [str(STRONGROOM), *args],
            env=node_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def add_node(self) -> Node:
        n = len(self.nodes)
        node = Node(
            name=f"node{n}",
            port=free_port(),
            data_dir=self.root / f"node{n}",
            log=self.root / f"node{n}.log",
        )
        self.nodes.append(node)
        return node

    def launch(self, node: Node) -> None:
        argv = [str(STRONGROOM), "serve", "--port", str(node.port), "--account-id", ACCOUNT_ID]
        argv += self.settings_flags(node.data_dir)
        with node.log.open("ab") as sink:
            node.process = subprocess.Popen(  # noqa: S603 - our own CLI
                argv, env=node_env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        node.killing_at = node.killed_at = None

    def wait_until_answering(self, node: Node) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert node.process is not None
            if node.process.poll() is not None:
                pytest.fail(
                    f"{node.name} exited with {node.process.returncode}:\n{node.log.read_text()}"
                )
            try:
                httpx.post(node.url + "/", content=b"{}", timeout=1)
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        pytest.fail(f"{node.name} did not answer within {START_TIMEOUT} s:\n{node.log.read_text()}")

    def restart(self, node: Node) -> None:
        self.launch(node)
        self.wait_until_answering(node)

    def live_nodes(self) -> list[Node]:
        return [node for node in self.nodes if node.alive()]

    def client(self, node: Node, **config: Any) -> Any:
        """A boto3 client of its own, for one thread."""
        with self._session_lock:
            return self._session.client(
                "secretsmanager",
                endpoint_url=node.url,
                region_name=REGION,
                aws_access_key_id=ROOT_KEY_ID,
                aws_secret_access_key=ROOT_SECRET,
                config=Config(
                    retries={"max_attempts": 1},
                    connect_timeout=config.pop("connect_timeout", 2),
                    read_timeout=config.pop("read_timeout", 10),
                    **config,
                ),
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {node.name} ---\n{node.log.read_text()[-4000:]}"
            for node in self.nodes
            if node.log.exists()
        )


@contextlib.contextmanager
def one_cluster_at_a_time() -> Iterator[None]:
    """Held while a cluster runs, across the test processes (pytest -n): two clusters under
    load beside the other tests' servers took more connections than PostgreSQL's default
    max_connections (100) allows, which failed calls with "too many clients"."""
    with (Path(tempfile.gettempdir()) / "strongroom-test-clusters.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def running_cluster(root: Path, size: int = 3) -> Iterator[Cluster]:
    """A fresh database, migrated once; ``size`` nodes answering HTTP; all stopped afterwards.

    The first node starts alone and creates the master key file; the others start together
    once it answers, and read that file.
    """
    with one_cluster_at_a_time(), fresh_postgres_database() as url:
        cluster = Cluster(database_url=url, master_key_file=root / "master.key", root=root)
        migrated = cluster.cli(
            "migrate", "--data-dir", str(root / "migrate"), "--database-url", url
        )
        assert migrated.returncode == 0, migrated.stderr
        try:
            first = cluster.add_node()
            cluster.restart(first)
            assert cluster.master_key_file.exists()
            others = [cluster.add_node() for _ in range(size - 1)]
            for node in others:
                cluster.launch(node)
            for node in others:
                cluster.wait_until_answering(node)
            yield cluster
        finally:
            for node in cluster.nodes:
                node.stop()
