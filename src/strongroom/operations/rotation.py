"""RotateSecret and CancelRotateSecret (spec §6.2, §6.5; the seed page).

The operations only record what to do: the rotation configuration on the secret, the
AWSPENDING version the function will fill, and a ``rotations`` row that the rotation engine
(``strongroom.rotation.engine``) claims and runs in the background, step by step, in the
function's own process. CancelRotateSecret marks that row cancelled; the engine stops between
steps and kills a step in flight.
"""

from __future__ import annotations

import re
from typing import Any

from strongroom.domain.schedules import parse_rotation_rules, schedule_from_json, schedule_to_json
from strongroom.errors import (
    AccessDeniedException,
    InvalidParameterException,
    InvalidRequestException,
)
from strongroom.operations.context import (
    Context,
    get_secret,
    open_value,
    require_token,
    seal_value,
    secret_ref,
)
from strongroom.operations.schedule import next_rotation
from strongroom.operations.versions import label_map, token_conflict, write_labels
from strongroom.storage.base import FunctionRow, RotationRow, SecretRow, Transaction

# Texts as AWS sends them (spec §6.2, §16.1).
NO_FUNCTION = "No Lambda rotation function ARN is associated with this secret."
CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)
PREVIOUS_INCOMPLETE = "A previous rotation isn't complete. That rotation will be reattempted."
EXTERNAL_UNSUPPORTED = "Strongroom does not support rotation of managed external secrets."

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
# arn:aws:lambda:<region>:<account>:function:<name>[:<version or alias>]
_FUNCTION_ARN = re.compile(
    r"^arn:[^:]+:lambda:[^:]*:(?P<account>\d{12}):function:(?P<name>[A-Za-z0-9_-]{1,64})(?::[^:]+)?$"
)


def function_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:lambda:{region}:{account_id}:function:{name}"


def find_function(tx: Transaction, account_id: str, arn: str) -> FunctionRow | None:
    """The registered function an ARN names (any region: functions run on this server)."""
    match = _FUNCTION_ARN.match(arn)
    if match is None or match["account"] != account_id:
        return None
    return tx.function(account_id, match["name"])


def rotate_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    token = require_token(request, InvalidParameterException)
    if request.get("ExternalSecretRotationMetadata") or request.get(
        "ExternalSecretRotationRoleArn"
    ):
        raise InvalidRequestException(EXTERNAL_UNSUPPORTED)
    immediately = request.get("RotateImmediately") is not False
    with ctx.store.write() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(secret.pk)
        if tx.rotation_for_version(secret.pk, token) is not None:
            return {**secret_ref(secret), "VersionId": token}  # the same request, retried
        schedule = parse_rotation_rules(
            request.get("RotationRules"), stored=schedule_from_json(secret.rotation_rules)
        )
        arn = request.get("RotationLambdaARN") or secret.rotation_lambda_arn
        if not arn:
            raise InvalidRequestException(NO_FUNCTION)
        if find_function(tx, ctx.account_id, arn) is None:
            raise AccessDeniedException(CANNOT_INVOKE)  # and nothing is stored
        versions = tx.versions(secret.pk)
        if any(v.version_id == token for v in versions):
            raise token_conflict(token, secret.arn)  # a version not made by a rotation
        pending = next((v for v in versions if PENDING in v.stages), None)
        if (pending is not None and CURRENT not in pending.stages) or tx.active_rotation(
            secret.pk
        ) is not None:
            raise InvalidRequestException(PREVIOUS_INCOMPLETE)
        now = ctx.clock()
        tx.update_secret(
            secret.pk,
            rotation_enabled=True,
            rotation_lambda_arn=arn,
            rotation_rules=schedule_to_json(schedule) if schedule else None,
            **next_rotation(schedule, now, last_rotated=secret.last_rotated_at or now),
        )
        _pending_version(ctx, tx, secret, token, immediately=immediately, now=now)
        tx.insert_rotation(
            RotationRow(
                pk=0,
                secret_pk=secret.pk,
                version_id=token,
                function_arn=arn,
                immediately=immediately,
                state="pending",
                created_at=now,
                next_attempt_at=now,
            )
        )
    if ctx.wake_rotations is not None:
        ctx.later.append(ctx.wake_rotations)
    return {**secret_ref(secret), "VersionId": token}


def _pending_version(
    ctx: Context, tx: Transaction, secret: SecretRow, token: str, *, immediately: bool, now: float
) -> None:
    """The AWSPENDING version the function works on, created before it runs (spec §6.2.7):
    empty for a rotation, a copy of the current value for a test only (§6.2.11)."""
    sealed = key_id = None
    if not immediately:
        current = tx.version_by_stage(secret.pk, CURRENT)
        if current is not None and current.sealed is not None:
            value = open_value(ctx, secret.arn, current.version_id, current.sealed)
            sealed, key_id = seal_value(ctx, secret.arn, token, value)
    add_pending_version(tx, secret, token, now, sealed, key_id)


def add_pending_version(  # noqa: PLR0917 - the version's columns
    tx: Transaction,
    secret: SecretRow,
    version_id: str,
    now: float,
    sealed: bytes | None = None,
    key_id: str | None = None,
) -> None:
    """A new version labelled AWSPENDING, the label taken off any other version (where it
    can only sit on the current one: a pending label elsewhere blocks a rotation)."""
    tx.insert_version(secret.pk, version_id, now, sealed, key_id)
    versions = tx.versions(secret.pk)
    labels = label_map(versions)
    for stages in labels.values():
        stages.discard(PENDING)
    labels[version_id].add(PENDING)
    write_labels(tx, secret, labels, versions)


def cancel_rotate_secret(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """CancelRotateSecret, as the seed page says: automatic rotation off (the function and
    schedule are kept and shown), a rotation in progress cancelled, labels left as they are."""
    with ctx.store.write() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
        tx.lock_secret(secret.pk)
        # A secret never configured for rotation: turning rotation off is a no-op; AWS's answer
        # there is UNCONFIRMED (spec §6.5).
        if secret.rotation_enabled is not None:
            tx.update_secret(
                secret.pk, rotation_enabled=False, next_rotation_at=None, rotation_due_at=None
            )
        active = tx.active_rotation(secret.pk)
        if active is not None:
            tx.update_rotation(
                active.pk, state="cancelled", finished_at=ctx.clock(), error="cancelled"
            )
            version_id: str | None = active.version_id
        else:
            # The version a rotation left behind (spec §6.5: "might not be complete").
            pending = tx.version_by_stage(secret.pk, PENDING)
            current = pending is not None and CURRENT in pending.stages
            version_id = None if pending is None or current else pending.version_id
    if active is not None and ctx.wake_rotations is not None:
        ctx.later.append(ctx.wake_rotations)  # the engine notices the cancellation at once
    return {**secret_ref(secret), "VersionId": version_id}
