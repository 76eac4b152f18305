"""IAM policy documents: parse once, evaluate many times. Pure: no I/O, no clock.

`parse_policy` checks a document the way IAM and Secrets Manager do and raises
`MalformedPolicy` with their text. `evaluate` decides one request against the caller's
identity policies and the resource's policy, following AWS "Policy evaluation logic":

1. An explicit Deny in any policy wins (identity policies are reported first).
2. Same account: an Allow in an identity policy, or in the resource policy naming the caller,
   suffices. The account root is allowed unless a resource policy denies it.
3. Cross-account: both sides must allow.
4. Anything else is an implicit deny.

A Principal that names an account ("123456789012" or its :root ARN) delegates to that
account's identity policies. So in the same account such an Allow grants nothing by itself
(the identity side must allow anyway); across accounts it satisfies the resource side. A Deny
naming the account applies to every principal in it.

Deny on doubt: a statement whose match depends on something we cannot read (a policy
variable without a value, a context value that is not a number...) never grants and always
denies. See conditions.py.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Literal, NamedTuple

from strongroom.auth.conditions import (
    LEGACY_PARSING,
    SYNTAX_ERROR,
    VENDOR_PREFIX,
    Condition,
    ConditionSyntaxError,
    ContextValue,
    Template,
    Tri,
    all3,
    any3,
    evaluate_conditions,
    glob_match,
    not3,
    parse_conditions,
    parse_template,
    render,
)
from strongroom.auth.policy_checks import grants_public_access

__all__ = [
    "MalformedPolicy",
    "Policy",
    "PolicyKind",
    "PrincipalSet",
    "RequestContext",
    "Statement",
    "Verdict",
    "access_denied_message",
    "evaluate",
    "grants_public_access",
    "parse_policy",
]

PolicyKind = Literal["identity", "resource", "trust"]
Effect = Literal["Allow", "Deny"]

# Texts as IAM / S3 / Secrets Manager return them (quoted in SDK and tool issues; moto's
# recorded IAM cases). UNCONFIRMED where noted.
PRINCIPAL_IN_IDENTITY = "Policy document should not specify a principal."
MISSING_PRINCIPAL = "Missing required field Principal"  # S3's text; UNCONFIRMED for IAM/SM
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
RESOURCE_IN_TRUST = "Has prohibited field Resource"
DUPLICATE_SID = "Statement IDs (SID) in a single policy must be unique."
ONE_COLON = "Actions/Condition can contain only one colon."
BAD_VENDOR = "Vendor {} is not valid"
RESOURCE_NOT_ARN = 'Resource {} must be in ARN format or "*".'
UNSUPPORTED_PRINCIPAL = "This resource policy contains an unsupported principal."  # SM
INVALID_PRINCIPAL = 'Invalid principal in policy: "{}":"{}"'  # IAM trust policies

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction"}
    | {"Resource", "NotResource", "Condition"}
)
_VENDOR = re.compile(r"[A-Za-z0-9-]+")
_ACCOUNT = re.compile(r"\d{12}")
# The principal ARNs a policy may name: account root, user, role, role session, federated user.
_PRINCIPAL_ARN = re.compile(
    r"arn:[a-z-]+:(?:iam::(\d{12}):(?:root|user/[^*?]+|role/[^*?]+)"
    r"|sts::(\d{12}):(?:assumed-role/[^/*?]+/[^*?]+|federated-user/[^*?]+))"
)
_ROOT_ARN = re.compile(r"arn:[a-z-]+:iam::(\d{12}):root")


class MalformedPolicy(Exception):
    """The document is not a policy IAM would accept; `.message` is AWS's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class PrincipalSet:
    """A Principal / NotPrincipal element, normalised."""

    everyone: bool = False  # "*" or {"AWS": "*"}
    accounts: frozenset[str] = frozenset()  # account ids, from an id or a :root ARN
    arns: frozenset[str] = frozenset()  # user, role, assumed-role, federated-user ARNs
    services: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Statement:
    sid: str | None
    effect: Effect
    principals: PrincipalSet | None  # None in identity policies
    not_principal: bool
    actions: tuple[str, ...]  # as written
    not_action: bool
    resources: tuple[Template, ...] | None  # None in trust policies without Resource
    not_resource: bool
    conditions: tuple[Condition, ...]
    action_pattern: re.Pattern[str] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Policy:
    text: str
    statements: tuple[Statement, ...]
    kind: PolicyKind
    version: str | None


# ---- parsing ------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:  # json.loads would keep the last silently; refuse the ambiguity
            raise MalformedPolicy(SYNTAX_ERROR)
        result[key] = value
    return result


