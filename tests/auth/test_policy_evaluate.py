"""evaluate and access_denied_message: tables of (policies, request) -> Verdict.

Actors (account 111122223333 owns the secrets):
- alice: IAM user in the secrets' account; access comes from whatever policy a test gives her.
- bob: IAM user in another account (444455556666).
- app/session-1: a session of role "app" in the secrets' account.
- root: the secrets' account root user.
"""

from __future__ import annotations

import json

import pytest

from strongroom.auth.policy import (
    RequestContext,
    Verdict,
    access_denied_message,
    evaluate,
    parse_policy,
)

OWNER = "111122223333"
OTHER = "444455556666"
ALICE = f"arn:aws:iam::{OWNER}:user/alice"
BOB = f"arn:aws:iam::{OTHER}:user/bob"
ROLE = f"arn:aws:iam::{OWNER}:role/app"
SESSION = f"arn:aws:sts::{OWNER}:assumed-role/app/session-1"
ROOT = f"arn:aws:iam::{OWNER}:root"
SECRET = f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:prod/db-AbCdEf"
GET = "secretsmanager:GetSecretValue"

ALLOWED = Verdict(allowed=True, reason="allowed")
NO_IDENTITY = Verdict(allowed=False, reason="no_identity_allow")
NO_RESOURCE = Verdict(allowed=False, reason="no_resource_allow")
DENY_IDENTITY = Verdict(allowed=False, reason="explicit_deny_identity")
DENY_RESOURCE = Verdict(allowed=False, reason="explicit_deny_resource")


def stmt(effect="Allow", action=GET, resource=SECRET, **extra):
    body = {"Effect": effect, **extra}
    if action is not None:
        body["Action"] = action
    if resource is not None:
        body["Resource"] = resource
    return body


def identity(*statements, version="2012-10-17"):
    body = {"Version": version, "Statement": list(statements)}
    return parse_policy(json.dumps(body), "identity")


def resource(*statements):
    return parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), "resource"
    )


def ctx(principal=ALICE, account=OWNER, action=GET, res=SECRET, role_arn=None, **keys):
    return RequestContext(
        action=action,
        resource=res,
        principal_arn=principal,
        principal_account=account,
        keys={k.replace("__", ":").replace("_slash_", "/"): v for k, v in keys.items()},
        role_arn=role_arn,
    )


def decide(request, identities=(), resource_policy=None, owner=OWNER):
    return evaluate(
        request, identity=list(identities), resource=resource_policy, resource_account=owner
    )


# ---- AWS "Policy evaluation logic" -------------------------------------------------------


def test_nothing_attached_is_an_implicit_deny():
    assert decide(ctx()) == NO_IDENTITY


def test_same_account_identity_allow_alone_suffices():
    assert decide(ctx(), [identity(stmt())]) == ALLOWED


def test_same_account_resource_allow_naming_the_user_suffices():
    assert decide(ctx(), [], resource(stmt(Principal={"AWS": ALICE}))) == ALLOWED


def test_same_account_resource_allow_naming_only_the_account_delegates_to_identity():
    policy = resource(stmt(Principal={"AWS": OWNER}))
    assert decide(ctx(), [], policy) == NO_IDENTITY
    assert decide(ctx(), [identity(stmt())], policy) == ALLOWED


def test_cross_account_needs_both_sides():
    request = ctx(principal=BOB, account=OTHER)
    grant = resource(stmt(Principal={"AWS": BOB}))
    assert decide(request, [identity(stmt())]) == NO_RESOURCE
    assert decide(request, [], grant) == NO_IDENTITY
    assert decide(request, [identity(stmt())], grant) == ALLOWED


def test_cross_account_grant_to_the_account_root_lets_its_identity_policies_decide():
    request = ctx(principal=BOB, account=OTHER)
    grant = resource(stmt(Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}))
    assert decide(request, [identity(stmt())], grant) == ALLOWED
    assert decide(request, [], grant) == NO_IDENTITY


def trust(*statements):
    return parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), "trust"
    )


