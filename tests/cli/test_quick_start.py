"""The README's Quick start works as written: its server command, run in a fresh copy of the
project, installs Strongroom and serves a real boto3 call."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_the_quick_start_has_exactly_two_commands():
    assert quick_start_commands() == ["./scripts/serve", "./scripts/test"]


def test_the_quick_start_server_command_works_in_a_fresh_copy(tmp_path):
    tracked = subprocess.run(
        ["git", "ls-files"],  # noqa: S607 - git from PATH, like a developer's shell
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    copy = tmp_path / "strongroom"
    for name in tracked:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env.pop("VIRTUAL_ENV", None)
    command = quick_start_commands()[0]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - the README's own command
        [*command.split(), "--port", str(port)],
        cwd=copy,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600  # a fresh venv installs every dependency
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.post(url, content=b"{}", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        credentials = (copy / "strongroom-data" / "root-credentials").read_text()
        key_id = re.search(r"aws_access_key_id = (\S+)", credentials)[1]
        secret = re.search(r"aws_secret_access_key = (\S+)", credentials)[1]
        assert key_id in (tmp_path / "serve.log").read_text()  # printed once, on first start
        client = boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )
        client.create_secret(Name="app/db", SecretString='{"password": "hunter2"}')
        assert client.get_secret_value(SecretId="app/db")["SecretString"] == (
            '{"password": "hunter2"}'
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        log.close()
