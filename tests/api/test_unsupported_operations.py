"""Actions Strongroom does not serve yet (ListResourcePolicies, replication): each is
refused with InvalidRequestException (HTTP 400, so SDKs do not retry) that names the action,
and nothing about the secret changes."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:rotate"
OTHER_SECRET = "arn:aws:secretsmanager:us-west-2:210987654321:secret:elsewhere-AbCdEf"

UNSUPPORTED = {
    "ListResourcePolicies": lambda c: c.list_resource_policies(SecretId="app/db"),
    "ReplicateSecretToRegions": lambda c: c.replicate_secret_to_regions(
        SecretId="app/db", AddReplicaRegions=[{"Region": "eu-west-1"}]
    ),
    "RemoveRegionsFromReplication": lambda c: c.remove_regions_from_replication(
        SecretId="app/db", RemoveReplicaRegions=["eu-west-1"]
    ),
    "StopReplicationToReplica": lambda c: c.stop_replication_to_replica(SecretId="app/db"),
    "AssociateCrossAccountReplica": lambda c: c.associate_cross_account_replica(
        SecretId="app/db", CrossAccountReplicaARN=OTHER_SECRET
    ),
    "DisassociateCrossAccountReplica": lambda c: c.disassociate_cross_account_replica(
        SecretId="app/db", CrossAccountReplicaARN=OTHER_SECRET
    ),
}


def refusal_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def state_of(client) -> dict:
    """Everything a client can see about app/db (the read first: it sets LastAccessedDate)."""
    value = client.get_secret_value(SecretId="app/db")["SecretString"]
    described = client.describe_secret(SecretId="app/db")
    versions = client.list_secret_version_ids(SecretId="app/db", IncludeDeprecated=True)
    return {
        "described": {k: v for k, v in described.items() if k != "ResponseMetadata"},
        "versions": versions["Versions"],
        "value": value,
    }


@pytest.fixture
def secret(client):
    client.create_secret(
        Name="app/db",
        SecretString="s3cr3t",
        Description="the database",
        Tags=[{"Key": "env", "Value": "prod"}],
    )
    client.put_secret_value(SecretId="app/db", SecretString="second")
    return client


@pytest.mark.parametrize("operation", UNSUPPORTED)
def test_it_refuses_the_action_with_a_message_that_names_it(secret, operation):
    code, message = refusal_of(lambda: UNSUPPORTED[operation](secret))
    assert code == "InvalidRequestException"
    assert message.startswith(f"Strongroom does not support {operation}: ")
    assert "not supported" in message


@pytest.mark.parametrize("operation", UNSUPPORTED)
def test_the_refused_action_changes_nothing(secret, operation):
    before = state_of(secret)
    refusal_of(lambda: UNSUPPORTED[operation](secret))
    assert state_of(secret) == before


def test_the_refusal_does_not_depend_on_the_secret_existing(client):
    code, message = refusal_of(lambda: client.stop_replication_to_replica(SecretId="nowhere"))
    assert code == "InvalidRequestException"
    assert "StopReplicationToReplica" in message


def test_the_model_still_validates_the_request_first(client):
    # A constraint violation is reported as it would be for a served action.
    code, _ = refusal_of(
        lambda: client.remove_regions_from_replication(
            SecretId="app/db", RemoveReplicaRegions=["Not A Region"]
        )
    )
    assert code == "ValidationException"


def test_create_secret_refuses_replica_regions_and_creates_nothing(client):
    code, message = refusal_of(
        lambda: client.create_secret(
            Name="replicated", SecretString="x", AddReplicaRegions=[{"Region": "eu-west-1"}]
        )
    )
    assert code == "InvalidRequestException"
    assert "replication" in message
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_create_secret_refuses_a_cross_account_primary_and_creates_nothing(client):
    code, message = refusal_of(
        lambda: client.create_secret(
            Name="replica", SecretString="x", CrossAccountPrimaryARN=OTHER_SECRET
        )
    )
    assert code == "InvalidRequestException"
    assert "cross-account replication" in message
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
