"""TagResource and UntagResource (spec §13, §15.14): merging, order, limits, deleted secrets."""

from __future__ import annotations

from tests.api.helpers import body, refusal

MARKED_FOR_DELETION = (
    "InvalidRequestException",
    "You can't perform this operation on the secret because it was marked for deletion.",
)


def tag(key: str, value: str = "v") -> dict[str, str]:
    return {"Key": key, "Value": value}


def tags_of(client, name: str = "app/db") -> list[dict[str, str]]:
    return client.describe_secret(SecretId=name)["Tags"]


def test_tag_resource_answers_an_empty_result(client):
    client.create_secret(Name="app/db")
    assert body(client.tag_resource(SecretId="app/db", Tags=[tag("env")])) == {}


def test_untag_resource_answers_an_empty_result(client):
    client.create_secret(Name="app/db", Tags=[tag("env")])
    assert body(client.untag_resource(SecretId="app/db", TagKeys=["env"])) == {}


def test_new_tags_are_appended_in_the_order_given(client):
    client.create_secret(Name="app/db", Tags=[tag("tag1")])
    client.tag_resource(SecretId="app/db", Tags=[tag("tag2")])
    client.tag_resource(SecretId="app/db", Tags=[tag("b"), tag("a")])
    assert [t["Key"] for t in tags_of(client)] == ["tag1", "tag2", "b", "a"]


def test_an_existing_key_gets_its_new_value_in_place(client):
    client.create_secret(Name="app/db", Tags=[tag("env", "dev"), tag("team", "core")])
    client.tag_resource(SecretId="app/db", Tags=[tag("env", "prod"), tag("new", "x")])
    assert tags_of(client) == [tag("env", "prod"), tag("team", "core"), tag("new", "x")]


def test_tag_keys_are_case_sensitive(client):
    client.create_secret(Name="app/db", Tags=[tag("Env", "upper")])
    client.tag_resource(SecretId="app/db", Tags=[tag("env", "lower")])
    assert tags_of(client) == [tag("Env", "upper"), tag("env", "lower")]


def test_a_tag_may_have_an_empty_value(client):
    client.create_secret(Name="app/db")
    client.tag_resource(SecretId="app/db", Tags=[tag("flag", "")])
    assert tags_of(client) == [tag("flag", "")]


def test_untag_removes_the_given_keys_and_keeps_the_order_of_the_rest(client):
    client.create_secret(Name="app/db", Tags=[tag("a"), tag("b"), tag("c"), tag("d")])
    client.untag_resource(SecretId="app/db", TagKeys=["b", "d"])
    assert [t["Key"] for t in tags_of(client)] == ["a", "c"]


def test_untagging_keys_that_are_absent_is_fine(client):
    client.create_secret(Name="app/db", Tags=[tag("a")])
    client.untag_resource(SecretId="app/db", TagKeys=["nope", "A"])
    assert tags_of(client) == [tag("a")]


def test_untagging_everything_leaves_an_empty_tag_list(client):
    client.create_secret(Name="app/db", Tags=[tag("a"), tag("b")])
    client.untag_resource(SecretId="app/db", TagKeys=["a", "b"])
    assert tags_of(client) == []
    (entry,) = client.list_secrets()["SecretList"]
    assert entry["Tags"] == []


def test_a_removed_key_comes_back_at_the_end(client):
    client.create_secret(Name="app/db", Tags=[tag("a"), tag("b")])
    client.untag_resource(SecretId="app/db", TagKeys=["a"])
    client.tag_resource(SecretId="app/db", Tags=[tag("a", "again")])
    assert tags_of(client) == [tag("b"), tag("a", "again")]


def test_tagging_does_not_touch_the_value_or_the_versions(client):
    version = client.create_secret(Name="app/db", SecretString="x")["VersionId"]
    client.tag_resource(SecretId="app/db", Tags=[tag("a")])
    client.untag_resource(SecretId="app/db", TagKeys=["a"])
    assert client.describe_secret(SecretId="app/db")["VersionIdsToStages"] == {
        version: ["AWSCURRENT"]
    }
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "x"


