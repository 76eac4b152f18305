"""``strongroom serve`` and ``strongroom master-key rotate``, run as a user runs them: the
console script from the virtualenv, in its own process, configured by flags or variables."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from strongroom.crypto.envelope import Sealer, aad_for_access_key
from strongroom.crypto.keys import load_keyring

pytestmark = pytest.mark.slow

STRONGROOM = Path(sys.executable).parent / "strongroom"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any STRONGROOM_* or AWS_* variable, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    return env | variables


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    url: str
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Its own process group (see launch): --workers children go with it.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def launch(args: list[str], env: dict[str, str], port: int, logs: Path) -> Running:
    """``strongroom <args>``; returns once the server answers HTTP on ``port``."""
    logs.mkdir(parents=True, exist_ok=True)
    n = len(list(logs.glob("*.out")))
    out, err = logs / f"{n}.out", logs / f"{n}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [STRONGROOM, *args], env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
    running = Running(process, f"http://127.0.0.1:{port}", out, err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"strongroom exited with {process.returncode}:\n{running.stderr}")
        try:
            httpx.post(running.url + "/", content=b"{}", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
        else:
            return running
    running.stop()
    pytest.fail(f"strongroom serve did not answer within 30 s:\n{running.stderr}")


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command that exits on its own (anything but a server that starts)."""
    return subprocess.run(  # noqa: S603 - our own CLI
        [STRONGROOM, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def client(url: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def printed(text: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}\s*(\S+)\s*$", text, re.MULTILINE)
    assert match, f"{label!r} not in the output:\n{text}"
    return match.group(1)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- first start, then a restart, on one data dir -------------------------------------------


@dataclass
class Installed:
    data_dir: Path
    first: Running  # stopped: its output is what a new user sees
    second: Running  # the same data dir started again, still running
    key_id: str
    secret: str


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``strongroom serve --data-dir D --port P`` on an empty D with no credentials given,
    stopped and started again."""
    base = tmp_path_factory.mktemp("serve")
    data_dir = base / "data"
    port = free_port()
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port)]
    first = launch(args, clean_env(), port, base / "logs")
    first.stop()
    key_id = printed(first.stdout, "AWS_ACCESS_KEY_ID=")
    secret = printed(first.stdout, "AWS_SECRET_ACCESS_KEY=")
    second = launch(args, clean_env(), port, base / "logs")
    yield Installed(data_dir, first, second, key_id, secret)
    second.stop()


def test_it_prints_the_endpoint(installed):
    assert printed(installed.first.stdout, "endpoint:") == installed.second.url


def test_first_start_prints_root_credentials_and_writes_them_to_a_private_file(installed):
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", installed.key_id)
    assert len(installed.secret) >= 30
    path = installed.data_dir / "root-credentials"
    assert mode_of(path) == 0o600
    text = path.read_text()
    assert f"aws_access_key_id = {installed.key_id}" in text
    assert f"aws_secret_access_key = {installed.secret}" in text


def test_the_generated_root_credentials_work_with_boto3(installed):
    sm = client(installed.second.url, installed.key_id, installed.secret)
    sm.create_secret(Name="first/secret", SecretString="hello")
    assert sm.get_secret_value(SecretId="first/secret")["SecretString"] == "hello"


def test_the_credentials_file_works_as_an_aws_shared_credentials_file(installed, monkeypatch):
    # The README's second way in: AWS_SHARED_CREDENTIALS_FILE=<data dir>/root-credentials.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(installed.data_dir / "root-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(installed.data_dir / "no-such-config"))
    sm = boto3.session.Session().client(
        "secretsmanager", endpoint_url=installed.second.url, region_name=REGION
    )
    assert sm.list_secrets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_wrong_credentials_are_refused(installed):
    sm = client(installed.second.url, installed.key_id, installed.secret + "x")
    with pytest.raises(sm.exceptions.ClientError) as error:
        sm.list_secrets()
    assert error.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_the_master_key_file_is_private(installed):
    assert mode_of(installed.data_dir / "master.key") == 0o600


def test_the_account_id_is_twelve_digits_and_survives_a_restart(installed):
    account_id = printed(installed.first.stdout, "account id:")
    assert re.fullmatch(r"\d{12}", account_id)
    assert printed(installed.second.stdout, "account id:") == account_id
    sm = client(installed.second.url, installed.key_id, installed.secret)
    arn = sm.create_secret(Name="arn/check", SecretString="v")["ARN"]
    assert arn.split(":")[4] == account_id


def test_a_restart_does_not_print_or_regenerate_the_credentials(installed):
    assert installed.secret not in installed.second.stdout
    assert "AWS_SECRET_ACCESS_KEY" not in installed.second.stdout
    text = (installed.data_dir / "root-credentials").read_text()
    assert installed.secret in text


def test_a_restart_with_another_account_id_is_refused_with_a_clear_message(installed):
    account_id = printed(installed.first.stdout, "account id:")
    other = "999999999999" if account_id != "999999999999" else "111111111111"
    args = ["serve", "--data-dir", str(installed.data_dir), "--port", str(free_port())]
    result = run_cli([*args, "--account-id", other], clean_env())
    assert result.returncode != 0
    assert account_id in result.stderr
    assert other in result.stderr
    assert "Traceback" not in result.stderr


# -- configuration from the environment -----------------------------------------------------------


def test_strongroom_variables_work_as_well_as_flags(tmp_path):
    port = free_port()
    data_dir = tmp_path / "from-env"
    env = clean_env(
        STRONGROOM_PORT=str(port),
        STRONGROOM_DATA_DIR=str(data_dir),
        STRONGROOM_ACCOUNT_ID="210987654321",
        STRONGROOM_ROOT_ACCESS_KEY_ID="AKIAENVROOTKEY000001",
        STRONGROOM_ROOT_SECRET_ACCESS_KEY="env-root-secret",
    )
    running = launch(["serve"], env, port, tmp_path / "logs")
    try:
        assert printed(running.stdout, "endpoint:") == running.url
        assert printed(running.stdout, "account id:") == "210987654321"
        assert (data_dir / "strongroom.db").exists()
        sm = client(running.url, "AKIAENVROOTKEY000001", "env-root-secret")
        arn = sm.create_secret(Name="env", SecretString="v")["ARN"]
        assert ":210987654321:" in arn
        # Credentials given in the environment are never written to a file.
        assert not (data_dir / "root-credentials").exists()
        assert "env-root-secret" not in running.stdout + running.stderr
    finally:
        running.stop()


def test_several_worker_processes_serve_one_data_dir(tmp_path):
    port, data_dir = free_port(), tmp_path / "data"
    env = clean_env(
        STRONGROOM_ROOT_ACCESS_KEY_ID="AKIAWORKERSROOT00001",
        STRONGROOM_ROOT_SECRET_ACCESS_KEY="workers-root-secret",
    )
    args = ["serve", "--workers", "2", "--port", str(port), "--data-dir", str(data_dir)]
    running = launch(args, env, port, tmp_path / "logs")
    try:
        for n in range(12):  # a new client, so a new connection, lands on either worker
            sm = client(running.url, "AKIAWORKERSROOT00001", "workers-root-secret")
            sm.create_secret(Name=f"w/{n}", SecretString=f"v{n}")
        for n in range(12):
            sm = client(running.url, "AKIAWORKERSROOT00001", "workers-root-secret")
            assert sm.get_secret_value(SecretId=f"w/{n}")["SecretString"] == f"v{n}"
        sm = client(running.url, "AKIAWORKERSROOT00001", "workers-root-secret")
        assert len(sm.list_secrets(MaxResults=100)["SecretList"]) == 12
    finally:
        running.stop()
    assert "Traceback" not in running.stderr


def test_an_unknown_log_level_is_refused_with_a_usage_error(tmp_path):
    args = ["serve", "--log-level", "loud", "--port", str(free_port())]
    result = run_cli([*args, "--data-dir", str(tmp_path / "data")], clean_env())
    assert result.returncode == 2  # click's usage error, like every other bad setting
    assert "Traceback" not in result.stderr
    assert "--log-level" in result.stderr


def test_the_database_is_private_even_in_a_data_dir_that_already_existed(tmp_path):
    data_dir = tmp_path / "made-by-the-operator"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # whatever the test runner's umask
    port = free_port()
    env = clean_env(
        STRONGROOM_ROOT_ACCESS_KEY_ID="AKIAPRIVATEROOT00001",
        STRONGROOM_ROOT_SECRET_ACCESS_KEY="private-root-secret",
    )
    args = ["serve", "--port", str(port), "--data-dir", str(data_dir)]
    launch(args, env, port, tmp_path / "logs").stop()
    # Other users get at the database if the directory lets them through and the file
    # lets them read (names, descriptions, tags and the NextToken signing key are clear).
    directory = mode_of(data_dir)
    for name in ("strongroom.db", "strongroom.db-wal", "strongroom.db-shm"):
        path = data_dir / name
        if path.exists():
            file = mode_of(path)
            assert not (directory & 0o010 and file & 0o040), f"group can read {name}"
            assert not (directory & 0o001 and file & 0o004), f"others can read {name}"


# -- development mode -----------------------------------------------------------------------------


def test_dev_mode_accepts_any_well_formed_credentials_and_warns_loudly(tmp_path):
    port = free_port()
    # The variable asks for every interface; the flag wins, as flags do.
    env = clean_env(STRONGROOM_HOST="0.0.0.0")  # noqa: S104 - refused unless the flag wins
    args = ["serve", "--dev", "--host", "127.0.0.1", "--port", str(port)]
    running = launch([*args, "--data-dir", str(tmp_path / "dev")], env, port, tmp_path / "logs")
    try:
        assert "WARNING" in running.stderr
        assert "--dev" in running.stderr
        anyone = client(running.url, "AKIAANYONEATALL00000", "any secret at all")
        anyone.create_secret(Name="dev", SecretString="v")
        someone_else = client(running.url, "AKIASOMEONEELSE00000", "another")
        assert someone_else.get_secret_value(SecretId="dev")["SecretString"] == "v"
        # Well-formed still matters: an unsigned request is refused.
        unsigned = httpx.post(running.url + "/", content=b"{}")
        assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--dev", "--host", "0.0.0.0"], {}),  # noqa: S104 - the point of the test
        (["--host", "0.0.0.0"], {"STRONGROOM_DEV": "true"}),  # noqa: S104
    ],
    ids=["flags", "dev-from-env"],
)
def test_dev_mode_refuses_to_listen_beyond_loopback(tmp_path, args, env):
    data_dir = tmp_path / "dev"
    result = run_cli(
        ["serve", *args, "--port", str(free_port()), "--data-dir", str(data_dir)],
        clean_env(**env),
    )
    assert result.returncode != 0
    assert "loopback" in result.stderr
    assert not data_dir.exists()  # refused before anything was created


# -- master-key rotation under a running server ---------------------------------------------------


def key_ids(db: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT s.name, v.version_id, v.master_key_id FROM secret_versions v "
            "JOIN secrets s ON s.pk = v.secret_pk WHERE v.sealed IS NOT NULL"
        ).fetchall()
    conn.close()
    return {(name, version): key for name, version, key in rows}


def test_master_key_rotate_rewraps_every_value_while_the_server_keeps_serving(tmp_path):
    port, data_dir = free_port(), tmp_path / "data"
    env = clean_env(
        STRONGROOM_ROOT_ACCESS_KEY_ID="AKIAROTATEROOT000001",
        STRONGROOM_ROOT_SECRET_ACCESS_KEY="rotate-root-secret",
    )
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port)]
    running = launch(args, env, port, tmp_path / "logs")
    try:
        sm = client(running.url, "AKIAROTATEROOT000001", "rotate-root-secret")
        values: dict[tuple[str, str], Any] = {}
        for n in range(12):
            name = f"rot/{n}"
            value: Any = f"string {n}" if n % 3 else bytes([n, 0, 255]) * 10
            kind = "SecretString" if n % 3 else "SecretBinary"
            values[name, sm.create_secret(Name=name, **{kind: value})["VersionId"]] = value
            if n % 2:
                newer = f"newer {n}"
                values[
                    name, sm.put_secret_value(SecretId=name, SecretString=newer)["VersionId"]
                ] = newer
        before = key_ids(data_dir / "strongroom.db")
        assert set(before) == set(values)
        (old_key,) = set(before.values())

        result = run_cli(["master-key", "rotate", "--data-dir", str(data_dir)], env)
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr
        assert "re-wrapping" in output  # the progress bar
        assert f"{len(values)} secret versions" in output

        after = key_ids(data_dir / "strongroom.db")
        assert set(after) == set(values)
        (new_key,) = set(after.values())
        assert new_key != old_key
        assert new_key in output
        for (name, version_id), value in values.items():
            got = sm.get_secret_value(SecretId=name, VersionId=version_id)
            assert got.get("SecretString", got.get("SecretBinary")) == value
        # The root access key was re-wrapped too, and opens under the new key.
        with sqlite3.connect(data_dir / "strongroom.db") as conn:
            ((access_key_id, sealed, key_id),) = conn.execute(
                "SELECT access_key_id, sealed_secret, master_key_id FROM access_keys"
            ).fetchall()
        conn.close()
        assert key_id == new_key
        sealer = Sealer(load_keyring(data_dir / "master.key"))
        assert sealer.open(sealed, aad_for_access_key(access_key_id)) == b"rotate-root-secret"
    finally:
        running.stop()


def test_worker_processes_share_one_audit_trail_that_seals_and_verifies(tmp_path):
    """Both processes record calls on the same data dir and take turns sealing: the chain
    verifies, in the database and in the data dir's copy."""
    port, data_dir = free_port(), tmp_path / "data"
    env = clean_env(
        STRONGROOM_ROOT_ACCESS_KEY_ID="AKIAWORKERSROOT00002",
        STRONGROOM_ROOT_SECRET_ACCESS_KEY="workers-root-secret",
        STRONGROOM_AUDIT_SEAL_SECONDS="0.5",
    )
    args = ["serve", "--workers", "2", "--port", str(port), "--data-dir", str(data_dir)]
    running = launch(args, env, port, tmp_path / "logs")
    try:
        for n in range(20):  # a new client, so a new connection, lands on either worker
            sm = client(running.url, "AKIAWORKERSROOT00002", "workers-root-secret")
            sm.create_secret(Name=f"audited/{n}", SecretString=f"value-{n}")
            sm.get_secret_value(SecretId=f"audited/{n}")
        deadline = time.monotonic() + 30
        while True:  # the sealer looks every second
            verified = run_cli(["audit", "verify", "--data-dir", str(data_dir)], env)
            if "; 0 records not yet sealed" in verified.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        running.stop()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "; 0 records not yet sealed" in verified.stdout
    checked = re.search(r"(\d+) records checked", verified.stdout)
    assert checked is not None
    assert int(checked[1]) >= 40  # every call (the start-up probes' records come on top)
    copy = run_cli(
        ["audit", "verify", "--data-dir", str(data_dir), "--dir", str(data_dir / "audit")], env
    )
    assert copy.returncode == 0, copy.stdout + copy.stderr
    assert "Traceback" not in running.stderr


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets whose local port is ``port``, in ``state`` (hex, as in
    /proc/net/tcp: 0A listening, 01 established)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(int(fields[9]))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def _launch_workers(tmp_path: Path, key_id: str) -> tuple[Running, int]:
    port = free_port()
    env = clean_env(
        STRONGROOM_ROOT_ACCESS_KEY_ID=key_id, STRONGROOM_ROOT_SECRET_ACCESS_KEY="workers-secret"
    )
    args = ["serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    running = launch(args, env, port, tmp_path / "logs")
    _until(lambda: len(_children(running.process.pid)) == 2, "both workers started")
    return running, port


def test_the_supervisor_listens_once_and_hands_connections_to_the_workers_evenly(tmp_path):
    running, port = _launch_workers(tmp_path, "AKIASPREADROOT000001")
    # One listening socket, the supervisor's: a worker never accepts by itself.
    assert _tcp_sockets(port, "0A") <= _socket_inodes(running.process.pid)
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    try:
        workers = _children(running.process.pid)
        assert len(workers) == 2
        for pid in workers:  # fewer malloc arenas: less resident memory (supervisor.py)
            assert b"MALLOC_ARENA_MAX=2" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")

        def held(pid: int) -> int:
            accepted = _tcp_sockets(port, "01")  # the server's ends (an inode once accepted)
            return len(_socket_inodes(pid) & accepted)

        _until(lambda: sum(map(held, workers)) == 32, "all 32 connections handed over")
        # In turn, not by a hash of the addresses (which split 32 as 22 and 10 in the bench).
        assert [held(pid) for pid in workers] == [16, 16]
        assert held(running.process.pid) == 0  # the supervisor kept no copy
        sm = client(running.url, "AKIASPREADROOT000001", "workers-secret")
        for n in range(4):  # new connections of a real client, served by either worker
            sm.create_secret(Name=f"spread/{n}", SecretString="v")
    finally:
        for connection in connections:
            connection.close()
        running.stop()
    assert "Traceback" not in running.stderr


def test_a_worker_killed_is_replaced_and_a_killed_supervisor_takes_its_workers_along(tmp_path):
    running, _ = _launch_workers(tmp_path, "AKIAREPLACEROOT00001")
    try:
        first, _ = _children(running.process.pid)
        os.kill(first, signal.SIGKILL)
        _until(
            lambda: (
                len(_children(running.process.pid)) == 2
                and first not in _children(running.process.pid)
            ),
            "a new worker in place of the one killed",
        )
        for n in range(6):  # new clients, new connections: either worker answers
            sm = client(running.url, "AKIAREPLACEROOT00001", "workers-secret")
            sm.create_secret(Name=f"after/{n}", SecretString="v")
            sm.get_secret_value(SecretId=f"after/{n}")  # a read: its record goes to the journal
        workers = _children(running.process.pid)
        # The supervisor syncs the workers' audit journals: no syncer process of their own.
        assert [_children(pid) for pid in workers] == [[], []]
        os.kill(running.process.pid, signal.SIGKILL)  # the supervisor, without a word
        running.process.wait()
        _until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers end")
    finally:
        running.stop()


def test_a_port_taken_by_another_program_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(
            STRONGROOM_ROOT_ACCESS_KEY_ID="AKIATAKENPORTROOT001",
            STRONGROOM_ROOT_SECRET_ACCESS_KEY="taken-secret",
        )
        args = ["serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path)]
        result = run_cli(args, env)
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1 port" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_0_gives_every_worker_the_one_port_the_kernel_picked(tmp_path):
    env = clean_env(
        STRONGROOM_ROOT_ACCESS_KEY_ID="AKIAPORTZEROROOT0001",
        STRONGROOM_ROOT_SECRET_ACCESS_KEY="port-zero-secret",
    )
    args = ["serve", "--workers", "2", "--port", "0", "--data-dir", str(tmp_path / "d")]
    err = tmp_path / "err"
    with err.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [STRONGROOM, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    running = Running(process, "", tmp_path / "out", err)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.findall(r"listening on port (\d+)", err.read_text())):
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        port = int(found[0])
        _until(lambda: len(_children(process.pid)) == 2, "both workers started")
        sm = client(f"http://127.0.0.1:{port}", "AKIAPORTZEROROOT0001", "port-zero-secret")
        sm.create_secret(Name="zero", SecretString="v")
    finally:
        running.stop()
