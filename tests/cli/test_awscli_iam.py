"""Managing access with the AWS CLI by endpoint URL alone: ``aws iam`` and ``aws sts`` make a
user, give it a key and a policy, and the user's credentials then work within that policy."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from tests.cli.test_awscli import AWS, isolated_env, ok
from tests.conftest import ACCOUNT_ID, ROOT_KEY_ID, ROOT_SECRET

pytestmark = pytest.mark.slow


@pytest.fixture
def aws(server, region, tmp_path):
    """``aws(service, *args, creds=None)`` against the test server, as the root by default."""

    def run(*args: str, creds: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        creds = creds or {"AccessKeyId": ROOT_KEY_ID, "SecretAccessKey": ROOT_SECRET}
        env = isolated_env(
            tmp_path, creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")
        )
        argv = [AWS, *args, "--endpoint-url", server.url, "--region", region]
        return subprocess.run(  # noqa: S603 - the AWS CLI, from our own virtualenv
            argv, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    return run


def test_a_user_made_with_the_cli_reads_only_what_its_policy_allows(aws, region, tmp_path):
    name = f"ci-{uuid.uuid4().hex[:8]}"
    ok(aws("secretsmanager", "create-secret", "--name", "prod/api", "--secret-string", "k1"))
    ok(aws("secretsmanager", "create-secret", "--name", "dev/api", "--secret-string", "k2"))

    user = ok(aws("iam", "create-user", "--user-name", name))["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue", "sts:AssumeRole"],
                        "Resource": [
                            f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:prod/*",
                            f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-role",
                        ],
                    }
                ],
            }
        )
    )
    ok(
        aws(
            "iam",
            "put-user-policy",
            "--user-name",
            name,
            "--policy-name",
            "read-prod",
            "--policy-document",
            f"file://{policy}",
        )
    )
    key = ok(aws("iam", "create-access-key", "--user-name", name))["AccessKey"]

    me = ok(aws("sts", "get-caller-identity", creds=key))
    assert (me["Account"], me["Arn"]) == (ACCOUNT_ID, user["Arn"])
    got = ok(aws("secretsmanager", "get-secret-value", "--secret-id", "prod/api", creds=key))
    assert got["SecretString"] == "k1"
    denied = aws("secretsmanager", "get-secret-value", "--secret-id", "dev/api", creds=key)
    assert denied.returncode != 0
    assert "AccessDeniedException" in denied.stderr
    assert "k2" not in denied.stderr

    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    role = ok(
        aws(
            "iam",
            "create-role",
            "--role-name",
            f"{name}-role",
            "--assume-role-policy-document",
            trust,
        )
    )["Role"]
    session = ok(
        aws(
            "sts",
            "assume-role",
            "--role-arn",
            role["Arn"],
            "--role-session-name",
            "cli",
            creds=key,
        )
    )
    who = ok(aws("sts", "get-caller-identity", creds=session["Credentials"]))
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}-role/cli"
    # The role has no permissions of its own.
    refused = aws(
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "prod/api",
        creds=session["Credentials"],
    )
    assert "AccessDeniedException" in refused.stderr
