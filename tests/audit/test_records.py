"""CloudTrail records: their exact shape, and that no secret material ever reaches one.

Actors (all in account 123456789012):
- root: the account root, key AKIAROOT...;
- alice: an IAM user, key AKIAALICE...;
- deployer: a session of role `ci/deployer` (a role with a path), session `build-42`;
- a stranger whose key Strongroom does not know (authentication failed).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.loaders import Loader
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.audit import (
    EVENT_VERSION,
    SERVICE_EVENT_NAMES,
    WITHHELD,
    CallFacts,
    TlsDetails,
    cloudtrail_record,
    cloudtrail_text,
    is_withheld,
    service_event,
    user_identity,
)
from strongroom.audit.records import java_date
from strongroom.audit.redaction import cloudtrail_key, redact
from strongroom.domain.principal import Principal, root_principal

ACCOUNT = "123456789012"
T0 = 1_795_865_239.0  # 2026-11-28T11:27:19Z
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/db-AbCdEf"

ROOT = root_principal(ACCOUNT, "AKIAROOT000000000001")
ALICE = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
    access_key_id="AKIAALICE00000000001",
    user_name="alice",
    user_id="AIDAALICE0000000001",
)
DEPLOYER = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/build-42",
    access_key_id="ASIADEPLOYER0000001",
    user_id="AROADEPLOYER0000001:build-42",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/ci/deployer",
    session_name="build-42",
)

SOURCES = {
    "secretsmanager": "secretsmanager.amazonaws.com",
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
}


def facts(**overrides: Any) -> CallFacts:
    fields: dict[str, Any] = {
        "event_source": "secretsmanager.amazonaws.com",
        "event_name": "GetSecretValue",
        "region": "eu-west-1",
        "account_id": ACCOUNT,
        "principal": ALICE,
        "access_key_id": ALICE.access_key_id,
        "source_ip": "192.0.2.10",
        "user_agent": "Boto3/1.34.0 md/Botocore#1.34.0",
        "request_id": "11111111-2222-3333-4444-555555555555",
        "event_time": T0,
        "request": None,
        "response": None,
        "error_code": None,
        "error_message": None,
        "read_only": False,
    }
    return CallFacts(**(fields | overrides))


# --- exact shapes ---------------------------------------------------------------------


def test_get_secret_value_by_an_iam_user_records_the_request_and_no_response():
    record = cloudtrail_record(
        facts(
            request={"SecretId": "prod/db", "VersionStage": "AWSCURRENT"},
            response={
                "ARN": SECRET_ARN,
                "Name": "prod/db",
                "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
                "SecretString": "hunter2-the-password",
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": datetime(2026, 11, 1, tzinfo=UTC),
            },
            read_only=True,
            tls=TlsDetails("TLSv1.3", "TLS_AES_128_GCM_SHA256", "sr.example.com"),
        ),
        event_id="99999999-8888-7777-6666-555555555555",
    )

    assert record == {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAALICE0000000001",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAALICE00000000001",
            "userName": "alice",
        },
        "eventTime": "2026-11-28T11:27:19Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "Boto3/1.34.0 md/Botocore#1.34.0",
        "requestParameters": {"secretId": "prod/db", "versionStage": "AWSCURRENT"},
        "responseElements": None,
        "requestID": "11111111-2222-3333-4444-555555555555",
        "eventID": "99999999-8888-7777-6666-555555555555",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "sr.example.com",
        },
    }


def test_get_secret_value_has_no_response_even_when_called_a_write():
    record = cloudtrail_record(
        facts(request={"SecretId": "prod/db"}, response={"Name": "prod/db"}, read_only=False)
    )
    assert record["responseElements"] is None


def test_create_secret_by_an_assumed_role_records_everything_but_the_value():
    record = cloudtrail_record(
        facts(
            event_name="CreateSecret",
            principal=DEPLOYER,
            access_key_id=DEPLOYER.access_key_id,
            session_created=T0 - 60,
            request={
                "Name": "prod/db",
                "ClientRequestToken": "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE",
                "Description": "the orders database",
                "SecretString": '{"password": "hunter2-the-password"}',
                "Tags": [{"Key": "team", "Value": "orders"}],
            },
            response={
                "ARN": SECRET_ARN,
                "Name": "prod/db",
                "VersionId": "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE",
            },
        ),
        event_id="e",
    )

    assert record["userIdentity"] == {
        "type": "AssumedRole",
        "principalId": "AROADEPLOYER0000001:build-42",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/build-42",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIADEPLOYER0000001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROADEPLOYER0000001",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer",
                "accountId": ACCOUNT,
                "userName": "deployer",
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "2026-11-28T11:26:19Z", "mfaAuthenticated": "false"},
        },
    }
    assert record["requestParameters"] == {
        "name": "prod/db",
        "clientRequestToken": "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE",
        "description": "the orders database",
        "tags": [{"key": "team", "value": "orders"}],
    }
    assert record["responseElements"] == {
        "arn": SECRET_ARN,
        "name": "prod/db",
        "versionId": "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE",
    }
    assert record["readOnly"] is False
    assert "hunter2" not in json.dumps(record)


def test_a_failed_authentication_records_the_key_presented_and_the_error():
    record = cloudtrail_record(
        facts(
            event_name="ListSecrets",
            principal=None,
            access_key_id="AKIASTRANGER00000001",
            request={"MaxResults": 10},
            error_code="UnrecognizedClientException",
            error_message="The security token included in the request is invalid.",
            read_only=True,
        ),
        event_id="e",
    )

    assert record["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIASTRANGER00000001"}
    assert record["errorCode"] == "UnrecognizedClientException"
    assert record["errorMessage"] == "The security token included in the request is invalid."
    assert record["requestParameters"] == {"maxResults": 10}
    assert record["responseElements"] is None
    assert record["recipientAccountId"] == ACCOUNT


def test_a_request_that_was_never_parsed_records_null_parameters_and_no_error_fields_on_success():
    record = cloudtrail_record(facts(principal=None, access_key_id=None, source_ip=None))
    assert record["userIdentity"] == {"type": "Unknown"}
    assert record["requestParameters"] is None
    assert "errorCode" not in record
    assert "errorMessage" not in record
    assert "sourceIPAddress" not in record
    assert "tlsDetails" not in record


def test_a_failed_call_has_no_response_elements():
    record = cloudtrail_record(
        facts(
            event_name="DeleteSecret",
            request={"SecretId": "prod/db"},
            response={"ARN": SECRET_ARN},
            error_code="AccessDeniedException",
            error_message="User: alice is not authorized",
        )
    )
    assert record["responseElements"] is None
    assert record["errorCode"] == "AccessDeniedException"


def test_each_record_gets_a_fresh_event_id_unless_given_one():
    first = cloudtrail_record(facts())
    second = cloudtrail_record(facts())
    assert first["eventID"] != second["eventID"]
    assert len(first["eventID"]) == 36
    assert cloudtrail_record(facts(), event_id="given")["eventID"] == "given"


def test_iam_create_access_key_records_the_key_id_but_never_the_secret_key():
    record = cloudtrail_record(
        facts(
            event_source="iam.amazonaws.com",
            event_name="CreateAccessKey",
            region="us-east-1",
            principal=ROOT,
            access_key_id=ROOT.access_key_id,
            request={"UserName": "alice"},
            response={
                "AccessKey": {
                    "UserName": "alice",
                    "AccessKeyId": "AKIANEWKEY0000000001",
                    "Status": "Active",
                    "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "CreateDate": datetime(2026, 11, 28, 11, 27, 19, tzinfo=UTC),
                }
            },
        )
    )
    assert record["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAROOT000000000001",
    }
    assert record["responseElements"] == {
        "accessKey": {
            "userName": "alice",
            "accessKeyId": "AKIANEWKEY0000000001",
            "status": "Active",
            "createDate": "Nov 28, 2026 11:27:19 AM",  # as IAM's delivered records write it
        }
    }


def test_sts_assume_role_records_the_session_but_not_its_secret_key_or_token():
    record = cloudtrail_record(
        facts(
            event_source="sts.amazonaws.com",
            event_name="AssumeRole",
            request={
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer",
                "RoleSessionName": "build-42",
                "DurationSeconds": 900,
            },
            response={
                "Credentials": {
                    "AccessKeyId": "ASIADEPLOYER0000001",
                    "SecretAccessKey": "session-secret-key-0123456789",
                    "SessionToken": "FwoGZXIvYXdzEJr-session-token-blob",
                    "Expiration": datetime(2026, 11, 28, 11, 42, 19, tzinfo=UTC),
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": "AROADEPLOYER0000001:build-42",
                    "Arn": DEPLOYER.arn,
                },
            },
            read_only=True,
        )
    )
    assert record["requestParameters"] == {
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer",
        "roleSessionName": "build-42",
        "durationSeconds": 900,
    }
    assert record["responseElements"] == {
        "credentials": {
            "accessKeyId": "ASIADEPLOYER0000001",
            "expiration": "Nov 28, 2026 11:42:19 AM",
        },
        "assumedRoleUser": {"assumedRoleId": "AROADEPLOYER0000001:build-42", "arn": DEPLOYER.arn},
    }


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 7, 30, 21, 53, 13, tzinfo=UTC), "Jul 30, 2024 9:53:13 PM"),
        (datetime(2020, 7, 28, 3, 47, 25, tzinfo=UTC), "Jul 28, 2020 3:47:25 AM"),
        (datetime(2026, 1, 5, 0, 0, 7, tzinfo=UTC), "Jan 5, 2026 12:00:07 AM"),  # midnight
        (datetime(2026, 12, 31, 12, 30, 0, tzinfo=UTC), "Dec 31, 2026 12:30:00 PM"),  # noon
        (datetime(2026, 3, 1, 23, 59, 59), "Mar 1, 2026 11:59:59 PM"),  # noqa: DTZ001 - UTC
        (datetime(2026, 3, 2, 1, tzinfo=timezone(timedelta(hours=2))), "Mar 1, 2026 11:00:00 PM"),
    ],
)
def test_iam_dates_read_as_in_cloudtrail(moment, text):
    assert java_date(moment) == text


def test_a_read_only_call_records_no_response():
    record = cloudtrail_record(
        facts(event_name="DescribeSecret", response={"Name": "prod/db"}, read_only=True)
    )
    assert record["responseElements"] is None


def test_a_secret_value_repeated_in_the_error_message_is_scrubbed():
    record = cloudtrail_record(
        facts(
            event_name="PutSecretValue",
            request={"SecretId": "prod/db", "SecretString": "correct-horse-battery"},
            error_code="InvalidParameterException",
            error_message="bad value: correct-horse-battery!",
            user_agent="agent correct-horse-battery",
        )
    )
    assert "correct-horse-battery" not in json.dumps(record)
    assert record["errorMessage"] == f"bad value: {WITHHELD}!"


def test_binary_values_never_reach_a_record_whatever_their_name():
    record = cloudtrail_record(
        facts(
            event_name="PutSecretValue",
            request={"SecretId": "prod/db", "Blob": b"\x00raw-binary-canary", "SecretBinary": b"x"},
        )
    )
    assert record["requestParameters"] == {"secretId": "prod/db"}


# --- userIdentity per principal kind ----------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "kind"),
    [(ROOT, "Root"), (ALICE, "IAMUser"), (DEPLOYER, "AssumedRole"), (None, "Unknown")],
)
def test_user_identity_type_follows_the_principal_kind(principal, kind):
    identity = user_identity(principal, "AKIAFALLBACK00000001")
    assert identity["type"] == kind
    if principal is not None:
        assert identity["arn"] == principal.arn
        assert identity["accountId"] == ACCOUNT
        assert identity["accessKeyId"] == principal.access_key_id
    assert ("userName" in identity) == (kind == "IAMUser")
    assert ("sessionContext" in identity) == (kind == "AssumedRole")


def test_a_session_without_a_known_creation_time_has_no_creation_date():
    identity = user_identity(DEPLOYER)
    assert identity["sessionContext"]["attributes"] == {"mfaAuthenticated": "false"}


def test_the_presented_key_stands_in_when_the_principal_has_none():
    principal = Principal(
        account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", access_key_id=None
    )
    assert user_identity(principal, "AKIAPRESENTED0000001")["accessKeyId"] == "AKIAPRESENTED0000001"


# --- service events -----------------------------------------------------------------------


def test_rotation_succeeded_is_a_service_event_shaped_as_aws_records_it():
    record = service_event(
        event_name="RotationSucceeded",
        account_id=ACCOUNT,
        region="eu-west-1",
        event_time=T0,
        details={"SecretId": SECRET_ARN},
        request_id="r",
        event_id="e",
    )
    assert record == {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": ACCOUNT, "invokedBy": "secretsmanager.amazonaws.com"},
        "eventTime": "2026-11-28T11:27:19Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "RotationSucceeded",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "requestParameters": None,
        "responseElements": None,
        "additionalEventData": {"SecretId": SECRET_ARN},
        "requestID": "r",
        "eventID": "e",
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def test_rotation_failed_carries_its_reason_and_the_end_of_a_deletion_its_resource():
    failed = service_event(
        event_name="RotationFailed",
        account_id=ACCOUNT,
        region="eu-west-1",
        event_time=T0,
        details={"SecretId": SECRET_ARN},
        error_message="the function failed during the setSecret step",
    )
    assert failed["errorMessage"] == "the function failed during the setSecret step"

    resource = {"ARN": SECRET_ARN, "accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret"}
    ended = service_event(
        event_name="EndSecretVersionDelete",
        account_id=ACCOUNT,
        region="eu-west-1",
        event_time=T0,
        resources=[resource],
    )
    assert ended["resources"] == [resource]
    assert "additionalEventData" not in ended
    assert "errorMessage" not in ended
    assert ended["requestID"] != ended["eventID"]


def test_service_events_have_the_names_aws_uses_and_no_others():
    assert {
        "RotationStarted",
        "RotationSucceeded",
        "RotationFailed",
        "EndSecretVersionDelete",
    } <= SERVICE_EVENT_NAMES
    with pytest.raises(ValueError, match="RotationSucceded"):
        service_event(event_name="RotationSucceded", account_id=ACCOUNT, region="r", event_time=T0)


def test_service_event_details_are_redacted_too():
    record = service_event(
        event_name="RotationFailed",
        account_id=ACCOUNT,
        region="eu-west-1",
        event_time=T0,
        details={"SecretId": SECRET_ARN, "SecretString": "leaked-by-a-bug-0001"},
        error_message="step failed with leaked-by-a-bug-0001",
    )
    assert "leaked-by-a-bug-0001" not in json.dumps(record)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "key"),
    [
        ("SecretId", "secretId"),
        ("ARN", "arn"),
        ("KMSKeyId", "kmsKeyId"),
        ("KmsKeyId", "kmsKeyId"),
        ("RotationLambdaARN", "rotationLambdaARN"),
        ("AuthenticationCode1", "authenticationCode1"),
        ("A", "a"),
        ("EXAMPLE1-90ab", "EXAMPLE1-90ab"),  # a map key, not a member name
        ("alreadyCamel", "alreadyCamel"),
    ],
)
def test_member_names_become_cloudtrail_keys(member, key):
    assert cloudtrail_key(member) == key


@pytest.mark.parametrize(
    "name", ["SecretString", "secret_string", "secretString", "SessionToken", "FooPassword"]
)
def test_secret_names_are_withheld_however_spelt(name):
    assert is_withheld(name)


@pytest.mark.parametrize("name", ["ClientRequestToken", "PasswordLength", "SecretId", "Name"])
def test_names_that_only_mention_a_secret_word_are_kept(name):
    assert not is_withheld(name)


def test_redact_turns_naive_datetimes_into_utc_and_unknown_objects_into_text():
    naive = datetime(2026, 1, 2, 3, 4, 5)  # noqa: DTZ001 - the naive case is the point
    cleaned, withheld = redact({"When": naive, "Odd": complex(1, 2)})
    assert cleaned == {"when": "2026-01-02T03:04:05Z", "odd": "(1+2j)"}
    assert withheld == frozenset()


# --- every operation of every model, with canaries in every secret member -------------------

_LOADER = Loader()
_MODELS = {name: _LOADER.load_service_model(name, "service-2") for name in SOURCES}
# Secret material the models do not mark sensitive (STS's tokenType is not).
_SECRET_MEMBERS_UNMARKED = frozenset({"SessionToken"})
# Members with no sensitive shape that the generic fragments withhold all the same: the
# price of a fallback that errs on the side of leaving out.
_WITHHELD_THOUGH_NOT_SENSITIVE = frozenset(
    {
        "SessionToken",
        "SecretValues",  # BatchGetSecretValue's values
        "ContextAssertion",
        "TokenCode",  # one-time MFA codes
        "AuthenticationCode1",
        "AuthenticationCode2",
        "SubjectFromWebIdentityToken",  # who a web identity is: personal data
        "Issuer",  # sensitive in one STS shape, the same data in others
        "Subject",
        "SubjectType",
    }
)


class Canaries:
    """Hands out distinct canary values and remembers them."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def next(self) -> str:
        value = f"ZQXCANARY{len(self.issued):05d}secret"
        self.issued.append(value)
        return value


