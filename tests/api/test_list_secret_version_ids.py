"""ListSecretVersionIds: entries, deprecated versions, paging (spec §2.5, §15.8)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from tests.api.helpers import error_of, token
from tests.api.rawhttp import signed_call

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"


def put(client, value: str, stages: list[str] | None = None) -> str:
    kwargs = {"VersionStages": stages} if stages is not None else {}
    return client.put_secret_value(
        SecretId="app", SecretString=value, ClientRequestToken=token(), **kwargs
    )["VersionId"]


def pages(client, **kwargs) -> list[dict]:
    """Every page, following NextToken."""
    result = []
    while True:
        page = client.list_secret_version_ids(SecretId="app", **kwargs)
        result.append(page)
        if "NextToken" not in page:
            return result
        kwargs["NextToken"] = page["NextToken"]


@pytest.fixture
def created(client) -> dict:
    return client.create_secret(Name="app", SecretString="one", ClientRequestToken=token())


def test_it_lists_one_entry_per_labelled_version(client, created):
    listed = client.list_secret_version_ids(SecretId="app")
    assert (listed["ARN"], listed["Name"]) == (created["ARN"], "app")
    assert "NextToken" not in listed
    [entry] = listed["Versions"]
    created_date = entry.pop("CreatedDate")
    assert entry == {
        "VersionId": created["VersionId"],
        "VersionStages": [CURRENT],
        "KmsKeyIds": ["DefaultEncryptionKey"],
    }
    got = client.get_secret_value(SecretId="app")
    assert got["CreatedDate"] == created_date


def test_it_reports_a_customer_key_as_given(client):
    client.create_secret(
        Name="app", SecretString="x", KmsKeyId="alias/mine", ClientRequestToken=token()
    )
    [entry] = client.list_secret_version_ids(SecretId="app")["Versions"]
    assert entry["KmsKeyIds"] == ["alias/mine"]


def test_it_lists_an_empty_secret_without_versions(client):
    client.create_secret(Name="app", ClientRequestToken=token())
    listed = client.list_secret_version_ids(SecretId="app", IncludeDeprecated=True)
    assert listed.get("Versions", []) == []
    assert "NextToken" not in listed


def test_it_hides_deprecated_versions_unless_asked(client, created):
    v1 = created["VersionId"]
    v2 = put(client, "two")
    v3 = put(client, "three")
    listed = client.list_secret_version_ids(SecretId="app")["Versions"]
    assert {v["VersionId"]: v["VersionStages"] for v in listed} == {
        v2: [PREVIOUS],
        v3: [CURRENT],
    }
    described = client.describe_secret(SecretId="app")["VersionIdsToStages"]
    assert described == {v2: [PREVIOUS], v3: [CURRENT]}
    everything = client.list_secret_version_ids(SecretId="app", IncludeDeprecated=True)
    by_id = {v["VersionId"]: v for v in everything["Versions"]}
    assert set(by_id) == {v1, v2, v3}
    # A deprecated entry has no VersionStages key at all, not an empty list.
    assert "VersionStages" not in by_id[v1]
    assert by_id[v1]["KmsKeyIds"] == ["DefaultEncryptionKey"]
    assert "CreatedDate" in by_id[v1]


def test_include_deprecated_false_is_the_default(client, created):
    put(client, "two")
    put(client, "three")
    explicit = client.list_secret_version_ids(SecretId="app", IncludeDeprecated=False)
    assert len(explicit["Versions"]) == 2


def test_the_deprecated_entry_has_no_stages_member_on_the_wire(server, region, client, created):
    put(client, "two")
    put(client, "three")
    raw = signed_call(
        server.url,
        region,
        "ListSecretVersionIds",
        {"SecretId": "app", "IncludeDeprecated": True},
    )
    entry = next(v for v in raw.body["Versions"] if v["VersionId"] == created["VersionId"])
    assert "VersionStages" not in entry
    assert "LastAccessedDate" not in entry


def test_it_pages_with_max_results_and_next_token(client, created):
    ids = {created["VersionId"]} | {put(client, f"v{n}", [f"L{n}"]) for n in range(6)}
    result = pages(client, MaxResults=3)
    assert [len(page["Versions"]) for page in result] == [3, 3, 1]
    seen = [v["VersionId"] for page in result for v in page["Versions"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == ids
    for page in result:
        assert (page["Name"], page["ARN"]) == ("app", created["ARN"])


def test_it_gives_no_next_token_when_the_page_holds_the_rest(client, created):
    put(client, "two", ["L1"])
    listed = client.list_secret_version_ids(SecretId="app", MaxResults=2)
    assert len(listed["Versions"]) == 2
    assert "NextToken" not in listed


def test_paging_covers_deprecated_versions_too(client, created):
    ids = {created["VersionId"]} | {put(client, f"v{n}") for n in range(4)}
    result = pages(client, MaxResults=2, IncludeDeprecated=True)
    seen = [v["VersionId"] for page in result for v in page["Versions"]]
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize(
    "bad", ["not-a-token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "eyJ0eXAiOiJKV1QifQ"]
)
def test_it_refuses_a_bad_next_token(client, created, bad):
    with pytest.raises(ClientError) as info:
        client.list_secret_version_ids(SecretId="app", NextToken=bad)
    assert error_of(info)[0] == "InvalidNextTokenException"


def test_it_refuses_a_tampered_next_token(client, created):
    for n in range(3):
        put(client, f"v{n}", [f"L{n}"])
    next_token = client.list_secret_version_ids(SecretId="app", MaxResults=1)["NextToken"]
    tampered = next_token[:-2] + ("AA" if not next_token.endswith("AA") else "BB")
    with pytest.raises(ClientError) as info:
        client.list_secret_version_ids(SecretId="app", NextToken=tampered)
    assert error_of(info)[0] == "InvalidNextTokenException"


def test_it_refuses_a_next_token_from_list_secrets(client, created):
    client.create_secret(Name="app2", SecretString="x", ClientRequestToken=token())
    list_token = client.list_secrets(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as info:
        client.list_secret_version_ids(SecretId="app", NextToken=list_token)
    assert error_of(info)[0] == "InvalidNextTokenException"


def test_it_shows_last_accessed_date_only_on_the_version_read(client, created):
    v2 = put(client, "two")
    client.get_secret_value(SecretId="app")
    listed = {v["VersionId"]: v for v in client.list_secret_version_ids(SecretId="app")["Versions"]}
    assert "LastAccessedDate" in listed[v2]
    assert "LastAccessedDate" not in listed[created["VersionId"]]


def test_it_returns_resource_not_found_for_an_unknown_secret(client):
    with pytest.raises(ClientError) as info:
        client.list_secret_version_ids(SecretId="missing")
    assert error_of(info) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )


def test_it_refuses_an_invalid_secret_id(client):
    with pytest.raises(ClientError) as info:
        client.list_secret_version_ids(SecretId="bad name")
    assert error_of(info)[0] == "ValidationException"


def test_it_refuses_a_secret_scheduled_for_deletion(client, created):
    # UNCONFIRMED against AWS (spec §7.2 expects the "marked for deletion" error).
    client.delete_secret(SecretId="app", RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as info:
        client.list_secret_version_ids(SecretId="app")
    assert error_of(info) == (
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )


def test_it_lists_by_arn(client, created):
    listed = client.list_secret_version_ids(SecretId=created["ARN"])
    assert [v["VersionId"] for v in listed["Versions"]] == [created["VersionId"]]


def test_a_new_version_between_pages_is_neither_repeated_nor_skips_one(client, created):
    ids = [created["VersionId"]] + [put(client, f"v{n}", [f"L{n}"]) for n in range(4)]
    first = client.list_secret_version_ids(SecretId="app", MaxResults=2)
    put(client, "late", ["late"])
    rest = pages(client, MaxResults=2, NextToken=first["NextToken"])
    seen = [v["VersionId"] for page in [first, *rest] for v in page["Versions"]]
    assert len(seen) == len(set(seen)), "a version was listed twice"
    assert set(ids) <= set(seen)


def test_a_version_deprecated_between_pages_does_not_make_another_skipped(client, created):
    ids = [created["VersionId"]] + [put(client, f"v{n}", [f"L{n}"]) for n in range(4)]
    first = client.list_secret_version_ids(SecretId="app", MaxResults=2)
    gone = first["Versions"][0]["VersionId"]
    stage = first["Versions"][0]["VersionStages"][0]
    client.update_secret_version_stage(SecretId="app", VersionStage=stage, RemoveFromVersionId=gone)
    rest = pages(client, MaxResults=2, NextToken=first["NextToken"])
    seen = {v["VersionId"] for page in [first, *rest] for v in page["Versions"]}
    assert seen == set(ids)
