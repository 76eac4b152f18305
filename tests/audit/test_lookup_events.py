"""CloudTrail's LookupEvents on the Strongroom endpoint: boto3's ``cloudtrail`` client (and the
AWS CLI) against the running server, reading the audit trail that the calls before wrote.

The trail is account-wide and shared by every test of the session, so each test looks its own
events up by something only it has (a secret or user name of its own, an event id, a request
id) and asserts what the others' events cannot change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tests.api.helpers import refusal
from tests.conftest import ACCOUNT_ID, ROOT_KEY_ID, ROOT_SECRET, Server

CANARY = "canary-7c1d5e2a-never-in-the-trail"
OTHER_CANARY = "canary-0b9f4c63-never-in-the-trail-either"
SECRET_TYPE = "AWS::SecretsManager::Secret"


def cloudtrail_client(
    server: Server, region: str, creds: dict[str, str] | None = None, **config: Any
) -> Any:
    return server.service_client("cloudtrail", region, creds, **config)


@pytest.fixture
def trail(server: Server, region: str) -> Any:
    return cloudtrail_client(server, region)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _by(key: str, value: str) -> list[dict[str, str]]:
    return [{"AttributeKey": key, "AttributeValue": value}]


def lookup_all(trail: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event the lookup finds, following NextToken by hand."""
    events: list[dict[str, Any]] = []
    while True:
        page = trail.lookup_events(**kwargs)
        events.extend(page["Events"])
        if "NextToken" not in page:
            return events
        kwargs["NextToken"] = page["NextToken"]


