"""The JSON 1.1 wire format, seen in raw HTTP (spec §1): headers, error bodies, encodings.

boto3 hides most of this (it parses epoch numbers and base64 for the caller), so these tests
sign requests with botocore's SigV4 signer and read the bytes the server sent.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ROOT_KEY_ID, ROOT_SECRET

CONTENT_TYPE = "application/x-amz-json-1.1"
TOKEN = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def raw(server, region):
    """``raw(action, body)``: a signed POST of ``body`` (bytes or JSON-able) for ``region``."""
    with httpx.Client(timeout=30) as http:

        def send(
            action: str | None, body: Any = None, *, target: str | None = None
        ) -> httpx.Response:
            data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
            headers = {"Content-Type": CONTENT_TYPE}
            if target is not None or action is not None:
                headers["X-Amz-Target"] = target or f"secretsmanager.{action}"
            request = AWSRequest("POST", server.url + "/", data=data, headers=headers)
            credentials = Credentials(ROOT_KEY_ID, ROOT_SECRET)
            SigV4Auth(credentials, "secretsmanager", region).add_auth(request)
            return http.post(server.url + "/", content=data, headers=dict(request.headers.items()))

        yield send


def nulls_in(value: Any, path: str = "$") -> list[str]:
    """Where in a parsed JSON document a null sits."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls_in(v, f"{path}[{i}]")]
    return []


def is_epoch_number(value: Any) -> bool:
    # A JSON number (not a string, not a bool) of seconds, with at most millisecond precision.
    return (
        type(value) in (int, float)
        and 1e9 < value < 1e10
        and round(value * 1000) == pytest.approx(value * 1000, abs=1e-3)
    )


# -- headers ------------------------------------------------------------------------------------


def test_every_response_has_the_json_1_1_content_type_and_a_request_id(raw, server):
    responses = [
        raw("ListSecrets"),  # 200
        raw("DescribeSecret", {"SecretId": "missing"}),  # operation error
        raw("ListSecrets", b"{not json"),  # front-end error
        raw("NoSuchAction"),  # unknown operation
        raw("ListSecrets", b" " * (512 * 1024 + 1)),  # too large
        httpx.post(server.url + "/", content=b"{}"),  # unsigned
    ]
    ids = []
    for response in responses:
        assert response.headers["content-type"] == CONTENT_TYPE
        request_id = response.headers["x-amzn-RequestId"]
        assert str(uuid.UUID(request_id)) == request_id
        ids.append(request_id)
    assert len(set(ids)) == len(ids)


def test_botocore_reads_the_request_id_from_the_header(client):
    response = client.list_secrets()
    assert str(uuid.UUID(response["ResponseMetadata"]["RequestId"]))


# -- error bodies -------------------------------------------------------------------------------


def test_it_answers_resource_not_found_with_http_400_and_type_and_message(raw):
    response = raw("DescribeSecret", {"SecretId": "no/such/secret"})
    assert response.status_code == 400
    assert response.json() == {
        "__type": "ResourceNotFoundException",
        "Message": "Secrets Manager can't find the specified secret.",
    }


def test_it_answers_an_unknown_target_with_unknown_operation(raw):
    response = raw(None, target="secretsmanager.StealSecret")
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


def test_it_answers_a_target_of_another_service_with_unknown_operation(raw):
    response = raw(None, target="DynamoDB_20120810.ListTables")
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


def test_it_answers_a_request_without_a_target_with_unknown_operation(raw):
    response = raw(None)
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"SecretId": }', b"not json", b'{"SecretId": "a"} trailing', b"\xff\xfe\x00"],
)
def test_it_answers_malformed_json_with_serialization_exception(raw, body):
    response = raw("DescribeSecret", body)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


@pytest.mark.parametrize("body", [b"[]", b'"DescribeSecret"', b"42", b"true"])
def test_it_answers_a_body_that_is_not_an_object_with_serialization_exception(raw, body):
    response = raw("ListSecrets", body)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


def test_it_answers_a_member_of_the_wrong_type_with_serialization_exception(raw):
    response = raw("DescribeSecret", {"SecretId": ["a", "list"]})
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


def test_it_treats_an_empty_body_as_an_empty_object(raw):
    # botocore always sends "{}", but a hand-written request (curl) may send nothing.
    response = raw("ListSecrets", b"")
    assert response.status_code == 200
    assert response.json() == {"SecretList": []}


def test_it_ignores_unknown_members(raw, client):
    client.create_secret(Name="known", SecretString="v")
    response = raw("DescribeSecret", {"SecretId": "known", "NoSuchMember": {"x": [1]}})
    assert response.status_code == 200
    assert response.json()["Name"] == "known"


def test_it_treats_a_null_member_as_absent(raw):
    response = raw("ListSecrets", {"MaxResults": None, "Filters": None})
    assert response.status_code == 200


