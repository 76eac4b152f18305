"""CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey."""

from __future__ import annotations

import re

from tests.iam.conftest import ROOT, T0, Iam
from tests.iam.helpers import error_of

from strongroom.crypto.envelope import aad_for_access_key
from strongroom.errors import InvalidInput, LimitExceeded, NoSuchEntity


def test_a_new_key_is_akia_plus_16_with_a_40_character_secret_stored_sealed(iam: Iam):
    iam("CreateUser", UserName="alice")

    key = iam("CreateAccessKey", UserName="alice")["AccessKey"]

    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key["AccessKeyId"])
    assert len(key["SecretAccessKey"]) == 40
    assert (key["UserName"], key["Status"], key["CreateDate"]) == ("alice", "Active", T0)
    with iam.store.read() as tx:
        row = tx.access_key(key["AccessKeyId"])
    assert row is not None
    assert key["SecretAccessKey"].encode() not in row.sealed_secret
    opened = iam.sealer.open(row.sealed_secret, aad_for_access_key(row.access_key_id))
    assert opened.decode() == key["SecretAccessKey"]
    user_id = iam("GetUser", UserName="alice")["User"]["UserId"]
    assert (row.user_name, row.user_id, row.principal_arn) == (
        "alice",
        user_id,
        iam("GetUser", UserName="alice")["User"]["Arn"],
    )
    assert row.session_token_hash is None


def test_a_third_key_exceeds_the_quota_even_when_one_is_inactive(iam: Iam):
    iam("CreateUser", UserName="alice")
    first = iam("CreateAccessKey", UserName="alice")["AccessKey"]["AccessKeyId"]
    iam("CreateAccessKey", UserName="alice")
    iam("UpdateAccessKey", UserName="alice", AccessKeyId=first, Status="Inactive")

    error = error_of(lambda: iam("CreateAccessKey", UserName="alice"))

    assert isinstance(error, LimitExceeded)
    assert (error.code, error.status) == ("LimitExceeded", 409)
    assert error.message == "Cannot exceed quota for AccessKeysPerUser: 2"
    iam("DeleteAccessKey", UserName="alice", AccessKeyId=first)
    iam("CreateAccessKey", UserName="alice")


def test_without_user_name_keys_are_the_callers_own(iam: Iam):
    alice = iam.user("alice")

    created = iam("CreateAccessKey", alice)["AccessKey"]
    listed = iam("ListAccessKeys", alice)["AccessKeyMetadata"]

    assert created["UserName"] == "alice"
    assert {k["AccessKeyId"] for k in listed} == {alice.access_key_id, created["AccessKeyId"]}
    assert all("SecretAccessKey" not in k for k in listed)


def test_list_access_keys_shows_status_changes(iam: Iam):
    alice = iam.user("alice")

    iam("UpdateAccessKey", UserName="alice", AccessKeyId=alice.access_key_id, Status="Inactive")
    listed = iam("ListAccessKeys", UserName="alice")

    assert listed["AccessKeyMetadata"] == [
        {
            "UserName": "alice",
            "AccessKeyId": alice.access_key_id,
            "Status": "Inactive",
            "CreateDate": T0,
        }
    ]
    assert listed["IsTruncated"] is False
    with iam.store.read() as tx:
        row = tx.access_key(str(alice.access_key_id))
    assert row is not None
    assert row.status == "Inactive"


def test_another_users_key_cannot_be_found(iam: Iam):
    alice = iam.user("alice")
    iam.user("bob")

    error = error_of(
        lambda: iam("DeleteAccessKey", UserName="bob", AccessKeyId=str(alice.access_key_id))
    )

    assert isinstance(error, NoSuchEntity)
    assert error.message == f"The Access Key with id {alice.access_key_id} cannot be found."
    assert len(iam("ListAccessKeys", UserName="alice")["AccessKeyMetadata"]) == 1


def test_deleting_a_key_removes_it(iam: Iam):
    alice = iam.user("alice")

    iam("DeleteAccessKey", alice, AccessKeyId=str(alice.access_key_id))

    assert iam("ListAccessKeys", UserName="alice")["AccessKeyMetadata"] == []
    with iam.store.read() as tx:
        assert tx.access_key(str(alice.access_key_id)) is None
    iam("DeleteUser", UserName="alice")


def test_keys_of_an_unknown_user_are_no_such_entity(iam: Iam):
    error = error_of(lambda: iam("CreateAccessKey", UserName="nobody"))

    assert error.message == "The user with name nobody cannot be found."


def test_the_root_without_user_name_is_refused_clearly(iam: Iam):
    error = error_of(lambda: iam("CreateAccessKey", ROOT))

    assert isinstance(error, InvalidInput)
    assert "UserName" in error.message