def _load(text: str) -> dict[str, object]:
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int-size limit, nesting
        raise MalformedPolicy(SYNTAX_ERROR) from exc
    if not isinstance(document, dict):
        raise MalformedPolicy(SYNTAX_ERROR)
    return document


def _strings(value: object) -> list[str]:
    """A string-or-list-of-strings element."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise MalformedPolicy(SYNTAX_ERROR)


def _raw_statements(document: dict[str, object]) -> list[dict[str, object]]:
    if not _TOP_KEYS.issuperset(document) or "Statement" not in document:
        raise MalformedPolicy(SYNTAX_ERROR)
    version, policy_id = document.get("Version"), document.get("Id")
    if version is not None and version not in VERSIONS:
        raise MalformedPolicy(SYNTAX_ERROR)
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicy(SYNTAX_ERROR)
    raw = document["Statement"]
    listed = raw if isinstance(raw, list) else [raw]
    statements = [item for item in listed if isinstance(item, dict)]
    if not statements or len(statements) != len(listed):
        raise MalformedPolicy(SYNTAX_ERROR)
    return statements


def _check_shape(raw: dict[str, object]) -> None:
    """The checks IAM answers with "Syntax errors in policy." (before any other)."""
    if not _STATEMENT_KEYS.issuperset(raw) or "Effect" not in raw:
        raise MalformedPolicy(SYNTAX_ERROR)
    for one, other in (("Action", "NotAction"), ("Resource", "NotResource")):
        if one in raw and other in raw:
            raise MalformedPolicy(SYNTAX_ERROR)
    if "Principal" in raw and "NotPrincipal" in raw:
        raise MalformedPolicy(SYNTAX_ERROR)
    if not isinstance(raw["Effect"], str) or not isinstance(raw.get("Sid", ""), str):
        raise MalformedPolicy(SYNTAX_ERROR)
    for name in ("Action", "NotAction", "Resource", "NotResource"):
        if name in raw:
            _strings(raw[name])


def _check_presence(raw: dict[str, object], kind: PolicyKind) -> None:
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if kind == "identity" and has_principal:
        raise MalformedPolicy(PRINCIPAL_IN_IDENTITY)
    if kind != "identity" and not has_principal:
        raise MalformedPolicy(MISSING_PRINCIPAL)
    if not _strings(raw.get("Action", raw.get("NotAction", []))):
        raise MalformedPolicy(NO_ACTIONS)
    has_resource = "Resource" in raw or "NotResource" in raw
    if kind == "trust":
        if has_resource:
            raise MalformedPolicy(RESOURCE_IN_TRUST)
    elif not _strings(raw.get("Resource", raw.get("NotResource", []))):
        raise MalformedPolicy(NO_RESOURCES)


def _action_pattern(actions: Sequence[str]) -> re.Pattern[str]:
    for action in actions:
        if action == "*":
            continue
        vendor, colon, name = action.partition(":")
        if not colon or not vendor:
            raise MalformedPolicy(VENDOR_PREFIX)
        if ":" in name:
            raise MalformedPolicy(ONE_COLON)
        if not _VENDOR.fullmatch(vendor):
            raise MalformedPolicy(BAD_VENDOR.format(vendor))
    alternatives = "|".join(
        "(?:" + re.escape(action).replace(r"\*", ".*").replace(r"\?", ".") + ")"
        for action in actions
    )
    return re.compile(alternatives, re.IGNORECASE | re.DOTALL)


def _resources(values: Sequence[str], *, variables: bool) -> tuple[Template, ...]:
    for value in values:
        if value != "*" and not value.startswith("arn:"):
            raise MalformedPolicy(RESOURCE_NOT_ARN.format(value))
    return tuple(parse_template(value, variables=variables) for value in values)


PrincipalField = Literal["everyone", "accounts", "arns", "services", "federated"]


def _classify_aws(entry: str) -> tuple[PrincipalField, str] | None:
    if entry == "*":
        return "everyone", entry
    if _ACCOUNT.fullmatch(entry):
        return "accounts", entry
    if root := _ROOT_ARN.fullmatch(entry):
        return "accounts", root.group(1)
    if _PRINCIPAL_ARN.fullmatch(entry):
        return "arns", entry
    return None


def _classify(principal_type: str, entry: str) -> tuple[PrincipalField, str] | None:
    if principal_type == "AWS":
        return _classify_aws(entry)
    valid = bool(entry) and "*" not in entry and "?" not in entry
    if principal_type == "Service" and valid:
        return "services", entry
    if principal_type == "Federated" and valid:
        return "federated", entry
    return None


def _principals(value: object, kind: PolicyKind) -> PrincipalSet:
    if value == "*":
        return PrincipalSet(everyone=True)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(SYNTAX_ERROR)
    found: dict[PrincipalField, set[str]] = {}
    for principal_type, entries in value.items():
        for entry in _strings(entries):
            classified = _classify(principal_type, entry)
            if classified is None and kind == "trust":
                raise MalformedPolicy(INVALID_PRINCIPAL.format(principal_type, entry))
            if classified is None:
                raise MalformedPolicy(UNSUPPORTED_PRINCIPAL)
            found.setdefault(classified[0], set()).add(classified[1])
    return PrincipalSet(
        everyone="everyone" in found,
        accounts=frozenset(found.get("accounts", ())),
        arns=frozenset(found.get("arns", ())),
        services=frozenset(found.get("services", ())),
        federated=frozenset(found.get("federated", ())),
    )


def _conditions(raw: dict[str, object], *, variables: bool) -> tuple[Condition, ...]:
    try:
        return parse_conditions(raw.get("Condition", {}), variables=variables)
    except ConditionSyntaxError as exc:
        raise MalformedPolicy(exc.message) from exc


def _statement(
    raw: dict[str, object], kind: PolicyKind, conditions: tuple[Condition, ...], *, variables: bool
) -> Statement:
    actions = _strings(raw.get("Action", raw.get("NotAction")))
    resources = None
    if "Resource" in raw or "NotResource" in raw:
        values = _strings(raw.get("Resource", raw.get("NotResource")))
        resources = _resources(values, variables=variables)
    principal = raw.get("Principal", raw.get("NotPrincipal"))
    sid = raw.get("Sid")
    return Statement(
        sid=sid if isinstance(sid, str) else None,
        effect="Allow" if raw["Effect"] == "Allow" else "Deny",
        principals=None if principal is None else _principals(principal, kind),
        not_principal="NotPrincipal" in raw,
        actions=tuple(actions),
        not_action="NotAction" in raw,
        resources=resources,
        not_resource="NotResource" in raw,
        conditions=conditions,
        action_pattern=_action_pattern(actions),
    )


@lru_cache(maxsize=2048)
def parse_policy(text: str, kind: PolicyKind) -> Policy:
    """Parse and validate a policy document; raise MalformedPolicy with AWS's text.

    Checks run in the order IAM's answers suggest: syntax, then statement ids, then values
    ("legacy parsing"), then required elements, then the form of each value.
    """
    document = _load(text)
    raws = _raw_statements(document)
    for raw in raws:
        _check_shape(raw)
    sids = [raw["Sid"] for raw in raws if "Sid" in raw]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy(DUPLICATE_SID)
    if any(raw["Effect"] not in ("Allow", "Deny") for raw in raws):
        raise MalformedPolicy(LEGACY_PARSING)
    version = document.get("Version")
    variables = version == "2012-10-17"  # older or absent Version: ${...} is literal text
    conditions = [_conditions(raw, variables=variables) for raw in raws]
    for raw in raws:
        _check_presence(raw, kind)
    statements = tuple(
        _statement(raw, kind, parsed, variables=variables)
        for raw, parsed in zip(raws, conditions, strict=True)
    )
    return Policy(text, statements, kind, version if isinstance(version, str) else None)


# ---- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One authorisation question. Condition key names are matched case-insensitively.

    aws:PrincipalArn and aws:PrincipalAccount are filled from the principal when the
    caller does not give them. None, like a missing key, means "not present".
    """

    action: str
    resource: str
    principal_arn: str
    principal_account: str
    keys: Mapping[str, ContextValue]
    role_arn: str | None = None

    def __post_init__(self) -> None:
        keys = {"aws:principalarn": self.principal_arn}
        keys["aws:principalaccount"] = self.principal_account
        keys.update({name.lower(): value for name, value in self.keys.items()})  # type: ignore[misc]
        object.__setattr__(self, "keys", MappingProxyType(keys))

    def lookup(self, key: str) -> ContextValue:
        return self.keys.get(key.lower())


