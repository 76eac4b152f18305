"""DescribeSecret (spec §15.6): which members are present when, and on which secrets it works."""

from __future__ import annotations

import time

from tests.api.helpers import refusal

DAY = 86_400


def members(response: dict) -> set[str]:
    return set(response) - {"ResponseMetadata"}


def midnight_utc(timestamp: float) -> float:
    return timestamp // DAY * DAY


def test_a_bare_secret_has_only_arn_name_and_dates(client):
    arn = client.create_secret(Name="bare")["ARN"]
    described = client.describe_secret(SecretId="bare")
    assert members(described) == {"ARN", "Name", "CreatedDate", "LastChangedDate"}
    assert (described["ARN"], described["Name"]) == (arn, "bare")


def test_a_secret_with_a_value_adds_its_version_map(client):
    version = client.create_secret(Name="valued", SecretString="x")["VersionId"]
    described = client.describe_secret(SecretId="valued")
    assert members(described) == {
        "ARN",
        "Name",
        "CreatedDate",
        "LastChangedDate",
        "VersionIdsToStages",
    }
    assert described["VersionIdsToStages"] == {version: ["AWSCURRENT"]}


def test_a_secret_shows_no_rotation_members_when_rotation_was_never_configured(client):
    client.create_secret(Name="unrotated", SecretString="x")
    described = client.describe_secret(SecretId="unrotated")
    rotation = {
        "RotationEnabled",
        "RotationLambdaARN",
        "RotationRules",
        "LastRotatedDate",
        "NextRotationDate",
    }
    assert not rotation & members(described)


def test_the_description_is_present_only_when_not_empty(client):
    client.create_secret(Name="with", Description="words")
    client.create_secret(Name="without", Description="")
    assert client.describe_secret(SecretId="with")["Description"] == "words"
    assert "Description" not in client.describe_secret(SecretId="without")


def test_tags_are_absent_until_tags_were_ever_set(client):
    client.create_secret(Name="tags")
    assert "Tags" not in client.describe_secret(SecretId="tags")
    client.tag_resource(SecretId="tags", Tags=[{"Key": "env", "Value": "prod"}])
    assert client.describe_secret(SecretId="tags")["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_tags_show_as_an_empty_list_once_every_tag_was_removed(client):
    client.create_secret(Name="tags", Tags=[{"Key": "env", "Value": "prod"}])
    client.untag_resource(SecretId="tags", TagKeys=["env"])
    described = client.describe_secret(SecretId="tags")
    assert described["Tags"] == []


def test_the_type_given_at_creation_is_echoed(client):
    client.create_secret(Name="typed", SecretString="x", Type="partner/thing")
    assert client.describe_secret(SecretId="typed")["Type"] == "partner/thing"


def test_versions_without_labels_are_left_out_of_the_version_map(client):
    client.create_secret(Name="app/db", SecretString="v1")
    second = client.put_secret_value(SecretId="app/db", SecretString="v2")["VersionId"]
    third = client.put_secret_value(SecretId="app/db", SecretString="v3")["VersionId"]
    described = client.describe_secret(SecretId="app/db")
    assert described["VersionIdsToStages"] == {second: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}


def test_a_version_with_several_labels_lists_them_all(client):
    first = client.create_secret(Name="app/db", SecretString="v1")["VersionId"]
    client.update_secret_version_stage(
        SecretId="app/db", VersionStage="BLUE", MoveToVersionId=first
    )
    labels = client.describe_secret(SecretId="app/db")["VersionIdsToStages"][first]
    assert sorted(labels) == ["AWSCURRENT", "BLUE"]


# -- deletion --------------------------------------------------------------------------------------


def test_it_describes_a_secret_scheduled_for_deletion_with_its_deleted_date(client):
    version = client.create_secret(Name="doomed", SecretString="x", Description="d")["VersionId"]
    deletion = client.delete_secret(SecretId="doomed", RecoveryWindowInDays=10)["DeletionDate"]
    described = client.describe_secret(SecretId="doomed")
    assert described["DeletedDate"] == deletion
    assert described["Description"] == "d"
    assert described["VersionIdsToStages"] == {version: ["AWSCURRENT"]}


def test_the_deleted_date_goes_away_on_restore(client):
    client.create_secret(Name="doomed", SecretString="x")
    client.delete_secret(SecretId="doomed", RecoveryWindowInDays=10)
    client.restore_secret(SecretId="doomed")
    assert "DeletedDate" not in client.describe_secret(SecretId="doomed")


def test_a_secret_past_its_recovery_window_cannot_be_described(client, clock):
    client.create_secret(Name="doomed", SecretString="x")
    client.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    assert refusal(client.describe_secret, SecretId="doomed") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )


