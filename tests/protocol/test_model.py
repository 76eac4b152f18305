"""The compiled service model: request parsing/validation and response writing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.parsers import JSONParser
from botocore.session import get_session

from strongroom.errors import SerializationException, ValidationException
from strongroom.protocol.model import BAD_BASE64, ServiceModel, error_body

MODEL = ServiceModel.load()
BOTOCORE = get_session()
FILTER_KEYS = "[description, name, tag-key, tag-value, primary-region, owning-service, all]"
ONE = "1 validation error detected: "
KEY = "\U0001f511"  # outside the BMP: two UTF-16 units, as Java (and AWS) count it


def parse(operation: str, body: Any) -> dict[str, Any]:
    op = MODEL.operation(operation)
    assert op is not None
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return op.parse_input(raw)


GOOD = [
    ("GetSecretValue", {"SecretId": "db", "VersionStage": "AWSCURRENT"}, None),
    # unknown members are ignored, nulls are the same as absent
    ("GetSecretValue", {"SecretId": "db", "Bogus": 1, "VersionId": None}, {"SecretId": "db"}),
    ("GetRandomPassword", b"", {}),
    ("GetRandomPassword", b" \n", {}),
    ("GetRandomPassword", {"PasswordLength": 4096, "ExcludeNumbers": True}, None),
    ("ListSecrets", {"MaxResults": 1.9}, {"MaxResults": 1}),  # AWS truncates
    ("ListSecrets", {"SortOrder": "asc", "Filters": [{"Key": "name", "Values": ["!a b"]}]}, None),
    (
        "UntagResource",
        {"SecretId": "db", "TagKeys": ["a", None, "b"]},
        {"SecretId": "db", "TagKeys": ["a", "b"]},
    ),
    (
        "CreateSecret",
        {"Name": "n", "SecretBinary": "Zm9vdGVzdA=="},
        {"Name": "n", "SecretBinary": b"footest"},
    ),
    (
        "CreateSecret",
        {"Name": "n", "SecretBinary": "AAEC/w=="},
        {"Name": "n", "SecretBinary": b"\x00\x01\x02\xff"},
    ),
    ("CreateSecret", {"Name": "n", "Tags": [{"Key": "k", "Value": ""}]}, None),
    # 256 characters outside the BMP are 512 UTF-16 units: exactly the limit
    ("CreateSecret", {"Name": KEY * 256}, None),
    # ClientRequestToken constraints are the operation's business (InvalidRequestException etc.)
    ("CreateSecret", {"Name": "n"}, None),
    ("CreateSecret", {"Name": "n", "ClientRequestToken": "short"}, None),
    ("RotateSecret", {"SecretId": "s", "ClientRequestToken": "x" * 65}, None),
]


@pytest.mark.parametrize(("operation", "body", "expected"), GOOD)
def test_good_requests(operation: str, body: Any, expected: dict[str, Any] | None) -> None:
    assert parse(operation, body) == (body if expected is None else expected)


BAD_VALUES = [
    (
        "CreateSecret",
        {"Name": "x" * 513},
        ONE + f"Value '{'x' * 513}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 512",
    ),
    (
        "CreateSecret",
        {"Name": KEY * 256 + "x"},  # 513 UTF-16 units: AWS counts Java chars
        ONE + f"Value '{KEY * 256}x' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 512",
    ),
    (
        "ListSecrets",
        {"SortOrder": "up"},
        ONE + "Value 'up' at 'sortOrder' failed to satisfy constraint: "
        "Member must satisfy enum value set: [asc, desc]",
    ),
    (
        "ListSecrets",
        {"Filters": [{"Key": "bogus", "Values": ["x"]}]},
        ONE + "Value 'bogus' at 'filters.1.member.key' failed to satisfy constraint: "
        f"Member must satisfy enum value set: {FILTER_KEYS}",
    ),
    (
        "ListSecrets",
        {"Filters": [{"Key": "name", "Values": ["a"]}, {"Key": "nope"}]},
        ONE + "Value 'nope' at 'filters.2.member.key' failed to satisfy constraint: "
        f"Member must satisfy enum value set: {FILTER_KEYS}",
    ),
    (
        "ListSecrets",
        {"Filters": [{"Key": "name", "Values": ["ok", "bad*"]}]},
        ONE + "Value '[ok, bad*]' at 'filters.1.member.values' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 512, "
        "Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$]",
    ),
    (
        "GetRandomPassword",
        {"PasswordLength": 0},
        ONE + "Value '0' at 'passwordLength' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    ),
    (
        "GetRandomPassword",
        {"PasswordLength": 5000},
        ONE + "Value '5000' at 'passwordLength' failed to satisfy constraint: "
        "Member must have value less than or equal to 4096",
    ),
    (
        "GetRandomPassword",  # beyond a Java long: AWS does not echo it
        {"PasswordLength": 2**64},
        ONE + "Value at 'passwordLength' failed to satisfy constraint: "
        "Member must have value less than or equal to 4096",
    ),
    (
        "GetSecretValue",
        {},
        ONE + "Value null at 'secretId' failed to satisfy constraint: Member must not be null",
    ),
    (
        "GetSecretValue",
        {"SecretId": None},
        ONE + "Value null at 'secretId' failed to satisfy constraint: Member must not be null",
    ),
    (
        "PutSecretValue",
        {"SecretId": "s", "VersionStages": ["", "AWSCURRENT"]},
        ONE + "Value '[, AWSCURRENT]' at 'versionStages' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 256, "
        "Member must have length greater than or equal to 1]",
    ),
    (
        "PutSecretValue",
        {"SecretId": "s", "VersionStages": []},
        ONE + "Value '[]' at 'versionStages' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    (
        "RotateSecret",
        {"SecretId": "s", "RotationRules": {"AutomaticallyAfterDays": 0, "Duration": "2d"}},
        (
            "2 validation errors detected: Value '0' at 'rotationRules.automaticallyAfterDays' "
            "failed to satisfy constraint: Member must have value greater than or equal to 1; "
            "Value '2d' at 'rotationRules.duration' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [0-9]+h"
        ),
    ),
    (
        "CreateSecret",
        {"Name": "", "Description": "d" * 2049},
        (
            "2 validation errors detected: Value '' at 'name' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1; "
            f"Value '{'d' * 2049}' at 'description' failed to satisfy constraint: "
            "Member must have length less than or equal to 2048"
        ),
    ),
    (
        "CreateSecret",  # sensitive: the value is never echoed
        {"Name": "n", "SecretString": ""},
        ONE + "Value at 'secretString' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    (
        "CreateSecret",
        {"Name": "n", "SecretBinary": ""},
        ONE + "Value at 'secretBinary' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    (
        "PutSecretValue",
        {"SecretId": "s", "RotationToken": "not*valid"},
        (
            "2 validation errors detected: Value at 'rotationToken' failed to satisfy constraint: "
            "Member must have length greater than or equal to 36; "
            "Value at 'rotationToken' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$"
        ),
    ),
]


@pytest.mark.parametrize(("operation", "body", "message"), BAD_VALUES)
def test_constraint_violations(operation: str, body: Any, message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        parse(operation, body)
    assert caught.value.message == message


def test_long_secret_string_is_not_echoed() -> None:
    secret = "hunter2-" * 8193  # 65544 characters
    with pytest.raises(ValidationException) as caught:
        parse("CreateSecret", {"Name": "n", "SecretString": secret})
    assert caught.value.message == (
        ONE + "Value at 'secretString' failed to satisfy constraint: "
        "Member must have length less than or equal to 65536"
    )
    assert "hunter2" not in caught.value.message


def test_at_most_ten_violations_are_listed() -> None:
    with pytest.raises(ValidationException) as caught:
        parse("TagResource", {"SecretId": "s", "Tags": [{"Key": ""}] * 12})
    message = caught.value.message
    assert message.startswith("10 validation errors detected: Value '' at 'tags.1.member.key'")
    assert message.count("failed to satisfy constraint") == 10
    assert "'tags.10.member.key'" in message
    assert "'tags.11.member.key'" not in message


BAD_TYPES = [
    ("GetRandomPassword", {"PasswordLength": "5"}, "STRING_VALUE can not be converted to a Long"),
    ("GetRandomPassword", {"PasswordLength": True}, "TRUE_VALUE can not be converted to a Long"),
    ("ListSecrets", {"MaxResults": "5"}, "STRING_VALUE can not be converted to an Integer"),
    ("ListSecrets", {"MaxResults": [1]}, "Start of list found where not expected"),
    ("ListSecrets", {"MaxResults": {}}, "Start of structure or map found where not expected."),
    ("GetSecretValue", {"SecretId": 1}, "NUMBER_VALUE can not be converted to a String"),
    ("GetSecretValue", {"SecretId": False}, "FALSE_VALUE can not be converted to a String"),
    (
        "GetRandomPassword",
        {"ExcludeNumbers": "true"},
        "STRING_VALUE can not be converted to a Boolean",
    ),
    ("TagResource", {"SecretId": "s", "Tags": "k=v"}, "Expected list or null"),
    (
        "TagResource",
        {"SecretId": "s", "Tags": {"k": "v"}},
        "Start of structure or map found where not expected.",
    ),
    ("TagResource", {"SecretId": "s", "Tags": [["k"]]}, "Start of list found where not expected"),
    ("RotateSecret", {"SecretId": "s", "RotationRules": 7}, "Expected null"),
    (
        "UntagResource",
        {"SecretId": "s", "TagKeys": [1]},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "CreateSecret",
        {"Name": "n", "SecretString": 12345},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "CreateSecret",
        {"Name": "n", "SecretBinary": 5},
        "NUMBER_VALUE can not be converted to a Blob",
    ),
    (
        "CreateSecret",
        {"Name": "n", "ClientRequestToken": 5},
        "NUMBER_VALUE can not be converted to a String",
    ),
    # a type error wins over constraint violations elsewhere in the body (Athena)
    (
        "CreateSecret",
        {"Name": "", "Description": 1},
        "NUMBER_VALUE can not be converted to a String",
    ),
    # base64: length, alphabet, padding, and padding bits that are not zero
    (
        "CreateSecret",
        {"Name": "n", "SecretBinary": "Zm9"},
        "Base64 encoded length is expected a multiple of 4 bytes but found: 3",
    ),
    ("CreateSecret", {"Name": "n", "SecretBinary": "Zm9v!A=="}, BAD_BASE64),
    ("CreateSecret", {"Name": "n", "SecretBinary": "Zg==Zg=="}, BAD_BASE64),
    ("CreateSecret", {"Name": "n", "SecretBinary": "Zm9="}, BAD_BASE64),
    ("CreateSecret", {"Name": "n", "SecretBinary": "Zh=="}, BAD_BASE64),
]


@pytest.mark.parametrize(("operation", "body", "message"), BAD_TYPES)
def test_type_mismatches(operation: str, body: Any, message: str) -> None:
    with pytest.raises(SerializationException) as caught:
        parse(operation, body)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"SecretId": "x"', ""),  # truncated
        (b"{", ""),
        (b'{"SecretId": "x",}', ""),
        (b"{}x", ""),
        (b"null", ""),
        (b'"SecretId"', ""),
        (b"42", ""),
        (b'{"SecretId": NaN}', ""),
        (b'{"SecretId": "\xff"}', ""),  # not UTF-8
        (b"[" * 100_000, ""),  # nesting deeper than the decoder's recursion limit
        (b"[]", "Start of list found where not expected"),
        (b'[{"SecretId": "x"}]', "Start of list found where not expected"),
    ],
)
def test_unparsable_bodies(body: bytes, message: str) -> None:
    with pytest.raises(SerializationException) as caught:
        parse("GetSecretValue", body)
    assert caught.value.message == message


def test_every_operation_is_compiled() -> None:
    assert MODEL.target_prefix == "secretsmanager"
    assert ServiceModel.load() is MODEL  # built once per process
    assert {"CreateSecret", "GetSecretValue", "ListSecrets"} <= MODEL.operation_names
    assert MODEL.operation("Nope") is None
    botocore_model = BOTOCORE.get_service_model("secretsmanager")
    assert set(botocore_model.operation_names) == MODEL.operation_names
    for name in MODEL.operation_names:
        op = MODEL.operation(name)
        assert op is not None
        assert op.name == name
        assert op._parse is not None
        required = sorted(botocore_model.operation_model(name).input_shape.required_members)
        if not required:
            assert op.parse_input(b"{}") == {}
            continue
        with pytest.raises(ValidationException) as caught:
            op.parse_input(b"{}")
        for member in required:
            camel = member[0].lower() + member[1:]
            assert f"Value null at '{camel}' failed" in caught.value.message


def _read_back(operation: str, body: bytes) -> dict[str, Any]:
    """Parse our bytes the way botocore (so boto3 and the CLI) would."""
    shape = BOTOCORE.get_service_model("secretsmanager").operation_model(operation).output_shape
    parsed: dict[str, Any] = JSONParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, shape
    )
    return parsed


def test_serialize_output_round_trip() -> None:
    created = datetime(2018, 4, 11, 20, 5, 45, 713400, tzinfo=UTC)
    op = MODEL.operation("DescribeSecret")
    assert op is not None
    body = op.serialize_output(
        {
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
            "Name": "db",
            "Description": None,
            "LastAccessedDate": datetime(2018, 4, 12),  # noqa: DTZ001 (naive means UTC)
            "CreatedDate": created,
            "Tags": [],
            "VersionIdsToStages": {"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"]},
            "ReplicationStatus": [{"Region": "eu-west-1", "KmsKeyId": None}],
            "NotInTheModel": "dropped",
        }
    )
    assert body == (
        b'{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf","Name":"db",'
        b'"LastAccessedDate":1523491200.0,"CreatedDate":1523477145.713,"Tags":[],'
        b'"VersionIdsToStages":{"v1":["AWSCURRENT"],"v0":["AWSPREVIOUS"]},'
        b'"ReplicationStatus":[{"Region":"eu-west-1"}]}'
    )
    back = _read_back("DescribeSecret", body)
    assert back["CreatedDate"] == created - timedelta(microseconds=400)
    assert back["LastAccessedDate"] == datetime(2018, 4, 12, tzinfo=UTC)
    assert back["Tags"] == []
    assert "Description" not in back


def test_serialize_blob_and_float_timestamp() -> None:
    op = MODEL.operation("GetSecretValue")
    assert op is not None
    body = op.serialize_output(
        {"Name": "b", "SecretBinary": b"\x00\x01\x02\xff", "CreatedDate": 1523477145.71349}
    )
    assert body == b'{"Name":"b","SecretBinary":"AAEC/w==","CreatedDate":1523477145.713}'
    back = _read_back("GetSecretValue", body)
    assert back["SecretBinary"] == b"\x00\x01\x02\xff"
    # and what we write we also read: the request parser decodes the same base64
    assert parse("CreateSecret", {"Name": "n", "SecretBinary": "AAEC/w=="})["SecretBinary"] == (
        b"\x00\x01\x02\xff"
    )


def test_operation_without_output_writes_empty_object() -> None:
    op = MODEL.operation("TagResource")
    assert op is not None
    assert op.serialize_output({}) == b"{}"


def test_error_body() -> None:
    assert json.loads(
        error_body("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    ) == {
        "__type": "ResourceNotFoundException",
        "Message": "Secrets Manager can't find the specified secret.",
    }
    assert error_body("SerializationException", "") == b'{"__type":"SerializationException"}'