class Verdict(NamedTuple):
    allowed: bool
    reason: Literal[
        "allowed",
        "explicit_deny_identity",
        "explicit_deny_resource",
        "no_identity_allow",
        "no_resource_allow",
    ]


class Match(enum.Enum):
    NONE = 0
    ACCOUNT = 1  # named through its account: delegated to that account's identity policies
    EXACT = 2


def _principal_match(principals: PrincipalSet, ctx: RequestContext) -> Match:
    if principals.everyone:
        return Match.EXACT
    names = {ctx.principal_arn, ctx.role_arn}
    if names & (principals.arns | principals.services | principals.federated):
        return Match.EXACT
    if ctx.principal_account in principals.accounts:
        return Match.EXACT if _is_root(ctx) else Match.ACCOUNT
    return Match.NONE


def _not_principal_match(principals: PrincipalSet, ctx: RequestContext) -> Match:
    # AWS checks NotPrincipal against each identity of the caller (account, role, session):
    # the caller escapes only when every one of them is listed.
    if principals.everyone:
        return Match.NONE
    listed_account = ctx.principal_account in principals.accounts
    others = {ctx.principal_arn, ctx.role_arn} - {None}
    if _is_root(ctx):
        others = set()
    names = principals.arns | principals.services | principals.federated
    escapes = listed_account and all(name in names for name in others)
    return Match.NONE if escapes else Match.EXACT