# -- LastAccessedDate ------------------------------------------------------------------------------


def test_there_is_no_last_accessed_date_before_the_first_read(client):
    client.create_secret(Name="unread", SecretString="x")
    client.describe_secret(SecretId="unread")
    client.list_secret_version_ids(SecretId="unread")
    assert "LastAccessedDate" not in client.describe_secret(SecretId="unread")


def test_reading_the_value_sets_last_accessed_date_to_midnight_utc(client):
    client.create_secret(Name="read", SecretString="x")
    day_before = midnight_utc(time.time())
    client.get_secret_value(SecretId="read")
    day_after = midnight_utc(time.time())
    accessed = client.describe_secret(SecretId="read")["LastAccessedDate"].timestamp()
    # A read that straddles midnight may land on either day.
    assert accessed in {day_before, day_after}


def test_last_accessed_date_moves_to_the_day_of_the_latest_read(client, clock):
    client.create_secret(Name="read", SecretString="x")
    client.get_secret_value(SecretId="read")
    first = client.describe_secret(SecretId="read")["LastAccessedDate"]
    clock.advance(3 * DAY)
    client.get_secret_value(SecretId="read")
    second = client.describe_secret(SecretId="read")["LastAccessedDate"]
    assert (second - first).total_seconds() == 3 * DAY


def test_describing_does_not_move_last_accessed_date(client, clock):
    client.create_secret(Name="read", SecretString="x")
    client.get_secret_value(SecretId="read")
    first = client.describe_secret(SecretId="read")["LastAccessedDate"]
    clock.advance(2 * DAY)
    assert client.describe_secret(SecretId="read")["LastAccessedDate"] == first


# -- addressing ------------------------------------------------------------------------------------


def test_it_describes_a_secret_by_full_and_by_partial_arn(client):
    arn = client.create_secret(Name="app/db", SecretString="x")["ARN"]
    partial = arn[: -len("-XXXXXX")]
    assert client.describe_secret(SecretId=arn)["Name"] == "app/db"
    assert client.describe_secret(SecretId=partial)["ARN"] == arn


def test_it_answers_resource_not_found_for_an_unknown_secret(client):
    assert refusal(client.describe_secret, SecretId="nowhere") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )


def test_it_answers_resource_not_found_for_a_wrong_arn_suffix(client):
    arn = client.create_secret(Name="app/db", SecretString="x")["ARN"]
    wrong = arn[:-6] + ("aaaaaa" if arn[-6:] != "aaaaaa" else "bbbbbb")
    code, _ = refusal(client.describe_secret, SecretId=wrong)
    assert code == "ResourceNotFoundException"


def test_it_refuses_an_invalid_secret_id_before_looking_it_up(client):
    assert refusal(client.describe_secret, SecretId="no such?") == (
        "ValidationException",
        (
            "Invalid name. Must be a valid name containing alphanumeric characters, "
            "or any of the following: -/_+=.@!"
        ),
    )


def test_reading_the_value_does_not_change_last_changed_date(client, clock):
    client.create_secret(Name="read", SecretString="x")
    changed = client.describe_secret(SecretId="read")["LastChangedDate"]
    clock.advance(DAY)
    client.get_secret_value(SecretId="read")
    assert client.describe_secret(SecretId="read")["LastChangedDate"] == changed
