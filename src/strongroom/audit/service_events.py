"""Records of what Secrets Manager does on its own, written where it does it.

Theory of operation
-------------------
A service event (eventType AwsServiceEvent, see `records.service_event`) reports a state
change no caller asked for at that moment: a rotation starting, succeeding or failing, a
deletion being scheduled, cancelled or carried out. Its row is inserted into the very write
transaction that makes the change (`record_service_event(tx, ...)`), so the record and the
change commit together or not at all: a purge that fails leaves no EndSecretVersionDelete,
and a record that cannot be written stops the change it reports.

Where each event comes from:

- RotationStarted, RotationSucceeded, RotationFailed: the rotation engine
  (`rotation.engine`), as its first attempt begins, as it completes, as it fails for good;
- RotationAbandoned: PutSecretValue or UpdateSecret storing a new AWSCURRENT value while
  another version holds AWSPENDING (`operations.versions`), which takes AWSPENDING off it;
- StartSecretVersionDelete, CancelSecretVersionDelete: DeleteSecret with a recovery window
  and RestoreSecret (`operations.lifecycle`), in the call's own transaction beside the call's
  own record, as AWS writes both;
- EndSecretVersionDelete: wherever a secret's rows are removed: the background purge
  (`worker`), CreateSecret taking a name whose recovery window is over, and DeleteSecret with
  ForceDeleteWithoutRecovery (`operations.lifecycle`).

The record's shape follows the published Secrets Manager service events ("Log AWS Secrets
Manager events with AWS CloudTrail"; RotationSucceeded and RotationFailed records AWS
delivered): `additionalEventData` `{"SecretId": "<arn>"}`, no request or response. The
`resources` member naming the secret is UNCONFIRMED: rotation records AWS published in 2021
carry none; we write it because CloudTrail's LookupEvents and readers of `resources` find
events by it, and it holds nothing a reader of the trail does not already see.
"""

from __future__ import annotations

import json
import uuid
from typing import Final

from strongroom.audit.records import SECRETS_MANAGER, service_event
from strongroom.storage.base import AuditEventRow, SecretRow, Transaction

SECRET_RESOURCE_TYPE: Final = "AWS::SecretsManager::Secret"  # noqa: S105 - a type name


def rotation_request_id(secret_arn: str, version_id: str) -> str:
    """The requestID of one rotation's events, as AWS forms it: `Rotation-<arn>-<uuid>`.

    UNCONFIRMED that AWS's uuid is the rotation's version id (ClientRequestToken); using it
    ties a rotation's Started, Succeeded and Failed records together, as AWS's do."""
    return f"Rotation-{secret_arn}-{version_id}"


def service_event_row(
    event_name: str,
    secret: SecretRow,
    *,
    event_time: float,
    error_message: str | None = None,
    request_id: str | None = None,
) -> AuditEventRow:
    """The audit row of a service event about `secret`, ready to insert.

    `error_message` is RotationFailed's reason: the caller makes sure it holds no secret
    value (the rotation engine masks function output before it gets here)."""
    event_id = str(uuid.uuid4())
    record = service_event(
        event_name=event_name,
        account_id=secret.account_id,
        region=secret.region,
        event_time=event_time,
        resources=[
            {"ARN": secret.arn, "type": SECRET_RESOURCE_TYPE, "accountId": secret.account_id}
        ],
        details={"SecretId": secret.arn},
        error_message=error_message,
        request_id=request_id,
        event_id=event_id,
    )
    return AuditEventRow(
        event_id=event_id,
        event_time=event_time,
        event_source=SECRETS_MANAGER,
        event_name=event_name,
        user_name=None,  # no caller: Secrets Manager acted on its own
        access_key_id=None,
        resource_name=secret.name,
        read_only=False,
        record=json.dumps(record, separators=(",", ":")),
        aws_region=record["awsRegion"],
    )


def record_service_event(
    tx: Transaction,
    event_name: str,
    secret: SecretRow,
    *,
    event_time: float,
    error_message: str | None = None,
    request_id: str | None = None,
) -> None:
    """Insert the event into `tx`: it commits with the change it reports, or not at all."""
    tx.insert_audit_events(
        [
            service_event_row(
                event_name,
                secret,
                event_time=event_time,
                error_message=error_message,
                request_id=request_id,
            )
        ]
    )
