"""The IAM/STS registries: every action is a model operation, and what each is
authorized on (``iam_resource``)."""

from __future__ import annotations

import pytest
from botocore.loaders import Loader
from tests.iam.conftest import ACCOUNT, Iam
from tests.iam.helpers import trust

from strongroom.operations.iam.registry import (
    IAM_OPERATIONS,
    IAM_READ_ONLY,
    STS_OPERATIONS,
    STS_READ_ONLY,
    STS_SELF_AUTHORIZED,
    iam_resource,
)

PREFIX = f"arn:aws:iam::{ACCOUNT}"


def _model_operations(service: str) -> set[str]:
    return set(Loader().load_service_model(service, "service-2")["operations"])


def test_every_action_is_in_the_botocore_model():
    assert set(IAM_OPERATIONS) <= _model_operations("iam")
    assert set(STS_OPERATIONS) <= _model_operations("sts")


def test_read_only_actions_are_the_gets_and_lists():
    assert "GetUser" in IAM_READ_ONLY
    assert "ListPolicies" in IAM_READ_ONLY
    assert not IAM_READ_ONLY & {"CreateUser", "DeleteUser", "PutUserPolicy", "TagRole"}
    assert {"GetCallerIdentity"} == STS_READ_ONLY
    assert {"GetCallerIdentity", "AssumeRole"} == STS_SELF_AUTHORIZED


@pytest.mark.parametrize(
    ("operation", "request_", "resource"),
    [
        ("CreateUser", {"UserName": "bob", "Path": "/eng/"}, f"{PREFIX}:user/eng/bob"),
        ("GetUser", {"UserName": "bob"}, f"{PREFIX}:user/bob"),
        ("CreateAccessKey", {"UserName": "bob"}, f"{PREFIX}:user/bob"),
        ("PutUserPolicy", {"UserName": "bob", "PolicyName": "p"}, f"{PREFIX}:user/bob"),
        ("AttachUserPolicy", {"UserName": "bob", "PolicyArn": "x"}, f"{PREFIX}:user/bob"),
        ("CreateRole", {"RoleName": "r", "Path": "/ci/"}, f"{PREFIX}:role/ci/r"),
        ("PutRolePolicy", {"RoleName": "r"}, f"{PREFIX}:role/r"),
        ("CreatePolicy", {"PolicyName": "p", "Path": "/t/"}, f"{PREFIX}:policy/t/p"),
        ("GetPolicy", {"PolicyArn": f"{PREFIX}:policy/p"}, f"{PREFIX}:policy/p"),
        ("DeletePolicy", {"PolicyArn": f"{PREFIX}:policy/p"}, f"{PREFIX}:policy/p"),
        ("ListUsers", {}, "*"),
        ("ListRoles", {}, "*"),
        ("ListPolicies", {}, "*"),
    ],
)
def test_iam_resource_without_a_store(operation: str, request_: dict[str, str], resource: str):
    assert iam_resource(operation, request_, ACCOUNT, "aws") == resource


def test_iam_resource_reads_the_path_of_existing_users_and_roles(iam: Iam):
    iam("CreateUser", UserName="bob", Path="/eng/")
    iam("CreateRole", RoleName="r", Path="/ci/", AssumeRolePolicyDocument=trust("*"))

    with iam.store.read() as tx:
        user = iam_resource("DeleteUser", {"UserName": "BOB"}, ACCOUNT, "aws", tx=tx)
        role = iam_resource("GetRole", {"RoleName": "r"}, ACCOUNT, "aws", tx=tx)

    assert user == f"{PREFIX}:user/eng/bob"  # the stored name and path
    assert role == f"{PREFIX}:role/ci/r"


def test_iam_resource_without_user_name_is_the_callers_own_arn():
    caller = f"{PREFIX}:user/eng/alice"

    got = iam_resource("ListAccessKeys", {}, ACCOUNT, "aws", principal_arn=caller)

    assert got == caller
