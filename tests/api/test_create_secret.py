"""CreateSecret (spec §15.1, §2.2, §2.3, §3.1, §4): ARNs, values, metadata and every refusal."""

from __future__ import annotations

import re
import time

import pytest
from tests.api.helpers import body, refusal, token
from tests.api.rawhttp import signed_call
from tests.conftest import ACCOUNT_ID

INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, "
    "or any of the following: -/_+=.@!"
)
TOKEN_REQUIRED = "You must provide a ClientRequestToken value. We recommend a UUID-type value."


# -- the ARN ---------------------------------------------------------------------------------------


def test_it_returns_an_arn_made_of_region_account_name_and_a_six_character_suffix(client, region):
    created = client.create_secret(Name="app/db", SecretString="s3cr3t")
    pattern = rf"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:app/db-[A-Za-z0-9]{{6}}"
    assert re.fullmatch(pattern, created["ARN"])
    assert created["Name"] == "app/db"


def test_it_gives_each_secret_its_own_arn_suffix(client):
    suffixes = {client.create_secret(Name=f"s{i}")["ARN"][-6:] for i in range(5)}
    assert len(suffixes) == 5


def test_it_gives_a_recreated_name_a_new_suffix_and_retires_the_old_arn(client):
    first = client.create_secret(Name="app/db", SecretString="one")["ARN"]
    client.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    second = client.create_secret(Name="app/db", SecretString="two")["ARN"]
    assert second != first
    assert second.removesuffix(second[-6:]) == first.removesuffix(first[-6:])
    assert refusal(client.describe_secret, SecretId=first) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
    assert client.get_secret_value(SecretId=second)["SecretString"] == "two"


def test_it_finds_the_new_secret_by_its_arn(client):
    arn = client.create_secret(Name="by-arn", SecretString="x")["ARN"]
    assert client.get_secret_value(SecretId=arn)["SecretString"] == "x"


# -- with and without a value ----------------------------------------------------------------------


def test_it_uses_the_client_request_token_as_the_first_version_id(client):
    version = token()
    created = client.create_secret(Name="app/db", SecretString="v", ClientRequestToken=version)
    assert created["VersionId"] == version
    described = client.describe_secret(SecretId="app/db")
    assert described["VersionIdsToStages"] == {version: ["AWSCURRENT"]}


def test_it_stores_a_binary_value_byte_for_byte(client):
    raw = b"\x00\x01\x02\xff"
    created = client.create_secret(Name="bin", SecretBinary=raw)
    got = client.get_secret_value(SecretId="bin")
    assert got["SecretBinary"] == raw
    assert "SecretString" not in got
    assert got["VersionId"] == created["VersionId"]


def test_it_answers_only_arn_and_name_when_created_without_a_value(client):
    created = client.create_secret(Name="empty")
    assert set(body(created)) == {"ARN", "Name"}


def test_a_secret_created_without_a_value_has_no_versions(client):
    client.create_secret(Name="empty", Description="nothing yet")
    described = client.describe_secret(SecretId="empty")
    assert "VersionIdsToStages" not in described
    assert (
        client.list_secret_version_ids(SecretId="empty", IncludeDeprecated=True)["Versions"] == []
    )


def test_reading_a_secret_created_without_a_value_finds_no_awscurrent(client):
    client.create_secret(Name="empty")
    assert refusal(client.get_secret_value, SecretId="empty") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
    )


def test_the_first_value_put_into_an_empty_secret_becomes_awscurrent(client):
    client.create_secret(Name="empty")
    put = client.put_secret_value(SecretId="empty", SecretString="late")
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert client.get_secret_value(SecretId="empty")["SecretString"] == "late"


# -- metadata --------------------------------------------------------------------------------------


def test_it_sets_created_and_last_changed_dates_to_the_time_of_creation(client):
    before = time.time()
    client.create_secret(Name="dated", SecretString="x")
    after = time.time()
    described = client.describe_secret(SecretId="dated")
    created = described["CreatedDate"].timestamp()
    assert before - 0.001 <= created <= after + 0.001
    assert described["LastChangedDate"] == described["CreatedDate"]
    # The first version is made in the same instant as the secret.
    assert client.get_secret_value(SecretId="dated")["CreatedDate"] == described["CreatedDate"]


