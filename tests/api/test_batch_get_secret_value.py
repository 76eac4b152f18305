"""BatchGetSecretValue: by id list or by filters, with per-secret errors (spec §9, §15.3)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from tests.api.helpers import error_of, token

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
NOT_FOUND = "Secrets Manager can't find the specified secret."


def create(client, name: str, value: str | bytes, **kwargs) -> dict:
    member = "SecretBinary" if isinstance(value, bytes) else "SecretString"
    return client.create_secret(Name=name, ClientRequestToken=token(), **{member: value}, **kwargs)


def test_it_returns_the_current_value_of_each_listed_secret(client):
    a = create(client, "team/a", "alpha")
    b = create(client, "team/b", b"\x00beta\xff")
    response = client.batch_get_secret_value(SecretIdList=["team/a", b["ARN"]])
    values = {v["Name"]: v for v in response["SecretValues"]}
    assert set(values) == {"team/a", "team/b"}
    entry_a = values["team/a"]
    assert entry_a.pop("CreatedDate") == client.get_secret_value(SecretId="team/a")["CreatedDate"]
    assert entry_a == {
        "ARN": a["ARN"],
        "Name": "team/a",
        "VersionId": a["VersionId"],
        "SecretString": "alpha",
        "VersionStages": [CURRENT],
    }
    assert values["team/b"]["SecretBinary"] == b"\x00beta\xff"
    assert "SecretString" not in values["team/b"]
    assert response.get("Errors", []) == []
    assert "NextToken" not in response


def test_it_reports_missing_and_deleted_secrets_in_errors_and_still_succeeds(client):
    create(client, "found", "yes")
    create(client, "deleted", "gone")
    client.create_secret(Name="no-value", ClientRequestToken=token())
    client.delete_secret(SecretId="deleted", RecoveryWindowInDays=7)
    ids = ["found", "missing", "deleted", "no-value"]
    response = client.batch_get_secret_value(SecretIdList=ids)
    assert [v["Name"] for v in response["SecretValues"]] == ["found"]
    errors = {e["SecretId"]: (e["ErrorCode"], e["Message"]) for e in response["Errors"]}
    assert errors == {
        "missing": ("ResourceNotFoundException", NOT_FOUND),
        "deleted": (
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
        ),
        "no-value": (
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
        ),
    }


def test_an_id_list_of_only_missing_secrets_is_still_a_success(client):
    response = client.batch_get_secret_value(SecretIdList=["nope", "nada"])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response.get("SecretValues", []) == []
    assert [e["SecretId"] for e in response["Errors"]] == ["nope", "nada"]


def test_it_returns_the_value_current_now(client):
    created = create(client, "app", "one")
    v2 = client.put_secret_value(
        SecretId="app", SecretString="two", VersionStages=[PENDING], ClientRequestToken=token()
    )["VersionId"]
    [entry] = client.batch_get_secret_value(SecretIdList=["app"])["SecretValues"]
    assert entry["SecretString"] == "one"
    client.update_secret_version_stage(
        SecretId="app",
        VersionStage=CURRENT,
        RemoveFromVersionId=created["VersionId"],
        MoveToVersionId=v2,
    )
    [entry] = client.batch_get_secret_value(SecretIdList=["app"])["SecretValues"]
    assert (entry["VersionId"], entry["SecretString"]) == (v2, "two")
    assert entry["VersionStages"] == [CURRENT, PENDING]


def test_it_selects_secrets_by_filters(client):
    create(client, "prod/db", "p1", Tags=[{"Key": "env", "Value": "prod"}])
    create(client, "prod/api", "p2", Tags=[{"Key": "env", "Value": "prod"}])
    create(client, "dev/db", "d1", Tags=[{"Key": "env", "Value": "dev"}])
    response = client.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["prod/"]}])
    assert sorted(v["SecretString"] for v in response["SecretValues"]) == ["p1", "p2"]
    by_tag = client.batch_get_secret_value(Filters=[{"Key": "tag-value", "Values": ["dev"]}])
    assert [v["Name"] for v in by_tag["SecretValues"]] == ["dev/db"]


def test_filters_skip_secrets_scheduled_for_deletion(client):
    create(client, "keep", "k")
    create(client, "drop", "d")
    client.delete_secret(SecretId="drop", RecoveryWindowInDays=7)
    response = client.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["d", "k"]}])
    assert [v["Name"] for v in response["SecretValues"]] == ["keep"]


def test_filters_page_with_max_results_and_next_token(client):
    names = {f"svc/{n}" for n in range(7)}
    for name in names:
        create(client, name, name.upper())
    seen: list[str] = []
    sizes: list[int] = []
    kwargs: dict = {"Filters": [{"Key": "name", "Values": ["svc/"]}], "MaxResults": 3}
    while True:
        page = client.batch_get_secret_value(**kwargs)
        sizes.append(len(page["SecretValues"]))
        seen += [v["Name"] for v in page["SecretValues"]]
        assert all(v["SecretString"] == v["Name"].upper() for v in page["SecretValues"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert sizes == [3, 3, 1]
    assert sorted(seen) == sorted(names)


def test_filters_mode_refuses_a_bad_next_token(client):
    create(client, "svc/a", "a")
    with pytest.raises(ClientError) as info:
        client.batch_get_secret_value(
            Filters=[{"Key": "name", "Values": ["svc/"]}], NextToken="garbage"
        )
    assert error_of(info)[0] == "InvalidNextTokenException"


def test_it_refuses_both_an_id_list_and_filters(client):
    # Texts of both parameter errors are the emulators', UNCONFIRMED (spec §16.2).
    with pytest.raises(ClientError) as info:
        client.batch_get_secret_value(
            SecretIdList=["a"], Filters=[{"Key": "name", "Values": ["a"]}]
        )
    assert error_of(info) == (
        "InvalidParameterException",
        "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
    )


def test_it_refuses_neither_an_id_list_nor_filters(client):
    with pytest.raises(ClientError) as info:
        client.batch_get_secret_value()
    assert error_of(info) == (
        "InvalidParameterException",
        "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
    )


def test_it_refuses_max_results_without_filters(client):
    with pytest.raises(ClientError) as info:
        client.batch_get_secret_value(SecretIdList=["a"], MaxResults=5)
    assert error_of(info) == (
        "InvalidParameterException",
        "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.",
    )


def test_it_refuses_more_than_twenty_ids(client):
    with pytest.raises(ClientError) as info:
        client.batch_get_secret_value(SecretIdList=[f"s{n}" for n in range(21)])
    assert error_of(info)[0] == "ValidationException"


def test_an_invalid_name_in_the_list_is_reported_for_that_secret_only(client):
    # UNCONFIRMED against AWS: the name check of GetSecretValue, reported per secret.
    create(client, "ok", "fine")
    response = client.batch_get_secret_value(SecretIdList=["ok", "bad name"])
    assert [v["Name"] for v in response["SecretValues"]] == ["ok"]
    [error] = response["Errors"]
    assert (error["SecretId"], error["ErrorCode"]) == ("bad name", "ValidationException")
