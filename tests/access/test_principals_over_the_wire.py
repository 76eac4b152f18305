"""Who may do what, end to end: principals made through boto3's IAM and STS clients against the
running server, then Secrets Manager calls made with their credentials.

IAM users and roles are account-wide (not per region), so every test names its own.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.helpers import error_of, refusal
from tests.conftest import ACCOUNT_ID, Server

from strongroom.worker import Worker

CANARY = "canary-value-7f3e9b1d-must-never-leak"


def _client(server: Server, service: str, region: str, creds: dict[str, Any] | None = None) -> Any:
    return server.service_client(service, region, creds)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def iam(server: Server, region: str) -> Any:
    return _client(server, "iam", region)


@pytest.fixture
def user_with(server: Server, region: str, iam: Any):
    """``user_with(policy or None) -> (user arn, secretsmanager client, creds)``."""

    def make(policy: str | None, *, tags: dict[str, str] | None = None) -> tuple[str, Any, dict]:
        name = _name("user")
        tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        user = iam.create_user(UserName=name, **({"Tags": tag_list} if tag_list else {}))["User"]
        if policy is not None:
            iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=policy)
        creds = iam.create_access_key(UserName=name)["AccessKey"]
        return user["Arn"], _client(server, "secretsmanager", region, creds), creds

    return make


def _denied(call: Any, **kwargs: Any) -> str:
    code, message = refusal(call, **kwargs)
    assert code == "AccessDeniedException"
    assert CANARY not in message
    return message


def test_reader_may_only_get_values_under_prod(client, user_with, region):
    prod = client.create_secret(Name="prod/db", SecretString=CANARY)
    client.create_secret(Name="dev/db", SecretString=CANARY)
    arn, reader, _ = user_with(
        _policy(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:prod/*",
            }
        )
    )
    assert reader.get_secret_value(SecretId="prod/db")["SecretString"] == CANARY
    assert reader.get_secret_value(SecretId=prod["ARN"])["SecretString"] == CANARY

    message = _denied(reader.get_secret_value, SecretId="dev/db")
    assert message == (
        f"User: {arn} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        "dev/db because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )
    # Other actions on the same secret, and actions on no one secret.
    _denied(reader.describe_secret, SecretId="prod/db")
    _denied(reader.put_secret_value, SecretId="prod/db", SecretString="x")
    message = _denied(reader.list_secrets)
    assert message == (
        f"User: {arn} is not authorized to perform: secretsmanager:ListSecrets because no "
        "identity-based policy allows the secretsmanager:ListSecrets action"
    )
    # Authorization comes before existence: a denied caller cannot probe for names...
    _denied(reader.get_secret_value, SecretId="dev/nothing-here")
    # ...while an allowed one learns that the secret does not exist.
    code, _ = refusal(reader.get_secret_value, SecretId="prod/nothing-here")
    assert code == "ResourceNotFoundException"
    # The denied calls changed nothing.
    assert client.get_secret_value(SecretId="dev/db")["SecretString"] == CANARY


def test_writer_limited_by_a_resource_tag_condition(client, user_with):
    client.create_secret(
        Name="blue/app", SecretString="v1", Tags=[{"Key": "team", "Value": "blue"}]
    )
    client.create_secret(Name="red/app", SecretString="v1", Tags=[{"Key": "team", "Value": "red"}])
    _, writer, _ = user_with(
        _policy(
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"],
                "Resource": "*",
                "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "blue"}},
            }
        )
    )
    writer.put_secret_value(SecretId="blue/app", SecretString="v2")
    assert writer.get_secret_value(SecretId="blue/app")["SecretString"] == "v2"
    _denied(writer.put_secret_value, SecretId="red/app", SecretString="v2")
    assert client.get_secret_value(SecretId="red/app")["SecretString"] == "v1"


def test_principal_tag_variable_in_a_condition(client, user_with):
    client.create_secret(Name="svc/a", SecretString="a", Tags=[{"Key": "owner", "Value": "ann"}])
    client.create_secret(Name="svc/b", SecretString="b", Tags=[{"Key": "owner", "Value": "bob"}])
    _, ann, _ = user_with(
        _policy(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:ResourceTag/owner": "${aws:PrincipalTag/person}"}
                },
            }
        ),
        tags={"person": "ann"},
    )
    assert ann.get_secret_value(SecretId="svc/a")["SecretString"] == "a"
    _denied(ann.get_secret_value, SecretId="svc/b")


def test_explicit_deny_wins_over_allow(client, user_with):
    client.create_secret(Name="prod/keys", SecretString=CANARY)
    arn, user, _ = user_with(
        _policy(
            {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
        )
    )
    assert user.describe_secret(SecretId="prod/keys")["Name"] == "prod/keys"
    message = _denied(user.get_secret_value, SecretId="prod/keys")
    assert message.endswith("with an explicit deny in an identity-based policy"), message
    assert message.startswith(f"User: {arn} is not authorized to perform: ")


def test_resource_policy_grants_another_user(client, user_with):
    created = client.create_secret(Name="shared/token", SecretString=CANARY)
    arn, other, _ = user_with(None)
    _denied(other.get_secret_value, SecretId=created["ARN"])
    client.put_resource_policy(
        SecretId="shared/token",
        ResourcePolicy=_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": arn},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ),
    )
    assert other.get_secret_value(SecretId=created["ARN"])["SecretString"] == CANARY
    _denied(other.put_secret_value, SecretId=created["ARN"], SecretString="x")
    client.delete_resource_policy(SecretId="shared/token")
    _denied(other.get_secret_value, SecretId=created["ARN"])


def test_batch_get_reports_denied_secrets_in_errors(client, user_with, region):
    client.create_secret(Name="prod/one", SecretString="1")
    client.create_secret(Name="dev/two", SecretString=CANARY)
    _, reader, _ = user_with(
        _policy(
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:BatchGetSecretValue", "secretsmanager:GetSecretValue"],
                "Resource": f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:prod/*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        )
    )
    got = reader.batch_get_secret_value(SecretIdList=["prod/one", "dev/two"])
    assert [v["Name"] for v in got["SecretValues"]] == ["prod/one"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in got["Errors"]] == [
        ("dev/two", "AccessDeniedException")
    ]
    assert CANARY not in json.dumps(got["Errors"])


def test_a_user_without_iam_permissions_cannot_manage_iam(server, region, user_with):
    arn, _, creds = user_with(None)
    their_iam = _client(server, "iam", region, creds)
    with pytest.raises(ClientError) as caught:
        their_iam.create_user(UserName=_name("sneaky"))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    code, message = error_of(caught)
    assert code == "AccessDenied"
    assert message.startswith(f"User: {arn} is not authorized to perform: iam:CreateUser")


def test_caller_identity_of_root_user_and_session(server, region, iam, user_with):
    root = _client(server, "sts", region).get_caller_identity()
    assert (root["Account"], root["Arn"]) == (ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:root")
    arn, _, creds = user_with(None)
    me = _client(server, "sts", region, creds).get_caller_identity()
    assert me["Arn"] == arn
    assert me["UserId"].startswith("AIDA")


def test_assumed_role_session_acts_within_the_role_and_expires(  # noqa: PLR0917 - fixtures
    server: Server, region, client, iam, user_with, clock
):
    client.create_secret(Name="ops/db", SecretString=CANARY)
    user_arn, _, user_creds = user_with(
        _policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    )
    role_name = _name("reader")
    trust = _policy({"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"})
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="read",
        PolicyDocument=_policy(
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ),
    )
    sts = _client(server, "sts", region, user_creds)
    session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="job-1", DurationSeconds=900)
    creds = session["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    as_role = _client(server, "secretsmanager", region, creds)
    assert as_role.get_secret_value(SecretId="ops/db")["SecretString"] == CANARY
    message = _denied(as_role.put_secret_value, SecretId="ops/db", SecretString="x")
    session_arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/job-1"
    assert message.startswith(f"User: {session_arn} is not authorized")
    who = _client(server, "sts", region, creds).get_caller_identity()
    assert who["Arn"] == session_arn

    # Without its session token the key id means nothing.
    tokenless = {k: v for k, v in creds.items() if k != "SessionToken"}
    code, _ = refusal(_client(server, "secretsmanager", region, tokenless).list_secrets)
    assert code == "UnrecognizedClientException"

    # A session issued 905 s ago (the operations' clock moved back) has expired.
    clock.advance(-905)
    old = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="job-0", DurationSeconds=900)
    clock.advance(905)
    expired = _client(server, "secretsmanager", region, old["Credentials"])
    code, message = refusal(expired.get_secret_value, SecretId="ops/db")
    assert code == "ExpiredTokenException"
    assert CANARY not in message


def test_assume_role_refused_by_the_trust_policy(server, region, iam, user_with):
    user_arn, _, user_creds = user_with(
        _policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    )
    role_name = _name("locked")
    trust = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/someone-else"},
            "Action": "sts:AssumeRole",
        }
    )
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]
    sts = _client(server, "sts", region, user_creds)
    with pytest.raises(ClientError) as caught:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="nope")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    code, message = error_of(caught)
    assert code == "AccessDenied"
    assert message.startswith(
        f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}"
    )


def _refused_within(call: Any, seconds: float) -> str:
    """The error code once ``call`` fails; keys are cached for up to 5 s (auth.keys)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        assert time.monotonic() < deadline, "the key still works"
        time.sleep(0.25)