def test_it_keeps_the_description(client):
    client.create_secret(Name="described", Description="the primary database")
    assert client.describe_secret(SecretId="described")["Description"] == "the primary database"


def test_it_treats_an_empty_description_as_absent(client):
    client.create_secret(Name="undescribed", Description="", SecretString="x")
    described = client.describe_secret(SecretId="undescribed")
    assert "Description" not in described
    (entry,) = client.list_secrets()["SecretList"]
    assert "Description" not in entry


def test_it_keeps_tags_in_the_order_given(client):
    tags = [
        {"Key": "zeta", "Value": "1"},
        {"Key": "alpha", "Value": "2"},
        {"Key": "Middle", "Value": ""},
    ]
    client.create_secret(Name="tagged", Tags=tags)
    assert client.describe_secret(SecretId="tagged")["Tags"] == tags
    (entry,) = client.list_secrets()["SecretList"]
    assert entry["Tags"] == tags


def test_a_secret_created_without_tags_shows_no_tags_member(client):
    client.create_secret(Name="plain", SecretString="x")
    assert "Tags" not in client.describe_secret(SecretId="plain")


def test_it_echoes_the_kms_key_id_it_was_given(client):
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    client.create_secret(Name="keyed", SecretString="x", KmsKeyId=key)
    assert client.describe_secret(SecretId="keyed")["KmsKeyId"] == key


def test_it_shows_no_kms_key_id_for_the_default_key(client):
    client.create_secret(Name="default-key", SecretString="x")
    assert "KmsKeyId" not in client.describe_secret(SecretId="default-key")
    (version,) = client.list_secret_version_ids(SecretId="default-key")["Versions"]
    assert version["KmsKeyIds"] == ["DefaultEncryptionKey"]


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["with space", "star*", "what?", "bracket]", "back\\slash", "é"])
def test_it_refuses_a_name_with_a_character_outside_the_allowed_set(client, name):
    assert refusal(client.create_secret, Name=name, SecretString="x") == (
        "ValidationException",
        INVALID_NAME,
    )
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_it_accepts_every_documented_name_character(client):
    name = "Az09/_+=.@-"
    created = client.create_secret(Name=name, SecretString="x")
    assert created["Name"] == name
    assert client.get_secret_value(SecretId=name)["SecretString"] == "x"


def test_it_accepts_a_name_of_512_characters_and_refuses_513(client):
    client.create_secret(Name="n" * 512)
    code, message = refusal(client.create_secret, Name="n" * 513)
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 512" in message


def test_names_are_case_sensitive(client):
    client.create_secret(Name="CaseName", SecretString="upper")
    client.create_secret(Name="casename", SecretString="lower")
    assert client.get_secret_value(SecretId="CaseName")["SecretString"] == "upper"
    assert client.get_secret_value(SecretId="casename")["SecretString"] == "lower"


# -- a name in use ---------------------------------------------------------------------------------


def test_it_refuses_a_name_that_is_already_in_use(client):
    client.create_secret(Name="app/db", SecretString="first")
    assert refusal(client.create_secret, Name="app/db", SecretString="second") == (
        "ResourceExistsException",
        "The operation failed because the secret app/db already exists.",
    )
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "first"


def test_it_refuses_a_name_in_use_even_without_a_value(client):
    client.create_secret(Name="app/db")
    assert refusal(client.create_secret, Name="app/db") == (
        "ResourceExistsException",
        "The operation failed because the secret app/db already exists.",
    )


def test_a_name_in_use_in_another_region_is_free_here(server, client):
    other = server.client(f"{client.meta.region_name}x")
    other.create_secret(Name="shared", SecretString="there")
    client.create_secret(Name="shared", SecretString="here")
    assert client.get_secret_value(SecretId="shared")["SecretString"] == "here"


