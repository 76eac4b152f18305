"""CreateUser, GetUser, ListUsers, DeleteUser and user tags."""

from __future__ import annotations

import re

from tests.iam.conftest import ACCOUNT, ROOT, T0, Iam
from tests.iam.helpers import ALLOW_ALL, error_of, trust

from strongroom.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity, ValidationError


def test_it_creates_a_user_with_an_aida_id_and_an_arn_with_its_path(iam: Iam):
    user = iam("CreateUser", UserName="alice", Path="/eng/", Tags=[{"Key": "team", "Value": "a"}])[
        "User"
    ]

    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", user["UserId"])
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/eng/alice"
    assert user["Path"] == "/eng/"
    assert user["CreateDate"] == T0
    assert user["Tags"] == [{"Key": "team", "Value": "a"}]


def test_get_user_finds_the_user_by_name_in_any_case(iam: Iam):
    created = iam("CreateUser", UserName="alice")["User"]

    got = iam("GetUser", UserName="ALICE")["User"]

    assert got == created
    assert "Tags" not in got


def test_a_name_taken_in_another_case_is_entity_already_exists(iam: Iam):
    iam("CreateUser", UserName="alice")

    error = error_of(lambda: iam("CreateUser", UserName="Alice"))

    assert isinstance(error, EntityAlreadyExists)
    assert (error.code, error.status) == ("EntityAlreadyExists", 409)
    assert error.message == "User with name Alice already exists."


def test_an_unknown_user_is_no_such_entity(iam: Iam):
    error = error_of(lambda: iam("GetUser", UserName="bob"))

    assert (error.code, error.status) == ("NoSuchEntity", 404)
    assert error.message == "The user with name bob cannot be found."


def test_get_user_without_a_name_is_the_callers_user(iam: Iam):
    alice = iam.user("alice")

    got = iam("GetUser", alice)["User"]

    assert got["UserName"] == "alice"
    assert got["UserId"] == alice.user_id


def test_get_user_without_a_name_for_the_root_is_the_account(iam: Iam):
    got = iam("GetUser", ROOT)["User"]

    assert got["UserId"] == ACCOUNT
    assert got["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert "UserName" not in got


def test_get_user_without_a_name_for_a_session_is_a_validation_error(iam: Iam):
    alice = iam.user("alice")
    role = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=trust(alice.arn))["Role"]
    session = iam.session(alice, role["Arn"])

    error = error_of(lambda: iam("GetUser", session))

    assert isinstance(error, ValidationError)
    assert error.message == "Must specify userName when calling with non-User credentials"


def test_list_users_pages_by_name_with_a_marker(iam: Iam):
    for name in ("carol", "alice", "Bob", "dave", "erin"):
        iam("CreateUser", UserName=name)

    first = iam("ListUsers", MaxItems=2)
    second = iam("ListUsers", MaxItems=2, Marker=first["Marker"])
    third = iam("ListUsers", MaxItems=2, Marker=second["Marker"])

    assert [u["UserName"] for u in first["Users"]] == ["alice", "Bob"]
    assert [u["UserName"] for u in second["Users"]] == ["carol", "dave"]
    assert [u["UserName"] for u in third["Users"]] == ["erin"]
    assert (first["IsTruncated"], second["IsTruncated"], third["IsTruncated"]) == (
        True,
        True,
        False,
    )
    assert "Marker" not in third


def test_list_users_filters_on_the_path_prefix(iam: Iam):
    iam("CreateUser", UserName="alice", Path="/eng/web/")
    iam("CreateUser", UserName="bob", Path="/ops/")
    iam("CreateUser", UserName="carol")

    got = iam("ListUsers", PathPrefix="/eng/")["Users"]

    assert [u["UserName"] for u in got] == ["alice"]
    assert len(iam("ListUsers")["Users"]) == 3


def test_a_forged_marker_is_refused(iam: Iam):
    error = error_of(lambda: iam("ListUsers", Marker="bm90IGEgbWFya2Vy"))

    assert error.code == "InvalidInput"


def test_delete_user_removes_the_user(iam: Iam):
    iam("CreateUser", UserName="alice", Tags=[{"Key": "a", "Value": "1"}])

    iam("DeleteUser", UserName="alice")

    assert isinstance(error_of(lambda: iam("GetUser", UserName="alice")), NoSuchEntity)
    # A user created again under the name starts without the old one's tags.
    assert "Tags" not in iam("CreateUser", UserName="alice")["User"]


def test_delete_user_is_refused_while_it_has_access_keys(iam: Iam):
    iam.user("alice")

    error = error_of(lambda: iam("DeleteUser", UserName="alice"))

    assert isinstance(error, DeleteConflict)
    assert error.status == 409
    assert error.message == "Cannot delete entity, must delete access keys first."


def test_delete_user_is_refused_while_it_has_inline_policies(iam: Iam):
    iam("CreateUser", UserName="alice")
    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=ALLOW_ALL)

    error = error_of(lambda: iam("DeleteUser", UserName="alice"))

    assert error.message == "Cannot delete entity, must delete policies first."
    iam("DeleteUserPolicy", UserName="alice", PolicyName="p")
    iam("DeleteUser", UserName="alice")


def test_delete_user_is_refused_while_policies_are_attached(iam: Iam):
    iam("CreateUser", UserName="alice")
    arn = iam("CreatePolicy", PolicyName="p", PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    iam("AttachUserPolicy", UserName="alice", PolicyArn=arn)

    error = error_of(lambda: iam("DeleteUser", UserName="alice"))

    assert error.message == "Cannot delete entity, must detach all policies first."
    iam("DetachUserPolicy", UserName="alice", PolicyArn=arn)
    iam("DeleteUser", UserName="alice")


def test_tags_merge_and_untag_removes_keys(iam: Iam):
    iam("CreateUser", UserName="alice", Tags=[{"Key": "a", "Value": "1"}])

    iam("TagUser", UserName="alice", Tags=[{"Key": "b", "Value": "2"}, {"Key": "A", "Value": "3"}])
    tagged = iam("ListUserTags", UserName="alice")
    iam("UntagUser", UserName="alice", TagKeys=["a"])

    assert tagged["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    assert tagged["IsTruncated"] is False
    assert iam("ListUserTags", UserName="alice")["Tags"] == [{"Key": "b", "Value": "2"}]
    assert iam("GetUser", UserName="alice")["User"]["Tags"] == [{"Key": "b", "Value": "2"}]


def test_duplicate_tag_keys_in_one_request_are_invalid_input(iam: Iam):
    tags = [{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}]

    error = error_of(lambda: iam("CreateUser", UserName="alice", Tags=tags))

    assert error.code == "InvalidInput"
    assert isinstance(error_of(lambda: iam("GetUser", UserName="alice")), NoSuchEntity)


def test_more_than_fifty_tags_is_limit_exceeded(iam: Iam):
    iam("CreateUser", UserName="alice", Tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])

    error = error_of(lambda: iam("TagUser", UserName="alice", Tags=[{"Key": "one", "Value": ""}]))

    assert (error.code, error.status) == ("LimitExceeded", 409)
    assert len(iam("ListUserTags", UserName="alice")["Tags"]) == 50


def test_list_user_tags_pages(iam: Iam):
    iam("CreateUser", UserName="alice", Tags=[{"Key": f"k{i}", "Value": ""} for i in range(3)])

    first = iam("ListUserTags", UserName="alice", MaxItems=2)
    rest = iam("ListUserTags", UserName="alice", Marker=first["Marker"])

    assert [t["Key"] for t in first["Tags"] + rest["Tags"]] == ["k0", "k1", "k2"]
