"""The IAM part of the storage contract (``storage.base``), held against every backend."""

from __future__ import annotations

import pytest

from strongroom.storage.base import (
    AccessKeyRow,
    AlreadyExists,
    IamRoleRow,
    IamUserRow,
    ManagedPolicyRow,
    Transaction,
)
from strongroom.storage.sql import SqlStore

ACCOUNT = "111122223333"
T0 = 1_700_000_000.0


def user(tx: Transaction, name: str, user_id: str | None = None, path: str = "/") -> IamUserRow:
    row = IamUserRow(
        user_id=user_id or f"AIDA{name.upper():0<17}"[:21],
        account_id=ACCOUNT,
        name=name,
        path=path,
        arn=f"arn:aws:iam::{ACCOUNT}:user{path}{name}",
        created_at=T0,
    )
    tx.insert_iam_user(row)
    return row


def role(tx: Transaction, name: str, role_id: str) -> IamRoleRow:
    row = IamRoleRow(
        role_id=role_id,
        account_id=ACCOUNT,
        name=name,
        path="/",
        arn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
        created_at=T0,
        trust_policy="{}",
        max_session_duration=3600,
    )
    tx.insert_iam_role(row)
    return row


def policy(tx: Transaction, name: str, document: str, path: str = "/") -> ManagedPolicyRow:
    row = ManagedPolicyRow(
        policy_id=f"ANPA{name.upper():0<17}"[:21],
        account_id=ACCOUNT,
        name=name,
        path=path,
        arn=f"arn:aws:iam::{ACCOUNT}:policy{path}{name}",
        default_version="v1",
        created_at=T0,
        updated_at=T0,
    )
    tx.insert_managed_policy(row, document)
    return row


def session_arn(role_name: str, session: str = "s") -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session}"


def test_user_names_are_unique_and_found_regardless_of_case(store: SqlStore):
    with store.write() as tx:
        alice = user(tx, "alice")
        with pytest.raises(AlreadyExists):
            user(tx, "ALICE", user_id="AIDAOTHER000000000000")

    with store.read() as tx:
        assert tx.iam_user(ACCOUNT, "Alice") == alice
        assert tx.iam_user("444455556666", "alice") is None
        assert tx.iam_user_by_arn(alice.arn) == alice


def test_list_users_is_keyset_paged_by_lower_cased_name_and_filtered_by_path(store: SqlStore):
    with store.write() as tx:
        for name, path in (("carol", "/"), ("Bob", "/eng/"), ("alice", "/eng/web/")):
            user(tx, name, path=path)

    with store.read() as tx:
        first = tx.list_iam_users(ACCOUNT, "/", None, 2)
        rest = tx.list_iam_users(ACCOUNT, "/", first[-1].name.lower(), 2)
        eng = tx.list_iam_users(ACCOUNT, "/eng/", None, 10)
        # "%" and "_" in a prefix are plain characters, not patterns.
        none = tx.list_iam_users(ACCOUNT, "/e%/", None, 10)

    assert [u.name for u in first] == ["alice", "Bob"]
    assert [u.name for u in rest] == ["carol"]
    assert [u.name for u in eng] == ["alice", "Bob"]
    assert none == []


def test_identity_policies_of_a_user_are_inline_then_attached_default_versions(store: SqlStore):
    with store.write() as tx:
        alice, bob = user(tx, "alice"), user(tx, "bob")
        tx.put_inline_policy(alice.user_id, "b-inline", "inline-b")
        tx.put_inline_policy(alice.user_id, "a-inline", "inline-a")
        tx.put_inline_policy(bob.user_id, "x", "bobs")
        managed = policy(tx, "managed", "managed-doc")
        tx.attach_policy(alice.user_id, managed.policy_id)
        tx.attach_policy(alice.user_id, managed.policy_id)  # idempotent

    with store.read() as tx:
        got = tx.identity_policies(alice.arn)
        pinned = tx.identity_policies(alice.arn, alice.user_id)
        wrong_id = tx.identity_policies(alice.arn, "AIDASOMEONEELSE000000")
        root = tx.identity_policies(f"arn:aws:iam::{ACCOUNT}:root")
        unknown = tx.identity_policies(f"arn:aws:iam::{ACCOUNT}:user/nobody")

    assert got == ["inline-a", "inline-b", "managed-doc"]
    assert pinned == got
    assert wrong_id == []
    assert root == unknown == []


def test_identity_policies_of_a_session_are_its_roles_pinned_to_the_role_id(store: SqlStore):
    with store.write() as tx:
        deploy = role(tx, "deploy", "AROADEPLOY00000000000")
        tx.put_inline_policy(deploy.role_id, "p", "role-inline")
        tx.attach_policy(deploy.role_id, policy(tx, "m", "role-managed").policy_id)

    with store.read() as tx:
        got = tx.identity_policies(session_arn("deploy"))
        pinned = tx.identity_policies(session_arn("deploy"), f"{deploy.role_id}:s")
        stale = tx.identity_policies(session_arn("deploy"), "AROAOLDROLE0000000000:s")
        other = tx.identity_policies(session_arn("nope"))

    assert got == pinned == ["role-inline", "role-managed"]
    assert stale == other == []


def test_principal_tags_of_a_user_and_of_a_session(store: SqlStore):
    with store.write() as tx:
        alice = user(tx, "alice")
        deploy = role(tx, "deploy", "AROADEPLOY00000000000")
        tx.set_iam_tags(alice.user_id, [("team", "web"), ("level", "2")])
        tx.set_iam_tags(deploy.role_id, [("env", "prod")])

    with store.read() as tx:
        assert tx.principal_tags(alice.arn) == {"team": "web", "level": "2"}
        assert tx.iam_tags(alice.user_id) == [("team", "web"), ("level", "2")]
        assert tx.principal_tags(session_arn("deploy")) == {"env": "prod"}
        assert tx.principal_tags(f"arn:aws:iam::{ACCOUNT}:root") == {}