_MAX_DEPTH = 6  # recursive shapes: deep enough to be realistic
_SCALARS = {
    "timestamp": datetime(2026, 11, 28, tzinfo=UTC),
    "boolean": True,
    "integer": 7,
    "long": 7,
}


def _example(model, shape_name: str, member: str, canaries: Canaries, *, secret: bool, depth=0):
    """A value for a model shape: canaries in secret strings and blobs, plain values elsewhere."""
    shape = model["shapes"][shape_name]
    secret = secret or shape.get("sensitive", False) or member in _SECRET_MEMBERS_UNMARKED

    def inner(target: str, name: str = member):
        return _example(model, target, name, canaries, secret=secret, depth=depth + 1)

    kind = shape["type"]
    if kind == "structure":
        members = shape.get("members", {}) if depth <= _MAX_DEPTH else {}
        return {name: inner(ref["shape"], name) for name, ref in members.items()}
    if kind == "list":
        return [inner(shape["member"]["shape"])]
    if kind == "map":
        return {"mapkey": inner(shape["value"]["shape"])}
    return _scalar(shape, member, canaries, secret=secret)


def _scalar(shape, member: str, canaries: Canaries, *, secret: bool):
    kind = shape["type"]
    if secret and kind in {"string", "blob"}:
        value = canaries.next()
        return value if kind == "string" else value.encode()
    if kind == "string":
        return shape.get("enum", [f"{member.lower()}-value"])[0]
    if kind == "blob":
        return b"binary"
    return _SCALARS.get(kind, 1.5)