def test_tag_changes_advance_last_changed_date(client, clock):
    # UNCONFIRMED against AWS (spec §13): "modified in any way" suggests they do.
    client.create_secret(Name="app/db")
    created = client.describe_secret(SecretId="app/db")["LastChangedDate"]
    clock.advance(60)
    client.tag_resource(SecretId="app/db", Tags=[tag("a")])
    tagged = client.describe_secret(SecretId="app/db")["LastChangedDate"]
    clock.advance(60)
    client.untag_resource(SecretId="app/db", TagKeys=["a"])
    untagged = client.describe_secret(SecretId="app/db")["LastChangedDate"]
    assert created < tagged < untagged


def test_list_secrets_finds_a_secret_by_a_tag_added_later(client):
    client.create_secret(Name="app/db")
    client.create_secret(Name="other")
    client.tag_resource(SecretId="app/db", Tags=[tag("Production", "eu")])
    found = client.list_secrets(Filters=[{"Key": "tag-key", "Values": ["Prod"]}])
    assert [entry["Name"] for entry in found["SecretList"]] == ["app/db"]
    client.untag_resource(SecretId="app/db", TagKeys=["Production"])
    found = client.list_secrets(Filters=[{"Key": "all", "Values": ["eu"]}])
    assert found["SecretList"] == []


def test_it_tags_a_secret_named_by_its_arn(client):
    arn = client.create_secret(Name="app/db")["ARN"]
    client.tag_resource(SecretId=arn, Tags=[tag("a")])
    client.untag_resource(SecretId=arn, TagKeys=["a"])
    assert tags_of(client) == []


# -- limits ----------------------------------------------------------------------------------------


def test_a_secret_can_have_50_tags(client):
    client.create_secret(Name="app/db", Tags=[tag(f"k{i}") for i in range(49)])
    client.tag_resource(SecretId="app/db", Tags=[tag("k49")])
    assert len(tags_of(client)) == 50
    client.tag_resource(SecretId="app/db", Tags=[tag("k0", "replaced")])
    assert len(tags_of(client)) == 50


def test_it_refuses_a_51st_tag_and_keeps_the_others(client):
    client.create_secret(Name="app/db", Tags=[tag(f"k{i}") for i in range(50)])
    code, _ = refusal(
        client.tag_resource, SecretId="app/db", Tags=[tag("k0", "changed"), tag("one-more")]
    )
    # The text is UNCONFIRMED for Secrets Manager (spec §13); the code is AWS's usual one.
    assert code == "InvalidParameterException"
    current = tags_of(client)
    assert len(current) == 50
    assert current[0] == tag("k0")


def test_it_refuses_a_key_longer_than_128_characters(client):
    client.create_secret(Name="app/db")
    code, _ = refusal(client.tag_resource, SecretId="app/db", Tags=[tag("k" * 129)])
    assert code == "ValidationException"


def test_it_refuses_a_value_longer_than_256_characters(client):
    client.create_secret(Name="app/db")
    code, _ = refusal(client.tag_resource, SecretId="app/db", Tags=[tag("k", "v" * 257)])
    assert code == "ValidationException"


def test_it_refuses_a_tag_without_a_key(client):
    client.create_secret(Name="app/db")
    code, _ = refusal(client.tag_resource, SecretId="app/db", Tags=[{"Value": "orphan"}])
    assert code == "InvalidParameterException"
    assert "Tags" not in client.describe_secret(SecretId="app/db")


# -- refusals --------------------------------------------------------------------------------------


def test_tagging_a_secret_scheduled_for_deletion_is_refused(client):
    client.create_secret(Name="app/db", Tags=[tag("a")])
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert refusal(client.tag_resource, SecretId="app/db", Tags=[tag("b")]) == MARKED_FOR_DELETION
    assert tags_of(client) == [tag("a")]


def test_untagging_a_secret_scheduled_for_deletion_is_refused(client):
    client.create_secret(Name="app/db", Tags=[tag("a")])
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert refusal(client.untag_resource, SecretId="app/db", TagKeys=["a"]) == MARKED_FOR_DELETION
    assert tags_of(client) == [tag("a")]


def test_tagging_an_unknown_secret_is_resource_not_found(client):
    expected = ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    assert refusal(client.tag_resource, SecretId="nowhere", Tags=[tag("a")]) == expected
    assert refusal(client.untag_resource, SecretId="nowhere", TagKeys=["a"]) == expected


def test_it_refuses_an_invalid_secret_id(client):
    code, _ = refusal(client.tag_resource, SecretId="bad]name", Tags=[tag("a")])
    assert code == "ValidationException"
    code, _ = refusal(client.untag_resource, SecretId="bad]name", TagKeys=["a"])
    assert code == "ValidationException"