@pytest.mark.slow
def test_inactive_keys_stop_working(server, region, iam, user_with):
    _, _, creds = user_with(None)
    sts = _client(server, "sts", region, creds)
    assert sts.get_caller_identity()["Account"] == ACCOUNT_ID
    iam.update_access_key(
        UserName=creds["UserName"], AccessKeyId=creds["AccessKeyId"], Status="Inactive"
    )
    assert _refused_within(sts.get_caller_identity, 7) == "InvalidClientTokenId"


def test_validate_resource_policy_reports_a_caller_lock_out(client, user_with):
    client.create_secret(Name="team/app", SecretString="v")
    arn, admin, _ = user_with(
        _policy({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})
    )
    locks_out = _policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": arn},
            "Action": "secretsmanager:*",
            "Resource": "*",
        }
    )
    result = admin.validate_resource_policy(SecretId="team/app", ResourcePolicy=locks_out)
    assert result["PolicyValidationPassed"] is False
    assert [e["CheckName"] for e in result["ValidationErrors"]] == ["LOCKOUT_CHECK"]
    harmless = _policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/someone-else"},
            "Action": "secretsmanager:*",
            "Resource": "*",
        }
    )
    ok = admin.validate_resource_policy(SecretId="team/app", ResourcePolicy=harmless)
    assert ok["PolicyValidationPassed"] is True


