"""Who may do what: each Secrets Manager action authorized as IAM does it.

The account root is allowed everything and never gets here (``Context.access`` is None).
Every other caller's action is evaluated (``auth.policy``) against its identity policies and
the secret's resource policy, on the secret's ARN, before the operation runs — so a caller
without permission gets AccessDeniedException whether or not the secret exists, as on AWS
(authorization comes first; a denied caller never learns what exists).

Condition keys follow the "Actions, resources, and condition keys for AWS Secrets Manager"
page: the global ``aws:*`` keys of the request, and ``secretsmanager:*`` keys taken from the
request's own members.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.auth.policy import (
    MalformedPolicy,
    Policy,
    RequestContext,
    Verdict,
    access_denied_message,
    evaluate,
    parse_policy,
)
from strongroom.domain.principal import Principal
from strongroom.errors import AccessDeniedException

if TYPE_CHECKING:
    from strongroom.operations.context import Context
    from strongroom.storage.base import SecretRow, Transaction

SERVICE = "secretsmanager"

# Request members that become ``secretsmanager:<member>`` condition keys as they are.
_MEMBER_KEYS = (
    "Name",
    "Description",
    "KmsKeyId",
    "VersionId",
    "VersionStage",
    "RotationLambdaARN",
    "BlockPublicPolicy",
    "ForceDeleteWithoutRecovery",
    "RecoveryWindowInDays",
    "RotateImmediately",
    "ForceOverwriteReplicaSecret",
)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the HTTP layer knows about a request that policies may test."""

    source_ip: str | None
    secure_transport: bool
    time: float


