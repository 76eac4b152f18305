"""Storing a new value and moving labels: the steps PutSecretValue, UpdateSecret, CreateSecret
and UpdateSecretVersionStage share (spec §3, §4)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from strongroom.audit.service_events import record_service_event, rotation_request_id
from strongroom.domain import stages
from strongroom.errors import LimitExceededException, ResourceExistsException
from strongroom.operations.context import Context, SecretValue, open_value, seal_value
from strongroom.operations.schedule import reschedule_after_manual_change
from strongroom.storage.base import SecretRow, Transaction, VersionRow

# AWS removes deprecated (unlabelled) versions once a secret has more than about 100
# versions, but never one less than 24 hours old; a burst of writes can therefore reach the
# quota (spec §2.5, §17).
MAX_VERSIONS = 100
MIN_DEPRECATED_AGE = 86_400.0


def token_conflict(token: str, arn: str) -> ResourceExistsException:
    return ResourceExistsException(
        f"You can't use ClientRequestToken {token} because that value is already in use for "
        f"a version of secret {arn}."
    )


def write_labels(
    tx: Transaction,
    secret: SecretRow,
    labels: Mapping[str, Collection[str]],
    versions: list[VersionRow],
) -> None:
    """Persist a label map (version id -> labels) computed by ``domain.stages``."""
    by_id = {v.version_id: v.pk for v in versions}
    tx.set_labels(secret.pk, {by_id[vid]: sorted(s) for vid, s in labels.items() if s})


def label_map(versions: list[VersionRow]) -> dict[str, set[str]]:
    return {v.version_id: set(v.stages) for v in versions}


def store_value(
    ctx: Context,
    tx: Transaction,
    secret: SecretRow,
    token: str,
    value: SecretValue,
    *,
    requested: Collection[str] | None,
    now: float,
) -> tuple[list[str], bool]:
    """Store ``value`` as version ``token`` and move labels; returns (its labels, created).

    Idempotent as AWS (spec §4): the same token with the same value changes nothing; with
    another value it is a ResourceExistsException. The empty version a rotation created is
    filled in.
    """
    existing = tx.version_by_id(secret.pk, token)
    if existing is not None and existing.sealed is not None:
        if open_value(ctx, secret.arn, token, existing.sealed) != value:
            raise token_conflict(token, secret.arn)
        return stages.sorted_stages(existing.stages), False
    sealed, key_id = seal_value(ctx, secret.arn, token, value)
    if existing is None:
        tx.insert_version(secret.pk, token, now, sealed, key_id)
    else:
        tx.set_version_value(existing.pk, sealed, key_id)
    versions = tx.versions(secret.pk)
    labels = stages.put_value(label_map(versions), token, requested)
    _abandon_rotation(ctx, tx, secret, labels, token, now=now)
    write_labels(tx, secret, labels, versions)
    prune_versions(tx, secret, labels, versions, now)
    tx.update_secret(secret.pk, last_changed_at=now)
    if "AWSCURRENT" in labels[token]:
        reschedule_after_manual_change(tx, secret, now)
    return stages.sorted_stages(labels[token]), True


def _abandon_rotation(
    ctx: Context,
    tx: Transaction,
    secret: SecretRow,
    labels: dict[str, set[str]],
    new_version: str,
    *,
    now: float,
) -> None:
    """A new AWSCURRENT value stored by hand while another version holds AWSPENDING abandons
    that rotation, as AWS does ("Logging AWS Secrets Manager events with AWS CloudTrail":
    RotationAbandoned): AWSPENDING comes off that version, so that the next rotation can
    start, and the event is recorded. A rotation still running is stopped. UNCONFIRMED: that
    a value put under another label (a rotation function's own createSecret) abandons
    nothing; AWS's text speaks of a new version created by hand, which such a put is not.
    """
    if stages.AWSCURRENT not in labels[new_version]:
        return
    pending = stages.holder(labels, stages.AWSPENDING)
    if pending is None or pending == new_version:
        return
    labels[pending].discard(stages.AWSPENDING)
    active = tx.active_rotation(secret.pk)
    if active is not None:
        tx.update_rotation(
            active.pk, state="abandoned", finished_at=now, error="abandoned", lease_owner=None
        )
        if ctx.wake_rotations is not None:
            ctx.later.append(ctx.wake_rotations)  # the engine stops a step in flight at once
    record_service_event(
        tx,
        "RotationAbandoned",
        secret,
        event_time=now,
        request_id=rotation_request_id(secret.arn, pending),
    )


def prune_versions(
    tx: Transaction,
    secret: SecretRow,
    labels: Mapping[str, Collection[str]],
    versions: list[VersionRow],  # oldest first
    now: float,
) -> None:
    excess = len(versions) - MAX_VERSIONS
    if excess <= 0:
        return
    doomed = [
        v.pk
        for v in versions
        if not labels.get(v.version_id) and now - v.created_at >= MIN_DEPRECATED_AGE
    ][:excess]
    if len(doomed) < excess:
        # Text UNCONFIRMED: AWS's code for the version quota is LimitExceededException.
        raise LimitExceededException(
            f"The secret {secret.name} has reached the quota of {MAX_VERSIONS} versions. "
            "Versions without staging labels are removed once they are 24 hours old."
        )
    tx.delete_versions(doomed)