def _operations():
    for service, model in _MODELS.items():
        for operation in model["operations"]:
            yield pytest.param(service, operation, id=f"{service}.{operation}")


def _shape_example(model, op, key, canaries):
    ref = model["operations"][op].get(key)
    if ref is None:
        return None
    return _example(model, ref["shape"], key, canaries, secret=False)


@pytest.mark.parametrize(("service", "operation"), list(_operations()))
@pytest.mark.parametrize("read_only", [False, True])
def test_no_operation_leaks_a_secret_member_into_its_record(service, operation, read_only):
    model = _MODELS[service]
    canaries = Canaries()
    request = _shape_example(model, operation, "input", canaries)
    response = _shape_example(model, operation, "output", canaries)
    common = {
        "event_source": SOURCES[service],
        "event_name": operation,
        "principal": DEPLOYER,
        "request": request,
        "response": response,
        "read_only": read_only,
    }
    record = cloudtrail_record(facts(**common))
    # a failed call whose careless error message repeats every secret it was given
    failed = cloudtrail_record(
        facts(**common, error_code="ValidationException", error_message=" ".join(canaries.issued))
    )
    text = json.dumps([record, failed])
    assert "ZQXCANARY" not in text
    # ...and the record is still worth reading: every top-level member that is not secret
    # is there under its CloudTrail name.
    for name, value in (request or {}).items():
        if is_withheld(name) or isinstance(value, bytes):
            continue
        assert cloudtrail_key(name) in record["requestParameters"], name


