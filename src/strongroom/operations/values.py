"""Secret values and their versions: GetSecretValue, BatchGetSecretValue, PutSecretValue,
ListSecretVersionIds, UpdateSecretVersionStage."""

from __future__ import annotations

from typing import Any

from strongroom.domain import stages
from strongroom.errors import (
    InvalidNextTokenException,
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
    ServiceError,
)
from strongroom.operations import paging
from strongroom.operations.context import (
    Context,
    SecretValue,
    day_of,
    get_secret,
    get_staged_secret,
    open_value,
    require_token,
    secret_ref,
)
from strongroom.operations.listing import list_query, page_token
from strongroom.operations.versions import label_map, store_value, write_labels
from strongroom.storage.base import SecretRow, Transaction, VersionRow

BATCH_DEFAULT_MAX = 20


def _stage_missing(stage: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(
        f"Secrets Manager can't find the specified secret value for staging label: {stage}"
    )


def _version_missing(version_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(
        f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"
    )


def _version_by_id(
    tx: Transaction, secret: SecretRow, version_id: str, stage: str | None
) -> VersionRow:
    """The version GetSecretValue reads by VersionId, with AWS's errors (spec §15.2)."""
    version = tx.version_by_id(secret.pk, version_id)
    if version is None:
        raise _version_missing(version_id)
    if stage is not None and stage not in version.stages:
        raise InvalidRequestException(
            "You provided a VersionStage that is not associated to the provided VersionId."
        )
    if version.sealed is None:  # the empty version of a rotation in progress
        raise _version_missing(version_id)
    return version


def _read(
    ctx: Context, secret_id: str, version_id: str | None, stage: str | None
) -> tuple[SecretRow, VersionRow, SecretValue]:
    with ctx.store.read() as tx:
        if version_id is None:
            stage = stage or stages.AWSCURRENT
            secret, staged = get_staged_secret(ctx, tx, secret_id, stage)
            if staged is None or staged.sealed is None:
                raise _stage_missing(stage)
            version = staged
        else:
            secret = get_secret(ctx, tx, secret_id)
            version = _version_by_id(tx, secret, version_id, stage)
    assert version.sealed is not None  # noqa: S101 - checked above
    value = open_value(ctx, secret.arn, version.version_id, version.sealed)
    _record_access(ctx, secret, version)
    return secret, version, value


def _record_access(ctx: Context, secret: SecretRow, version: VersionRow) -> None:
    # LastAccessedDate has day resolution, so this write happens once a day per version,
    # not on every read.
    today = day_of(ctx.clock())
    if secret.last_accessed_at != today or version.last_accessed_at != today:

        def touch() -> None:
            with ctx.store.write() as tx:
                tx.touch_accessed(secret.pk, version.pk, today)

        ctx.later.append(touch)


def _value_entry(secret: SecretRow, version: VersionRow, value: SecretValue) -> dict[str, Any]:
    return {
        **secret_ref(secret),
        "VersionId": version.version_id,
        **value.members(),
        # A deprecated version read by id has no labels: the member is left out, as the
        # model's VersionStages holds 1-20 labels (and deprecated ListSecretVersionIds entries
        # carry no VersionStages either).
        "VersionStages": stages.sorted_stages(version.stages) or None,
        "CreatedDate": version.created_at,
    }


def get_secret_value(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """GetSecretValue: the value of AWSCURRENT, or of the version/stage asked for."""
    secret, version, value = _read(
        ctx, request["SecretId"], request.get("VersionId"), request.get("VersionStage")
    )
    return _value_entry(secret, version, value)


def batch_get_secret_value(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """BatchGetSecretValue (spec §9): per-secret failures go to Errors, not the whole call."""
    ids, filters = request.get("SecretIdList"), request.get("Filters")
    # Texts of the two parameter errors are the emulators', UNCONFIRMED (spec §16.2).
    if (ids is None) == (filters is None):
        raise InvalidParameterException(
            "Either 'SecretIdList' or 'Filters' must be provided, but not both."
        )
    if ids is not None and request.get("MaxResults") is not None:
        raise InvalidParameterException(
            "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is "
            "provided."
        )
    next_token = None
    if filters is not None:
        query = list_query(ctx, request, default_limit=BATCH_DEFAULT_MAX, kind="batch")
        with ctx.store.read() as tx:
            rows = tx.list_secrets(query)
        next_token = page_token(ctx, query, rows, kind="batch")
        ids = [row.arn for row in rows[: query.limit - 1]]
    values: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for secret_id in ids or []:
        try:
            if ctx.access is not None:  # each secret needs GetSecretValue, as on AWS
                ctx.access.require_on_secret(
                    ctx, "GetSecretValue", secret_id, {"SecretId": secret_id}
                )
            values.append(_value_entry(*_read(ctx, secret_id, None, None)))
        except ServiceError as exc:
            errors.append({"SecretId": secret_id, "ErrorCode": exc.code, "Message": exc.message})
    return {"SecretValues": values, "Errors": errors, "NextToken": next_token}


def put_secret_value(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """PutSecretValue (spec §3.2, §4): a new version, labelled AWSCURRENT unless told otherwise."""
    token = require_token(request)
    value = SecretValue.from_request(request)
    if value is None:
        # Text UNCONFIRMED (spec §16.2).
        raise InvalidRequestException("You must provide either SecretString or SecretBinary.")
    with ctx.store.write() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(secret.pk)
        labels, _ = store_value(
            ctx, tx, secret, token, value, requested=request.get("VersionStages"), now=ctx.clock()
        )
    return {**secret_ref(secret), "VersionId": token, "VersionStages": labels or None}


def _version_cursor(ctx: Context, token: str) -> tuple[float, int]:
    cursor = paging.decode(ctx.token_key, "versions", token)
    if not (
        isinstance(cursor, list)
        and len(cursor) == 2  # noqa: PLR2004 - [created_at, pk]
        and all(type(part) in (int, float) for part in cursor)
        and type(cursor[1]) is int
    ):
        raise InvalidNextTokenException(paging.INVALID_TOKEN)
    return float(cursor[0]), cursor[1]


def list_secret_version_ids(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """ListSecretVersionIds: newest first; unlabelled versions only with IncludeDeprecated.

    NextToken is a keyset cursor (the last entry's creation time and pk), like ListSecrets',
    so a version put or deprecated between two calls neither repeats nor hides another one.
    """
    include_deprecated = bool(request.get("IncludeDeprecated"))
    limit = request.get("MaxResults") or 100
    after = _version_cursor(ctx, request["NextToken"]) if request.get("NextToken") else None
    with ctx.store.read() as tx:
        # On a secret scheduled for deletion: InvalidRequestException, UNCONFIRMED (spec §7.2).
        secret = get_secret(ctx, tx, request["SecretId"])
        versions = [
            v
            for v in reversed(tx.versions(secret.pk))  # oldest first -> newest first
            if (v.stages or include_deprecated) and (after is None or (v.created_at, v.pk) < after)
        ]
    page = versions[:limit]
    entries = [
        {
            "VersionId": v.version_id,
            "VersionStages": stages.sorted_stages(v.stages) or None,
            "LastAccessedDate": v.last_accessed_at or None,
            "CreatedDate": v.created_at,
            "KmsKeyIds": [secret.kms_key_id or "DefaultEncryptionKey"],
        }
        for v in page
    ]
    next_token = None
    if len(versions) > limit:
        last = page[-1]
        next_token = paging.encode(ctx.token_key, "versions", [last.created_at, last.pk])
    return {"Versions": entries, "NextToken": next_token, **secret_ref(secret)}


def update_secret_version_stage(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """UpdateSecretVersionStage (spec §3.3): move or remove one staging label."""
    with ctx.store.write() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(secret.pk)
        versions = tx.versions(secret.pk)
        labels = stages.update_stage(
            label_map(versions),
            request["VersionStage"],
            remove_from=request.get("RemoveFromVersionId"),
            move_to=request.get("MoveToVersionId"),
        )
        write_labels(tx, secret, labels, versions)
        tx.update_secret(secret.pk, last_changed_at=ctx.clock())
    return secret_ref(secret)
