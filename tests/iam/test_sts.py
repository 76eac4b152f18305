"""GetCallerIdentity and AssumeRole: trust evaluation and the temporary credentials."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from tests.iam.conftest import ACCOUNT, ROOT, T0, Iam
from tests.iam.helpers import allow, error_of, trust

from strongroom.crypto.envelope import aad_for_access_key
from strongroom.errors import AccessDenied, ValidationError

ACCOUNT_ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def _role(iam: Iam, name: str, trusted: str, **request: object) -> str:
    role = iam("CreateRole", RoleName=name, AssumeRolePolicyDocument=trust(trusted), **request)
    return str(role["Role"]["Arn"])


def test_get_caller_identity_of_the_root_user_and_session(iam: Iam):
    alice = iam.user("alice")
    session = iam.session(alice, _role(iam, "r", alice.arn), "work")
    role_id = iam("GetRole", RoleName="r")["Role"]["RoleId"]

    assert iam("GetCallerIdentity", ROOT) == {
        "UserId": ACCOUNT,
        "Account": ACCOUNT,
        "Arn": ACCOUNT_ROOT,
    }
    assert iam("GetCallerIdentity", alice) == {
        "UserId": alice.user_id,
        "Account": ACCOUNT,
        "Arn": alice.arn,
    }
    assert iam("GetCallerIdentity", session) == {
        "UserId": f"{role_id}:work",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/r/work",
    }


def test_a_user_named_in_the_trust_policy_gets_credentials_stored_for_the_session(iam: Iam):
    alice = iam.user("alice")
    role_arn = _role(iam, "deploy", alice.arn, Path="/ci/")
    role_id = iam("GetRole", RoleName="deploy")["Role"]["RoleId"]

    out = iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="build-7")

    creds, assumed = out["Credentials"], out["AssumedRoleUser"]
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/build-7"  # no path in it
    assert assumed == {"AssumedRoleId": f"{role_id}:build-7", "Arn": session_arn}
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", creds["AccessKeyId"])
    assert len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) >= 200
    assert creds["Expiration"] == T0 + 3600
    with iam.store.read() as tx:
        row = tx.access_key(creds["AccessKeyId"])
    assert row is not None
    assert row.principal_arn == session_arn
    assert row.session_token_hash == hashlib.sha256(creds["SessionToken"].encode()).hexdigest()
    assert row.expires_at == T0 + 3600
    assert (row.user_id, row.role_arn, row.session_name) == (
        f"{role_id}:build-7",
        role_arn,
        "build-7",
    )
    assert row.user_name is None
    opened = iam.sealer.open(row.sealed_secret, aad_for_access_key(row.access_key_id))
    assert opened.decode() == creds["SecretAccessKey"]
    assert creds["SessionToken"].encode() not in row.sealed_secret


def test_a_caller_the_trust_policy_does_not_name_is_denied(iam: Iam):
    iam.user("alice")
    bob = iam.user("bob")
    role_arn = _role(iam, "r", f"arn:aws:iam::{ACCOUNT}:user/alice")

    error = error_of(lambda: iam("AssumeRole", bob, RoleArn=role_arn, RoleSessionName="s"))

    assert isinstance(error, AccessDenied)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == (
        f"User: {bob.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


def test_trusting_the_account_needs_an_identity_policy_that_allows(iam: Iam):
    alice = iam.user("alice")
    role_arn = _role(iam, "r", ACCOUNT_ROOT)

    denied = error_of(lambda: iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s"))
    iam("PutUserPolicy", UserName="alice", PolicyName="p", PolicyDocument=allow("sts:AssumeRole"))
    allowed = iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s")

    assert isinstance(denied, AccessDenied)
    assert allowed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/r/s")


def test_an_explicit_deny_in_the_callers_policies_wins(iam: Iam):
    alice = iam.user("alice")
    role_arn = _role(iam, "r", alice.arn)
    deny = {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": role_arn}
    document = json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    iam("PutUserPolicy", UserName="alice", PolicyName="no", PolicyDocument=document)

    error = error_of(lambda: iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s"))

    assert isinstance(error, AccessDenied)


def test_an_unknown_role_is_access_denied_not_no_such_entity(iam: Iam):
    alice = iam.user("alice")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/nope"

    error = error_of(lambda: iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s"))

    assert isinstance(error, AccessDenied)
    assert role_arn in error.message


def test_a_role_arn_with_the_wrong_path_is_denied(iam: Iam):
    alice = iam.user("alice")
    _role(iam, "r", alice.arn, Path="/ci/")

    error = error_of(
        lambda: iam(
            "AssumeRole", alice, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="s"
        )
    )

    assert isinstance(error, AccessDenied)


def test_the_root_may_not_assume_roles(iam: Iam):
    role_arn = _role(iam, "r", ACCOUNT_ROOT)

    error = error_of(lambda: iam("AssumeRole", ROOT, RoleArn=role_arn, RoleSessionName="s"))

    assert isinstance(error, AccessDenied)
    assert error.message == "Roles may not be assumed by root accounts."


def test_duration_is_capped_by_the_roles_max_session_duration(iam: Iam):
    alice = iam.user("alice")
    role_arn = _role(iam, "r", alice.arn, MaxSessionDuration=7200)

    ok = iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s", DurationSeconds=7200)
    error = error_of(
        lambda: iam(
            "AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s", DurationSeconds=7201
        )
    )

    assert ok["Credentials"]["Expiration"] == T0 + 7200
    assert isinstance(error, ValidationError)
    assert error.message == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    )


def test_role_chaining_is_limited_to_an_hour(iam: Iam):
    alice = iam.user("alice")
    first = iam.session(alice, _role(iam, "first", alice.arn))
    second_arn = _role(iam, "second", first.arn, MaxSessionDuration=7200)

    error = error_of(
        lambda: iam(
            "AssumeRole", first, RoleArn=second_arn, RoleSessionName="s", DurationSeconds=3601
        )
    )
    chained = iam("AssumeRole", first, RoleArn=second_arn, RoleSessionName="s")

    assert error.message == (
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining."
    )
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/second/s"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("Policy", '{"Version":"2012-10-17","Statement":[]}'),
        ("PolicyArns", [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]),
        ("Tags", [{"Key": "k", "Value": "v"}]),
    ],
)
def test_session_policies_and_tags_are_refused_not_ignored(iam: Iam, member: str, value: object):
    alice = iam.user("alice")
    role_arn = _role(iam, "r", alice.arn)

    error = error_of(
        lambda: iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s", **{member: value})
    )

    assert isinstance(error, ValidationError)
    assert member in error.message
    with iam.store.read() as tx:
        assert tx.identity_policies(f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s") == []


def test_a_session_of_a_deleted_role_gets_no_policies_even_from_a_new_role_of_that_name(
    iam: Iam,
):
    alice = iam.user("alice")
    session = iam.session(alice, _role(iam, "r", alice.arn))
    iam("DeleteRole", RoleName="r")
    _role(iam, "r", alice.arn)
    iam("PutRolePolicy", RoleName="r", PolicyName="p", PolicyDocument=allow("s3:*"))

    with iam.store.read() as tx:
        old = tx.identity_policies(session.arn, session.user_id)
        fresh = iam.session(alice, iam("GetRole", RoleName="r")["Role"]["Arn"], "s2")
        new = tx.identity_policies(fresh.arn, fresh.user_id)
        stored = tx.access_key(str(session.access_key_id))

    assert old == []
    assert new == [allow("s3:*")]
    assert stored is not None  # left to expire, as AWS does


def test_a_session_is_denied_what_its_role_is_not_trusted_for(iam: Iam):
    alice = iam.user("alice")
    session = iam.session(alice, _role(iam, "r", alice.arn))
    other = _role(iam, "other", alice.arn)

    error = error_of(lambda: iam("AssumeRole", session, RoleArn=other, RoleSessionName="x"))

    assert isinstance(error, AccessDenied)
    assert error.message.startswith(f"User: {session.arn} is not authorized")


def test_trust_policy_conditions_see_the_external_id(iam: Iam):
    alice = iam.user("alice")
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": alice.arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "secret-handshake"}},
    }
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    role_arn = iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=document)["Role"]["Arn"]

    denied = error_of(lambda: iam("AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s"))
    allowed = iam(
        "AssumeRole", alice, RoleArn=role_arn, RoleSessionName="s", ExternalId="secret-handshake"
    )

    assert isinstance(denied, AccessDenied)
    assert "Credentials" in allowed
