"""A canary: distinctive secret values and a distinctive secret access key go through a real
server process, then every byte it left behind is searched for them.

The server runs with ``--log-level debug`` and its whole output is captured; its data dir
(the database with its -wal and -shm files, the key file, anything else) is read as bytes,
both while it runs and after ``kill -9`` (which leaves the WAL as it was). The canaries are
looked for as UTF-8, UTF-16, base64 at every alignment and hex.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

pytestmark = pytest.mark.slow

TAG = uuid.uuid4().hex[:12].upper()
CANARY = f"CANARY{TAG}TEXT"  # in every string value
BINARY_CANARY = b"\x00\xff\x10" + f"BINCANARY{TAG}".encode() + b"\xfe\x01"
KEY_ID = "AKIACANARYROOT000001"
SECRET_KEY = f"SECRETKEYCANARY{TAG}"
REGION = "eu-central-1"


def forms(canary: bytes) -> dict[str, bytes]:
    """Encodings in which a leaked canary could sit in a file or a log line."""
    found = {"raw": canary, "hex": canary.hex().encode(), "HEX": canary.hex().upper().encode()}
    try:
        text = canary.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        found["utf-16-le"] = text.encode("utf-16-le")
        found["utf-16-be"] = text.encode("utf-16-be")
        found["escaped"] = json.dumps(text).encode()[1:-1]
    for shift in range(3):
        # base64 of the canary starting at any byte boundary; drop the edge characters,
        # which depend on the bytes around it.
        encoded = base64.b64encode(canary[shift:])
        found[f"base64+{shift}"] = encoded[: len(encoded) - 4]
        found[f"base64url+{shift}"] = base64.urlsafe_b64encode(canary[shift:])[: len(encoded) - 4]
    return found


CANARIES = {
    "string value": CANARY.encode(),
    "binary value": BINARY_CANARY,
    "binary value core": f"BINCANARY{TAG}".encode(),  # also catches repr() and latin-1
    "secret access key": SECRET_KEY.encode(),
}


def leaks(data: bytes) -> list[str]:
    return [
        f"{name} as {form}"
        for name, canary in CANARIES.items()
        for form, needle in forms(canary).items()
        if needle in data
    ]


def leaks_in_dir(data_dir: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        if hits := leaks(path.read_bytes()):
            found[path.name] = hits
    return found


def test_the_canaries_appear_nowhere_in_the_data_dir_or_the_log(tmp_path):
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    process, url = start_server(data_dir, log)
    try:
        responses = exercise(url)
        files = sorted(p.name for p in data_dir.iterdir())
        assert "strongroom.db-wal" in files, files  # the WAL is there to be searched
        assert leaks_in_dir(data_dir) == {}
    finally:
        process.kill()  # -9: whatever the WAL holds stays on disk
        process.wait(timeout=10)
    assert leaks_in_dir(data_dir) == {}
    output = log.read_bytes()
    assert b"DEBUG" in output  # the log really was at debug level
    assert b"GetSecretValue" in output  # and requests were logged
    assert leaks(output) == []
    for response in responses:  # errors must not echo a value either
        assert leaks(response) == [], response


# -- the server and the traffic -----------------------------------------------------------


def start_server(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env |= {
        "STRONGROOM_ROOT_ACCESS_KEY_ID": KEY_ID,
        "STRONGROOM_ROOT_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    argv = [sys.executable, "-m", "strongroom", "serve", "--log-level", "debug"]
    argv += ["--data-dir", str(data_dir), "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603 - our own CLI
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            httpx.post(url + "/", content=b"{}", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
        else:
            return process, url
    process.kill()
    pytest.fail(f"strongroom serve did not start:\n{log.read_text()}")


def exercise(url: str) -> list[bytes]:
    """Every path a value takes: create, put, update, get, batch get, idempotent retries,
    refused requests and a force delete. Returns the bodies of the error responses."""
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1}),
    )
    token = str(uuid.uuid4())
    sm.create_secret(
        Name="canary/string", SecretString=f"{CANARY}-create", ClientRequestToken=token
    )
    sm.create_secret(
        Name="canary/string", SecretString=f"{CANARY}-create", ClientRequestToken=token
    )
    sm.create_secret(Name="canary/binary", SecretBinary=BINARY_CANARY)
    sm.put_secret_value(SecretId="canary/string", SecretString=f"{CANARY}-put")
    sm.put_secret_value(SecretId="canary/binary", SecretBinary=BINARY_CANARY + b"-put")
    sm.update_secret(SecretId="canary/string", SecretString=f"{CANARY}-update", Description="d")
    sm.update_secret(SecretId="canary/binary", SecretBinary=b"updated" + BINARY_CANARY)
    assert sm.get_secret_value(SecretId="canary/string")["SecretString"] == f"{CANARY}-update"
    assert sm.get_secret_value(SecretId="canary/binary")["SecretBinary"].endswith(BINARY_CANARY)
    batch = sm.batch_get_secret_value(SecretIdList=["canary/string", "canary/binary"])
    assert len(batch["SecretValues"]) == 2
    sm.create_secret(Name="canary/doomed", SecretString=f"{CANARY}-doomed")
    sm.delete_secret(SecretId="canary/doomed", ForceDeleteWithoutRecovery=True)

    refused = [
        # A used token with another value: the server opens the stored value to compare.
        (
            "PutSecretValue",
            {
                "SecretId": "canary/string",
                "ClientRequestToken": token,
                "SecretString": f"{CANARY}-conflict",
            },
        ),
        (
            "CreateSecret",
            {
                "Name": "bad name!",
                "SecretString": f"{CANARY}-badname",
                "ClientRequestToken": str(uuid.uuid4()),
            },
        ),
        (
            "CreateSecret",
            {
                "Name": "too/long",
                "SecretString": CANARY * 5000,
                "ClientRequestToken": str(uuid.uuid4()),
            },
        ),
        (
            "PutSecretValue",
            {
                "SecretId": "canary/binary",
                "ClientRequestToken": str(uuid.uuid4()),
                "SecretString": f"{CANARY}-both",
                "SecretBinary": base64.b64encode(BINARY_CANARY).decode(),
            },
        ),
        (
            "PutSecretValue",
            {
                "SecretId": "canary/string",
                "ClientRequestToken": str(uuid.uuid4()),
                "SecretString": f"{CANARY}\ud800",
            },
        ),  # a 500 today: see test_fuzz
        ("PutSecretValue", {"SecretId": "canary/string", "SecretString": [f"{CANARY}-list"]}),
    ]
    bodies = [signed(url, action, json.dumps(body).encode()) for action, body in refused]
    bodies.append(signed(url, "PutSecretValue", f'{{"SecretString": "{CANARY}-truncated'.encode()))
    return bodies


def signed(url: str, action: str, body: bytes) -> bytes:
    request = AWSRequest(
        "POST",
        url + "/",
        data=body,
        headers={
            "X-Amz-Target": f"secretsmanager.{action}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(KEY_ID, SECRET_KEY), "secretsmanager", REGION).add_auth(request)
    response = httpx.post(url + "/", content=body, headers=dict(request.headers.items()))
    assert response.status_code != 200, (action, response.text)
    return response.content


def test_the_canary_forms_would_be_found(tmp_path):
    # The search itself must work, or the test above could never fail.
    plain = f"prefix {CANARY} suffix".encode()
    assert "string value as raw" in leaks(plain)
    assert "string value as utf-16-le" in leaks(f"x{CANARY}y".encode("utf-16-le"))
    for shift in range(3):
        encoded = base64.b64encode(b"ab"[:shift] + BINARY_CANARY + b"tail")
        assert any(hit.startswith("binary value as base64") for hit in leaks(encoded))
    assert "secret access key as hex" in leaks(b"." + SECRET_KEY.encode().hex().encode())
    (tmp_path / "f-wal").write_bytes(b"\x00" * 10 + BINARY_CANARY + b"\x00")
    assert list(leaks_in_dir(tmp_path)) == ["f-wal"]