def _is_root(ctx: RequestContext) -> bool:
    root = _ROOT_ARN.fullmatch(ctx.principal_arn)
    return root is not None and root.group(1) == ctx.principal_account


def _resource_applies(statement: Statement, ctx: RequestContext) -> Tri:
    if statement.resources is None:
        return True
    results: list[Tri] = []
    for template in statement.resources:
        rendered = render(template, ctx.lookup)
        results.append(None if rendered is None else _resource_match(rendered, ctx.resource))
    matched = any3(results)
    return not3(matched) if statement.not_resource else matched


def _resource_match(template: Template, resource: str) -> bool:
    return glob_match(template, resource, arn_segments=True)


def _applies(statement: Statement, ctx: RequestContext) -> Tri:
    """Does the statement cover this request (principal aside)? None: cannot tell."""
    named = statement.action_pattern.fullmatch(ctx.action) is not None
    if named == statement.not_action:
        return False
    return all3(
        (_resource_applies(statement, ctx), evaluate_conditions(statement.conditions, ctx.lookup))
    )


def _counts(statement: Statement, ctx: RequestContext) -> bool:
    applies = _applies(statement, ctx)
    # Deny on doubt: an unknown answer never grants and always denies.
    return applies is True if statement.effect == "Allow" else applies is not False


def evaluate(
    ctx: RequestContext,
    *,
    identity: Sequence[Policy],
    resource: Policy | None,
    resource_account: str,
) -> Verdict:
    """Decide one request; see the module docstring for the rules."""
    identity_statements = [st for policy in identity for st in policy.statements]
    if any(st.effect == "Deny" and _counts(st, ctx) for st in identity_statements):
        return Verdict(allowed=False, reason="explicit_deny_identity")
    exact_allow = account_allow = False
    for st in resource.statements if resource is not None else ():
        if st.principals is None:
            continue
        match_principal = _not_principal_match if st.not_principal else _principal_match
        matched = match_principal(st.principals, ctx)
        if matched is Match.NONE or not _counts(st, ctx):
            continue
        if st.effect == "Deny":
            return Verdict(allowed=False, reason="explicit_deny_resource")
        exact_allow = exact_allow or matched is Match.EXACT
        account_allow = account_allow or matched is Match.ACCOUNT
    identity_allow = _is_root(ctx) or any(
        st.effect == "Allow" and _counts(st, ctx) for st in identity_statements
    )
    if resource is not None and resource.kind == "trust":
        # A role's trust policy is never optional: it must name the caller, or name the
        # account and leave the decision to an identity policy that allows (IAM user guide,
        # "How IAM roles differ from resource-based policies").
        allowed = exact_allow or (account_allow and identity_allow)
    elif ctx.principal_account == resource_account:
        allowed = identity_allow or exact_allow
    else:
        allowed = identity_allow and (exact_allow or account_allow)
    if allowed:
        return Verdict(allowed=True, reason="allowed")
    return Verdict(
        allowed=False, reason="no_resource_allow" if identity_allow else "no_identity_allow"
    )


_DENIAL_ENDINGS = {
    "explicit_deny_identity": " with an explicit deny in an identity-based policy",
    "explicit_deny_resource": " with an explicit deny in a resource-based policy",
    "no_identity_allow": " because no identity-based policy allows the {} action",
    "no_resource_allow": " because no resource-based policy allows the {} action",
}


def access_denied_message(
    ctx: RequestContext, verdict: Verdict, *, shown_resource: str | None = None
) -> str:
    """AWS's AccessDeniedException text for a refused request.

    For actions on no particular resource ("*", e.g. ListSecrets) AWS leaves out
    " on resource: ..." (observed: "User: ... is not authorized to perform:
    secretsmanager:ListSecrets because no identity-based policy allows ...").
    """
    if verdict.allowed:
        raise ValueError("the request was allowed: there is nothing to refuse")
    resource = ctx.resource if shown_resource is None else shown_resource
    on_resource = "" if resource == "*" else f" on resource: {resource}"
    ending = _DENIAL_ENDINGS[verdict.reason].format(ctx.action)
    return (
        f"User: {ctx.principal_arn} is not authorized to perform: {ctx.action}{on_resource}{ending}"
    )
