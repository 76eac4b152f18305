"""Which function serves each Secrets Manager action, and which actions are not served yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strongroom.operations import lifecycle, listing, passwords, policies, rotation, values
from strongroom.operations.context import Context

Operation = Callable[[Context, dict[str, Any]], dict[str, Any]]

OPERATIONS: dict[str, Operation] = {
    "CreateSecret": lifecycle.create_secret,
    "UpdateSecret": lifecycle.update_secret,
    "DescribeSecret": lifecycle.describe_secret,
    "DeleteSecret": lifecycle.delete_secret,
    "RestoreSecret": lifecycle.restore_secret,
    "TagResource": lifecycle.tag_resource,
    "UntagResource": lifecycle.untag_resource,
    "ListSecrets": listing.list_secrets,
    "GetSecretValue": values.get_secret_value,
    "BatchGetSecretValue": values.batch_get_secret_value,
    "PutSecretValue": values.put_secret_value,
    "ListSecretVersionIds": values.list_secret_version_ids,
    "UpdateSecretVersionStage": values.update_secret_version_stage,
    "GetRandomPassword": passwords.get_random_password,
    "GetResourcePolicy": policies.get_resource_policy,
    "PutResourcePolicy": policies.put_resource_policy,
    "DeleteResourcePolicy": policies.delete_resource_policy,
    "ValidateResourcePolicy": policies.validate_resource_policy,
    "RotateSecret": rotation.rotate_secret,
    "CancelRotateSecret": rotation.cancel_rotate_secret,
}

# Read-only actions whose work is a few indexed reads: they run on the event loop itself,
# saving a thread hand-off per request, where reads never wait (SqlStore.reads_never_wait)
# or can await the database (SqlStore.awaiting_reads); their writes (Context.later) still
# go to a thread.
READ_ONLY_FAST = frozenset({"GetSecretValue", "DescribeSecret", "GetRandomPassword"})
# Every other read-only action; the rest write.
READ_ONLY = READ_ONLY_FAST | {
    "ListSecrets",
    "ListSecretVersionIds",
    "BatchGetSecretValue",
    "GetResourcePolicy",
    "ValidateResourcePolicy",
}

# Actions in the service model that Strongroom answers with InvalidRequestException (HTTP
# 400, so SDKs do not retry) and no state change, each with the reason.
NOT_YET: dict[str, str] = {
    "ListResourcePolicies": "listing the resource policies of many secrets is not supported yet",
    "ReplicateSecretToRegions": "replication to other Regions is not supported",
    "RemoveRegionsFromReplication": "replication to other Regions is not supported",
    "StopReplicationToReplica": "replication to other Regions is not supported",
    "AssociateCrossAccountReplica": "cross-account replication is not supported",
    "DisassociateCrossAccountReplica": "cross-account replication is not supported",
}
