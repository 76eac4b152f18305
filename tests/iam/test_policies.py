"""Inline user policies, managed policies, attachments."""

from __future__ import annotations

import json
import re
import urllib.parse

from tests.iam.conftest import ACCOUNT, T0, Iam
from tests.iam.helpers import ALLOW_ALL, allow, error_of

from strongroom.errors import DeleteConflict, EntityAlreadyExists, MalformedPolicyDocument

NO_RESOURCE = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}
)


def _policy(iam: Iam, name: str = "p", document: str = ALLOW_ALL, **request: object) -> str:
    return str(
        iam("CreatePolicy", PolicyName=name, PolicyDocument=document, **request)["Policy"]["Arn"]
    )


# -- inline -------------------------------------------------------------------------------------
def test_get_user_policy_returns_the_document_url_encoded(iam: Iam):
    iam("CreateUser", UserName="alice")
    document = allow("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:*:*:secret:a/*")

    iam("PutUserPolicy", UserName="alice", PolicyName="read", PolicyDocument=document)
    got = iam("GetUserPolicy", UserName="alice", PolicyName="read")

    assert got["UserName"] == "alice"
    assert got["PolicyName"] == "read"
    assert got["PolicyDocument"] != document
    assert "%7B" in got["PolicyDocument"]
    assert urllib.parse.unquote(got["PolicyDocument"]) == document


def test_put_user_policy_replaces_a_policy_of_the_same_name(iam: Iam):
    iam("CreateUser", UserName="alice")
    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=ALLOW_ALL)

    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=allow("s3:*"))

    got = iam("GetUserPolicy", UserName="alice", PolicyName="p")["PolicyDocument"]
    assert urllib.parse.unquote(got) == allow("s3:*")
    assert iam("ListUserPolicies", UserName="alice")["PolicyNames"] == ["p"]


def test_a_malformed_document_is_refused_and_not_stored(iam: Iam):
    iam("CreateUser", UserName="alice")

    for document, message in (
        ("not json", "Syntax errors in policy."),
        (NO_RESOURCE, "Policy statement must contain resources."),
    ):
        error = error_of(
            lambda d=document: iam(
                "PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=d
            )
        )
        assert isinstance(error, MalformedPolicyDocument)
        assert (error.code, error.status, error.message) == (
            "MalformedPolicyDocument",
            400,
            message,
        )
    assert iam("ListUserPolicies", UserName="alice")["PolicyNames"] == []


def test_list_user_policies_pages_names_in_order(iam: Iam):
    iam("CreateUser", UserName="alice")
    for name in ("c", "a", "b"):
        iam("PutUserPolicy", UserName="alice", PolicyName=name, PolicyDocument=allow("s3:*"))

    first = iam("ListUserPolicies", UserName="alice", MaxItems=2)
    rest = iam("ListUserPolicies", UserName="alice", Marker=first["Marker"])

    assert first["PolicyNames"] == ["a", "b"]
    assert first["IsTruncated"] is True
    assert rest == {"PolicyNames": ["c"], "IsTruncated": False}


def test_a_missing_inline_policy_is_no_such_entity(iam: Iam):
    iam("CreateUser", UserName="alice")

    got = error_of(lambda: iam("GetUserPolicy", UserName="alice", PolicyName="nope"))
    deleted = error_of(lambda: iam("DeleteUserPolicy", UserName="alice", PolicyName="nope"))

    assert (got.code, got.status) == ("NoSuchEntity", 404)
    assert got.message == "The user policy with name nope cannot be found."
    assert deleted.message == got.message


def test_inline_policies_of_a_user_are_capped_at_2048_characters(iam: Iam):
    iam("CreateUser", UserName="alice")
    big = allow("s3:GetObject", "arn:aws:s3:::" + "b" * 1900)
    iam("PutUserPolicy", UserName="alice", PolicyName="one", PolicyDocument=big)

    error = error_of(
        lambda: iam("PutUserPolicy", UserName="alice", PolicyName="two", PolicyDocument=big)
    )

    assert (error.code, error.status) == ("LimitExceeded", 409)
    # Replacing the one policy with a document of the same size is fine.
    iam("PutUserPolicy", UserName="alice", PolicyName="one", PolicyDocument=big)


# -- managed ------------------------------------------------------------------------------------
def test_create_policy_makes_an_anpa_policy_with_default_version_v1(iam: Iam):
    policy = iam(
        "CreatePolicy",
        PolicyName="read",
        Path="/team/",
        PolicyDocument=ALLOW_ALL,
        Description="d",
        Tags=[{"Key": "k", "Value": "v"}],
    )["Policy"]

    assert re.fullmatch(r"ANPA[A-Z0-9]{17}", policy["PolicyId"])
    assert policy["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/team/read"
    assert (policy["DefaultVersionId"], policy["AttachmentCount"], policy["IsAttachable"]) == (
        "v1",
        0,
        True,
    )
    assert policy["CreateDate"] == policy["UpdateDate"] == T0
    assert "Description" not in policy  # as AWS answers CreatePolicy
    got = iam("GetPolicy", PolicyArn=policy["Arn"])["Policy"]
    assert got["Description"] == "d"
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]


