"""GetResourcePolicy / PutResourcePolicy / DeleteResourcePolicy / ValidateResourcePolicy
(spec §11, §15.16) through boto3."""

from __future__ import annotations

import json

import pytest
from tests.api.helpers import body, refusal
from tests.conftest import ACCOUNT_ID

OTHER_ACCOUNT = "210987654321"


def policy(principal, *, condition=None, action="secretsmanager:GetSecretValue") -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    # Indented on purpose: the text must come back byte for byte.
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=3)


SAME_ACCOUNT = policy({"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/reader"})
PUBLIC = policy("*")


@pytest.fixture
def secret(client):
    return client.create_secret(Name="app/db", SecretString="v")


def test_no_policy_attached(client, secret):
    assert body(client.get_resource_policy(SecretId="app/db")) == {
        "ARN": secret["ARN"],
        "Name": "app/db",
    }


def test_put_get_delete_round_trip_keeps_the_text_verbatim(client, secret):
    put = client.put_resource_policy(SecretId="app/db", ResourcePolicy=SAME_ACCOUNT)
    assert body(put) == {"ARN": secret["ARN"], "Name": "app/db"}
    got = client.get_resource_policy(SecretId=secret["ARN"])
    assert got["ResourcePolicy"] == SAME_ACCOUNT
    deleted = client.delete_resource_policy(SecretId="app/db")
    assert body(deleted) == {"ARN": secret["ARN"], "Name": "app/db"}
    assert "ResourcePolicy" not in client.get_resource_policy(SecretId="app/db")
    # Deleting when there is none succeeds too.
    client.delete_resource_policy(SecretId="app/db")


def test_a_public_policy_is_accepted_unless_blocked(client, secret):
    code, message = refusal(
        client.put_resource_policy,
        SecretId="app/db",
        ResourcePolicy=PUBLIC,
        BlockPublicPolicy=True,
    )
    assert code == "PublicPolicyException"
    assert "BlockPublicPolicy" in message
    assert "ResourcePolicy" not in client.get_resource_policy(SecretId="app/db")
    client.put_resource_policy(SecretId="app/db", ResourcePolicy=PUBLIC)
    assert client.get_resource_policy(SecretId="app/db")["ResourcePolicy"] == PUBLIC


def test_blocking_allows_a_grant_restricted_by_a_condition(client, secret):
    restricted = policy("*", condition={"StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}})
    client.put_resource_policy(SecretId="app/db", ResourcePolicy=restricted, BlockPublicPolicy=True)
    code, _ = refusal(
        client.put_resource_policy,
        SecretId="app/db",
        ResourcePolicy=policy({"AWS": OTHER_ACCOUNT}),
        BlockPublicPolicy=True,
    )
    assert code == "PublicPolicyException"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "This policy has invalid syntax."),
        (
            json.dumps({"Version": "2019-10-19", "Statement": []}),
            "This policy has invalid syntax.",
        ),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
            "This resource policy contains an unsupported principal.",
        ),
    ],
)
def test_malformed_documents_are_refused_and_change_nothing(client, secret, document, message):
    client.put_resource_policy(SecretId="app/db", ResourcePolicy=SAME_ACCOUNT)
    assert refusal(client.put_resource_policy, SecretId="app/db", ResourcePolicy=document) == (
        "MalformedPolicyDocumentException",
        message,
    )
    assert client.get_resource_policy(SecretId="app/db")["ResourcePolicy"] == SAME_ACCOUNT


def test_missing_and_deleted_secrets(client, secret):
    for call in (client.get_resource_policy, client.delete_resource_policy):
        assert refusal(call, SecretId="nope")[0] == "ResourceNotFoundException"
    assert (
        refusal(client.put_resource_policy, SecretId="nope", ResourcePolicy=SAME_ACCOUNT)[0]
        == "ResourceNotFoundException"
    )
    client.delete_secret(SecretId="app/db")
    for call in (client.get_resource_policy, client.delete_resource_policy):
        code, message = refusal(call, SecretId="app/db")
        assert code == "InvalidRequestException"
        assert "marked for deletion" in message


def test_validate_a_good_policy(client, secret):
    result = client.validate_resource_policy(SecretId="app/db", ResourcePolicy=SAME_ACCOUNT)
    assert body(result) == {"PolicyValidationPassed": True, "ValidationErrors": []}
    without_secret = client.validate_resource_policy(ResourcePolicy=SAME_ACCOUNT)
    assert without_secret["PolicyValidationPassed"] is True


def test_validate_reports_broad_access_and_syntax_instead_of_failing(client, secret):
    broad = client.validate_resource_policy(ResourcePolicy=PUBLIC)
    assert broad["PolicyValidationPassed"] is False
    assert [e["CheckName"] for e in broad["ValidationErrors"]] == ["BROAD_ACCESS_CHECK"]
    bad = client.validate_resource_policy(ResourcePolicy="{")
    assert bad["PolicyValidationPassed"] is False
    assert bad["ValidationErrors"] == [
        {"CheckName": "SYNTAX_CHECK", "ErrorMessage": "This policy has invalid syntax."}
    ]
    # Validating stores nothing.
    assert "ResourcePolicy" not in client.get_resource_policy(SecretId="app/db")


def test_validate_checks_the_secret_id_when_given(client):
    code, _ = refusal(client.validate_resource_policy, SecretId="nope", ResourcePolicy=PUBLIC)
    assert code == "ResourceNotFoundException"
