"""UpdateSecret (spec §15.5, §3.2, §4, §14): metadata changes, new values, idempotency."""

from __future__ import annotations

import pytest
from tests.api.helpers import body, refusal, token
from tests.api.rawhttp import signed_call

MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
TOKEN_REQUIRED = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def version_ids(client, secret_id: str) -> list[str]:
    versions = client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
    return sorted(v["VersionId"] for v in versions["Versions"])


# -- metadata only ---------------------------------------------------------------------------------


def test_a_description_only_update_answers_arn_and_name(client):
    arn = client.create_secret(Name="app/db", SecretString="v1")["ARN"]
    updated = client.update_secret(SecretId="app/db", Description="new words")
    assert body(updated) == {"ARN": arn, "Name": "app/db"}


def test_a_description_only_update_creates_no_version(client):
    client.create_secret(Name="app/db", SecretString="v1")
    before = version_ids(client, "app/db")
    client.update_secret(SecretId="app/db", Description="new words")
    assert version_ids(client, "app/db") == before
    got = client.get_secret_value(SecretId="app/db")
    assert (got["SecretString"], got["VersionStages"]) == ("v1", ["AWSCURRENT"])


def test_it_replaces_the_description(client):
    client.create_secret(Name="app/db", Description="old words")
    client.update_secret(SecretId="app/db", Description="new words")
    assert client.describe_secret(SecretId="app/db")["Description"] == "new words"


def test_a_value_only_update_keeps_the_description(client):
    client.create_secret(Name="app/db", Description="kept", SecretString="v1")
    client.update_secret(SecretId="app/db", SecretString="v2")
    assert client.describe_secret(SecretId="app/db")["Description"] == "kept"


def test_an_empty_description_removes_it(client):
    # Clearing with "" is UNCONFIRMED against AWS (spec §14); "" means "no description"
    # everywhere else, so it does here too.
    client.create_secret(Name="app/db", Description="old words")
    client.update_secret(SecretId="app/db", Description="")
    assert "Description" not in client.describe_secret(SecretId="app/db")


def test_an_update_with_nothing_to_change_answers_arn_and_name(client):
    arn = client.create_secret(Name="app/db", SecretString="v1", Description="d")["ARN"]
    assert body(client.update_secret(SecretId="app/db")) == {"ARN": arn, "Name": "app/db"}
    described = client.describe_secret(SecretId="app/db")
    assert described["Description"] == "d"
    assert len(described["VersionIdsToStages"]) == 1


def test_a_metadata_update_advances_last_changed_date(client, clock):
    client.create_secret(Name="app/db", SecretString="v1")
    before = client.describe_secret(SecretId="app/db")["LastChangedDate"]
    clock.advance(60)
    client.update_secret(SecretId="app/db", Description="changed")
    after = client.describe_secret(SecretId="app/db")["LastChangedDate"]
    assert (after - before).total_seconds() == pytest.approx(60, abs=1)


def test_it_sets_and_echoes_a_kms_key_id(client):
    client.create_secret(Name="app/db", SecretString="v1")
    client.update_secret(SecretId="app/db", KmsKeyId=KEY)
    assert client.describe_secret(SecretId="app/db")["KmsKeyId"] == KEY
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v1"


def test_an_empty_kms_key_id_goes_back_to_the_default_key(client):
    client.create_secret(Name="app/db", SecretString="v1", KmsKeyId=KEY)
    client.update_secret(SecretId="app/db", KmsKeyId="")
    assert "KmsKeyId" not in client.describe_secret(SecretId="app/db")
    (version,) = client.list_secret_version_ids(SecretId="app/db")["Versions"]
    assert version["KmsKeyIds"] == ["DefaultEncryptionKey"]


def test_an_update_without_kms_key_id_keeps_the_key(client):
    client.create_secret(Name="app/db", SecretString="v1", KmsKeyId=KEY)
    client.update_secret(SecretId="app/db", Description="d")
    assert client.describe_secret(SecretId="app/db")["KmsKeyId"] == KEY


# -- a new value -----------------------------------------------------------------------------------


def test_an_update_with_a_value_answers_the_new_version_id(client):
    arn = client.create_secret(Name="app/db", SecretString="v1")["ARN"]
    version = token()
    updated = client.update_secret(SecretId="app/db", SecretString="v2", ClientRequestToken=version)
    assert body(updated) == {"ARN": arn, "Name": "app/db", "VersionId": version}


def test_the_new_value_becomes_awscurrent_and_the_old_one_awsprevious(client):
    first = client.create_secret(Name="app/db", SecretString="v1")["VersionId"]
    second = client.update_secret(SecretId="app/db", SecretString="v2")["VersionId"]
    described = client.describe_secret(SecretId="app/db")
    assert described["VersionIdsToStages"] == {first: ["AWSPREVIOUS"], second: ["AWSCURRENT"]}
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v2"
    previous = client.get_secret_value(SecretId="app/db", VersionStage="AWSPREVIOUS")
    assert (previous["SecretString"], previous["VersionId"]) == ("v1", first)


def test_a_third_value_leaves_the_first_version_without_labels(client):
    first = client.create_secret(Name="app/db", SecretString="v1")["VersionId"]
    second = client.update_secret(SecretId="app/db", SecretString="v2")["VersionId"]
    third = client.update_secret(SecretId="app/db", SecretString="v3")["VersionId"]
    described = client.describe_secret(SecretId="app/db")
    assert described["VersionIdsToStages"] == {second: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}
    assert version_ids(client, "app/db") == sorted([first, second, third])