@pytest.mark.parametrize(("service", "operation"), list(_operations()))
def test_a_successful_write_keeps_its_non_secret_response_members(service, operation):
    model = _MODELS[service]
    if operation in {"GetSecretValue", "BatchGetSecretValue", "GetRandomPassword"}:
        pytest.skip("never recorded")
    canaries = Canaries()
    response = _shape_example(model, operation, "output", canaries)
    record = cloudtrail_record(
        facts(event_source=SOURCES[service], event_name=operation, response=response)
    )
    assert "ZQXCANARY" not in json.dumps(record)
    kept = {
        name
        for name, value in (response or {}).items()
        if not is_withheld(name) and not isinstance(value, bytes)
    }
    if kept:
        assert set(record["responseElements"]) == {cloudtrail_key(name) for name in kept}
    else:
        assert record["responseElements"] is None


def _members():
    """(member name, its shape, whether the shape is sensitive) for every model member."""
    for model in _MODELS.values():
        shapes = model["shapes"]
        for shape in shapes.values():
            for name, ref in shape.get("members", {}).items():
                target = shapes[ref["shape"]]
                sensitive = target.get("sensitive", False) or (
                    target["type"] == "list"
                    and shapes[target["member"]["shape"]].get("sensitive", False)
                )
                yield name, sensitive


