"""UpdateSecretVersionStage: moving and removing staging labels (spec §3.3, §3.4)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from tests.api.helpers import error_of, token

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"


def labels(client, secret_id: str) -> dict[str, list[str]]:
    """Labelled versions, as DescribeSecret shows them (deprecated ones are left out)."""
    return client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})


def all_versions(client, secret_id: str) -> list[dict]:
    return client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]


def put(client, secret_id: str, value: str, stages: list[str] | None = None) -> str:
    kwargs = {"VersionStages": stages} if stages is not None else {}
    return client.put_secret_value(
        SecretId=secret_id, SecretString=value, ClientRequestToken=token(), **kwargs
    )["VersionId"]


@pytest.fixture
def v1(client) -> str:
    return client.create_secret(Name="app", SecretString="one", ClientRequestToken=token())[
        "VersionId"
    ]


def test_the_worked_reference_sequence(client):  # §3.4, every step
    v1 = client.create_secret(Name="app", SecretString="1", ClientRequestToken=token())["VersionId"]
    assert labels(client, "app") == {v1: [CURRENT]}
    v2 = put(client, "app", "2", [PENDING])
    assert labels(client, "app") == {v1: [CURRENT], v2: [PENDING]}
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v1, MoveToVersionId=v2
    )
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT, PENDING]}
    v3 = put(client, "app", "3", [PENDING])
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT], v3: [PENDING]}
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v2, MoveToVersionId=v3
    )
    assert labels(client, "app") == {v2: [PREVIOUS], v3: [CURRENT, PENDING]}
    # v1 is deprecated: still stored, but listed only with IncludeDeprecated, without labels.
    deprecated = [v for v in all_versions(client, "app") if v["VersionId"] == v1]
    assert len(deprecated) == 1
    assert "VersionStages" not in deprecated[0]
    assert client.get_secret_value(SecretId="app")["SecretString"] == "3"


def test_it_answers_with_arn_and_name_only(client, v1):  # rule 7
    created = client.describe_secret(SecretId="app")
    v2 = put(client, "app", "two", [PENDING])
    response = client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v1, MoveToVersionId=v2
    )
    response.pop("ResponseMetadata")
    assert response == {"ARN": created["ARN"], "Name": "app"}


def test_the_target_keeps_all_its_other_labels(client, v1):  # rule 1
    v2 = put(client, "app", "two", [PENDING, "AWSSOMETHING", "PUT1"])
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v1, MoveToVersionId=v2
    )
    assert labels(client, "app")[v2] == [CURRENT, PENDING, "AWSSOMETHING", "PUT1"]


def test_it_requires_remove_from_when_current_is_on_another_version(client, v1):  # rule 2
    v2 = put(client, "app", "two", [PENDING])
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(SecretId="app", VersionStage=CURRENT, MoveToVersionId=v2)
    assert error_of(info) == (
        "InvalidParameterException",
        (
            f"The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is "
            f"currently attached to version {v1}, so you must explicitly reference that version "
            "in RemoveFromVersionId."
        ),
    )
    assert labels(client, "app") == {v1: [CURRENT], v2: [PENDING]}


def test_it_requires_remove_from_for_a_custom_label_on_another_version(client, v1):  # rule 2
    v2 = put(client, "app", "two", ["blue"])
    v3 = put(client, "app", "three", ["green"])
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(SecretId="app", VersionStage="blue", MoveToVersionId=v3)
    code, message = error_of(info)
    assert code == "InvalidParameterException"
    assert f"Staging label blue is currently attached to version {v2}" in message
    assert labels(client, "app") == {v1: [CURRENT], v2: ["blue"], v3: ["green"]}


@pytest.mark.parametrize("wrong", ["target", "unlabelled"])
def test_it_refuses_a_remove_from_that_does_not_hold_the_label(client, v1, wrong):  # rule 2
    v2 = put(client, "app", "two", [PENDING])
    v3 = put(client, "app", "three", ["other"])
    remove_from = v2 if wrong == "target" else v3
    before = all_versions(client, "app")
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(
            SecretId="app",
            VersionStage=CURRENT,
            RemoveFromVersionId=remove_from,
            MoveToVersionId=v2,
        )
    assert error_of(info) == (
        "InvalidParameterException",
        f"Version stage AWSCURRENT not found in version {remove_from}",
    )
    assert all_versions(client, "app") == before
    assert client.get_secret_value(SecretId="app")["SecretString"] == "one"


def test_it_removes_a_label_and_the_version_keeps_its_others(client, v1):  # rule 3
    client.update_secret_version_stage(SecretId="app", VersionStage="PENDING", MoveToVersionId=v1)
    assert labels(client, "app") == {v1: [CURRENT, "PENDING"]}
    client.update_secret_version_stage(
        SecretId="app", VersionStage="PENDING", RemoveFromVersionId=v1
    )
    assert labels(client, "app") == {v1: [CURRENT]}


def test_it_refuses_to_remove_a_label_the_version_does_not_carry(client, v1):  # rule 3
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(
            SecretId="app", VersionStage="nowhere", RemoveFromVersionId=v1
        )
    assert error_of(info) == (
        "InvalidParameterException",
        f"Version stage nowhere not found in version {v1}",
    )


def test_it_refuses_to_remove_current_without_moving_it(client, v1):
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(
            SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v1
        )
    assert error_of(info)[0] == "InvalidParameterException"
    assert labels(client, "app") == {v1: [CURRENT]}


def test_it_refuses_a_call_naming_no_version(client, v1):
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(SecretId="app", VersionStage="blue")
    assert error_of(info)[0] == "InvalidParameterException"


def test_moving_current_keeps_the_losers_labels_and_strips_the_old_previous(client, v1):  # rule 4
    # custom_stages_1 / _2: the loser keeps its custom labels, the old AWSPREVIOUS holder
    # keeps its own but loses AWSPREVIOUS.
    v2 = put(client, "app", "two")  # v1 -> AWSPREVIOUS
    client.update_secret_version_stage(SecretId="app", VersionStage="PUT0", MoveToVersionId=v1)
    client.update_secret_version_stage(SecretId="app", VersionStage="PUT1", MoveToVersionId=v2)
    v3 = put(client, "app", "three", [PENDING])
    assert labels(client, "app") == {
        v1: [PREVIOUS, "PUT0"],
        v2: [CURRENT, "PUT1"],
        v3: [PENDING],
    }
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v2, MoveToVersionId=v3
    )
    assert labels(client, "app") == {
        v1: ["PUT0"],
        v2: [PREVIOUS, "PUT1"],
        v3: [CURRENT, PENDING],
    }


def test_the_old_previous_version_is_deprecated_when_it_has_nothing_else(client, v1):  # rule 4
    v2 = put(client, "app", "two")
    v3 = put(client, "app", "three", [PENDING])
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v2, MoveToVersionId=v3
    )
    assert labels(client, "app") == {v2: [PREVIOUS], v3: [CURRENT, PENDING]}
    assert v1 in {v["VersionId"] for v in all_versions(client, "app")}


def test_rolling_back_to_the_previous_version(client, v1):  # rule 5
    v2 = put(client, "app", "two")
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT]}
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v2, MoveToVersionId=v1
    )
    assert labels(client, "app") == {v1: [CURRENT], v2: [PREVIOUS]}
    assert client.get_secret_value(SecretId="app")["SecretString"] == "one"
    previous = client.get_secret_value(SecretId="app", VersionStage=PREVIOUS)
    assert (previous["VersionId"], previous["SecretString"]) == (v2, "two")


@pytest.mark.parametrize("member", ["RemoveFromVersionId", "MoveToVersionId"])
def test_it_refuses_an_unknown_version(client, v1, member):  # rule 6
    v2 = put(client, "app", "two", [PENDING])
    unknown = "0" * 32
    request = {"RemoveFromVersionId": v1, "MoveToVersionId": v2, member: unknown}
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(SecretId="app", VersionStage=CURRENT, **request)
    assert error_of(info) == ("InvalidParameterException", f"Not a valid version: {unknown}")
    assert labels(client, "app") == {v1: [CURRENT], v2: [PENDING]}


def test_it_refuses_a_version_of_another_secret(client, v1):
    other = client.create_secret(Name="other", SecretString="x", ClientRequestToken=token())
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(
            SecretId="app",
            VersionStage=CURRENT,
            RemoveFromVersionId=v1,
            MoveToVersionId=other["VersionId"],
        )
    assert error_of(info)[0] == "InvalidParameterException"


def test_it_allows_twenty_labels_and_refuses_the_twenty_first(client, v1):  # rule 6, §2.5
    for i in range(19):  # AWSCURRENT + 19 custom labels = 20
        client.update_secret_version_stage(SecretId="app", VersionStage=f"L{i}", MoveToVersionId=v1)
    v2 = put(client, "app", "two", ["L0"])  # moving a label does not add one
    assert len(labels(client, "app")[v1]) == 19
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(SecretId="app", VersionStage="L19", MoveToVersionId=v2)
    assert error_of(info)[0] == "LimitExceededException"
    assert labels(client, "app")[v2] == ["L0"]


def test_removing_the_last_label_deprecates_the_version(client, v1):  # rule 8
    v2 = put(client, "app", "two", ["blue"])
    client.update_secret_version_stage(SecretId="app", VersionStage="blue", RemoveFromVersionId=v2)
    assert labels(client, "app") == {v1: [CURRENT]}
    listed = client.list_secret_version_ids(SecretId="app")["Versions"]
    assert [v["VersionId"] for v in listed] == [v1]
    deprecated = [v for v in all_versions(client, "app") if v["VersionId"] == v2]
    assert "VersionStages" not in deprecated[0]


def test_moving_current_onto_its_holder_changes_nothing(client, v1):
    v2 = put(client, "app", "two")
    client.update_secret_version_stage(SecretId="app", VersionStage=CURRENT, MoveToVersionId=v2)
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT]}


def test_get_and_batch_get_return_the_value_the_label_moved_to(client, v1):
    v2 = put(client, "app", "two", [PENDING])
    assert client.get_secret_value(SecretId="app")["SecretString"] == "one"
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v1, MoveToVersionId=v2
    )
    got = client.get_secret_value(SecretId="app")
    assert (got["VersionId"], got["SecretString"]) == (v2, "two")
    assert got["VersionStages"] == [CURRENT, PENDING]
    batch = client.batch_get_secret_value(SecretIdList=["app"])["SecretValues"]
    assert [(b["VersionId"], b["SecretString"]) for b in batch] == [(v2, "two")]
    # And back again: a roll-back is just as visible.
    client.update_secret_version_stage(
        SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v2, MoveToVersionId=v1
    )
    assert client.get_secret_value(SecretId="app")["SecretString"] == "one"
    batch = client.batch_get_secret_value(SecretIdList=["app"])["SecretValues"]
    assert [b["SecretString"] for b in batch] == ["one"]


def test_it_returns_resource_not_found_for_an_unknown_secret(client):
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(
            SecretId="missing", VersionStage=CURRENT, MoveToVersionId="0" * 32
        )
    assert error_of(info) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )


def test_it_refuses_a_secret_scheduled_for_deletion(client, v1):
    v2 = put(client, "app", "two", [PENDING])
    client.delete_secret(SecretId="app", RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as info:
        client.update_secret_version_stage(
            SecretId="app", VersionStage=CURRENT, RemoveFromVersionId=v1, MoveToVersionId=v2
        )
    assert error_of(info) == (
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
    client.restore_secret(SecretId="app")
    assert labels(client, "app") == {v1: [CURRENT], v2: [PENDING]}


def test_it_works_by_arn(client, v1):
    arn = client.describe_secret(SecretId="app")["ARN"]
    v2 = put(client, "app", "two", [PENDING])
    client.update_secret_version_stage(
        SecretId=arn, VersionStage=CURRENT, RemoveFromVersionId=v1, MoveToVersionId=v2
    )
    assert labels(client, arn) == {v1: [PREVIOUS], v2: [CURRENT, PENDING]}
