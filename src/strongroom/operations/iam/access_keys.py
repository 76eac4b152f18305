"""A user's long-term access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey,
DeleteAccessKey.

Without UserName these act on the caller's own user (AWS: "the user making the request",
identified by its credentials). The root's own keys are made at installation and are not
managed through IAM here.
"""

from __future__ import annotations

import secrets
from typing import Any

from strongroom.crypto.envelope import aad_for_access_key
from strongroom.errors import InvalidInput, LimitExceeded, NoSuchEntity
from strongroom.operations.context import Context
from strongroom.operations.iam.common import caller_user_name, get_user_row, new_id, page_in_memory
from strongroom.storage.base import AccessKeyRow, IamUserRow, Transaction

MAX_KEYS_PER_USER = 2  # AWS quota "AccessKeysPerUser"; AWS does not let it be raised
ROOT_KEYS = "Strongroom manages the root's access keys at installation; name a user with UserName."


def _user(ctx: Context, tx: Transaction, request: dict[str, Any]) -> IamUserRow:
    name = caller_user_name(ctx, request)
    if name is None:
        raise InvalidInput(ROOT_KEYS)
    return get_user_row(ctx, tx, name)


def _key_of(tx: Transaction, user: IamUserRow, access_key_id: str) -> AccessKeyRow:
    row = tx.access_key(access_key_id)
    if row is None or row.user_id != user.user_id or row.session_token_hash is not None:
        raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")
    return row


def _metadata(row: AccessKeyRow, user_name: str | None) -> dict[str, Any]:
    out = {"AccessKeyId": row.access_key_id, "Status": row.status, "CreateDate": row.created_at}
    if user_name is not None:
        out["UserName"] = user_name
    return out


def create_access_key(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """CreateAccessKey: a new Active key for the user; the secret is shown only here.
    LimitExceeded when the user already has two keys (active or not)."""
    key_id, secret = new_id("AKIA"), secrets.token_urlsafe(30)  # 40 characters
    sealed = ctx.sealer.seal(secret.encode(), aad_for_access_key(key_id))
    with ctx.store.write() as tx:
        user = _user(ctx, tx, request)
        if len(tx.user_access_keys(user.user_id)) >= MAX_KEYS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
        row = AccessKeyRow(
            access_key_id=key_id,
            account_id=ctx.account_id,
            principal_arn=user.arn,
            sealed_secret=sealed,
            master_key_id=ctx.sealer.key_id_of(sealed),
            created_at=ctx.clock(),
            user_name=user.name,
            user_id=user.user_id,
        )
        tx.insert_access_key(row)
    return {"AccessKey": {**_metadata(row, user.name), "SecretAccessKey": secret}}


def list_access_keys(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """ListAccessKeys: the user's keys, without their secrets."""
    name = caller_user_name(ctx, request)
    with ctx.store.read() as tx:
        if name is None:
            key_id = tx.get_meta("root_access_key_id")
            root_key = tx.access_key(key_id) if key_id else None
            rows, user_name = ([] if root_key is None else [root_key]), None
        else:
            user = get_user_row(ctx, tx, name)
            rows, user_name = tx.user_access_keys(user.user_id), user.name
    page, more = page_in_memory(
        ctx,
        request,
        "iam-access-keys",
        rows,
        lambda row: f"{row.created_at:020.6f}{row.access_key_id}",
    )
    return {"AccessKeyMetadata": [_metadata(row, user_name) for row in page], **more}


def update_access_key(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """UpdateAccessKey: Active or Inactive. An inactive key stops authenticating within
    the access-key cache's lifetime (auth.keys)."""
    with ctx.store.write() as tx:
        user = _user(ctx, tx, request)
        row = _key_of(tx, user, request["AccessKeyId"])
        tx.set_access_key_status(row.access_key_id, request["Status"])
    return {}


def delete_access_key(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.write() as tx:
        user = _user(ctx, tx, request)
        row = _key_of(tx, user, request["AccessKeyId"])
        tx.delete_access_key(row.access_key_id)
    return {}
