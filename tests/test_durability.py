"""An acknowledged write survives ``kill -9``: start ``strongroom serve`` as a real process,
write through boto3, SIGKILL it, start it again on the same data dir, read everything back.

SQLite runs in WAL mode with ``synchronous=FULL`` (storage/sql.py), so a 200 means the commit
is on disk; a process crash must never lose it, whatever else was in flight.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config
from tests.conftest import ACCOUNT_ID, ROOT_KEY_ID, ROOT_SECRET

pytestmark = pytest.mark.slow

REGION = "eu-west-1"


# -- a server in its own process ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str

    def kill_9(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown handler, no checkpoint, nothing flushed
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill_9()


def start(data_dir: Path, log: Path) -> ServerProcess:
    """``python -m strongroom serve`` on a free port; returns once it answers HTTP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env |= {
        "STRONGROOM_ROOT_ACCESS_KEY_ID": ROOT_KEY_ID,
        "STRONGROOM_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
    }
    port = free_port()
    argv = [sys.executable, "-m", "strongroom", "serve", "--data-dir", str(data_dir)]
    argv += ["--port", str(port), "--account-id", ACCOUNT_ID]
    with log.open("ab") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603 - our own CLI
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"strongroom serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.post(url + "/", content=b"{}", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
        else:
            return ServerProcess(process, url)
    process.kill()
    pytest.fail(f"strongroom serve did not answer within 30 s:\n{log.read_text()}")


@pytest.fixture
def run(tmp_path):
    """``run()`` starts a server on this test's data dir; every one is stopped at the end."""
    started: list[ServerProcess] = []

    def run_server() -> ServerProcess:
        started.append(start(tmp_path / "data", tmp_path / "server.log"))
        return started[-1]

    yield run_server
    for server in started:
        server.stop()


def client_for(server: ServerProcess, service: str = "secretsmanager") -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=ROOT_KEY_ID,
        aws_secret_access_key=ROOT_SECRET,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


# -- tests -------------------------------------------------------------------------------------


def test_every_acknowledged_write_survives_kill_9(run):
    first = run()
    client = client_for(first)
    acknowledged: dict[str, dict[str, Any]] = {}  # name -> {version id -> value}
    current: dict[str, Any] = {}
    for n in range(20):
        name = f"app/{n}"
        value: Any = f"value-{n}" if n % 2 else f"binary-{n}".encode()
        key = "SecretString" if n % 2 else "SecretBinary"
        created = client.create_secret(Name=name, Description=f"secret {n}", **{key: value})
        acknowledged[name] = {created["VersionId"]: value}
        current[name] = value
        for m in range(n % 3):  # some secrets get more versions
            newer = f"value-{n}-{m}"
            put = client.put_secret_value(SecretId=name, SecretString=newer)
            acknowledged[name][put["VersionId"]] = newer
            current[name] = newer
    client.tag_resource(SecretId="app/0", Tags=[{"Key": "team", "Value": "blue"}])
    client.delete_secret(SecretId="app/1", RecoveryWindowInDays=7)

    first.kill_9()
    client = client_for(run())

    for name, versions in acknowledged.items():
        got = client.get_secret_value(SecretId=name) if name != "app/1" else None
        if got is not None:
            assert got.get("SecretString", got.get("SecretBinary")) == current[name]
        for version_id, value in versions.items():
            if name == "app/1":
                continue
            got = client.get_secret_value(SecretId=name, VersionId=version_id)
            assert got.get("SecretString", got.get("SecretBinary")) == value, (name, version_id)
    assert client.describe_secret(SecretId="app/0")["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert "DeletedDate" in client.describe_secret(SecretId="app/1")
    listed = client.list_secrets(IncludePlannedDeletion=True, MaxResults=100)["SecretList"]
    assert sorted(s["Name"] for s in listed) == sorted(acknowledged)


def test_writes_acknowledged_while_the_process_is_killed_are_all_there_after_restart(  # noqa: C901 - one story, told in order
    run,
):
    server = run()
    setup = client_for(server)
    writers = 6
    # Per writer, in order: [version id, value, acknowledged?]. Each writer is sequential,
    # so at most its last attempt was in flight when the process died.
    attempts: list[list[list[Any]]] = []
    for w in range(writers):
        created = setup.create_secret(Name=f"busy/{w}", SecretString="initial")
        attempts.append([[created["VersionId"], "initial", True]])
    stop = threading.Event()

    def write(w: int) -> None:
        client = client_for(server)
        while not stop.is_set():
            attempt = [str(uuid.uuid4()), f"{w}-{uuid.uuid4().hex}", False]
            attempts[w].append(attempt)
            try:
                client.put_secret_value(
                    SecretId=f"busy/{w}", ClientRequestToken=attempt[0], SecretString=attempt[1]
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                return  # the server is gone; this write may or may not have committed
            attempt[2] = True

    def acknowledged() -> int:
        return sum(a[2] for per_writer in attempts for a in per_writer[1:])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while acknowledged() < 60 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill_9()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert acknowledged() >= 60, "the writers made too little progress to test anything"

    client = client_for(run())
    for w, per_writer in enumerate(attempts):
        name = f"busy/{w}"
        for version_id, value, acked in per_writer:
            if acked:
                got = client.get_secret_value(SecretId=name, VersionId=version_id)
                assert got["SecretString"] == value
        # AWSCURRENT is on the last acknowledged write, or on the one in flight after it.
        last_acked = max(i for i, a in enumerate(per_writer) if a[2])
        allowed = {a[0]: a[1] for a in per_writer[last_acked : last_acked + 2]}
        current = client.get_secret_value(SecretId=name)
        assert allowed.get(current["VersionId"]) == current["SecretString"]
        versions = client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
        labels = [stage for v in versions["Versions"] for stage in v.get("VersionStages", [])]
        assert labels.count("AWSCURRENT") == 1


def test_every_acknowledged_read_is_on_record_after_kill_9(run, tmp_path):
    """Reads are recorded in the process's journal (audit/journal.py), not the database: a
    process killed before moving it in leaves it to the next start, which adopts it."""
    first = run()
    client = client_for(first)
    client.create_secret(Name="audited/db", SecretString="value")
    answered = [
        client.get_secret_value(SecretId="audited/db")["ResponseMetadata"]["RequestId"]
        for _ in range(40)
    ]
    first.kill_9()  # at once: the newest may still be only in the journal

    second = run()
    trail = client_for(second, "cloudtrail")
    deadline = time.monotonic() + 15
    while True:
        pages = trail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}]
        )
        ids = [
            json.loads(event["CloudTrailEvent"])["requestID"]
            for page in pages
            for event in page["Events"]
        ]
        if set(answered) <= set(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(set(answered) & set(ids)) == sorted(answered)
    assert len(ids) == len(set(ids))  # adopted once, not twice
    # The dead process's segments are gone; only the live one's remain.
    left = [p.name for p in (tmp_path / "data" / "audit-journal").glob("*.log")]
    assert all(name.startswith(f"{second.process.pid}-") for name in left), left