def test_it_answers_a_null_required_member_with_a_validation_error(raw):
    response = raw("DescribeSecret", {"SecretId": None})
    assert response.status_code == 400
    assert response.json() == {
        "__type": "ValidationException",
        "Message": (
            "1 validation error detected: Value null at 'secretId' failed to satisfy "
            "constraint: Member must not be null"
        ),
    }


# -- value encodings ------------------------------------------------------------------------------


def test_timestamps_are_epoch_numbers_in_the_raw_json(raw, client):
    client.create_secret(Name="dated", SecretString="v", ClientRequestToken=TOKEN)
    got = raw("GetSecretValue", {"SecretId": "dated"}).json()
    assert is_epoch_number(got["CreatedDate"]), got
    versions = raw("ListSecretVersionIds", {"SecretId": "dated"}).json()
    assert is_epoch_number(versions["Versions"][0]["CreatedDate"]), versions
    client.delete_secret(SecretId="dated", RecoveryWindowInDays=7)
    described = raw("DescribeSecret", {"SecretId": "dated"}).json()
    for member in ("CreatedDate", "LastChangedDate", "LastAccessedDate", "DeletedDate"):
        assert type(described[member]) in (int, float), (member, described)
    for member in ("CreatedDate", "LastChangedDate", "DeletedDate"):
        assert is_epoch_number(described[member]), (member, described)
    listed = raw("ListSecrets", {"IncludePlannedDeletion": True}).json()
    assert is_epoch_number(listed["SecretList"][0]["CreatedDate"])


def test_last_accessed_date_is_midnight_utc_of_the_day_of_access(raw, client):
    client.create_secret(Name="read", SecretString="v")
    client.get_secret_value(SecretId="read")
    accessed = raw("DescribeSecret", {"SecretId": "read"}).json()["LastAccessedDate"]
    assert type(accessed) in (int, float)
    assert accessed % 86_400 == 0


def test_a_raw_describe_secret_body_has_no_null_anywhere(raw, client):
    # A bare secret (no description, tags, rotation, value) has the most absent members.
    client.create_secret(Name="bare")
    response = raw("DescribeSecret", {"SecretId": "bare"})
    assert response.status_code == 200
    body = response.json()
    assert nulls_in(body) == []
    assert b"null" not in response.content
    for absent in ("Description", "KmsKeyId", "RotationLambdaARN", "DeletedDate"):
        assert absent not in body


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("ListSecrets", {}),
        ("ListSecretVersionIds", {"SecretId": "full", "IncludeDeprecated": True}),
        ("GetSecretValue", {"SecretId": "full"}),
        ("PutSecretValue", {"SecretId": "full", "SecretString": "v2", "ClientRequestToken": TOKEN}),
        ("UpdateSecret", {"SecretId": "full", "Description": "d2"}),
        ("DeleteSecret", {"SecretId": "full"}),
    ],
)
def test_no_raw_response_body_carries_null(raw, client, action, body):
    client.create_secret(Name="full", SecretString="v", Description="d")
    client.create_secret(Name="empty")
    response = raw(action, body)
    assert response.status_code == 200, response.text
    assert nulls_in(response.json()) == []


def test_secret_binary_is_base64_in_the_raw_json(raw, client):
    client.create_secret(Name="bin", SecretBinary=b"footest")
    got = raw("GetSecretValue", {"SecretId": "bin"}).json()
    assert got["SecretBinary"] == "Zm9vdGVzdA=="
    assert "SecretString" not in got


def test_secret_binary_sent_as_base64_comes_back_as_the_same_bytes(raw, client):
    data = bytes([0, 1, 2, 255]) + bytes(range(256))
    response = raw(
        "CreateSecret",
        {
            "Name": "raw-bin",
            "SecretBinary": base64.b64encode(data).decode(),
            "ClientRequestToken": TOKEN,
        },
    )
    assert response.status_code == 200, response.text
    assert client.get_secret_value(SecretId="raw-bin")["SecretBinary"] == data


@pytest.mark.parametrize("encoded", ["Zm9vdGVzdA=", "Zm9v dGVz", "Zm9vdGVzdA==\n", "!!!!"])
def test_it_refuses_secret_binary_that_is_not_base64(raw, encoded):
    response = raw(
        "CreateSecret", {"Name": "bad-bin", "SecretBinary": encoded, "ClientRequestToken": TOKEN}
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


def test_tag_resource_answers_an_empty_object(raw, client):
    client.create_secret(Name="tagged", SecretString="v")
    response = raw("TagResource", {"SecretId": "tagged", "Tags": [{"Key": "k", "Value": "v"}]})
    assert response.status_code == 200
    assert response.json() == {}


def test_a_response_body_is_utf8_json_that_keeps_unicode_values(raw, client):
    value = "pässwörd \U0001f510 密码"
    client.create_secret(Name="unicode", SecretString=value, Description="naïve")
    response = raw("GetSecretValue", {"SecretId": "unicode"})
    assert json.loads(response.content.decode("utf-8"))["SecretString"] == value
    assert client.describe_secret(SecretId="unicode")["Description"] == "naïve"
