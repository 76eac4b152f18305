"""Resource policies on secrets: Get/Put/Delete/ValidateResourcePolicy (spec §11, §15.16).

The document is stored verbatim (GetResourcePolicy returns the caller's own text) and parsed
by ``auth.policy`` whenever a request on the secret is authorized.
"""

from __future__ import annotations

from typing import Any

from strongroom.auth.policy import MalformedPolicy, Policy, grants_public_access, parse_policy
from strongroom.errors import (
    AccessDeniedException,
    MalformedPolicyDocumentException,
    PublicPolicyException,
)
from strongroom.operations.context import Context, get_secret, secret_ref

# The exception's own description in the service model; AWS's exact text is UNCONFIRMED.
PUBLIC_POLICY = (
    "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent "
    "broad access to the secret."
)
# Both quoted from AWS replies (CloudFormation's docs issue #623 for the syntax text, Terraform
# for the principal text, spec §16.2); the parser's own reason is not shown, as AWS shows none.
INVALID_SYNTAX = "This policy has invalid syntax."
UNSUPPORTED_PRINCIPAL = "This resource policy contains an unsupported principal."

# ValidateResourcePolicy check names: UNCONFIRMED (spec §11); named for the three checks the
# API reference describes.
BROAD_ACCESS_CHECK = "BROAD_ACCESS_CHECK"
SYNTAX_CHECK = "SYNTAX_CHECK"
LOCKOUT_CHECK = "LOCKOUT_CHECK"
LOCKED_OUT = "This resource policy would deny you access to the secret."  # UNCONFIRMED


def parse_resource_policy(text: str) -> Policy:
    """The parsed document, or MalformedPolicyDocumentException with AWS's text."""
    try:
        return parse_policy(text, "resource")
    except MalformedPolicy as exc:
        principal = "principal" in exc.message.lower()
        raise MalformedPolicyDocumentException(
            UNSUPPORTED_PRINCIPAL if principal else INVALID_SYNTAX
        ) from exc


def get_resource_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
    return {**secret_ref(secret), "ResourcePolicy": secret.resource_policy}


def put_resource_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    text = request["ResourcePolicy"]
    policy = parse_resource_policy(text)
    if request.get("BlockPublicPolicy") and grants_public_access(policy, ctx.account_id):
        raise PublicPolicyException(PUBLIC_POLICY)
    with ctx.store.write() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
        # LastChangedDate: "modified in any way" (UNCONFIRMED for policies, as for tags).
        tx.update_secret(secret.pk, resource_policy=text, last_changed_at=ctx.clock())
    return secret_ref(secret)


def delete_resource_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.write() as tx:
        secret = get_secret(ctx, tx, request["SecretId"])
        if secret.resource_policy is not None:  # deleting none succeeds (spec §11, UNCONFIRMED)
            tx.update_secret(secret.pk, resource_policy=None, last_changed_at=ctx.clock())
    return secret_ref(secret)


def validate_resource_policy(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Three checks, each reported in ValidationErrors rather than raised (spec §11)."""
    secret = None
    if request.get("SecretId") is not None:
        with ctx.store.read() as tx:
            secret = get_secret(ctx, tx, request["SecretId"])
    try:
        policy = parse_resource_policy(request["ResourcePolicy"])
    except MalformedPolicyDocumentException as exc:
        return _validation([(SYNTAX_CHECK, exc.message)])
    errors: list[tuple[str, str]] = []
    if grants_public_access(policy, ctx.account_id):
        errors.append((BROAD_ACCESS_CHECK, PUBLIC_POLICY))
    if secret is not None and ctx.access is not None:
        # Would the caller still be allowed to manage the policy once this one is attached?
        try:
            with ctx.store.read() as tx:
                ctx.access.require(
                    tx,
                    "secretsmanager:PutResourcePolicy",
                    secret.arn,
                    ctx.account_id,
                    keys={"secretsmanager:SecretId": secret.arn},
                    resource_policy=policy.text,
                )
        except AccessDeniedException:
            errors.append((LOCKOUT_CHECK, LOCKED_OUT))
    return _validation(errors)


def _validation(errors: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "PolicyValidationPassed": not errors,
        "ValidationErrors": [{"CheckName": name, "ErrorMessage": text} for name, text in errors],
    }
