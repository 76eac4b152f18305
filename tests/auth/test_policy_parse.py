"""parse_policy: what IAM / Secrets Manager accept, and their texts for what they refuse.

Expected texts are written out in full (not taken from the module) so a typo fails a test.
"""

from __future__ import annotations

import json

import pytest

from strongroom.auth.policy import MalformedPolicy, parse_policy

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def doc(*statements: dict[str, object], version: str | None = "2012-10-17") -> str:
    body: dict[str, object] = {"Statement": list(statements)}
    if version is not None:
        body["Version"] = version
    return json.dumps(body)


def allow(**extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": ARN, **extra}


def error_of(text: str, kind: str = "identity") -> str:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(text, kind)  # type: ignore[arg-type]
    return caught.value.message


SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("This is not a json document", SYNTAX),
        ("[]", SYNTAX),
        (json.dumps({"Version": "2012-10-17"}), SYNTAX),
        (doc(allow(), version="2013-10-17"), SYNTAX),
        (json.dumps({"Version": "2012-10-17", "Statement": [], "Extra": 1}), SYNTAX),
        (doc(), SYNTAX),
        (json.dumps({"Version": "2012-10-17", "Statement": ["afd"]}), SYNTAX),
        (doc(allow(Extra="value")), SYNTAX),
        (doc({"Action": "s3:ListBucket", "Resource": "*"}), SYNTAX),
        (doc(allow(NotAction="s3:Get*")), SYNTAX),
        (doc(allow(NotResource="*")), SYNTAX),
        (doc(allow(Sid=[])), SYNTAX),
        (doc(allow(Action={})), SYNTAX),
        (doc(allow(Resource=["arn:aws:s3:::b", {}])), SYNTAX),
        (doc(allow(Condition=[])), SYNTAX),
        (doc(allow(Condition={"StringEqualz": {"aws:username": "a"}})), SYNTAX),
        (doc(allow(Condition={"NullIfExists": {"aws:username": "true"}})), SYNTAX),
        (doc(allow(Condition={"StringEquals": {"aws:username": {}}})), SYNTAX),
        ('{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}', SYNTAX),
        ("[" * 100_000 + "]" * 100_000, SYNTAX),
        (
            doc(allow(Sid="a"), allow(Sid="a")),
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        (doc(allow(Effect="allow")), LEGACY),
        (doc(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "sdfdsf"}})), LEGACY),
        (doc(allow(Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}})), LEGACY),
        (doc(allow(Condition={"NumericLessThan": {"s:n": "ten"}})), LEGACY),
        (doc({"Effect": "Allow", "Resource": ARN}), "Policy statement must contain actions."),
        (doc(allow(Action=[])), "Policy statement must contain actions."),
        (doc({"Effect": "Allow", "Action": "s3:Get"}), "Policy statement must contain resources."),
        (doc(allow(Resource=[])), "Policy statement must contain resources."),
        (
            doc(allow(Action="invalid")),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (doc(allow(Action="s3:List:Bucket")), "Actions/Condition can contain only one colon."),
        (doc(allow(Action="a a:ListBucket")), "Vendor a a is not valid"),
        (
            doc(allow(Resource="invalid resource")),
            'Resource invalid resource must be in ARN format or "*".',
        ),
        (
            doc(allow(Condition={"StringEquals": {"username": "a"}})),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (doc(allow(Principal={"AWS": "*"})), "Policy document should not specify a principal."),
    ],
)
def test_it_refuses_an_identity_policy_with_aws_text(text, message):
    assert error_of(text) == message


def test_it_requires_a_principal_in_resource_and_trust_policies():
    assert error_of(doc(allow()), "resource") == "Missing required field Principal"
    trust = {"Effect": "Allow", "Action": "sts:AssumeRole"}
    assert error_of(doc(trust), "trust") == "Missing required field Principal"


def test_it_refuses_a_resource_in_a_trust_policy():
    statement = allow(Principal={"AWS": "123456789012"}, Action="sts:AssumeRole")
    assert error_of(doc(statement), "trust") == "Has prohibited field Resource"


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "bob"},
        {"AWS": "arn:aws:iam::123456789012:user/*"},
        {"AWS": "12345"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
        {"Service": "*"},
        "everyone",
        {},
    ],
)
def test_it_refuses_an_unsupported_principal(principal):
    message = error_of(doc(allow(Principal=principal)), "resource")
    assert message in {"This resource policy contains an unsupported principal.", SYNTAX}


def test_a_trust_policy_names_the_invalid_principal_as_iam_does():
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "bob"}}
    assert error_of(doc(statement), "trust") == 'Invalid principal in policy: "AWS":"bob"'


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": "123456789012"},
        {"AWS": ["arn:aws:iam::123456789012:root", "arn:aws:iam::210987654321:user/path/bob"]},
        {"AWS": "arn:aws:iam::123456789012:role/app"},
        {"AWS": "arn:aws:sts::123456789012:assumed-role/app/session-1"},
        {"Service": "secretsmanager.amazonaws.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
    ],
)
def test_it_accepts_the_documented_principal_forms(principal):
    policy = parse_policy(doc(allow(Principal=principal)), "resource")
    assert policy.statements[0].principals is not None


def test_it_accepts_a_single_statement_object_and_no_version():
    text = json.dumps({"Statement": allow(Sid="One statement, any text")})
    policy = parse_policy(text, "identity")
    assert policy.version is None
    assert [st.sid for st in policy.statements] == ["One statement, any text"]
    assert policy.text == text


def test_it_accepts_every_documented_condition_operator_form():
    operators = {
        "StringEqualsIfExists": {"aws:username": "a"},
        "ForAnyValue:StringLike": {"aws:TagKeys": ["env*"]},
        "ForAllValues:StringEqualsIgnoreCase": {"aws:TagKeys": ["Env", "Team"]},
        "NumericGreaterThanEqualsIfExists": {"s:n": 3},
        "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"},
        "DateGreaterThan": {"aws:EpochTime": "1700000000"},
        "Bool": {"aws:SecureTransport": False},
        "BinaryEquals": {"s:b": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="},
        "NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
        "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/admin-*"},
        "Null": {"aws:TokenIssueTime": "true"},
    }
    policy = parse_policy(doc(allow(Condition=operators)), "identity")
    assert len(policy.statements[0].conditions) == len(operators)


def test_a_trust_policy_needs_no_resource():
    statement = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"Service": "lambda.amazonaws.com"},
    }
    assert parse_policy(doc(statement), "trust").statements[0].resources is None


def test_parses_are_cached_by_text_and_kind():
    text = doc(allow())
    assert parse_policy(text, "identity") is parse_policy(text, "identity")