def test_a_role_trust_policy_must_allow_even_in_the_same_account():
    assume = ctx(action="sts:AssumeRole", res=ROLE)
    may_assume = identity(stmt(action="sts:AssumeRole", resource="*"))
    names_alice = trust(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": ALICE}}
    )
    names_bob = trust({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": BOB}})
    names_account = trust(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": ROOT}}
    )
    # Unlike a secret's resource policy, an identity allow alone never suffices...
    assert decide(assume, [may_assume], names_bob).allowed is False
    # ...a trust policy naming the caller does, and one naming the account delegates.
    assert decide(assume, [], names_alice) == ALLOWED
    assert decide(assume, [], names_account).allowed is False
    assert decide(assume, [may_assume], names_account) == ALLOWED


def test_an_explicit_deny_anywhere_overrides_every_allow():
    allow_all = identity(stmt(action="secretsmanager:*", resource="*"))
    deny = stmt("Deny")
    assert decide(ctx(), [allow_all, identity(deny)]) == DENY_IDENTITY
    resource_deny = resource(stmt(Principal="*"), stmt("Deny", Principal={"AWS": ALICE}))
    assert decide(ctx(), [allow_all], resource_deny) == DENY_RESOURCE


def test_a_resource_deny_naming_the_account_reaches_every_principal_in_it():
    policy = resource(stmt("Deny", Principal={"AWS": OWNER}))
    assert decide(ctx(), [identity(stmt())], policy) == DENY_RESOURCE


def test_the_account_root_is_allowed_unless_a_resource_policy_denies_it():
    assert decide(ctx(principal=ROOT)) == ALLOWED
    policy = resource(stmt("Deny", Principal="*"))
    assert decide(ctx(principal=ROOT), [], policy) == DENY_RESOURCE
    assert decide(ctx(principal=ROOT, account=OWNER), [], None, owner=OTHER) == NO_RESOURCE


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ({"AWS": ROLE}, ALLOWED),  # a role ARN covers the role's sessions
        ({"AWS": SESSION}, ALLOWED),
        ({"AWS": f"arn:aws:sts::{OWNER}:assumed-role/app/other"}, NO_IDENTITY),
        ({"AWS": f"arn:aws:iam::{OWNER}:role/other"}, NO_IDENTITY),
        ({"AWS": "*"}, ALLOWED),
        ("*", ALLOWED),
        ({"Service": "secretsmanager.amazonaws.com"}, NO_IDENTITY),
    ],
)
def test_principal_matching_for_a_role_session(principal, expected):
    request = ctx(principal=SESSION, role_arn=ROLE)
    assert decide(request, [], resource(stmt(Principal=principal))) == expected


def test_a_deny_with_not_principal_spares_only_a_caller_whose_every_identity_is_listed():
    spared = [SESSION, ROLE, f"arn:aws:iam::{OWNER}:root"]
    request = ctx(principal=SESSION, role_arn=ROLE)
    allow_all = identity(stmt())
    assert (
        decide(request, [allow_all], resource(stmt("Deny", NotPrincipal={"AWS": spared})))
        == ALLOWED
    )
    partial = resource(stmt("Deny", NotPrincipal={"AWS": spared[:2]}))
    assert decide(request, [allow_all], partial) == DENY_RESOURCE


