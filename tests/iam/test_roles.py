"""CreateRole, GetRole, ListRoles, DeleteRole, role policies and tags."""

from __future__ import annotations

import re
import urllib.parse

from tests.iam.conftest import ACCOUNT, T0, Iam
from tests.iam.helpers import ALLOW_ALL, allow, error_of, trust

from strongroom.errors import DeleteConflict, EntityAlreadyExists, MalformedPolicyDocument

TRUST = trust(f"arn:aws:iam::{ACCOUNT}:user/alice")


def test_it_creates_a_role_with_an_aroa_id_and_its_trust_policy(iam: Iam):
    role = iam(
        "CreateRole",
        RoleName="deploy",
        Path="/ci/",
        AssumeRolePolicyDocument=TRUST,
        Description="d",
        MaxSessionDuration=7200,
    )["Role"]

    assert re.fullmatch(r"AROA[A-Z0-9]{17}", role["RoleId"])
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/ci/deploy"
    assert urllib.parse.unquote(role["AssumeRolePolicyDocument"]) == TRUST
    assert (role["MaxSessionDuration"], role["Description"], role["CreateDate"]) == (7200, "d", T0)
    got = iam("GetRole", RoleName="DEPLOY")["Role"]
    assert got["RoleId"] == role["RoleId"]
    assert got["RoleLastUsed"] == {}


def test_max_session_duration_defaults_to_an_hour(iam: Iam):
    role = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST)["Role"]

    assert role["MaxSessionDuration"] == 3600


def test_a_malformed_trust_policy_is_refused(iam: Iam):
    error = error_of(lambda: iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=ALLOW_ALL))

    assert isinstance(error, MalformedPolicyDocument)
    assert error_of(lambda: iam("GetRole", RoleName="r")).code == "NoSuchEntity"


def test_a_taken_role_name_is_entity_already_exists(iam: Iam):
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST)

    error = error_of(lambda: iam("CreateRole", RoleName="R", AssumeRolePolicyDocument=TRUST))

    assert isinstance(error, EntityAlreadyExists)
    assert error.message == "Role with name R already exists."


def test_an_unknown_role_is_no_such_entity(iam: Iam):
    error = error_of(lambda: iam("GetRole", RoleName="R"))

    assert (error.code, error.status) == ("NoSuchEntity", 404)
    assert error.message == "The role with name R cannot be found."


def test_list_roles_pages_and_filters(iam: Iam):
    for name, path in (("c", "/"), ("a", "/x/"), ("b", "/")):
        iam("CreateRole", RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)

    first = iam("ListRoles", MaxItems=2)
    rest = iam("ListRoles", Marker=first["Marker"])

    assert [r["RoleName"] for r in first["Roles"] + rest["Roles"]] == ["a", "b", "c"]
    assert [r["RoleName"] for r in iam("ListRoles", PathPrefix="/x/")["Roles"]] == ["a"]


def test_role_inline_policies(iam: Iam):
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST)

    iam("PutRolePolicy", RoleName="r", PolicyName="p", PolicyDocument=allow("s3:*"))

    got = iam("GetRolePolicy", RoleName="r", PolicyName="p")
    assert (got["RoleName"], urllib.parse.unquote(got["PolicyDocument"])) == ("r", allow("s3:*"))
    assert iam("ListRolePolicies", RoleName="r")["PolicyNames"] == ["p"]
    iam("DeleteRolePolicy", RoleName="r", PolicyName="p")
    error = error_of(lambda: iam("GetRolePolicy", RoleName="r", PolicyName="p"))
    assert error.message == "The role policy with name p cannot be found."


def test_delete_role_is_refused_while_it_has_policies(iam: Iam):
    iam(
        "CreateRole",
        RoleName="r",
        AssumeRolePolicyDocument=TRUST,
        Tags=[{"Key": "k", "Value": "v"}],
    )
    arn = iam("CreatePolicy", PolicyName="p", PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    iam("PutRolePolicy", RoleName="r", PolicyName="inline", PolicyDocument=ALLOW_ALL)
    iam("AttachRolePolicy", RoleName="r", PolicyArn=arn)

    inline = error_of(lambda: iam("DeleteRole", RoleName="r"))
    iam("DeleteRolePolicy", RoleName="r", PolicyName="inline")
    attached = error_of(lambda: iam("DeleteRole", RoleName="r"))
    assert iam("ListAttachedRolePolicies", RoleName="r")["AttachedPolicies"] == [
        {"PolicyName": "p", "PolicyArn": arn}
    ]
    iam("DetachRolePolicy", RoleName="r", PolicyArn=arn)
    iam("DeleteRole", RoleName="r")

    assert isinstance(inline, DeleteConflict)
    assert inline.message == "Cannot delete entity, must delete policies first."
    assert attached.message == "Cannot delete entity, must detach all policies first."
    assert error_of(lambda: iam("GetRole", RoleName="r")).code == "NoSuchEntity"
    again = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST)["Role"]
    assert "Tags" not in again


def test_role_tags(iam: Iam):
    iam(
        "CreateRole",
        RoleName="r",
        AssumeRolePolicyDocument=TRUST,
        Tags=[{"Key": "a", "Value": "1"}],
    )

    iam("TagRole", RoleName="r", Tags=[{"Key": "b", "Value": "2"}])
    iam("UntagRole", RoleName="r", TagKeys=["A"])

    assert iam("ListRoleTags", RoleName="r")["Tags"] == [{"Key": "b", "Value": "2"}]
    assert iam("GetRole", RoleName="r")["Role"]["Tags"] == [{"Key": "b", "Value": "2"}]
