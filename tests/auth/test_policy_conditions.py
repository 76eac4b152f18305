"""Condition operators, one table row per documented behaviour, and grants_public_access."""

from __future__ import annotations

import json

import pytest

from strongroom.auth.policy import RequestContext, evaluate, grants_public_access, parse_policy

OWNER = "111122223333"
OTHER = "444455556666"


def allowed(condition: dict[str, object], keys: dict[str, object]) -> bool:
    """Does a lone Allow statement with this condition grant a request with these keys?"""
    statement = {"Effect": "Allow", "Action": "s:Act", "Resource": "*", "Condition": condition}
    policy = parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": [statement]}), "identity"
    )
    request = RequestContext(
        action="s:Act",
        resource="*",
        principal_arn=f"arn:aws:iam::{OWNER}:user/alice",
        principal_account=OWNER,
        keys=keys,  # type: ignore[arg-type]
    )
    return evaluate(request, identity=[policy], resource=None, resource_account=OWNER).allowed


@pytest.mark.parametrize(
    ("condition", "keys", "expected"),
    [
        # strings
        ({"StringEquals": {"s:k": "a"}}, {"s:k": "a"}, True),
        ({"StringEquals": {"s:k": "a"}}, {"S:K": "a"}, True),  # key names ignore case
        ({"StringEquals": {"s:k": "a"}}, {"s:k": "A"}, False),
        ({"StringEquals": {"s:k": ["a", "b"]}}, {"s:k": "b"}, True),  # values are ORed
        ({"StringEquals": {"s:k": "a", "s:j": "b"}}, {"s:k": "a", "s:j": "c"}, False),  # keys ANDed
        (
            {"StringEquals": {"s:k": "a"}, "StringLike": {"s:j": "b*"}},
            {"s:k": "a", "s:j": "bc"},
            True,
        ),
        ({"StringEquals": {"s:k": "a"}}, {}, False),
        ({"StringEquals": {"s:k": "a*"}}, {"s:k": "ab"}, False),  # no wildcards in Equals
        ({"StringNotEquals": {"s:k": "a"}}, {"s:k": "b"}, True),
        ({"StringNotEquals": {"s:k": ["a", "b"]}}, {"s:k": "b"}, False),
        ({"StringNotEquals": {"s:k": "a"}}, {}, True),  # negated on an absent key: true
        ({"StringEqualsIgnoreCase": {"s:k": "ABC"}}, {"s:k": "abc"}, True),
        ({"StringNotEqualsIgnoreCase": {"s:k": "ABC"}}, {"s:k": "abc"}, False),
        ({"StringLike": {"s:k": "a?c*"}}, {"s:k": "abcdef"}, True),
        ({"StringLike": {"s:k": "a?c*"}}, {"s:k": "ac"}, False),
        ({"StringNotLike": {"s:k": "a*"}}, {"s:k": "ba"}, True),
        ({"StringEqualsIfExists": {"s:k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"s:k": "a"}}, {"s:k": "b"}, False),
        ({"StringEquals": {"s:k": "true"}}, {"s:k": True}, True),
        # numbers
        ({"NumericEquals": {"s:n": "10"}}, {"s:n": 10}, True),
        ({"NumericEquals": {"s:n": 10}}, {"s:n": "10.0"}, True),
        ({"NumericNotEquals": {"s:n": "10"}}, {"s:n": 11}, True),
        ({"NumericLessThan": {"s:n": "10"}}, {"s:n": 9.5}, True),
        ({"NumericLessThan": {"s:n": "10"}}, {"s:n": 10}, False),
        ({"NumericLessThanEquals": {"s:n": "10"}}, {"s:n": 10}, True),
        ({"NumericGreaterThan": {"s:n": "10"}}, {"s:n": 10}, False),
        ({"NumericGreaterThanEquals": {"s:n": "10"}}, {"s:n": 10}, True),
        ({"NumericGreaterThan": {"s:n": "10"}}, {"s:n": "lots"}, False),  # unreadable: no grant
        ({"NumericNotEquals": {"s:n": "10"}}, {"s:n": "lots"}, False),
        # dates: ISO 8601 or epoch seconds
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2029-12-31T23:59:59Z"},
            True,
        ),
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2030-01-01T00:00:00Z"},
            False,
        ),
        (
            {"DateLessThanEquals": {"aws:CurrentTime": "2030-01-01"}},
            {"aws:CurrentTime": "2030-01-01T00:00:00+00:00"},
            True,
        ),
        ({"DateGreaterThan": {"aws:EpochTime": "1700000000"}}, {"aws:EpochTime": 1700000001}, True),
        (
            {"DateGreaterThanEquals": {"aws:CurrentTime": "1700000000"}},
            {"aws:CurrentTime": "2023-11-14T22:13:20Z"},
            True,
        ),
        (
            {"DateEquals": {"aws:CurrentTime": "2023-11-14T22:13:20Z"}},
            {"aws:CurrentTime": "1700000000"},
            True,
        ),
        (
            {"DateNotEquals": {"aws:CurrentTime": "2023-11-14T22:13:20Z"}},
            {"aws:CurrentTime": "1700000000"},
            False,
        ),
        # booleans, binary, addresses
        (
            {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            {"aws:MultiFactorAuthPresent": True},
            True,
        ),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {}, False),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, {}, True),
        ({"BinaryEquals": {"s:b": "QmluYXJ5"}}, {"s:b": "QmluYXJ5"}, True),
        ({"BinaryEquals": {"s:b": "QmluYXJ5"}}, {"s:b": "T3RoZXI="}, False),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.113.9"}, True),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.114.9"}, False),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.5"}, True),
        ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:SourceIp": "203.0.113.5"}, False),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "10.0.0.1"}, True),
        # ARNs: six fields, each matched on its own
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:iam::*:role/app-*"}},
            {"aws:SourceArn": f"arn:aws:iam::{OWNER}:role/app-1"},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:iam::*:role/app-*"}},
            {"aws:SourceArn": f"arn:aws:iam::{OWNER}:role/app-1"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:iam::*:role/app-*"}},
            {"aws:SourceArn": f"arn:aws:iam::{OWNER}:user/app-1"},
            False,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:*"}},
            {"aws:SourceArn": f"arn:aws:iam::{OWNER}:user/x"},
            False,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:iam::*:*"}},
            {"aws:SourceArn": "not-an-arn"},
            False,
        ),
        (
            {"ArnNotLike": {"aws:SourceArn": "arn:aws:iam::*:role/app-*"}},
            {"aws:SourceArn": f"arn:aws:iam::{OWNER}:user/x"},
            True,
        ),
        ({"ArnNotEquals": {"aws:SourceArn": "arn:aws:iam::*:role/app-*"}}, {}, True),
        # Null
        ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
        (
            {"Null": {"aws:TokenIssueTime": "true"}},
            {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"},
            False,
        ),
        (
            {"Null": {"aws:TokenIssueTime": False}},
            {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"},
            True,
        ),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": None}, False),
        # set operators on multivalued keys
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}},
            {"aws:TagKeys": ["env"]},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}},
            {"aws:TagKeys": ["env", "cost"]},
            False,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {}, True),  # vacuously
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": []}, True),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}},
            {"aws:TagKeys": ["cost", "env"]},
            True,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": ["cost"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, {}, False),
        ({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["env"]}}, {}, True),
        (
            {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}},
            {"aws:TagKeys": ["env", "team"]},
            True,
        ),
        (
            {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}},
            {"aws:TagKeys": ["env", "secret"]},
            False,
        ),
        (
            {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env"]}},
            {"aws:TagKeys": ["env", "x"]},
            True,
        ),
        (
            {"ForAnyValue:StringLike": {"secretsmanager:AddReplicaRegions": ["eu-*"]}},
            {"secretsmanager:AddReplicaRegions": ["us-east-2", "eu-west-1"]},
            True,
        ),
        (
            {"StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}},
            {"secretsmanager:VersionStage": ["AWSPENDING", "AWSCURRENT"]},
            True,
        ),
        (
            {"StringNotEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}},
            {"secretsmanager:VersionStage": ["AWSPENDING", "AWSCURRENT"]},
            False,
        ),
        ({"StringEquals": {"s:k": []}}, {"s:k": "a"}, False),  # an empty list never grants
        ({"StringNotEquals": {"s:k": []}}, {"s:k": "a"}, False),
    ],
)
def test_condition_operators(condition, keys, expected):
    assert allowed(condition, keys) is expected


def public(statement: dict[str, object]) -> bool:
    body = {"Version": "2012-10-17", "Statement": [statement]}
    return grants_public_access(parse_policy(json.dumps(body), "resource"), OWNER)


def grant(principal: object, **extra: object) -> dict[str, object]:
    return {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Principal": principal,
        **extra,
    }


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (grant("*"), True),
        (grant({"AWS": "*"}), True),
        (grant({"AWS": f"arn:aws:iam::{OWNER}:role/app"}), False),
        (grant({"AWS": OWNER}), False),
        (grant({"AWS": f"arn:aws:iam::{OTHER}:role/app"}), True),
        (grant({"AWS": OTHER}), True),
        (grant({"Service": "secretsmanager.amazonaws.com"}), False),
        (grant({"Federated": "cognito-identity.amazonaws.com"}), True),
        ({**grant({"AWS": OWNER}), "NotPrincipal": {"AWS": OWNER}, "Principal": None}, True),
        ({**grant("*"), "Effect": "Deny"}, False),
        (grant("*", Condition={"StringEquals": {"aws:PrincipalAccount": OWNER}}), False),
        (grant("*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}), False),
        (
            grant(
                "*", Condition={"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/a"}}
            ),
            False,
        ),
        (grant("*", Condition={"StringLike": {"aws:PrincipalAccount": "1111*"}}), True),
        (grant("*", Condition={"StringEqualsIfExists": {"aws:PrincipalAccount": OWNER}}), True),
        (
            grant("*", Condition={"ForAllValues:StringEquals": {"aws:PrincipalAccount": OWNER}}),
            True,
        ),
        (grant("*", Condition={"StringNotEquals": {"aws:PrincipalAccount": OTHER}}), True),
        (grant("*", Condition={"StringEquals": {"aws:username": "${aws:username}"}}), True),
        (grant("*", Condition={"Bool": {"aws:SecureTransport": "true"}}), True),
        (
            grant(
                {"AWS": OTHER},
                Condition={"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:role/a"}},
            ),
            False,
        ),
    ],
)
def test_grants_public_access(statement, expected):
    statement = {k: v for k, v in statement.items() if v is not None}
    assert public(statement) is expected


def test_a_named_other_account_need_not_count_as_public():
    body = {"Version": "2012-10-17", "Statement": [grant({"AWS": OTHER})]}
    policy = parse_policy(json.dumps(body), "resource")
    assert grants_public_access(policy, OWNER, cross_account_is_public=False) is False
    assert grants_public_access(policy, OTHER) is False