def test_every_member_the_models_mark_sensitive_is_withheld():
    missed = {name for name, sensitive in _members() if sensitive and not is_withheld(name)}
    assert missed == set()


def test_the_fallback_withholds_no_ordinary_member_beyond_the_known_few():
    over = {name for name, sensitive in _members() if not sensitive and is_withheld(name)}
    assert over == set(_WITHHELD_THOUGH_NOT_SENSITIVE)


# --- property: random nested requests and responses never leak ------------------------------

_SECRET_NAMES = [
    "SecretString",
    "secretString",
    "secret_string",
    "SecretBinary",
    "RandomPassword",
    "SecretAccessKey",
    "SessionToken",
    "Password",
    "NewPassword",
    "OldPassword",
    "PrivateKey",
    "RotationToken",
    "WebIdentityToken",
    "SAMLAssertion",
    "MyNewApiPassword",  # an operation we have never seen
]
_ORDINARY_NAMES = ["SecretId", "Name", "ARN", "VersionId", "Tags", "Key", "Value", "Items"]
_plain_text = st.text(alphabet="abcdefghij-/:", max_size=12)
_canary = st.builds(lambda n: f"ZQXCANARY{n}", st.integers(0, 10**6))
_canary_value = st.recursive(
    _canary | _canary.map(str.encode),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_plain_text, inner, max_size=3),
    max_leaves=6,
)