def test_get_policy_version_returns_the_document_url_encoded(iam: Iam):
    arn = _policy(iam)

    version = iam("GetPolicyVersion", PolicyArn=arn, VersionId="v1")["PolicyVersion"]

    assert urllib.parse.unquote(version["Document"]) == ALLOW_ALL
    assert (version["VersionId"], version["IsDefaultVersion"], version["CreateDate"]) == (
        "v1",
        True,
        T0,
    )
    error = error_of(lambda: iam("GetPolicyVersion", PolicyArn=arn, VersionId="v2"))
    assert error.code == "NoSuchEntity"


def test_a_policy_name_is_unique_in_the_account_whatever_its_path(iam: Iam):
    _policy(iam, "read", Path="/a/")

    error = error_of(lambda: _policy(iam, "READ", Path="/b/"))

    assert isinstance(error, EntityAlreadyExists)
    assert error.message == "A policy called READ already exists. Duplicate names are not allowed."


def test_an_unknown_policy_is_no_such_entity(iam: Iam):
    arn = f"arn:aws:iam::{ACCOUNT}:policy/x"

    error = error_of(lambda: iam("GetPolicy", PolicyArn=arn))

    assert (error.code, error.status) == ("NoSuchEntity", 404)
    assert error.message == f"Policy {arn} was not found."


def test_list_policies_scopes(iam: Iam):
    attached, _ = _policy(iam, "b"), _policy(iam, "a", Path="/x/")
    iam("CreateUser", UserName="alice")
    iam("AttachUserPolicy", UserName="alice", PolicyArn=attached)

    def names(**request: object) -> list[str]:
        return [p["PolicyName"] for p in iam("ListPolicies", **request)["Policies"]]

    assert names() == ["a", "b"]
    assert names(Scope="Local") == ["a", "b"]
    assert names(Scope="AWS") == []  # no AWS managed policies exist here
    assert names(OnlyAttached=True) == ["b"]
    assert names(PathPrefix="/x/") == ["a"]
    assert names(PolicyUsageFilter="PermissionsBoundary") == []
    listed = iam("ListPolicies", OnlyAttached=True)["Policies"][0]
    assert listed["AttachmentCount"] == 1


def test_list_policies_pages(iam: Iam):
    for name in ("c", "a", "b"):
        _policy(iam, name)

    first = iam("ListPolicies", MaxItems=2)
    rest = iam("ListPolicies", MaxItems=2, Marker=first["Marker"])

    assert [p["PolicyName"] for p in first["Policies"]] == ["a", "b"]
    assert [p["PolicyName"] for p in rest["Policies"]] == ["c"]
    assert rest["IsTruncated"] is False


def test_delete_policy_is_refused_while_attached(iam: Iam):
    arn = _policy(iam)
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=_trust_any_user())
    iam("AttachRolePolicy", RoleName="r", PolicyArn=arn)

    error = error_of(lambda: iam("DeletePolicy", PolicyArn=arn))

    assert isinstance(error, DeleteConflict)
    assert error.message == "Cannot delete a policy attached to entities."
    iam("DetachRolePolicy", RoleName="r", PolicyArn=arn)
    iam("DeletePolicy", PolicyArn=arn)
    assert error_of(lambda: iam("GetPolicy", PolicyArn=arn)).code == "NoSuchEntity"


def _trust_any_user() -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


# -- attachments --------------------------------------------------------------------------------
def test_attach_is_idempotent_and_listed(iam: Iam):
    iam("CreateUser", UserName="alice")
    arn = _policy(iam, "read", Path="/p/")

    iam("AttachUserPolicy", UserName="alice", PolicyArn=arn)
    iam("AttachUserPolicy", UserName="alice", PolicyArn=arn)

    listed = iam("ListAttachedUserPolicies", UserName="alice")
    assert listed == {
        "AttachedPolicies": [{"PolicyName": "read", "PolicyArn": arn}],
        "IsTruncated": False,
    }
    assert iam("GetPolicy", PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    filtered = iam("ListAttachedUserPolicies", UserName="alice", PathPrefix="/q/")
    assert filtered["AttachedPolicies"] == []


def test_attaching_an_unknown_policy_is_no_such_entity(iam: Iam):
    iam("CreateUser", UserName="alice")
    arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"

    error = error_of(lambda: iam("AttachUserPolicy", UserName="alice", PolicyArn=arn))

    assert (error.code, error.status) == ("NoSuchEntity", 404)
    assert error.message == f"Policy {arn} does not exist or is not attachable."


def test_detaching_a_policy_that_is_not_attached_is_no_such_entity(iam: Iam):
    iam("CreateUser", UserName="alice")
    arn = _policy(iam)

    error = error_of(lambda: iam("DetachUserPolicy", UserName="alice", PolicyArn=arn))

    assert error.message == f"Policy {arn} was not found."


def test_at_most_ten_policies_are_attached_to_a_user(iam: Iam):
    iam("CreateUser", UserName="alice")
    arns = [_policy(iam, f"p{i}") for i in range(11)]
    for arn in arns[:10]:
        iam("AttachUserPolicy", UserName="alice", PolicyArn=arn)

    error = error_of(lambda: iam("AttachUserPolicy", UserName="alice", PolicyArn=arns[10]))

    assert (error.code, error.message) == (
        "LimitExceeded",
        "Cannot exceed quota for PoliciesPerUser: 10",
    )
    iam("AttachUserPolicy", UserName="alice", PolicyArn=arns[0])  # already attached: fine
