"""IAM users: CreateUser, GetUser, ListUsers, DeleteUser, TagUser, UntagUser, ListUserTags."""

from __future__ import annotations

from typing import Any

from strongroom.errors import DeleteConflict, EntityAlreadyExists, InvalidInput
from strongroom.operations.context import Context
from strongroom.operations.iam.common import (
    after_marker,
    caller_user_name,
    get_user_row,
    iam_arn,
    max_items,
    merge_tags,
    new_id,
    page_result,
    request_tags,
    tag_list,
)
from strongroom.operations.iam.policies import owner_tag, owner_tags, owner_untag
from strongroom.storage.base import AlreadyExists, IamUserRow, Transaction

NO_BOUNDARIES = "Strongroom does not support permissions boundaries."


def user_shape(row: IamUserRow, tags: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": row.path,
        "UserName": row.name,
        "UserId": row.user_id,
        "Arn": row.arn,
        "CreateDate": row.created_at,
    }
    if tags:
        out["Tags"] = tag_list(tags)
    return out


def create_user(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """CreateUser: EntityAlreadyExists when the name is taken (in any case)."""
    if request.get("PermissionsBoundary") is not None:
        raise InvalidInput(NO_BOUNDARIES)
    name, path = request["UserName"], request.get("Path") or "/"
    tags = merge_tags([], request_tags(request))
    row = IamUserRow(
        user_id=new_id("AIDA"),
        account_id=ctx.account_id,
        name=name,
        path=path,
        arn=iam_arn(ctx, "user", path, name),
        created_at=ctx.clock(),
    )
    with ctx.store.write() as tx:
        try:
            tx.insert_iam_user(row)
        except AlreadyExists as exc:
            raise EntityAlreadyExists(f"User with name {name} already exists.") from exc
        tx.set_iam_tags(row.user_id, tags)
    return {"User": user_shape(row, tags)}


def _root_user(ctx: Context, tx: Transaction) -> dict[str, Any]:
    # AWS answers the root's GetUser with the account as the user: its id is the account id
    # and it has no name or path. Its CreateDate here is when the installation made the
    # root key (AWS: when the account was created).
    key_id = tx.get_meta("root_access_key_id")
    key = tx.access_key(key_id) if key_id else None
    out: dict[str, Any] = {"UserId": ctx.account_id, "Arn": ctx.principal.arn}
    if key is not None:
        out["CreateDate"] = key.created_at
    return out


def get_user(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """GetUser: the named user, else the caller's (the root's own "user" for the root)."""
    name = caller_user_name(ctx, request)
    with ctx.store.read() as tx:
        if name is None:
            return {"User": _root_user(ctx, tx)}
        row = get_user_row(ctx, tx, name)
        return {"User": user_shape(row, tx.iam_tags(row.user_id))}


def list_users(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """ListUsers: by name, PathPrefix-filtered, Marker/MaxItems paged. AWS leaves tags out
    of this listing (ListUserTags has them)."""
    after = after_marker(ctx, request, "iam-users")
    limit = max_items(request)
    with ctx.store.read() as tx:
        rows = tx.list_iam_users(ctx.account_id, request.get("PathPrefix") or "/", after, limit + 1)
    page, more = page_result(ctx, "iam-users", rows, limit, lambda row: row.name.lower())
    return {"Users": [user_shape(row) for row in page], **more}


def delete_user(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """DeleteUser: refused (DeleteConflict) while the user has access keys, inline policies
    or attached policies, in that order of checking; its tags go with it."""
    with ctx.store.write() as tx:
        row = get_user_row(ctx, tx, request["UserName"])
        if tx.user_access_keys(row.user_id):
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if tx.inline_policy_names(row.user_id):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if tx.attached_policies(row.user_id):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        tx.delete_iam_user(row.user_id)
    return {}


def tag_user(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    owner_tag(ctx, "user", request["UserName"], request)
    return {}


def untag_user(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    owner_untag(ctx, "user", request["UserName"], request["TagKeys"])
    return {}


def list_user_tags(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return owner_tags(ctx, "user", request["UserName"], request)
