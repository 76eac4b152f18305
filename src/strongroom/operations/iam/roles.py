"""IAM roles: CreateRole, GetRole, ListRoles, DeleteRole, their inline policies
(Put/Get/List/DeleteRolePolicy), attachments (Attach/Detach/ListAttachedRolePolicies) and
tags (Tag/Untag/ListRoleTags). Sessions come from ``operations.sts.assume_role``."""

from __future__ import annotations

from typing import Any

from strongroom.errors import DeleteConflict, EntityAlreadyExists, InvalidInput
from strongroom.operations.context import Context
from strongroom.operations.iam.common import (
    after_marker,
    check_document,
    encode_document,
    get_role_row,
    iam_arn,
    max_items,
    merge_tags,
    new_id,
    page_result,
    request_tags,
    tag_list,
)
from strongroom.operations.iam.policies import (
    attached_add,
    attached_list,
    attached_remove,
    inline_delete,
    inline_get,
    inline_list,
    inline_put,
    owner_tag,
    owner_tags,
    owner_untag,
)
from strongroom.operations.iam.users import NO_BOUNDARIES
from strongroom.storage.base import AlreadyExists, IamRoleRow

DEFAULT_MAX_SESSION = 3600


def role_shape(row: IamRoleRow, tags: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": row.path,
        "RoleName": row.name,
        "RoleId": row.role_id,
        "Arn": row.arn,
        "CreateDate": row.created_at,
        "AssumeRolePolicyDocument": encode_document(row.trust_policy),
        "MaxSessionDuration": row.max_session_duration,
    }
    if row.description is not None:
        out["Description"] = row.description
    if tags:
        out["Tags"] = tag_list(tags)
    return out


def create_role(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """CreateRole: MalformedPolicyDocument for a bad trust policy, EntityAlreadyExists."""
    if request.get("PermissionsBoundary") is not None:
        raise InvalidInput(NO_BOUNDARIES)
    name, path = request["RoleName"], request.get("Path") or "/"
    trust = request["AssumeRolePolicyDocument"]
    check_document(trust, "trust")
    tags = merge_tags([], request_tags(request))
    row = IamRoleRow(
        role_id=new_id("AROA"),
        account_id=ctx.account_id,
        name=name,
        path=path,
        arn=iam_arn(ctx, "role", path, name),
        created_at=ctx.clock(),
        trust_policy=trust,
        max_session_duration=int(request.get("MaxSessionDuration") or DEFAULT_MAX_SESSION),
        description=request.get("Description"),
    )
    with ctx.store.write() as tx:
        try:
            tx.insert_iam_role(row)
        except AlreadyExists as exc:
            raise EntityAlreadyExists(f"Role with name {name} already exists.") from exc
        tx.set_iam_tags(row.role_id, tags)
    return {"Role": role_shape(row, tags)}


def get_role(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as tx:
        row = get_role_row(ctx, tx, request["RoleName"])
        tags = tx.iam_tags(row.role_id)
    return {"Role": {**role_shape(row, tags), "RoleLastUsed": {}}}


def list_roles(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """ListRoles: by name, PathPrefix-filtered, paged; without tags, as AWS lists them."""
    after = after_marker(ctx, request, "iam-roles")
    limit = max_items(request)
    with ctx.store.read() as tx:
        rows = tx.list_iam_roles(ctx.account_id, request.get("PathPrefix") or "/", after, limit + 1)
    page, more = page_result(ctx, "iam-roles", rows, limit, lambda row: row.name.lower())
    return {"Roles": [role_shape(row) for row in page], **more}


def delete_role(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """DeleteRole: DeleteConflict while it has inline or attached policies.

    Sessions of the role are not revoked, as in AWS: their credentials stay in storage
    until they expire, but ``identity_policies`` pins a session to the role id it was
    issued for, so they carry no permissions, even if a role of the same name is created
    again (AWS likewise ties sessions to the role's unique id).
    """
    with ctx.store.write() as tx:
        row = get_role_row(ctx, tx, request["RoleName"])
        if tx.inline_policy_names(row.role_id):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if tx.attached_policies(row.role_id):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        tx.delete_iam_role(row.role_id)
    return {}


def put_role_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    inline_put(ctx, "role", request["RoleName"], request["PolicyName"], request["PolicyDocument"])
    return {}


def get_role_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return inline_get(ctx, "role", request["RoleName"], request["PolicyName"])


def list_role_policies(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return inline_list(ctx, "role", request["RoleName"], request)


def delete_role_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    inline_delete(ctx, "role", request["RoleName"], request["PolicyName"])
    return {}


def attach_role_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    attached_add(ctx, "role", request["RoleName"], request["PolicyArn"])
    return {}


def detach_role_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    attached_remove(ctx, "role", request["RoleName"], request["PolicyArn"])
    return {}


def list_attached_role_policies(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return attached_list(ctx, "role", request["RoleName"], request)


def tag_role(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    owner_tag(ctx, "role", request["RoleName"], request)
    return {}


def untag_role(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    owner_untag(ctx, "role", request["RoleName"], request["TagKeys"])
    return {}


def list_role_tags(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return owner_tags(ctx, "role", request["RoleName"], request)