@dataclass(frozen=True, slots=True)
class Access:
    """Authorization for one request of a caller other than the account root."""

    principal: Principal
    facts: RequestFacts

    def check(self, ctx: Context, operation: str, request: Mapping[str, Any]) -> None:
        """Raise AccessDeniedException unless ``operation`` is allowed for ``request``."""
        secret_id = request.get("SecretId")
        if operation in _ON_ANY_RESOURCE or (secret_id is None and operation != "CreateSecret"):
            self._require(ctx, operation, None, "*", request)
            return
        if operation == "CreateSecret":
            # The ARN's random suffix is not drawn yet: the policy sees six wildcard characters,
            # so "secret:prod/*" matches and a policy naming one full ARN does not (UNCONFIRMED:
            # what suffix AWS evaluates CreateSecret against is not documented).
            name = str(request["Name"])
            arn = f"{_arn_prefix(ctx)}:secret:{name}-??????"
            self._require(ctx, operation, None, arn, request, shown=name)
            return
        self.require_on_secret(ctx, operation, str(secret_id), request)

    def require_on_secret(
        self, ctx: Context, operation: str, secret_id: str, request: Mapping[str, Any]
    ) -> None:
        from strongroom.operations.context import find_secret  # noqa: PLC0415 - import cycle

        with ctx.store.read() as tx:
            row = find_secret(ctx, tx, secret_id)
            if row is None:
                # Evaluated as the ARN the name would have (without its suffix), so that a
                # caller allowed on "secret:prod/*" learns that prod/x does not exist.
                name = secret_id if not secret_id.startswith("arn:") else None
                arn = secret_id if name is None else f"{_arn_prefix(ctx)}:secret:{name}"
                self._require_in(ctx, tx, operation, None, arn, request, shown=secret_id)
            else:
                self._require_in(ctx, tx, operation, row, row.arn, request, shown=secret_id)

    def _require(
        self,
        ctx: Context,
        operation: str,
        row: SecretRow | None,
        resource: str,
        request: Mapping[str, Any],
        *,
        shown: str | None = None,
    ) -> None:
        with ctx.store.read() as tx:
            self._require_in(ctx, tx, operation, row, resource, request, shown=shown)

    def _require_in(  # noqa: PLR0917 - private; the call sites read clearly
        self,
        ctx: Context,
        tx: Transaction,
        operation: str,
        row: SecretRow | None,
        resource: str,
        request: Mapping[str, Any],
        *,
        shown: str | None,
    ) -> None:
        keys = _secret_keys(tx, row, request, resource)
        policy = row.resource_policy if row is not None else None
        self.require(
            tx,
            f"{SERVICE}:{operation}",
            resource,
            ctx.account_id,
            keys=keys,
            resource_policy=policy,
            shown=shown,
        )

    def require(
        self,
        tx: Transaction,
        action: str,
        resource: str,
        resource_account: str,
        *,
        keys: Mapping[str, Any] | None = None,
        resource_policy: str | None = None,
        shown: str | None = None,
    ) -> None:
        """Raise AccessDeniedException unless ``action`` on ``resource`` is allowed.

        ``keys`` are the action's own condition keys; the global ones are added here.
        """
        principal = self.principal
        if principal.session_policy is not None:  # a rotation function's credentials
            identity = _identity_policies([principal.session_policy])
        else:
            identity = _identity_policies(tx.identity_policies(principal.arn, principal.user_id))
        all_keys = self._global_keys(tx.principal_tags(principal.arn))
        all_keys.update(keys or {})
        parsed_resource_policy = None
        if resource_policy:
            # One stored before a stricter parser grants nothing.
            with contextlib.suppress(MalformedPolicy):
                parsed_resource_policy = parse_policy(resource_policy, "resource")
        context = RequestContext(
            action=action,
            resource=resource,
            principal_arn=principal.arn,
            principal_account=principal.account_id,
            keys=all_keys,
            role_arn=principal.role_arn,
        )
        verdict: Verdict = evaluate(
            context,
            identity=identity,
            resource=parsed_resource_policy,
            resource_account=resource_account,
        )
        if not verdict.allowed:
            raise AccessDeniedException(
                access_denied_message(context, verdict, shown_resource=shown)
            )

    def _global_keys(self, principal_tags: Mapping[str, str]) -> dict[str, Any]:
        principal, facts = self.principal, self.facts
        keys: dict[str, Any] = {
            "aws:PrincipalArn": principal.role_arn or principal.arn,
            "aws:PrincipalAccount": principal.account_id,
            "aws:PrincipalType": _PRINCIPAL_TYPES[principal.kind],
            "aws:userid": principal.user_id,
            "aws:SecureTransport": facts.secure_transport,
            "aws:CurrentTime": datetime.fromtimestamp(facts.time, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "aws:EpochTime": int(facts.time),
        }
        if principal.user_name is not None:
            keys["aws:username"] = principal.user_name
        if facts.source_ip is not None:
            keys["aws:SourceIp"] = facts.source_ip
        for key, value in principal_tags.items():
            keys[f"aws:PrincipalTag/{key}"] = value
        return keys


# Actions IAM authorizes on "*": they name no one secret.
_ON_ANY_RESOURCE = frozenset({"ListSecrets", "GetRandomPassword", "BatchGetSecretValue"})
_PRINCIPAL_TYPES = {"Root": "Account", "IAMUser": "User", "AssumedRole": "AssumedRole"}


def _arn_prefix(ctx: Context) -> str:
    return f"arn:{ctx.partition}:{SERVICE}:{ctx.region}:{ctx.account_id}"


def _identity_policies(texts: Sequence[str]) -> list[Policy]:
    out = []
    for text in texts:
        try:
            out.append(parse_policy(text, "identity"))
        except MalformedPolicy:
            continue  # IAM refuses malformed documents when stored; one that slipped grants nothing
    return out


def request_tag_keys(request: Mapping[str, Any]) -> dict[str, Any]:
    """aws:RequestTag/<key> and aws:TagKeys from a request's Tags (or TagKeys, to untag)."""
    keys: dict[str, Any] = {}
    tags: list[dict[str, str]] = request.get("Tags") or []
    for tag in tags:
        keys[f"aws:RequestTag/{tag['Key']}"] = tag.get("Value", "")
    tag_keys = [tag["Key"] for tag in tags] or list(request.get("TagKeys") or [])
    if tag_keys:
        keys["aws:TagKeys"] = tag_keys
    return keys


def _secret_keys(
    tx: Transaction, row: SecretRow | None, request: Mapping[str, Any], resource: str
) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if "SecretId" in request:
        # The ARN once resolved (UNCONFIRMED: AWS documents the key as the secret's ARN).
        keys["secretsmanager:SecretId"] = row.arn if row is not None else resource
    for member in _MEMBER_KEYS:
        value = request.get(member)
        if value is not None:
            keys[f"{SERVICE}:{member}"] = value
    if request.get("RotationRules") is not None:
        keys[f"{SERVICE}:ModifyRotationRules"] = True
    replicas = request.get("AddReplicaRegions")
    if replicas:
        keys[f"{SERVICE}:AddReplicaRegions"] = [r.get("Region") for r in replicas]
    keys.update(request_tag_keys(request))
    if row is not None:
        for key, value in tx.tags(row.pk):
            keys[f"aws:ResourceTag/{key}"] = value
            keys[f"{SERVICE}:ResourceTag/{key}"] = value
    return keys
