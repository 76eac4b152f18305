"""STS: GetCallerIdentity and AssumeRole.

AssumeRole authorizes itself: the role's trust policy (a resource policy) and the caller's
identity policies are evaluated together, as AWS does, so the front end must not check
sts:AssumeRole again on identity policies alone (``STS_SELF_AUTHORIZED``). GetCallerIdentity
needs no permission at all (AWS: it works even under an explicit deny).

Temporary credentials are rows of ``access_keys`` like any other key: the secret sealed as
the root key is, the session token only as its SHA-256, an expiry, and the session's role
and name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from strongroom.auth.policy import MalformedPolicy, Policy, RequestContext, evaluate, parse_policy
from strongroom.domain.principal import Principal
from strongroom.errors import AccessDenied, ValidationError
from strongroom.operations.context import Context
from strongroom.operations.sessions import issue_session
from strongroom.storage.base import IamRoleRow, Transaction

DEFAULT_DURATION = 3600
CHAINED_MAX_DURATION = 3600  # a session assuming a role: at most one hour (AWS)
_ROLE_ARN = re.compile(r"^arn:[^:]+:iam::(?P<account>\d{12}):role/(?:[^/]*/)*(?P<name>[^/]+)$")
# AssumeRole members Strongroom does not implement yet: refused rather than ignored, since
# ignoring a session policy would hand out more than the caller asked for.
_UNSUPPORTED = {
    "Policy": "session policies",
    "PolicyArns": "session policies",
    "Tags": "session tags",
    "TransitiveTagKeys": "session tags",
    "SerialNumber": "MFA",
    "TokenCode": "MFA",
    "SourceIdentity": "source identity",
    "ProvidedContexts": "provided contexts",
}
Operation = Callable[[Context, dict[str, Any]], dict[str, Any]]


def get_caller_identity(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:  # noqa: ARG001 - takes no members
    """{UserId, Account, Arn}: the account id for the root, AIDA... for a user,
    "AROA...:<session>" for an assumed-role session."""
    principal = ctx.principal
    user_id = principal.user_id
    if user_id is None:
        if principal.arn.endswith(":root"):
            user_id = principal.account_id
        else:
            with ctx.store.read() as tx:
                user = tx.iam_user_by_arn(principal.arn)
            user_id = None if user is None else user.user_id
    out = {"Account": principal.account_id, "Arn": principal.arn}
    if user_id is not None:
        out["UserId"] = user_id
    return out


def _denied(caller: Principal, role_arn: str) -> AccessDenied:
    return AccessDenied(
        f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


def _find_role(ctx: Context, tx: Transaction, role_arn: str) -> IamRoleRow | None:
    match = _ROLE_ARN.match(role_arn)
    if match is None or match["account"] != ctx.account_id:
        return None  # another account's role: there are no other accounts here
    role = tx.iam_role(match["account"], match["name"])
    return role if role is not None and role.arn == role_arn else None


def _condition_keys(
    ctx: Context, tx: Transaction, request: dict[str, Any], now: float
) -> dict[str, Any]:
    caller = ctx.principal
    keys: dict[str, Any] = {
        "aws:PrincipalType": "AssumedRole" if caller.role_arn else "User",
        "aws:userid": caller.user_id,
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": int(now),
        "aws:RequestedRegion": ctx.region,
        "sts:RoleSessionName": request["RoleSessionName"],
    }
    if caller.role_arn is not None:
        keys["aws:PrincipalArn"] = caller.role_arn  # AWS: the role's ARN for a session
    if caller.user_name is not None:
        keys["aws:username"] = caller.user_name
    if request.get("ExternalId") is not None:
        keys["sts:ExternalId"] = request["ExternalId"]
    for key, value in tx.principal_tags(caller.arn).items():
        keys[f"aws:PrincipalTag/{key}"] = value
    return keys


def _parsed(texts: list[str]) -> list[Policy]:
    out = []
    for text in texts:
        try:
            out.append(parse_policy(text, "identity"))
        except MalformedPolicy:
            continue  # stored before a stricter parser: it grants nothing (as operations.access)
    return out


def _allowed(ctx: Context, tx: Transaction, role: IamRoleRow, keys: dict[str, Any]) -> bool:
    caller = ctx.principal
    try:
        trust = parse_policy(role.trust_policy, "trust")
    except MalformedPolicy:
        return False
    question = RequestContext(
        action="sts:AssumeRole",
        resource=role.arn,
        principal_arn=caller.arn,
        principal_account=caller.account_id,
        keys=keys,
        role_arn=caller.role_arn,
    )
    verdict = evaluate(
        question,
        identity=_parsed(tx.identity_policies(caller.arn, caller.user_id)),
        resource=trust,
        resource_account=ctx.account_id,
    )
    return verdict.allowed


def _duration(request: dict[str, Any], role: IamRoleRow, chained: bool) -> int:
    duration = int(request.get("DurationSeconds") or DEFAULT_DURATION)
    if chained and duration > CHAINED_MAX_DURATION:
        raise ValidationError(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles "
            "assumed by role chaining."
        )
    if duration > role.max_session_duration:
        raise ValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )
    return duration


def assume_role(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """AssumeRole: temporary credentials for the role, when its trust policy (with the
    caller's identity policies) allows the caller.

    AccessDenied (403) when it does not, when the role does not exist (AWS does not say
    which), and for the root (AWS: "Roles may not be assumed by root accounts.");
    ValidationError for a DurationSeconds past the role's MaxSessionDuration (one hour
    for a session assuming a role) and for members not supported here.
    """
    for member, feature in _UNSUPPORTED.items():
        if request.get(member) is not None:
            raise ValidationError(f"Strongroom does not support {feature} ({member}) yet.")
    caller, role_arn, session = ctx.principal, request["RoleArn"], request["RoleSessionName"]
    if caller.arn.endswith(":root"):
        raise AccessDenied("Roles may not be assumed by root accounts.")
    now = ctx.clock()
    with ctx.store.write() as tx:
        role = _find_role(ctx, tx, role_arn)
        if role is None or not _allowed(ctx, tx, role, _condition_keys(ctx, tx, request, now)):
            raise _denied(caller, role_arn)
        session_arn = (
            f"arn:{ctx.partition}:sts::{ctx.account_id}:assumed-role/{role.name}/{session}"
        )
        issued = issue_session(
            tx,
            ctx.sealer,
            account_id=ctx.account_id,
            principal_arn=session_arn,
            role_arn=role.arn,
            session_name=session,
            user_id=f"{role.role_id}:{session}",
            now=now,
            expires_at=now + _duration(request, role, chained=caller.role_arn is not None),
        )
    return {
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "SecretAccessKey": issued.secret_access_key,
            "SessionToken": issued.session_token,
            "Expiration": issued.expires_at,
        },
        "AssumedRoleUser": {"AssumedRoleId": f"{role.role_id}:{session}", "Arn": session_arn},
    }


STS_OPERATIONS: dict[str, Operation] = {
    "GetCallerIdentity": get_caller_identity,
    "AssumeRole": assume_role,
}
STS_READ_ONLY = frozenset({"GetCallerIdentity"})
# Actions the front end must not authorize on identity policies alone (see the docstring).
STS_SELF_AUTHORIZED = frozenset({"GetCallerIdentity", "AssumeRole"})
