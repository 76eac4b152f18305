"""The Query protocol (IAM, STS) against botocore's own serializer and parser.

Requests are built by botocore exactly as boto3 sends them, then decoded and parsed by us;
responses are written by us and read back by botocore's QueryParser. Equality both ways means
the SDKs and Strongroom agree on every member, list, map, boolean, integer and timestamp.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.session import get_session
from hypothesis import given
from hypothesis import strategies as st

from strongroom.protocol.query import QueryService, decode_form, error_xml

SESSION = get_session()
ACCOUNT = "123456789012"
CREATED = datetime(2026, 11, 28, 11, 27, 19, tzinfo=UTC)
USED = datetime(2026, 11, 29, 8, 0, 1, 250000, tzinfo=UTC)  # milliseconds survive the trip
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "café & <ops>"}},
            }
        ],
    },
    ensure_ascii=False,
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
TAGS = [{"Key": "team", "Value": "platform"}, {"Key": "owner", "Value": "Zoë 日本"}]
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/engineering/alice"
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/read-secrets"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/deployer"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"

USER = {
    "Path": "/engineering/",
    "UserName": "alice",
    "UserId": "AIDACKCEVSQ6C2EXAMPLE",
    "Arn": USER_ARN,
    "CreateDate": CREATED,
    "PasswordLastUsed": USED,
    "PermissionsBoundary": {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": POLICY_ARN,
    },
    "Tags": TAGS,
}
POLICY_INFO = {
    "PolicyName": "read-secrets",
    "PolicyId": "ANPAJ2UCCR6DPCEXAMPLE",
    "Arn": POLICY_ARN,
    "Path": "/",
    "DefaultVersionId": "v1",
    "AttachmentCount": 2,
    "PermissionsBoundaryUsageCount": 0,
    "IsAttachable": True,
    "Description": "Read the database secrets",
    "CreateDate": CREATED,
    "UpdateDate": USED,
    "Tags": TAGS,
}
ROLE = {
    "Path": "/",
    "RoleName": "deployer",
    "RoleId": "AROADBQP57FF2AEXAMPLE",
    "Arn": ROLE_ARN,
    "CreateDate": CREATED,
    "AssumeRolePolicyDocument": quote(TRUST),  # IAM sends policy documents URL-encoded
    "Description": "Deploys things",
    "MaxSessionDuration": 3600,
    "Tags": TAGS,
    "RoleLastUsed": {"LastUsedDate": USED, "Region": "eu-west-1"},
}

# (service, action, request params, result); result None: the model has no output shape
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "iam",
        "CreateUser",
        {
            "Path": "/engineering/",
            "UserName": "alice",
            "PermissionsBoundary": POLICY_ARN,
            "Tags": TAGS,
        },
        {"User": USER},
    ),
    ("iam", "GetUser", {"UserName": "alice"}, {"User": USER}),
    ("iam", "GetUser", {}, {"User": {**USER, "Tags": []}}),
    (
        "iam",
        "ListUsers",
        {"PathPrefix": "/engineering/", "Marker": "bWFya2Vy", "MaxItems": 2},
        {"Users": [USER, {**USER, "UserName": "bob"}], "IsTruncated": True, "Marker": "next"},
    ),
    ("iam", "ListUsers", {}, {"Users": [], "IsTruncated": False}),
    ("iam", "DeleteUser", {"UserName": "alice"}, None),
    (
        "iam",
        "CreateAccessKey",
        {"UserName": "alice"},
        {
            "AccessKey": {
                "UserName": "alice",
                "AccessKeyId": KEY_ID,
                "Status": "Active",
                "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "CreateDate": CREATED,
            }
        },
    ),
    (
        "iam",
        "ListAccessKeys",
        {"UserName": "alice", "MaxItems": 10},
        {
            "AccessKeyMetadata": [
                {"UserName": "alice", "AccessKeyId": KEY_ID, "Status": "Inactive"},
                {"UserName": "alice", "AccessKeyId": "AKIAI44QH8DHBEXAMPLE", "Status": "Active"},
            ],
            "IsTruncated": False,
        },
    ),
    (
        "iam",
        "UpdateAccessKey",
        {"UserName": "alice", "AccessKeyId": KEY_ID, "Status": "Inactive"},
        None,
    ),
    ("iam", "DeleteAccessKey", {"UserName": "alice", "AccessKeyId": KEY_ID}, None),
    (
        "iam",
        "PutUserPolicy",
        {"UserName": "alice", "PolicyName": "read-secrets", "PolicyDocument": POLICY},
        None,
    ),
    (
        "iam",
        "GetUserPolicy",
        {"UserName": "alice", "PolicyName": "read-secrets"},
        {"UserName": "alice", "PolicyName": "read-secrets", "PolicyDocument": quote(POLICY)},
    ),
    (
        "iam",
        "ListUserPolicies",
        {"UserName": "alice", "Marker": "m1", "MaxItems": 100},
        {"PolicyNames": ["read-secrets", "write-logs"], "IsTruncated": False},
    ),
    ("iam", "DeleteUserPolicy", {"UserName": "alice", "PolicyName": "read-secrets"}, None),
    (
        "iam",
        "CreatePolicy",
        {
            "PolicyName": "read-secrets",
            "Path": "/",
            "PolicyDocument": POLICY,
            "Description": "Read the database secrets",
            "Tags": TAGS,
        },
        {"Policy": POLICY_INFO},
    ),
    ("iam", "GetPolicy", {"PolicyArn": POLICY_ARN}, {"Policy": POLICY_INFO}),
    (
        "iam",
        "GetPolicyVersion",
        {"PolicyArn": POLICY_ARN, "VersionId": "v1"},
        {
            "PolicyVersion": {
                "Document": quote(POLICY),
                "VersionId": "v1",
                "IsDefaultVersion": True,
                "CreateDate": CREATED,
            }
        },
    ),
    (
        "iam",
        "ListPolicies",
        {
            "Scope": "Local",
            "OnlyAttached": True,
            "PathPrefix": "/",
            "PolicyUsageFilter": "PermissionsPolicy",
            "MaxItems": 50,
        },
        {"Policies": [POLICY_INFO], "IsTruncated": True, "Marker": "page-2"},
    ),
    ("iam", "ListPolicies", {"OnlyAttached": False}, {"Policies": [], "IsTruncated": False}),
    ("iam", "DeletePolicy", {"PolicyArn": POLICY_ARN}, None),
    ("iam", "AttachUserPolicy", {"UserName": "alice", "PolicyArn": POLICY_ARN}, None),
    ("iam", "DetachUserPolicy", {"UserName": "alice", "PolicyArn": POLICY_ARN}, None),
    (
        "iam",
        "ListAttachedUserPolicies",
        {"UserName": "alice", "PathPrefix": "/", "MaxItems": 5},
        {
            "AttachedPolicies": [
                {"PolicyName": "read-secrets", "PolicyArn": POLICY_ARN},
                {
                    "PolicyName": "ReadOnlyAccess",
                    "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
                },
            ],
            "IsTruncated": False,
        },
    ),
    (
        "iam",
        "CreateRole",
        {
            "Path": "/",
            "RoleName": "deployer",
            "AssumeRolePolicyDocument": TRUST,
            "Description": "Deploys things",
            "MaxSessionDuration": 3600,
            "PermissionsBoundary": POLICY_ARN,
            "Tags": TAGS,
        },
        {"Role": ROLE},
    ),
    ("iam", "GetRole", {"RoleName": "deployer"}, {"Role": ROLE}),
    ("iam", "DeleteRole", {"RoleName": "deployer"}, None),
    (
        "iam",
        "PutRolePolicy",
        {"RoleName": "deployer", "PolicyName": "read-secrets", "PolicyDocument": POLICY},
        None,
    ),
    ("iam", "AttachRolePolicy", {"RoleName": "deployer", "PolicyArn": POLICY_ARN}, None),
    ("iam", "TagUser", {"UserName": "alice", "Tags": TAGS}, None),
    ("iam", "TagRole", {"RoleName": "deployer", "Tags": TAGS}, None),
    (
        "sts",
        "GetCallerIdentity",
        {},
        {"UserId": "AIDACKCEVSQ6C2EXAMPLE", "Account": ACCOUNT, "Arn": USER_ARN},
    ),
    (
        "sts",
        "AssumeRole",
        {
            "RoleArn": ROLE_ARN,
            "RoleSessionName": "ci-run-42",
            "PolicyArns": [{"arn": POLICY_ARN}],
            "Policy": POLICY,
            "DurationSeconds": 900,
            "Tags": TAGS,
            "TransitiveTagKeys": ["team", "owner"],
            "ExternalId": "partner-7",
            "SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/alice",
            "TokenCode": "123456",
            "SourceIdentity": "alice",
        },
        {
            "Credentials": {
                "AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
                "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
                "SessionToken": "FwoGZXIvYXdzEBYaDHqa0AP/+long=token",
                "Expiration": USED,
            },
            "AssumedRoleUser": {
                "AssumedRoleId": "AROA3XFRBF535PLBIFPI4:ci-run-42",
                "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run-42",
            },
            "PackedPolicySize": 6,
            "SourceIdentity": "alice",
        },
    ),
]
IDS = [f"{service}-{action}-{index}" for index, (service, action, _, _) in enumerate(CASES)]


def wire_body(service: str, action: str, params: dict[str, Any]) -> bytes:
    """The body boto3 would POST: botocore's query serializer, then its request preparation."""
    operation = SESSION.get_service_model(service).operation_model(action)
    request_dict = create_serializer("query").serialize_to_request(params, operation)
    prepare_request_dict(request_dict, endpoint_url="https://strongroom.test")
    body = create_request_object(request_dict).prepare().body
    assert isinstance(body, str | bytes)
    return body.encode() if isinstance(body, str) else body