def test_it_refuses_a_name_scheduled_for_deletion(client):
    client.create_secret(Name="doomed", SecretString="x")
    client.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    assert refusal(client.create_secret, Name="doomed", SecretString="y") == (
        "InvalidRequestException",
        (
            "You can't create this secret because a secret with this name is already scheduled "
            "for deletion."
        ),
    )


# -- idempotency (spec §4) -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [{"SecretString": "same"}, {"SecretBinary": b"\x00same"}])
def test_a_retry_with_the_same_token_and_value_answers_as_the_first_call(client, value):
    version = token()
    first = client.create_secret(Name="retry", ClientRequestToken=version, **value)
    again = client.create_secret(Name="retry", ClientRequestToken=version, **value)
    assert (
        body(again) == body(first) == {"ARN": first["ARN"], "Name": "retry", "VersionId": version}
    )
    versions = client.list_secret_version_ids(SecretId="retry", IncludeDeprecated=True)["Versions"]
    assert [v["VersionId"] for v in versions] == [version]


def test_a_retry_with_the_same_token_and_another_value_is_refused(client):
    version = token()
    arn = client.create_secret(Name="retry", SecretString="one", ClientRequestToken=version)["ARN"]
    assert refusal(
        client.create_secret, Name="retry", SecretString="two", ClientRequestToken=version
    ) == (
        "ResourceExistsException",
        (
            f"You can't use ClientRequestToken {version} because that value is already in use for "
            f"a version of secret {arn}."
        ),
    )
    assert client.get_secret_value(SecretId="retry")["SecretString"] == "one"


def test_a_string_and_a_binary_value_with_the_same_token_count_as_different(client):
    version = token()
    client.create_secret(Name="retry", SecretString="abc", ClientRequestToken=version)
    code, _ = refusal(
        client.create_secret, Name="retry", SecretBinary=b"abc", ClientRequestToken=version
    )
    assert code == "ResourceExistsException"


def test_a_retry_with_another_token_is_a_name_clash(client):
    client.create_secret(Name="retry", SecretString="same")
    code, message = refusal(client.create_secret, Name="retry", SecretString="same")
    assert (code, message) == (
        "ResourceExistsException",
        "The operation failed because the secret retry already exists.",
    )


# -- malformed requests ----------------------------------------------------------------------------


def test_it_refuses_both_a_string_and_a_binary_value(client):
    assert refusal(client.create_secret, Name="both", SecretString="s", SecretBinary=b"b") == (
        "InvalidParameterException",
        (
            "You can't specify both a binary secret value and a string secret value in the same "
            "secret."
        ),
    )
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_it_refuses_a_raw_request_without_a_client_request_token(server, client, region):
    response = signed_call(
        server.url, region, "CreateSecret", {"Name": "tokenless", "SecretString": "x"}
    )
    assert response.status == 400
    assert response.body == {"__type": "InvalidRequestException", "Message": TOKEN_REQUIRED}
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_a_raw_request_with_a_token_creates_the_secret(server, client, region):
    version = token()
    response = signed_call(
        server.url,
        region,
        "CreateSecret",
        {"Name": "raw", "SecretString": "x", "ClientRequestToken": version},
    )
    assert response.status == 200
    assert response.body["VersionId"] == version
    assert client.get_secret_value(SecretId="raw")["VersionId"] == version


def test_it_refuses_a_client_request_token_longer_than_64_characters(client):
    # Text from the emulators, UNCONFIRMED against AWS (spec §16.2).
    assert refusal(
        client.create_secret, Name="long-token", SecretString="x", ClientRequestToken="t" * 65
    ) == ("InvalidParameterException", "ClientRequestToken must be 32-64 characters long.")


def test_it_refuses_more_than_50_tags(client):
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    code, _ = refusal(client.create_secret, Name="overtagged", Tags=tags)
    assert code == "InvalidParameterException"
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_it_refuses_a_tag_without_a_key_and_creates_nothing(client):
    code, _ = refusal(client.create_secret, Name="keyless", Tags=[{"Value": "orphan"}])
    assert code == "InvalidParameterException"
    assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
