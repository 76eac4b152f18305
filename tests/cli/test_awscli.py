"""The AWS CLI (``aws`` from PyPI, in the test virtualenv) against Strongroom by endpoint URL
alone: what a user's first session looks like."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ROOT_KEY_ID, ROOT_SECRET

pytestmark = pytest.mark.slow

AWS = Path(sys.executable).parent / "aws"


def text_of(member: str) -> tuple[str, ...]:
    return ("--query", member, "--output", "text")


def isolated_env(tmp_path: Path, key_id: str, secret: str, token: str | None = None) -> dict:
    """The environment for one ``aws`` run: these credentials and nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        # No user configuration may leak in, and nothing is retried or paged.
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    if token is not None:
        env["AWS_SESSION_TOKEN"] = token
    return env


@pytest.fixture
def aws(server, region, tmp_path):
    """``aws(*args)``: run ``aws secretsmanager <args>`` against the test server."""
    env = isolated_env(tmp_path, ROOT_KEY_ID, ROOT_SECRET)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [AWS, "secretsmanager", *args, "--endpoint-url", server.url, "--region", region]
        return subprocess.run(  # noqa: S603 - the AWS CLI, from our own virtualenv
            argv, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_create_then_get_secret_value_as_text(aws):
    created = ok(aws("create-secret", "--name", "app/db", "--secret-string", "s3cr3t"))
    assert created["Name"] == "app/db"
    assert created["ARN"].startswith("arn:aws:secretsmanager:")
    got = aws(
        "get-secret-value", "--secret-id", "app/db", "--query", "SecretString", "--output", "text"
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout == "s3cr3t\n"


def test_put_secret_value_list_and_describe(aws, client):
    first = client.create_secret(Name="app/api", SecretString="v1")["VersionId"]
    put = ok(aws("put-secret-value", "--secret-id", "app/api", "--secret-string", "v2"))
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert client.get_secret_value(SecretId="app/api")["SecretString"] == "v2"

    listed = ok(aws("list-secrets"))
    assert [s["Name"] for s in listed["SecretList"]] == ["app/api"]

    described = ok(aws("describe-secret", "--secret-id", "app/api"))
    assert described["Name"] == "app/api"
    assert described["VersionIdsToStages"] == {
        first: ["AWSPREVIOUS"],
        put["VersionId"]: ["AWSCURRENT"],
    }
    assert isinstance(described["CreatedDate"], float)  # AWS CLI v1 prints the raw epoch


def test_a_binary_secret_from_a_file_comes_back_as_base64(aws, client, tmp_path):
    data = bytes(range(256))
    (tmp_path / "key.bin").write_bytes(data)
    ok(aws("create-secret", "--name", "bin", "--secret-binary", f"fileb://{tmp_path / 'key.bin'}"))
    assert client.get_secret_value(SecretId="bin")["SecretBinary"] == data
    got = aws(
        "get-secret-value", "--secret-id", "bin", "--query", "SecretBinary", "--output", "text"
    )
    assert base64.b64decode(got.stdout.strip()) == data


def test_delete_secret_without_recovery_then_it_is_gone(aws, client):
    client.create_secret(Name="doomed", SecretString="v")
    deleted = ok(aws("delete-secret", "--secret-id", "doomed", "--force-delete-without-recovery"))
    assert deleted["Name"] == "doomed"
    assert "DeletionDate" in deleted
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_an_error_shows_the_aws_error_code_and_exits_non_zero(aws):
    result = aws("get-secret-value", "--secret-id", "no/such/secret")
    assert result.returncode in (254, 255)
    assert "ResourceNotFoundException" in result.stderr
    assert "Secrets Manager can't find the specified secret." in result.stderr
    assert result.stdout == ""