def botocore_reads(service: str, action: str, body: bytes, status: int = 200) -> dict[str, Any]:
    operation = SESSION.get_service_model(service).operation_model(action)
    response = {"body": body, "status_code": status, "headers": {}}
    parsed: dict[str, Any] = create_parser("query").parse(response, operation.output_shape)
    return parsed


def operation(service: str, action: str) -> Any:
    op = QueryService.load(service).operation(action)
    assert op is not None
    return op


@pytest.mark.parametrize(("service", "action", "params", "result"), CASES, ids=IDS)
def test_it_parses_what_botocore_sends(
    service: str, action: str, params: dict[str, Any], result: dict[str, Any] | None
) -> None:
    form = decode_form(wire_body(service, action, params), b"")
    assert form.pop("Action") == action
    assert form.pop("Version") == SESSION.get_service_model(service).api_version
    assert operation(service, action).parse_input(form) == params


@pytest.mark.parametrize(("service", "action", "params", "result"), CASES, ids=IDS)
def test_botocore_reads_what_it_writes(
    service: str, action: str, params: dict[str, Any], result: dict[str, Any] | None
) -> None:
    body = operation(service, action).serialize_output(result or {}, "req-1234")
    parsed = botocore_reads(service, action, body)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1234"
    assert parsed == (result or {})
    if result is None:
        assert f"<{action}Result".encode() not in body
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<' + action.encode())


