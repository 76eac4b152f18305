"""Which function serves each IAM and STS action, which of them only read, and what each
IAM action is authorized on.

``iam_resource`` follows the "Actions, resources, and condition keys for AWS Identity and
Access Management" page: user actions (including a user's access keys, inline and attached
policies) on the user's ARN, role actions on the role's ARN, CreatePolicy and the managed
policy actions on the policy's ARN, and the listings of a whole account on "*".
"""

from __future__ import annotations

from typing import Any

from strongroom.operations.iam import access_keys, policies, roles, users
from strongroom.operations.registry import Operation
from strongroom.operations.sts import STS_OPERATIONS, STS_READ_ONLY, STS_SELF_AUTHORIZED
from strongroom.storage.base import Transaction

__all__ = [
    "IAM_OPERATIONS",
    "IAM_READ_ONLY",
    "STS_OPERATIONS",
    "STS_READ_ONLY",
    "STS_SELF_AUTHORIZED",
    "iam_resource",
]

IAM_OPERATIONS: dict[str, Operation] = {
    "CreateUser": users.create_user,
    "GetUser": users.get_user,
    "ListUsers": users.list_users,
    "DeleteUser": users.delete_user,
    "TagUser": users.tag_user,
    "UntagUser": users.untag_user,
    "ListUserTags": users.list_user_tags,
    "CreateAccessKey": access_keys.create_access_key,
    "ListAccessKeys": access_keys.list_access_keys,
    "UpdateAccessKey": access_keys.update_access_key,
    "DeleteAccessKey": access_keys.delete_access_key,
    "PutUserPolicy": policies.put_user_policy,
    "GetUserPolicy": policies.get_user_policy,
    "ListUserPolicies": policies.list_user_policies,
    "DeleteUserPolicy": policies.delete_user_policy,
    "AttachUserPolicy": policies.attach_user_policy,
    "DetachUserPolicy": policies.detach_user_policy,
    "ListAttachedUserPolicies": policies.list_attached_user_policies,
    "CreatePolicy": policies.create_policy,
    "GetPolicy": policies.get_policy,
    "GetPolicyVersion": policies.get_policy_version,
    "ListPolicies": policies.list_policies,
    "DeletePolicy": policies.delete_policy,
    "CreateRole": roles.create_role,
    "GetRole": roles.get_role,
    "ListRoles": roles.list_roles,
    "DeleteRole": roles.delete_role,
    "PutRolePolicy": roles.put_role_policy,
    "GetRolePolicy": roles.get_role_policy,
    "ListRolePolicies": roles.list_role_policies,
    "DeleteRolePolicy": roles.delete_role_policy,
    "AttachRolePolicy": roles.attach_role_policy,
    "DetachRolePolicy": roles.detach_role_policy,
    "ListAttachedRolePolicies": roles.list_attached_role_policies,
    "TagRole": roles.tag_role,
    "UntagRole": roles.untag_role,
    "ListRoleTags": roles.list_role_tags,
}

IAM_READ_ONLY = frozenset(name for name in IAM_OPERATIONS if name.startswith(("Get", "List")))

# Actions on one user: the user is named by UserName, or is the caller when it is optional.
_ON_USER = frozenset(
    {
        "CreateUser",
        "GetUser",
        "DeleteUser",
        "TagUser",
        "UntagUser",
        "ListUserTags",
        "CreateAccessKey",
        "ListAccessKeys",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "PutUserPolicy",
        "GetUserPolicy",
        "ListUserPolicies",
        "DeleteUserPolicy",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "ListAttachedUserPolicies",
    }
)
_ON_ROLE = frozenset(name for name in IAM_OPERATIONS if "Role" in name and name != "ListRoles")
_ON_POLICY = frozenset({"GetPolicy", "GetPolicyVersion", "DeletePolicy"})


def _stored_arn(tx: Transaction | None, kind: str, account_id: str, name: str) -> str | None:
    """The ARN of an existing user or role (its path and name as stored), else None."""
    if tx is None:
        return None
    row = tx.iam_user(account_id, name) if kind == "user" else tx.iam_role(account_id, name)
    return None if row is None else row.arn


def iam_resource(
    operation: str,
    request: dict[str, Any],
    account_id: str,
    partition: str,
    *,
    tx: Transaction | None = None,
    principal_arn: str | None = None,
) -> str:
    """The resource ARN an IAM action is authorized on.

    An ARN holds the user's or role's path (``user/eng/bob``): for an existing user or role
    the stored ARN is read through ``tx`` when one is given (without it, or for a name that
    does not exist, the path is taken to be "/"); CreateUser and CreateRole take the path
    from the request. Actions whose UserName is optional are authorized
    on the caller's own ARN (``principal_arn``) when it is left out.
    """
    prefix = f"arn:{partition}:iam::{account_id}"
    if operation in _ON_USER or operation in _ON_ROLE:
        kind = "user" if operation in _ON_USER else "role"
        name = request.get("UserName" if kind == "user" else "RoleName")
        if name is None:
            return principal_arn or "*"
        if operation in {"CreateUser", "CreateRole"}:
            return f"{prefix}:{kind}{request.get('Path') or '/'}{name}"
        return _stored_arn(tx, kind, account_id, str(name)) or f"{prefix}:{kind}/{name}"
    if operation == "CreatePolicy":
        return f"{prefix}:policy{request.get('Path') or '/'}{request['PolicyName']}"
    if operation in _ON_POLICY:
        return str(request["PolicyArn"])
    return "*"  # ListUsers, ListRoles, ListPolicies
