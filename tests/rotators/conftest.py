"""Fixtures for the built-in PostgreSQL rotators: a real PostgreSQL and a real Strongroom.

PostgreSQL: ``TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``),
as a superuser. Unreachable, the tests skip, except under ``CI=true``, where they fail.

How a password change is proven: this machine's (and CI's) pg_hba.conf trusts every local
TCP connection, so there a login proves nothing about a password, and editing system files is
not ours to do. So every test runs twice:

* ``shared``: on that server, reading ``pg_authid.rolpassword`` and checking the stored SCRAM
  (or md5) verifier against the plaintext in the secret: the new password matches, the old
  one does not (the check the server would make at login under password auth);
* ``password-auth``: on a throwaway cluster of our own (initdb in a temporary directory, as
  the ``postgres`` OS user when we are root, ``scram-sha-256`` for every connection, on a
  free loopback port), where additionally a real login must succeed with the new password
  and be refused with the old one. It needs the PostgreSQL server binaries (initdb, pg_ctl).

The actors: ``app`` roles (the login users being rotated, created with a known password),
``master`` (LOGIN CREATEROLE: creates the clone and sets passwords for the alternating
rotator), and the account root, whose access keys the rotator's boto3 client uses.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from tests.conftest import ROOT_KEY_ID, ROOT_SECRET, Server, in_ci

from strongroom.domain import stages

POSTGRES_ENV = "TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _skip_or_fail(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true, so the PostgreSQL rotators must be tested, but {reason}")
    pytest.skip(reason)


@dataclass
class Postgres:
    """A superuser connection, and the roles the test made (dropped at the end)."""

    admin: psycopg.Connection[Any]
    host: str
    port: int
    dbname: str
    checks_passwords: bool
    made: list[str] = field(default_factory=list)
    cleanup: list[sql.Composable] = field(default_factory=list)

    def create_role(self, prefix: str, password: str, *options: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.made.append(name)
        self.made.append(f"{name}_clone")  # should the alternating rotator clone it
        clause = sql.SQL(" ").join(sql.SQL(option) for option in ("LOGIN", *options))
        self.admin.execute(
            sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                sql.Identifier(name), clause, sql.Literal(password)
            )
        )
        return name

    def verifier(self, role: str) -> str | None:
        row = self.admin.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
        return None if row is None else row[0]

    def accepts(self, role: str, password: str) -> bool:
        """Whether password auth lets ``role`` in with ``password``; where the server checks
        passwords, a real login must agree with the stored verifier."""
        stored = self.verifier(role)
        matches = stored is not None and verifier_matches(stored, role, password)
        if self.checks_passwords:
            assert self.logs_in(role, password) == matches, (role, stored)
        return matches

    def logs_in(self, role: str, password: str) -> bool:
        try:
            conn = psycopg.connect(
                host=self.host,
                port=self.port,
                user=role,
                password=password,
                dbname=self.dbname,
                sslmode="disable",
                connect_timeout=5,
            )
        except psycopg.OperationalError:
            return False
        with conn:
            assert conn.pgconn.used_password
        return True

    def role_exists(self, role: str) -> bool:
        return self.verifier(role) is not None or bool(
            self.admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        )

    def secret_value(self, username: str, password: str, **extra: Any) -> str:
        value = {
            "engine": "postgres",
            "host": self.host,
            "port": self.port,
            "username": username,
            "password": password,
            "dbname": self.dbname,
            **extra,
        }
        return json.dumps(value)


def verifier_matches(stored: str, role: str, password: str) -> bool:
    """Check ``password`` against a pg_authid verifier (RFC 5802/7677 for SCRAM-SHA-256).

    SASLprep is skipped: the passwords here are printable ASCII, which it leaves unchanged.
    """
    if stored.startswith("md5"):
        return hmac.compare_digest(
            stored,
            "md5"
            + hashlib.md5(  # noqa: S324 - PostgreSQL's md5 verifier
                (password + role).encode()
            ).hexdigest(),
        )
    scheme, params, keys = stored.split("$")
    assert scheme == "SCRAM-SHA-256", scheme
    iterations, salt = params.split(":")
    stored_key, server_key = (base64.b64decode(part) for part in keys.split(":"))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    expected_server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key) and (
        hmac.compare_digest(expected_server, server_key)
    )


def _postgres_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def password_postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster that checks passwords on every connection."""
    bindir = _postgres_bindir()
    if bindir is None:
        _skip_or_fail("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_postgres: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _skip_or_fail("running as root and there is no postgres OS user to run initdb")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    password = uuid.uuid4().hex
    pwfile = base / "pw"
    pwfile.write_text(password)
    if as_postgres:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data, port = base / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True)  # noqa: S603

    try:
        run(
            str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
            "--auth=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"),
            "-w", "start")  # fmt: skip
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        _skip_or_fail(f"cannot start a private PostgreSQL: {exc.stderr.decode(errors='replace')}")
    try:
        yield f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["shared", "password-auth"])
def postgres(request: pytest.FixtureRequest) -> Iterator[Postgres]:
    checks_passwords = request.param == "password-auth"
    if checks_passwords:
        url = request.getfixturevalue("password_postgres_url")
    else:
        url = os.environ.get(POSTGRES_ENV) or DEFAULT_URL
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _skip_or_fail(f"PostgreSQL at {url} is unreachable ({POSTGRES_ENV}): {exc}")
    with admin:
        row = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (row and row[0]):
            _skip_or_fail(f"{url} does not log in as a superuser (pg_authid must be read)")
        info = admin.info
        pg = Postgres(admin, info.host, info.port, info.dbname, checks_passwords)
        try:
            yield pg
        finally:
            for statement in pg.cleanup:
                admin.execute(statement)
            # Clones first: they are members of the users they were cloned from.
            for name in sorted(pg.made, key=lambda n: not n.endswith("_clone")):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def rotator_env(monkeypatch: pytest.MonkeyPatch, server: Server, region: str) -> None:
    """What the rotation runner gives a function: the endpoint, the region, credentials."""
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", server.url)
    monkeypatch.setenv("AWS_REGION", region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ROOT_SECRET)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "EXCLUDE_CHARACTERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


PrepareRotation = Callable[[Any, str, str], None]


@pytest.fixture
def prepare_rotation(server: Server) -> PrepareRotation:
    """What RotateSecret does before it calls the function: rotation enabled, and an empty
    version ``token`` labelled AWSPENDING (taken off any other version).

    Stand-in until RotateSecret is served: it writes through the real store, in one
    transaction, as the operation would. Replace it with ``client.rotate_secret`` then.
    """

    def prepare(client: Any, secret_id: str, token: str) -> None:
        described = client.describe_secret(SecretId=secret_id)
        region = client.meta.region_name
        account = described["ARN"].split(":")[4]
        with server.installation.store.write() as tx:
            secret = tx.secret_by_arn(described["ARN"])
            assert secret is not None
            tx.lock_secret(secret.pk)
            tx.update_secret(
                secret.pk,
                rotation_enabled=True,
                rotation_lambda_arn=f"arn:aws:lambda:{region}:{account}:function:pg-rotator",
            )
            pending = tx.insert_version(secret.pk, token, server.clock(), None, None)
            labels = {
                v.pk: [s for s in v.stages if s != stages.AWSPENDING]
                for v in tx.versions(secret.pk)
            }
            labels[pending.pk] = [stages.AWSPENDING]
            tx.set_labels(secret.pk, {pk: s for pk, s in labels.items() if s})

    return prepare
