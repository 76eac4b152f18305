"""The secret's lifecycle and metadata.

CreateSecret, UpdateSecret, DescribeSecret, DeleteSecret, RestoreSecret, TagResource,
UntagResource.

DeleteSecret, RestoreSecret, and CreateSecret taking a name whose recovery window is over,
also record the service events AWS writes beside their own call records
(StartSecretVersionDelete, CancelSecretVersionDelete, EndSecretVersionDelete), in the
operation's write transaction, so each commits with the change it reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from strongroom.audit.service_events import record_service_event
from strongroom.domain.arn import new_secret_arn
from strongroom.domain.names import is_valid_name
from strongroom.domain.search import SecretFacts, indexed_words
from strongroom.domain.stages import AWSCURRENT
from strongroom.errors import (
    INVALID_NAME,
    SECRET_NOT_FOUND,
    InvalidParameterException,
    InvalidRequestException,
    ResourceExistsException,
    ResourceNotFoundException,
    ValidationException,
)
from strongroom.operations.context import (
    DAY,
    Context,
    SecretValue,
    find_secret,
    get_secret,
    open_value,
    require_token,
    secret_ref,
)
from strongroom.operations.versions import store_value, token_conflict
from strongroom.storage.base import AlreadyExists, SecretRow, Transaction, TransientConflict

MIN_RECOVERY_DAYS, MAX_RECOVERY_DAYS, DEFAULT_RECOVERY_DAYS = 7, 30, 30
MAX_TAGS = 50  # the AWS-wide tagging quota (spec §13)


def index_words(tx: Transaction, row: SecretRow, tags: Sequence[tuple[str, str]]) -> None:
    """Refresh the words the ListSecrets "description" and "all" filters search."""
    facts = SecretFacts(
        name=row.name,
        description=row.description,
        tags=tags,
        primary_region=row.primary_region,
        owning_service=row.owning_service,
    )
    tx.set_words(row.pk, indexed_words(facts))


def _tags(request: dict[str, Any]) -> list[tuple[str, str]]:
    tags = [(tag.get("Key"), tag.get("Value", "")) for tag in request.get("Tags") or []]
    for key, _ in tags:
        if key is None:
            raise InvalidParameterException("A tag must have a Key.")
    return merge_tags([], tags)


def merge_tags(
    existing: Sequence[tuple[str, str]], new: Sequence[tuple[str, str | None]]
) -> list[tuple[str, str]]:
    """New keys are appended, an existing key gets its new value (spec §13)."""
    merged = dict(existing)
    for key, value in new:
        merged[key] = value or ""
    if len(merged) > MAX_TAGS:
        # Text UNCONFIRMED for Secrets Manager (spec §13).
        raise InvalidParameterException(f"A secret can have at most {MAX_TAGS} tags.")
    return list(merged.items())


def create_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """CreateSecret (spec §15.1): a new secret, with an AWSCURRENT version when given a value.

    Raises ValidationException (bad name), ResourceExistsException (name taken, or token
    reused with another value), InvalidRequestException (name scheduled for deletion,
    missing token), InvalidParameterException (both value kinds).
    """
    name = request["Name"]
    if not is_valid_name(name):
        raise ValidationException(INVALID_NAME)
    value = SecretValue.from_request(request)
    token = require_token(request)
    if request.get("AddReplicaRegions"):
        raise InvalidRequestException("Strongroom does not support replication to other Regions.")
    if request.get("CrossAccountPrimaryARN"):
        # A replica of another account's secret; storing it as an ordinary secret would hide
        # that the replication never happens.
        raise InvalidRequestException("Strongroom does not support cross-account replication.")
    tags = _tags(request)
    now = ctx.clock()
    with ctx.store.write() as tx:
        existing = tx.secret_by_name(ctx.account_id, ctx.region, name)
        if existing is not None:
            if existing.deletion_date is not None and existing.deletion_date <= now:
                # Its recovery window is over: purge it now, as the worker would have.
                record_service_event(tx, "EndSecretVersionDelete", existing, event_time=now)
                tx.delete_secret(existing.pk)
            else:
                return _create_again(ctx, tx, existing, token, value)
        row = SecretRow(
            pk=0,
            account_id=ctx.account_id,
            region=ctx.region,
            name=name,
            arn=new_secret_arn(
                partition=ctx.partition, region=ctx.region, account_id=ctx.account_id, name=name
            ),
            created_at=now,
            last_changed_at=now,
            description=request.get("Description") or None,
            kms_key_id=request.get("KmsKeyId") or None,
            secret_type=request.get("Type") or None,
            tags_ever_set=bool(tags),
        )
        try:
            row = tx.insert_secret(row)
        except AlreadyExists as exc:
            # Created by a concurrent request (another node) since our lookup: run again, to
            # answer as for any existing secret (the same token and value: success).
            raise TransientConflict(name) from exc
        tx.set_tags(row.pk, tags)
        index_words(tx, row, tags)
        result = secret_ref(row)
        if value is not None:
            # One instant for the whole creation: a new secret's LastChangedDate equals its
            # CreatedDate (spec §14), and its first version shares that date.
            store_value(ctx, tx, row, token, value, requested=[AWSCURRENT], now=now)
            result["VersionId"] = token
    return result


def _create_again(
    ctx: Context, tx: Transaction, existing: SecretRow, token: str, value: SecretValue | None
) -> dict[str, Any]:
    """CreateSecret on a name in use: an idempotent retry, or the error AWS gives (spec §4)."""
    if existing.deletion_date is not None:
        raise InvalidRequestException(
            "You can't create this secret because a secret with this name is already "
            "scheduled for deletion."
        )
    version = tx.version_by_id(existing.pk, token)
    if version is not None and value is not None and version.sealed is not None:
        if open_value(ctx, existing.arn, token, version.sealed) == value:
            return {**secret_ref(existing), "VersionId": token}
        raise token_conflict(token, existing.arn)
    raise ResourceExistsException(
        f"The operation failed because the secret {existing.name} already exists."
    )


def update_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """UpdateSecret (spec §15.5): metadata, and a new AWSCURRENT version when given a value."""
    value = SecretValue.from_request(request)
    # A token is demanded only when a version would be created: a metadata-only raw
    # request without one is UNCONFIRMED against AWS (spec §4 notes), and SDKs always send one.
    token = require_token(request) if value is not None else None
    with ctx.store.write() as tx:
        row = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(row.pk)
        result = secret_ref(row)
        now = ctx.clock()
        if value is not None and token is not None:
            _, created = store_value(ctx, tx, row, token, value, requested=[AWSCURRENT], now=now)
            result["VersionId"] = token
            if not created:
                # A retry of an update that already happened (same token, same value): AWS
                # answers it as a no-op (spec §4), so the metadata is not applied again either.
                return result
        changes: dict[str, Any] = {"last_changed_at": now}
        if "Description" in request:
            changes["description"] = request["Description"] or None
        if "KmsKeyId" in request:
            changes["kms_key_id"] = request["KmsKeyId"] or None  # "" = back to the default key
        if "Type" in request:
            changes["secret_type"] = request["Type"] or None
        tx.update_secret(row.pk, **changes)
        if "Description" in request:
            row.description = changes["description"]
            index_words(tx, row, tx.tags(row.pk))
    return result


def describe_entry(
    row: SecretRow,
    labels: dict[str, list[str]],
    tags: list[tuple[str, str]],
    labels_member: str,
) -> dict[str, Any]:
    """The DescribeSecret / SecretListEntry body: only members that have a value (spec §15.6)."""
    entry: dict[str, Any] = {
        "ARN": row.arn,
        "Name": row.name,
        "Type": row.secret_type,
        "Description": row.description,
        "KmsKeyId": row.kms_key_id,
        "RotationEnabled": row.rotation_enabled,
        "RotationLambdaARN": row.rotation_lambda_arn,
        "RotationRules": json.loads(row.rotation_rules) if row.rotation_rules else None,
        "LastRotatedDate": row.last_rotated_at,
        "LastChangedDate": row.last_changed_at,
        "LastAccessedDate": row.last_accessed_at or None,
        "DeletedDate": row.deletion_date,
        "NextRotationDate": row.next_rotation_at,
        # "Tags": [] once tags existed and were all removed (spec §13).
        "Tags": [{"Key": k, "Value": v} for k, v in tags] if row.tags_ever_set else None,
        labels_member: {vid: sorted(s) for vid, s in labels.items()} or None,
        "OwningService": row.owning_service,
        "CreatedDate": row.created_at,
        "PrimaryRegion": row.primary_region,
    }
    return {key: value for key, value in entry.items() if value is not None}


def describe_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """DescribeSecret: works on secrets scheduled for deletion, does not count as an access."""
    with ctx.store.read() as tx:
        row = get_secret(ctx, tx, request["SecretId"], allow_deleted=True)
        labels = tx.labels_of([row.pk])[row.pk]
        tags = tx.tags(row.pk) if row.tags_ever_set else []
    return describe_entry(row, labels, tags, "VersionIdsToStages")


def delete_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """DeleteSecret (spec §7.1): schedule a deletion, or delete at once with Force."""
    window = request.get("RecoveryWindowInDays")
    force = bool(request.get("ForceDeleteWithoutRecovery"))
    if force and window is not None:
        # Texts in this function are the emulators', UNCONFIRMED against AWS (spec §16.2).
        raise InvalidParameterException(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
        )
    if window is not None and not MIN_RECOVERY_DAYS <= window <= MAX_RECOVERY_DAYS:
        raise InvalidParameterException(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
        )
    secret_id = request["SecretId"]
    now = ctx.clock()
    with ctx.store.write() as tx:
        row = find_secret(ctx, tx, secret_id)
        if row is None:
            if not force:
                raise ResourceNotFoundException(SECRET_NOT_FOUND)
            # AWS answers a forced delete of a missing secret as if it had existed.
            return {"ARN": _absent_arn(ctx, secret_id), "Name": secret_id, "DeletionDate": now}
        tx.lock_secret(row.pk)
        if force:
            # The secret is gone now, as at the end of a recovery window. UNCONFIRMED that AWS
            # writes EndSecretVersionDelete for a forced deletion (its docs tie the event to
            # no operation); we do, so the trail shows every secret's removal the same way,
            # and no StartSecretVersionDelete, as no recovery window was started.
            record_service_event(tx, "EndSecretVersionDelete", row, event_time=now)
            tx.delete_secret(row.pk)
            return {**secret_ref(row), "DeletionDate": now}
        if row.deletion_date is not None:
            raise InvalidRequestException(
                "You tried to perform the operation on a secret that's currently marked deleted."
            )
        deletion_date = now + (window or DEFAULT_RECOVERY_DAYS) * DAY
        tx.update_secret(row.pk, deletion_date=deletion_date, last_changed_at=now)
        record_service_event(tx, "StartSecretVersionDelete", row, event_time=now)
    return {**secret_ref(row), "DeletionDate": deletion_date}


def _absent_arn(ctx: Context, secret_id: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    return new_secret_arn(
        partition=ctx.partition, region=ctx.region, account_id=ctx.account_id, name=secret_id
    )


def restore_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """RestoreSecret (spec §7.3): cancel a scheduled deletion; a no-op on a live secret."""
    with ctx.store.write() as tx:
        row = get_secret(ctx, tx, request["SecretId"], allow_deleted=True)
        if row.deletion_date is not None:
            now = ctx.clock()
            tx.update_secret(row.pk, deletion_date=None, last_changed_at=now)
            record_service_event(tx, "CancelSecretVersionDelete", row, event_time=now)
    return secret_ref(row)


def tag_resource(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """TagResource: merge tags; refused on a secret scheduled for deletion (spec §13)."""
    new = [(tag.get("Key"), tag.get("Value", "")) for tag in request["Tags"]]
    if any(key is None for key, _ in new):
        raise InvalidParameterException("A tag must have a Key.")
    with ctx.store.write() as tx:
        row = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(row.pk)
        tags = merge_tags(tx.tags(row.pk), new)
        _save_tags(ctx, tx, row, tags)
    return {}


def untag_resource(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """UntagResource: drop the given keys; absent keys are ignored (spec §13)."""
    doomed = set(request["TagKeys"])
    with ctx.store.write() as tx:
        row = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(row.pk)
        tags = [(k, v) for k, v in tx.tags(row.pk) if k not in doomed]
        _save_tags(ctx, tx, row, tags)
    return {}


def _save_tags(ctx: Context, tx: Transaction, row: SecretRow, tags: list[tuple[str, str]]) -> None:
    tx.set_tags(row.pk, tags)
    # LastChangedDate on tag changes is UNCONFIRMED; "modified in any way" suggests yes.
    tx.update_secret(row.pk, tags_ever_set=True, last_changed_at=ctx.clock())
    index_words(tx, row, tags)