def test_a_binary_value_can_follow_a_string_value(client):
    client.create_secret(Name="app/db", SecretString="text")
    client.update_secret(SecretId="app/db", SecretBinary=b"\x00\xff")
    got = client.get_secret_value(SecretId="app/db")
    assert got["SecretBinary"] == b"\x00\xff"
    assert "SecretString" not in got


def test_a_value_given_to_a_secret_without_versions_becomes_awscurrent(client):
    client.create_secret(Name="app/db")
    version = client.update_secret(SecretId="app/db", SecretString="first")["VersionId"]
    assert client.describe_secret(SecretId="app/db")["VersionIdsToStages"] == {
        version: ["AWSCURRENT"]
    }


def test_it_changes_description_and_value_in_one_call(client):
    client.create_secret(Name="app/db", SecretString="v1", Description="old")
    client.update_secret(SecretId="app/db", SecretString="v2", Description="new")
    assert client.describe_secret(SecretId="app/db")["Description"] == "new"
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v2"


def test_it_updates_a_secret_named_by_its_arn(client):
    arn = client.create_secret(Name="app/db", SecretString="v1")["ARN"]
    client.update_secret(SecretId=arn, SecretString="v2")
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v2"


def test_an_identical_value_with_a_fresh_token_makes_a_new_version_and_a_new_change_date(
    client, clock
):
    client.create_secret(Name="app/db", SecretString="same")
    changed = [client.describe_secret(SecretId="app/db")["LastChangedDate"]]
    for _ in range(2):
        clock.advance(10)
        client.update_secret(SecretId="app/db", SecretString="same")
        changed.append(client.describe_secret(SecretId="app/db")["LastChangedDate"])
    assert changed[0] < changed[1] < changed[2]
    assert len(version_ids(client, "app/db")) == 3


# -- idempotency (spec §4) -------------------------------------------------------------------------


def test_a_retry_with_the_same_token_and_value_changes_nothing(client, clock):
    client.create_secret(Name="app/db", SecretString="v1")
    version = token()
    first = client.update_secret(
        SecretId="app/db", SecretString="v2", Description="first", ClientRequestToken=version
    )
    before = body(client.describe_secret(SecretId="app/db"))
    clock.advance(60)
    again = client.update_secret(
        SecretId="app/db", SecretString="v2", Description="retry", ClientRequestToken=version
    )
    assert body(again) == body(first)
    # The retry of an update that already happened is answered, not applied again: neither
    # LastChangedDate nor the metadata it carries change (spec §4: "no-op").
    assert body(client.describe_secret(SecretId="app/db")) == before


def test_a_retry_with_the_same_token_and_another_value_is_refused(client):
    arn = client.create_secret(Name="app/db", SecretString="v1")["ARN"]
    version = token()
    client.update_secret(SecretId="app/db", SecretString="v2", ClientRequestToken=version)
    assert refusal(
        client.update_secret,
        SecretId="app/db",
        SecretString="v3",
        Description="not applied either",
        ClientRequestToken=version,
    ) == (
        "ResourceExistsException",
        (
            f"You can't use ClientRequestToken {version} because that value is already in use for "
            f"a version of secret {arn}."
        ),
    )
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v2"
    assert "Description" not in client.describe_secret(SecretId="app/db")


def test_reusing_the_creation_token_with_the_creation_value_is_a_no_op(client):
    version = token()
    client.create_secret(Name="app/db", SecretString="v1", ClientRequestToken=version)
    updated = client.update_secret(SecretId="app/db", SecretString="v1", ClientRequestToken=version)
    assert updated["VersionId"] == version
    assert version_ids(client, "app/db") == [version]


# -- refusals --------------------------------------------------------------------------------------


def test_it_refuses_to_update_a_secret_scheduled_for_deletion(client):
    client.create_secret(Name="app/db", SecretString="v1", Description="before")
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    expected = ("InvalidRequestException", MARKED_FOR_DELETION)
    assert refusal(client.update_secret, SecretId="app/db", Description="after") == expected
    assert refusal(client.update_secret, SecretId="app/db", SecretString="v2") == expected
    client.restore_secret(SecretId="app/db")
    assert client.describe_secret(SecretId="app/db")["Description"] == "before"
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v1"


def test_it_answers_resource_not_found_for_an_unknown_secret(client):
    assert refusal(client.update_secret, SecretId="nowhere", Description="d") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )


def test_it_refuses_an_invalid_secret_id(client):
    code, _ = refusal(client.update_secret, SecretId="bad name", Description="d")
    assert code == "ValidationException"


def test_it_refuses_both_a_string_and_a_binary_value(client):
    client.create_secret(Name="app/db", SecretString="v1")
    assert refusal(
        client.update_secret, SecretId="app/db", SecretString="s", SecretBinary=b"b"
    ) == (
        "InvalidParameterException",
        (
            "You can't specify both a binary secret value and a string secret value in the same "
            "secret."
        ),
    )
    assert len(version_ids(client, "app/db")) == 1


def test_it_refuses_a_raw_value_update_without_a_client_request_token(server, client, region):
    client.create_secret(Name="app/db", SecretString="v1")
    response = signed_call(
        server.url, region, "UpdateSecret", {"SecretId": "app/db", "SecretString": "v2"}
    )
    assert response.status == 400
    assert response.body == {"__type": "InvalidRequestException", "Message": TOKEN_REQUIRED}
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "v1"


def test_a_raw_metadata_update_without_a_token_is_accepted(server, client, region):
    # UNCONFIRMED against AWS (spec §4 notes); no version is created, so no token is needed.
    client.create_secret(Name="app/db", SecretString="v1")
    response = signed_call(
        server.url, region, "UpdateSecret", {"SecretId": "app/db", "Description": "raw"}
    )
    assert response.status == 200
    assert client.describe_secret(SecretId="app/db")["Description"] == "raw"
