"""The built-in PostgreSQL rotators as users run them: registered with ``strongroom functions
add --builtin``, started by RotateSecret, run by the server's rotation engine in their own
process with rotation-scoped credentials, against a real PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from tests.conftest import ACCOUNT_ID, Server

from strongroom.cli.main import main as cli

pytestmark = pytest.mark.slow

OLD_PASSWORD = "initial-Password-1"
MASTER_PASSWORD = "master-Password-1"


def _register(server: Server, builtin: str) -> str:
    """A built-in registered under a fresh name; the name."""
    name = f"{builtin}-{uuid.uuid4().hex[:6]}"
    result = CliRunner().invoke(
        cli,
        ["functions", "add", name, "--builtin", builtin, *server.cli_args],
    )
    assert result.exit_code == 0, result.output
    return name


def _rotate_and_wait(client: Any, server: Server, arn: str, function: str) -> dict[str, Any]:
    region = client.meta.region_name
    function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function}"
    token = client.rotate_secret(SecretId=arn, RotationLambdaARN=function_arn)["VersionId"]
    deadline = time.monotonic() + 90
    while True:
        with server.installation.store.read() as tx:
            rows = [r for r, _ in tx.rotations(ACCOUNT_ID, None, 500) if r.version_id == token]
            steps = tx.rotation_steps(rows[0].pk) if rows else []
        if (rows and rows[0].state in {"succeeded", "failed"}) or (rows and rows[0].error):
            break
        assert time.monotonic() < deadline, "the rotation did not finish"
        time.sleep(0.2)
    assert rows[0].state == "succeeded", [(s.step, s.error, s.output) for s in steps]
    described = client.describe_secret(SecretId=arn)
    assert described["VersionIdsToStages"][token] == ["AWSCURRENT"]
    assert "LastRotatedDate" in described
    return described


def _value(client: Any, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return json.loads(client.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"])


def test_single_user_rotation_through_rotate_secret(client, server, postgres):
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}", SecretString=postgres.secret_value(role, OLD_PASSWORD)
    )["ARN"]
    function = _register(server, "postgresql-single-user")
    before = client.describe_secret(SecretId=arn)["VersionIdsToStages"]

    _rotate_and_wait(client, server, arn, function)
    new = _value(client, arn)
    assert new["password"] != OLD_PASSWORD
    assert postgres.accepts(role, new["password"])
    assert not postgres.accepts(role, OLD_PASSWORD)
    assert _value(client, arn, "AWSPREVIOUS")["password"] == OLD_PASSWORD
    (old_version,) = before
    assert client.describe_secret(SecretId=arn)["VersionIdsToStages"][old_version] == [
        "AWSPREVIOUS"
    ]


def test_alternating_users_rotation_through_rotate_secret(client, server, postgres):
    master = postgres.create_role("master", MASTER_PASSWORD, "CREATEROLE")
    master_arn = client.create_secret(
        Name=f"db/{master}", SecretString=postgres.secret_value(master, MASTER_PASSWORD)
    )["ARN"]
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}",
        SecretString=postgres.secret_value(role, OLD_PASSWORD, masterarn=master_arn),
    )["ARN"]
    function = _register(server, "postgresql-alternating-users")
    # The function's credentials reach only the secret it rotates; the master secret's
    # resource policy lets the function's role read it, as an execution role would on AWS.
    client.put_resource_policy(
        SecretId=master_arn,
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/strongroom-rotation-{function}"
                        },
                        "Action": [
                            "secretsmanager:GetSecretValue",
                            "secretsmanager:DescribeSecret",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )

    _rotate_and_wait(client, server, arn, function)
    first = _value(client, arn)
    assert first["username"] == f"{role}_clone"
    assert postgres.accepts(f"{role}_clone", first["password"])
    assert postgres.accepts(role, OLD_PASSWORD)  # the previous user keeps working

    _rotate_and_wait(client, server, arn, function)
    second = _value(client, arn)
    assert second["username"] == role
    assert postgres.accepts(role, second["password"])
    assert not postgres.accepts(role, OLD_PASSWORD)
    assert _value(client, arn, "AWSPREVIOUS")["username"] == f"{role}_clone"
