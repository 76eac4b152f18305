"""Properties of the policy language that must hold for any document and request."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.auth.policy import MalformedPolicy, RequestContext, evaluate, parse_policy

OWNER = "111122223333"
OTHER = "444455556666"
PRINCIPALS = [
    (f"arn:aws:iam::{OWNER}:user/alice", OWNER, None),
    (f"arn:aws:iam::{OTHER}:user/bob", OTHER, None),
    (f"arn:aws:sts::{OWNER}:assumed-role/app/s1", OWNER, f"arn:aws:iam::{OWNER}:role/app"),
    (f"arn:aws:iam::{OWNER}:root", OWNER, None),
]
SECRETS = [
    f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:prod/db-AbCdEf",
    f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:alice/key-123456",
    "*",
]
ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:ListSecrets", "iam:CreateUser"]

action_patterns = st.sampled_from(["*", "secretsmanager:*", "secretsmanager:Get*", *ACTIONS])
resource_patterns = st.sampled_from(
    [
        "*",
        f"arn:aws:secretsmanager:*:{OWNER}:secret:prod/*",
        "arn:aws:secretsmanager:*:*:secret:${aws:username}/*",
        *SECRETS[:2],
    ]
)
principal_elements = st.sampled_from(
    [
        "*",
        {"AWS": OWNER},
        {"AWS": OTHER},
        {"AWS": PRINCIPALS[0][0]},
        {"AWS": PRINCIPALS[2][2]},
        {"AWS": PRINCIPALS[1][0]},
    ]
)
conditions = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"StringEquals": st.fixed_dictionaries({"aws:username": st.sampled_from(["alice", "bob"])})}
    ),
    st.fixed_dictionaries(
        {"Bool": st.fixed_dictionaries({"aws:SecureTransport": st.sampled_from(["true", "false"])})}
    ),
    st.fixed_dictionaries(
        {"StringNotEquals": st.fixed_dictionaries({"s:tag": st.just("${aws:PrincipalTag/team}")})}
    ),
    st.fixed_dictionaries(
        {"ForAllValues:StringLike": st.fixed_dictionaries({"aws:TagKeys": st.just(["env*"])})}
    ),
)


@st.composite
def statements(draw, *, with_principal: bool, effect: str | None = None):
    body = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        draw(st.sampled_from(["Action", "NotAction"])): draw(
            st.lists(action_patterns, min_size=1, max_size=2)
        ),
        draw(st.sampled_from(["Resource", "NotResource"])): draw(
            st.lists(resource_patterns, min_size=1, max_size=2)
        ),
    }
    if with_principal:
        body[draw(st.sampled_from(["Principal", "Principal", "NotPrincipal"]))] = draw(
            principal_elements
        )
    condition = draw(conditions)
    if condition:
        body["Condition"] = condition
    return body


@st.composite
def contexts(draw):
    principal, account, role = draw(st.sampled_from(PRINCIPALS))
    keys = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "aws:username": st.sampled_from(["alice", "bob"]),
                "aws:SecureTransport": st.booleans(),
                "s:tag": st.sampled_from(["red", "blue"]),
                "aws:PrincipalTag/team": st.sampled_from(["red", "blue"]),
                "aws:TagKeys": st.lists(
                    st.sampled_from(["env", "environment", "team"]), max_size=3
                ),
            },
        )
    )
    return RequestContext(
        action=draw(st.sampled_from(ACTIONS)),
        resource=draw(st.sampled_from(SECRETS)),
        principal_arn=principal,
        principal_account=account,
        keys=keys,
        role_arn=role,
    )


def policy(items, kind):
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": items}), kind)


def decide(ctx, identity_items, resource_items, owner):
    identity = [policy(identity_items, "identity")] if identity_items else []
    resource = policy(resource_items, "resource") if resource_items else None
    return evaluate(ctx, identity=identity, resource=resource, resource_account=owner)


scenario = {
    "ctx": contexts(),
    "identity_items": st.lists(statements(with_principal=False), max_size=3),
    "resource_items": st.lists(statements(with_principal=True), max_size=3),
    "owner": st.sampled_from([OWNER, OTHER]),
}


@settings(max_examples=300, deadline=None)
@given(
    **scenario,
    extra=statements(with_principal=False, effect="Deny"),
    to_resource=st.booleans(),
    extra_resource=statements(with_principal=True, effect="Deny"),
)
def test_adding_a_deny_never_turns_a_deny_into_an_allow(  # noqa: PLR0917 - hypothesis passes them
    ctx, identity_items, resource_items, owner, extra, to_resource, extra_resource
):
    before = decide(ctx, identity_items, resource_items, owner)
    if to_resource:
        after = decide(ctx, identity_items, [*resource_items, extra_resource], owner)
    else:
        after = decide(ctx, [*identity_items, extra], resource_items, owner)
    assert before.allowed or not after.allowed
    assert after.allowed <= before.allowed


@settings(max_examples=300, deadline=None)
@given(**scenario, data=st.data())
def test_removing_an_allow_never_turns_a_deny_into_an_allow(
    ctx, identity_items, resource_items, owner, data
):
    before = decide(ctx, identity_items, resource_items, owner)
    pool = [("identity", i) for i, s in enumerate(identity_items) if s["Effect"] == "Allow"]
    pool += [("resource", i) for i, s in enumerate(resource_items) if s["Effect"] == "Allow"]
    if not pool:
        return
    side, index = data.draw(st.sampled_from(pool))
    if side == "identity":
        identity_items = identity_items[:index] + identity_items[index + 1 :]
    else:
        resource_items = resource_items[:index] + resource_items[index + 1 :]
    after = decide(ctx, identity_items, resource_items, owner)
    assert before.allowed or not after.allowed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
policy_like = st.fixed_dictionaries(
    {},
    optional={
        "Version": st.sampled_from(["2012-10-17", "2008-10-17", "x"]) | json_values,
        "Statement": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "Effect": st.sampled_from(["Allow", "Deny"]) | json_values,
                    "Action": st.sampled_from(["s:A", "*", ["s:*"]]) | json_values,
                    "Resource": st.sampled_from(["*", "arn:aws:s:::x", "${aws:username}"])
                    | json_values,
                    "Principal": principal_elements | json_values,
                    "Condition": conditions | json_values,
                    "Sid": json_values,
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(document=policy_like | json_values, kind=st.sampled_from(["identity", "resource", "trust"]))
def test_parse_raises_only_malformed_policy_on_any_json(document, kind):
    try:
        parse_policy(json.dumps(document), kind)
    except MalformedPolicy as exc:
        message = exc.message
    else:
        message = "parsed"
    assert message


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_parse_raises_only_malformed_policy_on_any_text(text):
    try:
        parse_policy(text, "identity")
    except MalformedPolicy as exc:
        message = exc.message
    else:
        message = "parsed"
    assert message