def test_a_response_is_in_the_service_namespace() -> None:
    for service, namespace in (
        ("iam", "https://iam.amazonaws.com/doc/2010-05-08/"),
        ("sts", "https://sts.amazonaws.com/doc/2011-06-15/"),
    ):
        loaded = QueryService.load(service)
        assert loaded.name == service
        assert loaded.xmlns == namespace
        op = operation(service, "GetCallerIdentity" if service == "sts" else "GetUser")
        assert f'xmlns="{namespace}"'.encode() in op.serialize_output({}, "r")


def test_the_model_is_loaded_once() -> None:
    assert QueryService.load("iam") is QueryService.load("iam")
    assert QueryService.load("iam").operation("NoSuchAction") is None


def test_timestamps_are_iso_8601_utc_from_datetimes_or_epoch_seconds() -> None:
    op = operation("sts", "AssumeRole")
    naive = datetime(2026, 11, 28, 11, 27, 19)  # noqa: DTZ001 - storage keeps naive UTC
    credentials = {"AccessKeyId": "A" * 16, "SecretAccessKey": "s", "SessionToken": "t"}
    for given_value, text in (
        (naive, b"2026-11-28T11:27:19Z"),
        (CREATED.timestamp(), b"2026-11-28T11:27:19Z"),
        (CREATED.timestamp() + 0.5, b"2026-11-28T11:27:19.500Z"),
        (datetime.fromisoformat("2026-11-28T12:27:19+01:00"), b"2026-11-28T11:27:19Z"),
    ):
        body = op.serialize_output({"Credentials": {**credentials, "Expiration": given_value}}, "r")
        assert b"<Expiration>" + text + b"</Expiration>" in body


