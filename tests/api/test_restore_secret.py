"""RestoreSecret (spec §7.3): a secret scheduled for deletion comes back whole."""

from __future__ import annotations

from tests.api.helpers import body, refusal

DAY = 86_400
NOT_FOUND = ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


def scheduled_secret(client) -> dict:
    created = client.create_secret(
        Name="app/db",
        SecretString="s3cr3t",
        Description="the database",
        Tags=[{"Key": "env", "Value": "prod"}],
    )
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    return created


def test_it_answers_arn_and_name(client):
    created = scheduled_secret(client)
    restored = client.restore_secret(SecretId="app/db")
    assert body(restored) == {"ARN": created["ARN"], "Name": "app/db"}


def test_it_removes_the_deleted_date_and_keeps_everything_else(client):
    scheduled_secret(client)
    before = client.describe_secret(SecretId="app/db")
    client.restore_secret(SecretId="app/db")
    after = client.describe_secret(SecretId="app/db")
    assert "DeletedDate" in before
    assert "DeletedDate" not in after
    for member in ("ARN", "Name", "Description", "Tags", "VersionIdsToStages", "CreatedDate"):
        assert after[member] == before[member]


def test_every_operation_works_again_after_a_restore(client):
    created = scheduled_secret(client)
    client.restore_secret(SecretId="app/db")
    got = client.get_secret_value(SecretId="app/db")
    assert (got["SecretString"], got["VersionId"]) == ("s3cr3t", created["VersionId"])
    client.put_secret_value(SecretId="app/db", SecretString="next")
    client.update_secret(SecretId="app/db", Description="still here")
    client.tag_resource(SecretId="app/db", Tags=[{"Key": "team", "Value": "core"}])
    client.untag_resource(SecretId="app/db", TagKeys=["env"])
    versions = client.list_secret_version_ids(SecretId="app/db")["Versions"]
    assert len(versions) == 2
    described = client.describe_secret(SecretId="app/db")
    assert described["Tags"] == [{"Key": "team", "Value": "core"}]
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "next"


def test_a_restored_secret_is_listed_again(client):
    scheduled_secret(client)
    assert client.list_secrets()["SecretList"] == []
    client.restore_secret(SecretId="app/db")
    assert [entry["Name"] for entry in client.list_secrets()["SecretList"]] == ["app/db"]


def test_a_restored_secret_can_be_scheduled_for_deletion_again(client, clock):
    scheduled_secret(client)
    client.restore_secret(SecretId="app/db")
    clock.advance(DAY)
    deleted = client.delete_secret(SecretId="app/db", RecoveryWindowInDays=10)
    described = client.describe_secret(SecretId="app/db")
    assert described["DeletedDate"] == deleted["DeletionDate"]


def test_a_restored_secret_outlives_its_old_deletion_date(client, clock):
    scheduled_secret(client)
    client.restore_secret(SecretId="app/db")
    clock.advance(30 * DAY)
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "s3cr3t"


def test_it_restores_a_secret_named_by_its_arn(client):
    created = scheduled_secret(client)
    client.restore_secret(SecretId=created["ARN"])
    assert "DeletedDate" not in client.describe_secret(SecretId="app/db")


def test_restoring_a_secret_that_is_not_scheduled_for_deletion_changes_nothing(client):
    # UNCONFIRMED against AWS (spec §7.3, §19.9); the emulators answer success.
    created = client.create_secret(Name="app/db", SecretString="x")
    before = client.describe_secret(SecretId="app/db")
    restored = client.restore_secret(SecretId="app/db")
    assert body(restored) == {"ARN": created["ARN"], "Name": "app/db"}
    assert body(client.describe_secret(SecretId="app/db")) == body(before)


def test_it_answers_resource_not_found_for_an_unknown_secret(client):
    assert refusal(client.restore_secret, SecretId="nowhere") == NOT_FOUND


def test_it_cannot_restore_a_secret_past_its_recovery_window(client, clock):
    scheduled_secret(client)
    clock.advance(7 * DAY + 1)
    assert refusal(client.restore_secret, SecretId="app/db") == NOT_FOUND


def test_it_cannot_restore_a_force_deleted_secret(client):
    client.create_secret(Name="app/db", SecretString="x")
    client.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    assert refusal(client.restore_secret, SecretId="app/db") == NOT_FOUND


def test_it_refuses_an_invalid_secret_id(client):
    code, _ = refusal(client.restore_secret, SecretId="no*such")
    assert code == "ValidationException"