def test_deleting_a_user_or_role_takes_its_tags(store: SqlStore):
    with store.write() as tx:
        alice = user(tx, "alice")
        deploy = role(tx, "deploy", "AROADEPLOY00000000000")
        tx.set_iam_tags(alice.user_id, [("a", "1")])
        tx.set_iam_tags(deploy.role_id, [("b", "2")])
        tx.delete_iam_user(alice.user_id)
        tx.delete_iam_role(deploy.role_id)

    with store.read() as tx:
        assert tx.iam_user(ACCOUNT, "alice") is None
        assert tx.iam_role(ACCOUNT, "deploy") is None
        assert tx.iam_tags(alice.user_id) == tx.iam_tags(deploy.role_id) == []


def test_managed_policies_count_attachments_and_delete_with_their_versions(store: SqlStore):
    with store.write() as tx:
        p = policy(tx, "p", "doc", path="/x/")
        q = policy(tx, "q", "doc-q")
        tx.attach_policy("AIDAONE", p.policy_id)
        tx.attach_policy("AROATWO", p.policy_id)

    with store.read() as tx:
        got = tx.managed_policy(p.arn)
        attached_only = tx.list_managed_policies(
            ACCOUNT, "/", only_attached=True, after=None, limit=10
        )
        everything = tx.list_managed_policies(
            ACCOUNT, "/", only_attached=False, after=None, limit=10
        )
        version = tx.policy_version(p.policy_id, "v1")
        attached_to_one = tx.attached_policies("AIDAONE")

    assert got is not None
    assert got.attachment_count == 2
    assert [row.name for row in attached_only] == ["p"]
    assert [(row.name, row.attachment_count) for row in everything] == [("p", 2), ("q", 0)]
    assert version == ("doc", T0)
    assert [row.arn for row in attached_to_one] == [p.arn]

    with store.write() as tx:
        assert tx.detach_policy("AIDAONE", p.policy_id)
        assert not tx.detach_policy("AIDAONE", p.policy_id)
        tx.delete_managed_policy(p.policy_id)
    with store.read() as tx:
        assert tx.managed_policy(p.arn) is None
        assert tx.policy_version(p.policy_id, "v1") is None
        assert tx.attached_policies("AROATWO") == []
        assert tx.managed_policy(q.arn) is not None


def test_inline_policies_put_replace_list_delete(store: SqlStore):
    with store.write() as tx:
        tx.put_inline_policy("AIDAONE", "b", "1")
        tx.put_inline_policy("AIDAONE", "a", "2")
        tx.put_inline_policy("AIDAONE", "b", "3")

    with store.write() as tx:
        assert tx.inline_policy_names("AIDAONE") == ["a", "b"]
        assert tx.inline_policy("AIDAONE", "b") == "3"
        assert tx.delete_inline_policy("AIDAONE", "a")
        assert not tx.delete_inline_policy("AIDAONE", "a")
        assert tx.inline_policy("AIDAONE", "a") is None


def _key(key_id: str, **values: object) -> AccessKeyRow:
    return AccessKeyRow(
        access_key_id=key_id,
        account_id=ACCOUNT,
        principal_arn=str(values.pop("principal_arn", f"arn:aws:iam::{ACCOUNT}:user/alice")),
        sealed_secret=b"sealed",
        master_key_id="mk-1",
        created_at=float(values.pop("created_at", T0)),  # type: ignore[arg-type]
        **values,  # type: ignore[arg-type]
    )


def test_access_keys_carry_user_id_role_and_session(store: SqlStore):
    session = _key(
        "ASIA0000000000000001",
        principal_arn=session_arn("deploy", "build"),
        session_token_hash="ab" * 32,
        expires_at=T0 + 900,
        user_id="AROADEPLOY00000000000:build",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/deploy",
        session_name="build",
    )
    with store.write() as tx:
        tx.insert_access_key(session)
        tx.insert_access_key(_key("AKIA0000000000000002", user_name="alice", user_id="AIDAA"))
        tx.insert_access_key(
            _key("AKIA0000000000000001", user_name="alice", user_id="AIDAA", created_at=T0 - 1)
        )

    with store.read() as tx:
        assert tx.access_key(session.access_key_id) == session
        keys = tx.user_access_keys("AIDAA")

    assert [k.access_key_id for k in keys] == ["AKIA0000000000000001", "AKIA0000000000000002"]


def test_key_status_delete_and_expired_sessions(store: SqlStore):
    with store.write() as tx:
        tx.insert_access_key(_key("AKIA0000000000000001", user_id="AIDAA"))
        tx.insert_access_key(_key("ASIA0000000000000001", expires_at=T0 + 10))
        tx.insert_access_key(_key("ASIA0000000000000002", expires_at=T0 + 20))
        tx.set_access_key_status("AKIA0000000000000001", "Inactive")

    with store.write() as tx:
        assert tx.delete_expired_sessions(T0 + 10) == 1
        tx.delete_access_key("ASIA0000000000000002")
    with store.read() as tx:
        kept = tx.access_key("AKIA0000000000000001")
        assert tx.access_key("ASIA0000000000000001") is None
        assert tx.access_key("ASIA0000000000000002") is None
    assert kept is not None
    assert kept.status == "Inactive"