def test_absent_and_unknown_members_are_left_out() -> None:
    op = operation("iam", "GetUser")
    result = {"User": {"UserName": "alice", "Path": None, "Password": "hunter2"}, "Extra": 1}
    body = op.serialize_output(result, "r")
    assert b"<Path" not in body
    assert b"hunter2" not in body
    assert b"Extra" not in body
    assert botocore_reads("iam", "GetUser", body)["User"] == {"UserName": "alice"}


AWKWARD = "<&>\"' café Zoë 日本 \U0001f511 a\r\nb\tc ]]> &amp;"


def test_xml_special_and_non_ascii_text_survives_the_response() -> None:
    op = operation("iam", "GetUserPolicy")
    result = {"UserName": "alice", "PolicyName": "p", "PolicyDocument": AWKWARD}
    body = op.serialize_output(result, "r")
    assert botocore_reads("iam", "GetUserPolicy", body)["PolicyDocument"] == AWKWARD
    assert "日本".encode() in body  # sent as UTF-8, not as character references


def test_xml_special_and_non_ascii_text_survives_the_request() -> None:
    tags = [{"Key": "café", "Value": "Zoë 日本 +=.:/@_-"}]
    params = {"UserName": "alice", "Tags": tags}
    form = decode_form(wire_body("iam", "TagUser", params), b"")
    assert operation("iam", "TagUser").parse_input(form) == params
    document = json.dumps({"Sid": "<&>\"' café\r\n"}, ensure_ascii=False)
    params = {"UserName": "alice", "PolicyName": "p", "PolicyDocument": document}
    form = decode_form(wire_body("iam", "PutUserPolicy", params), b"")
    assert operation("iam", "PutUserPolicy").parse_input(form) == params


XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r"), max_size=200
)


@given(XML_TEXT)
def test_any_xml_text_round_trips_through_botocore(text: str) -> None:
    op = operation("iam", "GetUserPolicy")
    body = op.serialize_output({"PolicyDocument": text}, "r")
    parsed = botocore_reads("iam", "GetUserPolicy", body)
    assert parsed.get("PolicyDocument", "") == text


def test_characters_xml_cannot_carry_become_replacement_characters() -> None:
    op = operation("iam", "GetUserPolicy")
    body = op.serialize_output({"PolicyDocument": "a\x00b\x1fc"}, "r")
    assert botocore_reads("iam", "GetUserPolicy", body)["PolicyDocument"] == "a\ufffdb\ufffdc"


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("iam", "NoSuchEntity", 404),
        ("iam", "EntityAlreadyExists", 409),
        ("iam", "LimitExceeded", 409),
        ("iam", "MalformedPolicyDocument", 400),
        ("iam", "ServiceFailure", 500),
        ("iam", "ValidationError", 400),  # not in the model: the default
        ("sts", "ExpiredTokenException", 400),
        ("sts", "RegionDisabledException", 403),
        ("sts", "MalformedPolicyDocument", 400),
        ("sts", "AccessDenied", 400),
    ],
)
def test_errors_carry_the_models_status_and_botocore_reads_them(
    service: str, code: str, status: int
) -> None:
    loaded = QueryService.load(service)
    assert loaded.error_status(code) == status
    message = "The user with name <alice & 'bob'> cannot be found: café"
    body = error_xml(loaded, code, message, "req-9", fault=status >= 500)
    parsed = botocore_reads(
        service, "GetCallerIdentity" if service == "sts" else "GetUser", body, status
    )
    assert parsed["Error"] == {
        "Type": "Receiver" if status >= 500 else "Sender",
        "Code": code,
        "Message": message,
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"
    assert f'<ErrorResponse xmlns="{loaded.xmlns}">'.encode() in body