def _record(event: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(event["CloudTrailEvent"])
    return record


def _iam_user(server: Server, region: str, policy: dict[str, Any] | None) -> tuple[str, dict]:
    """A new IAM user (with ``policy`` inline, if any) and its access key."""
    iam = boto3.client(
        "iam",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=ROOT_KEY_ID,
        aws_secret_access_key=ROOT_SECRET,
        config=Config(retries={"max_attempts": 1}),
    )
    name = _name("auditor")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return name, iam.create_access_key(UserName=name)["AccessKey"]


def _allow(action: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
    }


def test_resource_name_finds_a_secrets_calls_newest_first(client, trail):
    name = _name("lookup/db")
    arn = client.create_secret(Name=name, SecretString=CANARY)["ARN"]
    client.get_secret_value(SecretId=name)
    client.put_secret_value(SecretId=arn, SecretString=OTHER_CANARY)
    client.describe_secret(SecretId=name)

    events = trail.lookup_events(LookupAttributes=_by("ResourceName", name))["Events"]
    assert [e["EventName"] for e in events] == [
        "DescribeSecret",
        "PutSecretValue",
        "GetSecretValue",
        "CreateSecret",
    ]
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    assert [e["ReadOnly"] for e in events] == ["true", "false", "true", "false"]
    for event in events:
        assert event["EventSource"] == "secretsmanager.amazonaws.com"
        assert event["Username"] == "root"
        assert event["AccessKeyId"] == ROOT_KEY_ID
        assert event["Resources"] == [{"ResourceType": SECRET_TYPE, "ResourceName": name}]
        record = _record(event)
        assert record["eventID"] == event["EventId"]
        assert record["eventName"] == event["EventName"]
        assert record["recipientAccountId"] == ACCOUNT_ID
    # The ARN (full, or without its random suffix) finds the same events.
    assert trail.lookup_events(LookupAttributes=_by("ResourceName", arn))["Events"] == events
    partial = arn[: -len("-abcdef")]
    assert trail.lookup_events(LookupAttributes=_by("ResourceName", partial))["Events"] == events


def test_secret_values_never_appear_in_any_returned_event(client, trail):
    started = datetime.now(UTC) - timedelta(seconds=1)
    name = _name("lookup/canary")
    client.create_secret(Name=name, SecretString=CANARY)
    client.put_secret_value(SecretId=name, SecretString=OTHER_CANARY)
    client.get_secret_value(SecretId=name)
    client.batch_get_secret_value(SecretIdList=[name])
    client.update_secret(SecretId=name, SecretString=CANARY + "-2")
    client.get_random_password()

    by_name = lookup_all(trail, LookupAttributes=_by("ResourceName", name))
    assert len(by_name) == 4
    recent = lookup_all(trail, StartTime=started)
    assert {e["EventName"] for e in recent} >= {"BatchGetSecretValue", "GetRandomPassword"}
    for event in by_name + recent:
        text = json.dumps(event, default=str)
        assert CANARY not in text
        assert OTHER_CANARY not in text


def test_each_lookup_attribute_filters(server, client, trail, region):
    name = _name("lookup/attrs")
    client.create_secret(Name=name, SecretString="v")
    client.get_secret_value(SecretId=name)
    mine = trail.lookup_events(LookupAttributes=_by("ResourceName", name))["Events"]
    get_event, create_event = mine

    found = trail.lookup_events(LookupAttributes=_by("EventId", create_event["EventId"]))
    assert found["Events"] == [create_event]

    named = lookup_all(trail, LookupAttributes=_by("EventName", "GetSecretValue"))
    assert get_event in named
    assert {e["EventName"] for e in named} == {"GetSecretValue"}

    since = create_event["EventTime"] - timedelta(seconds=1)
    for value, member in (("true", get_event), ("false", create_event)):
        events = lookup_all(trail, LookupAttributes=_by("ReadOnly", value), StartTime=since)
        assert member["EventId"] in {e["EventId"] for e in events}
        assert {e["ReadOnly"] for e in events} == {value}
    assert trail.lookup_events(LookupAttributes=_by("ReadOnly", "maybe"))["Events"] == []

    sources = lookup_all(
        trail,
        LookupAttributes=_by("EventSource", "secretsmanager.amazonaws.com"),
        StartTime=since,
    )
    assert {e["EventId"] for e in mine} <= {e["EventId"] for e in sources}
    assert {e["EventSource"] for e in sources} == {"secretsmanager.amazonaws.com"}

    typed = lookup_all(
        trail,
        LookupAttributes=_by("ResourceType", SECRET_TYPE),
        StartTime=since,
    )
    assert {e["EventId"] for e in mine} <= {e["EventId"] for e in typed}
    assert all(e["Resources"][0]["ResourceType"] == SECRET_TYPE for e in typed)
    assert (
        trail.lookup_events(LookupAttributes=_by("ResourceType", "AWS::IAM::User"))["Events"] == []
    )

    # Username and AccessKeyId: an IAM user's own calls, and only those.
    user, creds = _iam_user(server, region, _allow("cloudtrail:LookupEvents"))
    theirs = cloudtrail_client(server, region, creds)
    request_id = theirs.lookup_events(MaxResults=1)["ResponseMetadata"]["RequestId"]
    for key, value in (("Username", user), ("AccessKeyId", creds["AccessKeyId"])):
        events = trail.lookup_events(LookupAttributes=_by(key, value))["Events"]
        assert [_record(e)["requestID"] for e in events] == [request_id]
        assert events[0]["Username"] == user
        assert events[0]["AccessKeyId"] == creds["AccessKeyId"]


def test_the_lookup_is_itself_recorded(trail):
    response = trail.lookup_events(LookupAttributes=_by("EventName", "NoSuchEventHere"))
    assert response["Events"] == []
    request_id = response["ResponseMetadata"]["RequestId"]
    lookups = trail.lookup_events(LookupAttributes=_by("EventName", "LookupEvents"))["Events"]
    mine = [e for e in lookups if _record(e)["requestID"] == request_id]
    assert len(mine) == 1
    event = mine[0]
    assert event["EventSource"] == "cloudtrail.amazonaws.com"
    assert event["ReadOnly"] == "true"
    assert event["Resources"] == []
    record = _record(event)
    assert record["requestParameters"]["lookupAttributes"] == [
        {"attributeKey": "EventName", "attributeValue": "NoSuchEventHere"}
    ]
    assert record["responseElements"] is None


def test_time_range_bounds_the_events_and_is_checked(client, trail):
    name = _name("lookup/time")
    client.create_secret(Name=name, SecretString="v")
    (created,) = trail.lookup_events(LookupAttributes=_by("ResourceName", name))["Events"]
    at = created["EventTime"]
    by_name = _by("ResourceName", name)

    def found(**times: Any) -> list[str]:
        return [
            e["EventId"] for e in trail.lookup_events(LookupAttributes=by_name, **times)["Events"]
        ]

    assert found(StartTime=at - timedelta(seconds=5), EndTime=at + timedelta(seconds=5)) == [
        created["EventId"]
    ]
    assert found(StartTime=at + timedelta(seconds=2)) == []
    assert found(EndTime=at - timedelta(seconds=2)) == []
    assert found(StartTime=at - timedelta(seconds=2)) == [created["EventId"]]

    code, _ = refusal(
        trail.lookup_events, StartTime=at + timedelta(seconds=1), EndTime=at - timedelta(seconds=1)
    )
    assert code == "InvalidTimeRangeException"


def test_pages_neither_skip_nor_repeat_while_events_arrive(client, trail):
    name = _name("lookup/pages")
    client.create_secret(Name=name, SecretString="v")
    for _ in range(6):
        client.describe_secret(SecretId=name)
    everything = trail.lookup_events(LookupAttributes=_by("ResourceName", name))["Events"]
    assert len(everything) == 7

    seen: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"LookupAttributes": _by("ResourceName", name), "MaxResults": 3}
    pages = 0
    while True:
        page = trail.lookup_events(**kwargs)
        assert len(page["Events"]) <= 3
        seen.extend(page["Events"])
        pages += 1
        # A call recorded meanwhile is newer than every page still to come: none shows it.
        client.describe_secret(SecretId=name)
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert pages == 3
    assert seen == everything

    # The paginator (what the SDKs and the CLI use) agrees, page size 1 included.
    paginator = trail.get_paginator("lookup_events")
    pages_of_one = paginator.paginate(
        LookupAttributes=_by("ResourceName", name), PaginationConfig={"PageSize": 1}
    )
    events = [e for page in pages_of_one for e in page["Events"]]
    assert len(events) == 7 + pages
    assert len({e["EventId"] for e in events}) == len(events)


