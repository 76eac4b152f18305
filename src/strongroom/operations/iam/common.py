"""What the IAM actions share: ids, ARNs, lookups that raise AWS's NoSuchEntity, tags,
Marker/MaxItems paging, and policy documents as IAM returns them."""

from __future__ import annotations

import secrets
import string
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from strongroom.auth.policy import MalformedPolicy, parse_policy
from strongroom.errors import (
    InvalidInput,
    InvalidNextTokenException,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from strongroom.operations import paging
from strongroom.operations.context import Context
from strongroom.storage.base import IamRoleRow, IamUserRow, ManagedPolicyRow, Transaction

_ID_ALPHABET = string.ascii_uppercase + string.digits
DEFAULT_MAX_ITEMS = 100
MAX_TAGS = 50  # IAM's quota of tags per user, role or policy
T = TypeVar("T")

# Sent when an action that defaults to "the caller's user" is called with other credentials.
NOT_A_USER = "Must specify userName when calling with non-User credentials"


def new_id(prefix: str) -> str:
    """A unique id as IAM mints them: a type prefix (AIDA, AROA, ANPA, AKIA, ASIA) and
    upper-case letters and digits, 21 characters in all (20 for access key ids)."""
    length = 16 if prefix in {"AKIA", "ASIA"} else 17
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def iam_arn(ctx: Context, kind: str, path: str, name: str) -> str:
    return f"arn:{ctx.partition}:iam::{ctx.account_id}:{kind}/{path.lstrip('/')}{name}"


def encode_document(document: str) -> str:
    """IAM returns policy documents URL-encoded (RFC 3986); SDKs decode them."""
    return urllib.parse.quote(document, safe="")


def check_document(document: str, kind: Literal["identity", "trust"]) -> None:
    try:
        parse_policy(document, kind)
    except MalformedPolicy as exc:
        raise MalformedPolicyDocument(exc.message) from exc


# -- lookups ---------------------------------------------------------------------------------
def user_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The user with name {name} cannot be found.")


def get_user_row(ctx: Context, tx: Transaction, name: str) -> IamUserRow:
    row = tx.iam_user(ctx.account_id, name)
    if row is None:
        raise user_not_found(name)
    return row


def caller_user_name(ctx: Context, request: dict[str, Any]) -> str | None:
    """The request's UserName, else the calling user's; None for the root (whose own
    credentials some actions manage); ValidationError for an assumed-role session."""
    name = request.get("UserName")
    if name is not None:
        return str(name)
    if ctx.principal.user_name is not None:
        return ctx.principal.user_name
    if ctx.principal.arn.endswith(":root"):
        return None
    raise ValidationError(NOT_A_USER)


def get_role_row(ctx: Context, tx: Transaction, name: str) -> IamRoleRow:
    row = tx.iam_role(ctx.account_id, name)
    if row is None:
        raise NoSuchEntity(f"The role with name {name} cannot be found.")
    return row


def get_policy_row(tx: Transaction, arn: str) -> ManagedPolicyRow:
    # AWS managed policies (arn:aws:iam::aws:policy/...) are not served: none exist here.
    row = tx.managed_policy(arn)
    if row is None:
        raise NoSuchEntity(f"Policy {arn} was not found.")
    return row


def get_attachable_policy(tx: Transaction, arn: str) -> ManagedPolicyRow:
    row = tx.managed_policy(arn)
    if row is None:
        raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
    return row


# -- tags ------------------------------------------------------------------------------------
def request_tags(request: dict[str, Any]) -> list[tuple[str, str]]:
    tags = [(str(tag["Key"]), str(tag.get("Value", ""))) for tag in request.get("Tags") or []]
    keys = [key.lower() for key, _ in tags]
    if len(set(keys)) != len(keys):
        # Text as AWS sends it for IAM (UNCONFIRMED beyond third-party reports).
        raise InvalidInput(
            "Duplicate tag keys found. Please note that Tag keys are case insensitive."
        )
    return tags


def merge_tags(
    existing: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A new key is appended; a key already set (in any case) gets the new value."""
    merged = list(existing)
    for key, value in new:
        at = next((i for i, (k, _) in enumerate(merged) if k.lower() == key.lower()), None)
        if at is None:
            merged.append((key, value))
        else:
            merged[at] = (merged[at][0], value)
    if len(merged) > MAX_TAGS:
        # UNCONFIRMED text; the code and status are the model's.
        raise LimitExceeded(f"Cannot exceed quota for TagsPerEntity: {MAX_TAGS}")
    return merged


def without_keys(tags: Sequence[tuple[str, str]], keys: Sequence[str]) -> list[tuple[str, str]]:
    gone = {key.lower() for key in keys}
    return [(k, v) for k, v in tags if k.lower() not in gone]


def tag_list(tags: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags]


# -- paging ----------------------------------------------------------------------------------
def max_items(request: dict[str, Any]) -> int:
    return int(request.get("MaxItems") or DEFAULT_MAX_ITEMS)


def after_marker(ctx: Context, request: dict[str, Any], kind: str) -> str | None:
    """The cursor a Marker carries (the last key of the previous page), or None."""
    marker = request.get("Marker")
    if marker is None:
        return None
    try:
        return str(paging.decode(ctx.token_key, kind, marker))
    except InvalidNextTokenException as exc:
        raise InvalidInput("Invalid Marker.") from exc  # text UNCONFIRMED


def page_result(
    ctx: Context,
    kind: str,
    rows: list[T],
    limit: int,
    key: Callable[[T], str],
) -> tuple[list[T], dict[str, Any]]:
    """``rows`` holds up to ``limit + 1`` rows: the page, and whether another follows.
    Returns the page and the IsTruncated/Marker members."""
    page = rows[:limit]
    if len(rows) <= limit:
        return page, {"IsTruncated": False}
    marker = paging.encode(ctx.token_key, kind, key(page[-1]))
    return page, {"IsTruncated": True, "Marker": marker}


def page_in_memory(
    ctx: Context,
    request: dict[str, Any],
    kind: str,
    items: Sequence[T],
    key: Callable[[T], str],
) -> tuple[list[T], dict[str, Any]]:
    """Marker/MaxItems over a short list already sorted by ``key``."""
    after = after_marker(ctx, request, kind)
    rest = [item for item in items if after is None or key(item) > after]
    limit = max_items(request)
    return page_result(ctx, kind, rest[: limit + 1], limit, key)


def tags_page(
    ctx: Context, request: dict[str, Any], kind: str, tags: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """ListUserTags / ListRoleTags: tags keep their insertion order, so the Marker carries
    a position rather than a key."""
    numbered = [(f"{i:04d}", tag) for i, tag in enumerate(tags)]
    page, more = page_in_memory(ctx, request, kind, numbered, lambda item: item[0])
    return {"Tags": tag_list([tag for _, tag in page]), **more}