def test_not_action_and_not_resource():
    everything_but_values = identity(
        stmt(action=None, resource="*", NotAction="secretsmanager:Get*")
    )
    assert decide(ctx(action="secretsmanager:DescribeSecret"), [everything_but_values]) == ALLOWED
    assert decide(ctx(), [everything_but_values]) == NO_IDENTITY
    other_secrets = identity(stmt(resource=None, NotResource=SECRET))
    assert decide(ctx(), [other_secrets]) == NO_IDENTITY
    assert decide(ctx(res=SECRET.replace("prod", "dev")), [other_secrets]) == ALLOWED


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("secretsmanager:GetSecretValue", "SecretsManager:getsecretvalue", True),
        ("secretsmanager:Get*", "secretsmanager:GetResourcePolicy", True),
        ("secretsmanager:?etSecretValue", "secretsmanager:GetSecretValue", True),
        ("secretsmanager:Get", "secretsmanager:GetSecretValue", False),
        ("*", "iam:CreateUser", True),
        ("s3:*", "secretsmanager:GetSecretValue", False),
    ],
)
def test_actions_match_case_insensitively_with_wildcards(pattern, action, matches):
    verdict = decide(ctx(action=action, res="*"), [identity(stmt(action=pattern, resource="*"))])
    assert verdict.allowed is matches


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        (SECRET, True),
        (SECRET.lower(), False),  # resources are case-sensitive
        (f"arn:aws:secretsmanager:*:{OWNER}:secret:prod/*", True),
        (f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:prod/db-??????", True),
        (f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:dev/*", False),
        ("arn:aws:secretsmanager:*", True),  # a trailing * runs past colons
        (f"arn:aws:secretsmanager:us-*-1:{OWNER}:secret:prod/db-AbCdEf", True),
        (f"arn:aws:secretsmanager:us-*:{OWNER}:secret:prod/db-AbCdEf", True),
        # a * inside a segment stays in it: this one cannot swallow the region
        (f"arn:aws:secrets*ger:{OWNER}:secret:prod/db-AbCdEf", False),
        (f"arn:aws:secrets*:{OWNER}:secret:prod/db-AbCdEf", True),
        ("*", True),
    ],
)
def test_resources_match_case_sensitively_with_wildcards(pattern, matches):
    assert decide(ctx(), [identity(stmt(resource=pattern))]).allowed is matches


def test_a_request_on_no_particular_resource_needs_a_star_resource():
    listing = ctx(action="secretsmanager:ListSecrets", res="*")
    assert decide(listing, [identity(stmt(action="secretsmanager:ListSecrets"))]) == NO_IDENTITY
    allowed = identity(stmt(action="secretsmanager:ListSecrets", resource="*"))
    assert decide(listing, [allowed]) == ALLOWED


# ---- Secrets Manager's documented example policies ----------------------------------------


def test_example_read_one_secret():
    read_one = identity(
        stmt(action=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"])
    )
    assert decide(ctx(), [read_one]) == ALLOWED
    assert decide(ctx(action="secretsmanager:DescribeSecret"), [read_one]) == ALLOWED
    assert decide(ctx(action="secretsmanager:PutSecretValue"), [read_one]) == NO_IDENTITY
    assert decide(ctx(res=SECRET + "x"), [read_one]) == NO_IDENTITY


def test_example_access_by_resource_tag():
    tagged = identity(
        stmt(
            resource="*",
            Condition={"StringEquals": {"secretsmanager:ResourceTag/ServerName": "ServerABC"}},
        )
    )
    assert (
        decide(ctx(secretsmanager__ResourceTag_slash_ServerName="ServerABC"), [tagged]) == ALLOWED
    )
    assert (
        decide(ctx(secretsmanager__ResourceTag_slash_ServerName="ServerXYZ"), [tagged])
        == NO_IDENTITY
    )
    assert decide(ctx(), [tagged]) == NO_IDENTITY


def test_example_resource_tag_matches_principal_tag():
    abac = identity(
        stmt(
            resource="*",
            Condition={
                "StringEquals": {"secretsmanager:ResourceTag/Team": "${aws:PrincipalTag/Team}"}
            },
        )
    )
    same = ctx(secretsmanager__ResourceTag_slash_Team="red", aws__PrincipalTag_slash_Team="red")
    other = ctx(secretsmanager__ResourceTag_slash_Team="red", aws__PrincipalTag_slash_Team="blue")
    untagged = ctx(secretsmanager__ResourceTag_slash_Team="red")
    assert decide(same, [abac]) == ALLOWED
    assert decide(other, [abac]) == NO_IDENTITY
    assert decide(untagged, [abac]) == NO_IDENTITY


def test_example_username_in_resource():
    own = identity(stmt(resource=f"arn:aws:secretsmanager:*:{OWNER}:secret:${{aws:username}}/*"))
    mine = SECRET.replace("prod/", "alice/")
    assert decide(ctx(res=mine, aws__username="alice"), [own]) == ALLOWED
    assert decide(ctx(res=SECRET, aws__username="alice"), [own]) == NO_IDENTITY
    assert decide(ctx(res=mine), [own]) == NO_IDENTITY  # no aws:username: no match


def test_example_deny_without_secure_transport():
    policies = [
        identity(stmt(action="secretsmanager:*", resource="*")),
        identity(
            stmt(
                "Deny",
                action="secretsmanager:*",
                resource="*",
                Condition={"Bool": {"aws:SecureTransport": "false"}},
            )
        ),
    ]
    assert decide(ctx(aws__SecureTransport=True), policies) == ALLOWED
    assert decide(ctx(aws__SecureTransport=False), policies) == DENY_IDENTITY
    assert decide(ctx(aws__SecureTransport="false"), policies) == DENY_IDENTITY
    assert decide(ctx(), policies) == ALLOWED  # Bool on an absent key is false


def test_example_deny_outside_ip_ranges():
    policies = [
        identity(stmt(action="secretsmanager:*", resource="*")),
        identity(
            stmt(
                "Deny",
                action="*",
                resource="*",
                Condition={"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}},
            )
        ),
    ]
    assert decide(ctx(aws__SourceIp="192.0.2.17"), policies) == ALLOWED
    assert decide(ctx(aws__SourceIp="2001:db8::1"), policies) == ALLOWED
    assert decide(ctx(aws__SourceIp="198.51.100.4"), policies) == DENY_IDENTITY
    assert decide(ctx(), policies) == DENY_IDENTITY  # NotIpAddress on an absent key is true
    assert decide(ctx(aws__SourceIp="not an address"), policies) == DENY_IDENTITY


# ---- policy variables -----------------------------------------------------------------------


def test_variables_are_literal_text_in_old_policy_versions():
    literal = f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:${{aws:username}}"
    for version in ("2008-10-17", None):
        body = {"Statement": [stmt(resource=literal)]}
        if version:
            body["Version"] = version
        policy = parse_policy(json.dumps(body), "identity")
        assert decide(ctx(res=literal, aws__username="alice"), [policy]) == ALLOWED
        assert (
            decide(
                ctx(res=literal.replace("${aws:username}", "alice"), aws__username="alice"),
                [policy],
            )
            == NO_IDENTITY
        )


def test_special_variables_and_defaults():
    star = identity(stmt(resource=f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:a${{*}}b"))
    assert (
        decide(ctx(res=f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:a*b"), [star]) == ALLOWED
    )
    assert (
        decide(ctx(res=f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:axxb"), [star])
        == NO_IDENTITY
    )
    defaulted = identity(
        stmt(
            resource="*", Condition={"StringEquals": {"s:team": "${aws:PrincipalTag/team, 'none'}"}}
        )
    )
    assert decide(ctx(s__team="none"), [defaulted]) == ALLOWED
    assert decide(ctx(s__team="red", aws__PrincipalTag_slash_team="red"), [defaulted]) == ALLOWED
    assert decide(ctx(s__team="red"), [defaulted]) == NO_IDENTITY


def test_a_variable_without_a_value_never_grants_and_always_denies():
    allow = identity(stmt(resource="*", Condition={"StringNotEquals": {"s:x": "${aws:username}"}}))
    assert decide(ctx(s__x="anything"), [allow]) == NO_IDENTITY
    deny = identity(
        stmt(resource="*"),
        stmt("Deny", resource="*", Condition={"StringEquals": {"s:x": "${aws:username}"}}),
    )
    assert decide(ctx(s__x="anything"), [deny]) == DENY_IDENTITY


# ---- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "ending"),
    [
        (NO_IDENTITY, f"because no identity-based policy allows the {GET} action"),
        (NO_RESOURCE, f"because no resource-based policy allows the {GET} action"),
        (DENY_IDENTITY, "with an explicit deny in an identity-based policy"),
        (DENY_RESOURCE, "with an explicit deny in a resource-based policy"),
    ],
)
def test_access_denied_messages_read_as_aws_writes_them(verdict, ending):
    expected = f"User: {ALICE} is not authorized to perform: {GET} on resource: {SECRET} {ending}"
    assert access_denied_message(ctx(), verdict) == expected
    shown = access_denied_message(ctx(), verdict, shown_resource="prod/db")
    assert shown == expected.replace(SECRET, "prod/db")


def test_the_message_leaves_out_a_star_resource():
    request = ctx(principal=SESSION, action="secretsmanager:ListSecrets", res="*")
    assert access_denied_message(request, NO_IDENTITY) == (
        f"User: {SESSION} is not authorized to perform: secretsmanager:ListSecrets because no "
        "identity-based policy allows the secretsmanager:ListSecrets action"
    )


def test_an_allowed_verdict_has_no_denial_message():
    with pytest.raises(ValueError, match="allowed"):
        access_denied_message(ctx(), ALLOWED)
