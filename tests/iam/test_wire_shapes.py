"""The operations' results fit the wire: rendered by the Query protocol's serializer and
read back by botocore's own parser (and its IAM policy-document decoding), they come out as
an SDK caller would see them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from botocore.handlers import json_decode_policies
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import QueryParser
from tests.iam.conftest import ACCOUNT, Iam
from tests.iam.helpers import ALLOW_ALL, trust

from strongroom.protocol.query import QueryService


def _through_the_wire(service: str, action: str, result: dict[str, Any]) -> dict[str, Any]:
    body = QueryService.load(service).operation(action).serialize_output(result, "req-1")  # type: ignore[union-attr]
    model = ServiceModel(Loader().load_service_model(service, "service-2"), service)
    operation = model.operation_model(action)
    parsed: dict[str, Any] = QueryParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, operation.output_shape
    )
    if service == "iam":
        json_decode_policies(parsed, operation)
    parsed.pop("ResponseMetadata", None)
    return parsed


def test_a_user_with_tags(iam: Iam):
    result = iam("CreateUser", UserName="alice", Tags=[{"Key": "k", "Value": "v"}])

    user = _through_the_wire("iam", "CreateUser", result)["User"]

    assert user["UserName"] == "alice"
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert isinstance(user["CreateDate"], dt.datetime)
    assert user["Tags"] == [{"Key": "k", "Value": "v"}]


def test_policy_documents_arrive_decoded(iam: Iam):
    iam("CreateUser", UserName="alice")
    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=ALLOW_ALL)
    role = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust("*"))
    arn = iam("CreatePolicy", PolicyName="m", PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]

    inline = _through_the_wire(
        "iam", "GetUserPolicy", iam("GetUserPolicy", UserName="alice", PolicyName="p")
    )
    created_role = _through_the_wire("iam", "CreateRole", role)
    version = _through_the_wire(
        "iam", "GetPolicyVersion", iam("GetPolicyVersion", PolicyArn=arn, VersionId="v1")
    )

    assert inline["PolicyDocument"] == json.loads(ALLOW_ALL)
    assert created_role["Role"]["AssumeRolePolicyDocument"] == json.loads(trust("*"))
    assert version["PolicyVersion"]["Document"] == json.loads(ALLOW_ALL)


def test_a_page_of_users_and_access_keys(iam: Iam):
    for name in ("a", "b"):
        iam("CreateUser", UserName=name)
    iam("CreateAccessKey", UserName="a")

    users = _through_the_wire("iam", "ListUsers", iam("ListUsers", MaxItems=1))
    keys = _through_the_wire("iam", "ListAccessKeys", iam("ListAccessKeys", UserName="a"))

    assert [u["UserName"] for u in users["Users"]] == ["a"]
    assert users["IsTruncated"] is True
    assert users["Marker"]
    assert keys["AccessKeyMetadata"][0]["Status"] == "Active"


def test_assume_role_credentials(iam: Iam):
    alice = iam.user("alice")
    role_arn = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust(alice.arn))["Role"][
        "Arn"
    ]
    result = iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s")

    parsed = _through_the_wire("sts", "AssumeRole", result)

    assert parsed["Credentials"]["SessionToken"] == result["Credentials"]["SessionToken"]
    assert isinstance(parsed["Credentials"]["Expiration"], dt.datetime)
    assert parsed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s"
    identity = _through_the_wire("sts", "GetCallerIdentity", iam("GetCallerIdentity", alice))
    assert identity == {"UserId": alice.user_id, "Account": ACCOUNT, "Arn": alice.arn}