def test_expired_sessions_are_forgotten_a_day_later(server, region, iam, user_with, clock):
    _, _, user_creds = user_with(
        _policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    )
    user_arn = iam.get_user(UserName=user_creds["UserName"])["User"]["Arn"]
    role_name = _name("old")
    trust = _policy({"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"})
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]
    sts = _client(server, "sts", region, user_creds)
    clock.advance(-2 * 86_400)
    stale = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="stale", DurationSeconds=900)
    clock.advance(2 * 86_400)
    assert Worker(server.installation.store, clock=clock).forget_expired_sessions() >= 1
    forgotten = _client(server, "sts", region, stale["Credentials"])
    with pytest.raises(ClientError) as caught:
        forgotten.get_caller_identity()
    assert error_of(caught)[0] == "InvalidClientTokenId"


def test_iam_actions_see_the_request_tags(server, region, user_with):
    _, _, creds = user_with(
        _policy(
            {
                "Effect": "Allow",
                "Action": "iam:CreateUser",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestTag/team": "blue"}},
            }
        )
    )
    their_iam = _client(server, "iam", region, creds)
    their_iam.create_user(UserName=_name("blue"), Tags=[{"Key": "team", "Value": "blue"}])
    with pytest.raises(ClientError) as caught:
        their_iam.create_user(UserName=_name("red"), Tags=[{"Key": "team", "Value": "red"}])
    assert error_of(caught)[0] == "AccessDenied"