def _tree(depth: int) -> st.SearchStrategy[Any]:
    leaf = _plain_text | st.integers() | st.booleans() | st.none()
    if depth == 0:
        return leaf
    child = _tree(depth - 1)
    ordinary = st.dictionaries(st.sampled_from(_ORDINARY_NAMES), child, max_size=4)
    secret = st.dictionaries(st.sampled_from(_SECRET_NAMES), _canary_value, min_size=1, max_size=3)
    nested = st.builds(lambda a, b: {**a, **b}, ordinary, secret)
    return leaf | st.lists(nested, max_size=3) | nested


@settings(max_examples=300, deadline=None)
@given(
    request=_tree(3),
    response=_tree(3),
    read_only=st.booleans(),
    name=st.sampled_from(
        ["CreateSecret", "PutSecretValue", "AssumeRole", "CreateAccessKey", "SomeFutureAction"]
    ),
)
def test_random_nested_members_never_leak_a_canary(request, response, read_only, name):
    record = cloudtrail_record(
        facts(
            event_name=name,
            request=request if isinstance(request, dict) else {"Items": request},
            response=response if isinstance(response, dict) else {"Items": response},
            read_only=read_only,
        )
    )
    assert "ZQXCANARY" not in json.dumps(record)


_any_text = st.text(max_size=20)  # quotes, backslashes, control and non-ASCII characters too
_principals = st.sampled_from([ROOT, ALICE, DEPLOYER, None]) | st.builds(
    Principal,
    account_id=st.just(ACCOUNT),
    arn=_any_text,
    access_key_id=st.none() | _any_text,
    user_name=st.none() | _any_text,
    user_id=st.none() | _any_text,
    role_arn=st.none() | _any_text,
    session_created=st.none() | st.floats(0, 4e9),
)


def _calls() -> st.SearchStrategy[CallFacts]:
    def build(principal, error, request, response, **fields):
        code, message = error or (None, None)
        return facts(
            principal=principal,
            session_created=principal.session_created if principal else None,
            request=request if isinstance(request, dict) else {"Items": request},
            response=None
            if code
            else response
            if isinstance(response, dict)
            else {"Items": response},
            error_code=code,
            error_message=message,
            **fields,
        )

    return st.builds(
        build,
        principal=_principals,
        error=st.none() | st.tuples(_any_text, st.none() | _any_text),
        request=_tree(2),
        response=_tree(2),
        access_key_id=st.none() | _any_text,
        source_ip=st.none() | _any_text,
        user_agent=st.none() | _any_text,
        event_name=_any_text,
        region=_any_text,
        read_only=st.booleans(),
        tls=st.none() | st.builds(TlsDetails, _any_text, _any_text, st.none() | _any_text),
        event_time=st.floats(0, 4e9),
    )


@settings(max_examples=400, deadline=None)
@given(call=_calls(), event_id=st.text(min_size=1, max_size=20))  # the hot path names one
def test_the_record_text_is_exactly_json_dumps_of_the_record(call, event_id):
    expected = json.dumps(cloudtrail_record(call, event_id=event_id), separators=(",", ":"))
    assert cloudtrail_text(call, event_id=event_id) == expected


def test_a_secret_repeated_outside_its_member_is_scrubbed_from_the_record_text():
    value = "ZQXCANARY-repeated-value"
    call = facts(
        event_name="CreateSecret",
        request={"Name": f"db-{value}", "SecretString": value},
        user_agent=f"agent {value}",
    )
    text = cloudtrail_text(call, event_id="e-1")
    assert value not in text
    assert text == json.dumps(cloudtrail_record(call, event_id="e-1"), separators=(",", ":"))
