"""Managed policies (CreatePolicy, GetPolicy, GetPolicyVersion, ListPolicies, DeletePolicy)
and what users and roles share: inline policies and attachments (``inline_*`` and
``attached_*`` helpers, which ``users``' and ``roles``' actions call with their kind).

Only customer managed policies exist here: Strongroom has no AWS managed policies, so
ListPolicies(Scope="AWS") is empty and their ARNs are "not found". A policy has one version,
v1 (CreatePolicyVersion is not served).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from strongroom.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from strongroom.operations.context import Context
from strongroom.operations.iam.common import (
    after_marker,
    check_document,
    encode_document,
    get_attachable_policy,
    get_policy_row,
    get_role_row,
    get_user_row,
    iam_arn,
    max_items,
    merge_tags,
    new_id,
    page_in_memory,
    page_result,
    request_tags,
    tag_list,
    tags_page,
    without_keys,
)
from strongroom.storage.base import AlreadyExists, ManagedPolicyRow, Transaction

OwnerKind = Literal["user", "role"]
# AWS quotas (IAM and STS quotas page): characters of a managed policy, of all inline
# policies of a user or role together (whitespace not counted), managed policies per owner.
MANAGED_POLICY_SIZE = 6144
INLINE_SIZE = {"user": 2048, "role": 10240}
ATTACHED_PER_OWNER = 10
FIRST_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Owner:
    kind: OwnerKind
    owner_id: str
    name: str


def get_owner(ctx: Context, tx: Transaction, kind: OwnerKind, name: str) -> Owner:
    if kind == "user":
        user = get_user_row(ctx, tx, name)
        return Owner(kind, user.user_id, user.name)
    role = get_role_row(ctx, tx, name)
    return Owner(kind, role.role_id, role.name)


def _size(document: str) -> int:
    return sum(1 for char in document if not char.isspace())


# -- tags of users and roles (TagUser, UntagRole, ListUserTags, ...) ---------------------------
def owner_tag(ctx: Context, kind: OwnerKind, owner_name: str, request: dict[str, Any]) -> None:
    new = request_tags(request)
    with ctx.store.write() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        tx.set_iam_tags(owner.owner_id, merge_tags(tx.iam_tags(owner.owner_id), new))


def owner_untag(ctx: Context, kind: OwnerKind, owner_name: str, keys: list[str]) -> None:
    with ctx.store.write() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        tx.set_iam_tags(owner.owner_id, without_keys(tx.iam_tags(owner.owner_id), keys))


def owner_tags(
    ctx: Context, kind: OwnerKind, owner_name: str, request: dict[str, Any]
) -> dict[str, Any]:
    with ctx.store.read() as tx:
        tags = tx.iam_tags(get_owner(ctx, tx, kind, owner_name).owner_id)
    return tags_page(ctx, request, f"iam-{kind}-tags", tags)


# -- inline policies (PutUserPolicy, GetRolePolicy, ...) -------------------------------------
def inline_put(ctx: Context, kind: OwnerKind, owner_name: str, name: str, document: str) -> None:
    """Create or replace; MalformedPolicyDocument, LimitExceeded past the size quota."""
    check_document(document, "identity")
    with ctx.store.write() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        others = sum(
            _size(tx.inline_policy(owner.owner_id, other) or "")
            for other in tx.inline_policy_names(owner.owner_id)
            if other != name
        )
        if others + _size(document) > INLINE_SIZE[kind]:
            # Text UNCONFIRMED (reported by users; AWS counts without whitespace).
            raise LimitExceeded(
                f"Maximum policy size of {INLINE_SIZE[kind]} bytes exceeded for {kind} {owner.name}"
            )
        tx.put_inline_policy(owner.owner_id, name, document)


def _inline_not_found(kind: OwnerKind, name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The {kind} policy with name {name} cannot be found.")


def inline_get(ctx: Context, kind: OwnerKind, owner_name: str, name: str) -> dict[str, Any]:
    with ctx.store.read() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        document = tx.inline_policy(owner.owner_id, name)
    if document is None:
        raise _inline_not_found(kind, name)
    owner_member = "UserName" if kind == "user" else "RoleName"
    return {
        owner_member: owner.name,
        "PolicyName": name,
        "PolicyDocument": encode_document(document),
    }


def inline_list(
    ctx: Context, kind: OwnerKind, owner_name: str, request: dict[str, Any]
) -> dict[str, Any]:
    with ctx.store.read() as tx:
        names = tx.inline_policy_names(get_owner(ctx, tx, kind, owner_name).owner_id)
    page, more = page_in_memory(ctx, request, f"iam-{kind}-policies", names, lambda name: name)
    return {"PolicyNames": page, **more}


def inline_delete(ctx: Context, kind: OwnerKind, owner_name: str, name: str) -> None:
    with ctx.store.write() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        if not tx.delete_inline_policy(owner.owner_id, name):
            raise _inline_not_found(kind, name)


# -- attachments (AttachUserPolicy, ListAttachedRolePolicies, ...) ---------------------------
def attached_add(ctx: Context, kind: OwnerKind, owner_name: str, policy_arn: str) -> None:
    """Attach (again: no change); LimitExceeded past ten policies per user or role."""
    with ctx.store.write() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        policy = get_attachable_policy(tx, policy_arn)
        attached = {row.policy_id for row in tx.attached_policies(owner.owner_id)}
        if policy.policy_id not in attached and len(attached) >= ATTACHED_PER_OWNER:
            quota = "PoliciesPerUser" if kind == "user" else "PoliciesPerRole"
            raise LimitExceeded(f"Cannot exceed quota for {quota}: {ATTACHED_PER_OWNER}")
        tx.attach_policy(owner.owner_id, policy.policy_id)


def attached_remove(ctx: Context, kind: OwnerKind, owner_name: str, policy_arn: str) -> None:
    """NoSuchEntity when the policy does not exist or is not attached to the owner."""
    with ctx.store.write() as tx:
        owner = get_owner(ctx, tx, kind, owner_name)
        policy = get_policy_row(tx, policy_arn)
        if not tx.detach_policy(owner.owner_id, policy.policy_id):
            raise NoSuchEntity(f"Policy {policy_arn} was not found.")


def attached_list(
    ctx: Context, kind: OwnerKind, owner_name: str, request: dict[str, Any]
) -> dict[str, Any]:
    prefix = request.get("PathPrefix") or "/"
    with ctx.store.read() as tx:
        rows = tx.attached_policies(get_owner(ctx, tx, kind, owner_name).owner_id)
    rows = [row for row in rows if row.path.startswith(prefix)]
    page, more = page_in_memory(
        ctx, request, f"iam-{kind}-attached", rows, lambda row: row.name.lower()
    )
    attached = [{"PolicyName": row.name, "PolicyArn": row.arn} for row in page]
    return {"AttachedPolicies": attached, **more}


# -- managed policies ----------------------------------------------------------------------
def policy_shape(row: ManagedPolicyRow, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PolicyName": row.name,
        "PolicyId": row.policy_id,
        "Arn": row.arn,
        "Path": row.path,
        "DefaultVersionId": row.default_version,
        "AttachmentCount": row.attachment_count,
        "PermissionsBoundaryUsageCount": 0,  # permissions boundaries are not supported
        "IsAttachable": True,
        "CreateDate": row.created_at,
        "UpdateDate": row.updated_at,
    }
    if full and row.description is not None:
        out["Description"] = row.description
    return out


def create_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """CreatePolicy: a customer managed policy with default version v1.
    MalformedPolicyDocument, LimitExceeded (size), EntityAlreadyExists (name taken)."""
    name, path, document = (
        request["PolicyName"],
        request.get("Path") or "/",
        request["PolicyDocument"],
    )
    check_document(document, "identity")
    if _size(document) > MANAGED_POLICY_SIZE:
        # Text UNCONFIRMED.
        raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
    tags = merge_tags([], request_tags(request))
    now = ctx.clock()
    row = ManagedPolicyRow(
        policy_id=new_id("ANPA"),
        account_id=ctx.account_id,
        name=name,
        path=path,
        arn=iam_arn(ctx, "policy", path, name),
        default_version=FIRST_VERSION,
        created_at=now,
        updated_at=now,
        description=request.get("Description"),
    )
    with ctx.store.write() as tx:
        try:
            tx.insert_managed_policy(row, document)
        except AlreadyExists as exc:
            raise EntityAlreadyExists(
                f"A policy called {name} already exists. Duplicate names are not allowed."
            ) from exc
        tx.set_iam_tags(row.policy_id, tags)
    # AWS leaves Description out of CreatePolicy's answer (GetPolicy has it).
    out = policy_shape(row, full=False)
    if tags:
        out["Tags"] = tag_list(tags)
    return {"Policy": out}


def get_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as tx:
        row = get_policy_row(tx, request["PolicyArn"])
        tags = tx.iam_tags(row.policy_id)
    out = policy_shape(row)
    if tags:
        out["Tags"] = tag_list(tags)
    return {"Policy": out}


def get_policy_version(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    arn, version_id = request["PolicyArn"], request["VersionId"]
    with ctx.store.read() as tx:
        row = get_policy_row(tx, arn)
        version = tx.policy_version(row.policy_id, version_id)
    if version is None:
        # Text UNCONFIRMED.
        raise NoSuchEntity(
            f"Policy {arn} version {version_id} does not exist or is not attachable."
        )
    document, created_at = version
    return {
        "PolicyVersion": {
            "Document": encode_document(document),
            "VersionId": version_id,
            "IsDefaultVersion": version_id == row.default_version,
            "CreateDate": created_at,
        }
    }


def list_policies(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """ListPolicies: Scope All (default) and Local list this account's policies; AWS lists
    none (no AWS managed policies exist here); PolicyUsageFilter=PermissionsBoundary lists
    none (boundaries are not supported). AWS leaves Description and Tags out."""
    scope = request.get("Scope") or "All"
    if scope == "AWS" or request.get("PolicyUsageFilter") == "PermissionsBoundary":
        return {"Policies": [], "IsTruncated": False}
    after = after_marker(ctx, request, "iam-policies")
    limit = max_items(request)
    with ctx.store.read() as tx:
        rows = tx.list_managed_policies(
            ctx.account_id,
            request.get("PathPrefix") or "/",
            only_attached=bool(request.get("OnlyAttached")),
            after=after,
            limit=limit + 1,
        )
    page, more = page_result(ctx, "iam-policies", rows, limit, lambda row: row.name.lower())
    return {"Policies": [policy_shape(row, full=False) for row in page], **more}


def delete_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """DeletePolicy: DeleteConflict while attached to any user or role."""
    with ctx.store.write() as tx:
        row = get_policy_row(tx, request["PolicyArn"])
        if row.attachment_count:
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        tx.delete_managed_policy(row.policy_id)
    return {}


# -- the user actions on policies --------------------------------------------------------------
def put_user_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    inline_put(ctx, "user", request["UserName"], request["PolicyName"], request["PolicyDocument"])
    return {}


def get_user_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return inline_get(ctx, "user", request["UserName"], request["PolicyName"])


def list_user_policies(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return inline_list(ctx, "user", request["UserName"], request)


def delete_user_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    inline_delete(ctx, "user", request["UserName"], request["PolicyName"])
    return {}


def attach_user_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    attached_add(ctx, "user", request["UserName"], request["PolicyArn"])
    return {}


def detach_user_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    attached_remove(ctx, "user", request["UserName"], request["PolicyArn"])
    return {}


def list_attached_user_policies(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return attached_list(ctx, "user", request["UserName"], request)