def test_resource_type_pages_match_the_unfiltered_trail(client, trail):
    started = datetime.now(UTC) - timedelta(seconds=1)
    names = [_name("lookup/typed") for _ in range(3)]
    for name in names:
        client.create_secret(Name=name, SecretString="v")
        client.list_secrets(MaxResults=1)  # secretsmanager, but names no secret
        client.describe_secret(SecretId=name)
    typed = lookup_all(
        trail,
        LookupAttributes=_by("ResourceType", SECRET_TYPE),
        StartTime=started,
        MaxResults=2,
    )
    unfiltered = lookup_all(trail, StartTime=started, MaxResults=50)
    expected = [
        e["EventId"]
        for e in unfiltered
        if e["EventSource"] == "secretsmanager.amazonaws.com" and e["Resources"]
    ]
    assert [e["EventId"] for e in typed] == expected
    assert len(expected) >= 6


def test_invalid_requests_answer_cloudtrails_errors(trail, server, region):
    two = _by("EventName", "CreateSecret") + _by("Username", "root")
    code, message = refusal(trail.lookup_events, LookupAttributes=two)
    assert (code, message) == (
        "InvalidLookupAttributesException",
        "You can only specify one lookup attribute.",
    )

    code, _ = refusal(trail.lookup_events, MaxResults=51)
    assert code == "InvalidMaxResultsException"
    unchecked = cloudtrail_client(server, region, parameter_validation=False)
    code, _ = refusal(unchecked.lookup_events, MaxResults=0)
    assert code == "InvalidMaxResultsException"

    code, _ = refusal(trail.lookup_events, NextToken="not-a-token")
    assert code == "InvalidNextTokenException"
    # A token is good only with the parameters it was issued for.
    token = trail.lookup_events(LookupAttributes=_by("ReadOnly", "true"), MaxResults=1)["NextToken"]
    assert trail.lookup_events(
        LookupAttributes=_by("ReadOnly", "true"), MaxResults=2, NextToken=token
    )["Events"]
    code, _ = refusal(
        trail.lookup_events, LookupAttributes=_by("ReadOnly", "false"), NextToken=token
    )
    assert code == "InvalidNextTokenException"

    code, _ = refusal(unchecked.lookup_events, LookupAttributes=_by("Region", "us-east-1"))
    assert code == "ValidationException"  # not one of the model's AttributeKey values

    # Strongroom records no Insights events.
    assert trail.lookup_events(EventCategory="insight")["Events"] == []

    # Only LookupEvents is served; the rest of CloudTrail answers with CloudTrail's own code.
    code, message = refusal(trail.describe_trails)
    assert code == "UnsupportedOperationException"
    assert "LookupEvents" in message


def test_iam_users_need_cloudtrail_lookup_events(server, region):
    arn_of = f"arn:aws:iam::{ACCOUNT_ID}:user/"
    user, creds = _iam_user(server, region, _allow("secretsmanager:*"))
    code, message = refusal(cloudtrail_client(server, region, creds).lookup_events)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {arn_of}{user} is not authorized to perform: cloudtrail:LookupEvents because "
        "no identity-based policy allows the cloudtrail:LookupEvents action"
    )
    # Authorization comes first: a denied caller learns nothing about its parameters.
    code, _ = refusal(
        cloudtrail_client(server, region, creds).lookup_events,
        LookupAttributes=_by("EventName", "x") + _by("EventName", "y"),
    )
    assert code == "AccessDeniedException"

    _, creds = _iam_user(server, region, _allow("cloudtrail:LookupEvents"))
    allowed = cloudtrail_client(server, region, creds)
    # ...and the denied lookups are in the trail, as failures.
    denied = allowed.lookup_events(LookupAttributes=_by("Username", user))["Events"]
    assert [e["EventName"] for e in denied] == ["LookupEvents", "LookupEvents"]
    assert {_record(e)["errorCode"] for e in denied} == {"AccessDeniedException"}


AWS = Path(sys.executable).parent / "aws"


@pytest.mark.slow
@pytest.mark.skipif(not AWS.exists(), reason="the AWS CLI is not installed in this virtualenv")
def test_aws_cli_lookup_events(server, client, region, tmp_path):
    from tests.cli.test_awscli import isolated_env  # noqa: PLC0415 - only for the CLI test

    name = _name("lookup/cli")
    client.create_secret(Name=name, SecretString=CANARY)
    client.get_secret_value(SecretId=name)
    argv = [
        str(AWS),
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        f"AttributeKey=ResourceName,AttributeValue={name}",
        "--endpoint-url",
        server.url,
        "--region",
        region,
    ]
    result = subprocess.run(  # noqa: S603 - the AWS CLI, from our own virtualenv
        argv,
        env=isolated_env(tmp_path, ROOT_KEY_ID, ROOT_SECRET),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)["Events"]
    assert [e["EventName"] for e in events] == ["GetSecretValue", "CreateSecret"]
    assert events[0]["Resources"] == [{"ResourceType": SECRET_TYPE, "ResourceName": name}]
    assert CANARY not in result.stdout
