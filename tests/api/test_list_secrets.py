"""ListSecrets (spec §8, §15.7): filters, sorting, paging and what an entry shows.

Every test has a region of its own, so ListSecrets sees exactly the secrets the test made.
Filter examples are the ones AWS was observed to answer (spec §8.1); where the rule is
UNCONFIRMED the test says so and pins down the decision we took.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from tests.api.helpers import refusal
from tests.api.rawhttp import signed_call

from strongroom.domain.search import SecretFacts, matches, words

DAY = 86_400


def names(response: dict[str, Any]) -> list[str]:
    return [entry["Name"] for entry in response["SecretList"]]


def found(client, *filters: tuple[str, Sequence[str]], **kwargs: Any) -> list[str]:
    """Names that pass ``filters`` (one page holds them all), in name order."""
    response = client.list_secrets(
        Filters=[{"Key": key, "Values": list(values)} for key, values in filters],
        MaxResults=100,
        **kwargs,
    )
    assert "NextToken" not in response
    return sorted(names(response))


def every_page(client, **kwargs: Any) -> list[str]:
    seen: list[str] = []
    response = client.list_secrets(**kwargs)
    seen += names(response)
    while "NextToken" in response:
        response = client.list_secrets(**{**kwargs, "NextToken": response["NextToken"]})
        seen += names(response)
    return seen


def create(client, name: str, **kwargs: Any) -> Any:
    if "Tags" in kwargs:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in kwargs["Tags"]]
    return client.create_secret(Name=name, **kwargs)


# --- filters: name ------------------------------------------------------------------------


@pytest.fixture
def testing_names(client) -> None:
    # The shape of the names in the AWS-validated LocalStack test (spec §8.1).
    for name in ("testing1/one", "/testing2/two", "testing3/three", "/testing4/four"):
        create(client, name)


def test_a_name_filter_is_a_prefix_of_the_whole_name(client, testing_names):
    assert found(client, ("name", ["/"])) == ["/testing2/two", "/testing4/four"]
    assert found(client, ("name", ["testing1/o"])) == ["testing1/one"]
    assert found(client, ("name", ["/testing2/two"])) == ["/testing2/two"]


def test_a_negated_name_filter_keeps_the_other_secrets(client, testing_names):
    assert found(client, ("name", ["!/"])) == ["testing1/one", "testing3/three"]


def test_a_name_filter_is_case_sensitive_and_does_not_split_words(client, testing_names):
    assert found(client, ("name", ["Testing1"])) == []
    assert found(client, ("name", ["testing1 one"])) == []
    assert found(client, ("name", ["one"])) == []  # a word inside the name is not a prefix
    assert found(client, ("name", ["testing2"])) == []  # "/testing2/…" starts with "/"


def test_several_values_in_one_filter_match_any_of_them(client, testing_names):
    # OR within a filter: UNCONFIRMED against AWS (spec §8.1), what moto and the docs imply.
    assert found(client, ("name", ["testing1", "testing3"])) == ["testing1/one", "testing3/three"]


def test_positive_and_negated_values_in_one_filter_mean_this_but_not_that(client, testing_names):
    # Mixing is UNCONFIRMED (spec §8.1); our rule (domain.search.matches): some positive value
    # matches and no negated one does.
    assert found(client, ("name", ["/", "!/testing4"])) == ["/testing2/two"]
    assert found(client, ("name", ["!/", "!testing1"])) == ["testing3/three"]


# --- filters: description ------------------------------------------------------------------


@pytest.fixture
def described(client) -> None:
    # The four descriptions of the AWS-validated LocalStack test (spec §8.1).
    for i, description in enumerate(["a secret", "an secret", "asecret", "thesecret"], start=1):
        create(client, f"desc-{i}", Description=description)
    create(client, "undescribed")


def test_a_description_filter_matches_a_prefix_of_any_word(client, described):
    assert found(client, ("description", ["a"])) == ["desc-1", "desc-2", "desc-3"]


def test_every_word_of_a_description_filter_must_match(client, described):
    assert found(client, ("description", ["a secret"])) == ["desc-1", "desc-2"]


def test_a_description_filter_ignores_case(client, described):
    assert found(client, ("description", ["A SECRET"])) == ["desc-1", "desc-2"]
    assert found(client, ("description", ["THESE"])) == ["desc-4"]


def test_a_description_filter_does_not_match_inside_a_word(client, described):
    assert found(client, ("description", ["secret"])) == ["desc-1", "desc-2"]
    assert found(client, ("description", ["ecret"])) == []


def test_a_negated_description_filter_keeps_what_does_not_match(client, described):
    assert found(client, ("description", ["!a"])) == ["desc-4", "undescribed"]
    everything = ["desc-1", "desc-2", "desc-3", "desc-4", "undescribed"]
    assert found(client, ("description", ["!c"])) == everything


def test_two_filters_on_one_key_must_both_match(client):
    # MOTOV test_with_duplicate_filter_keys (spec §8.1).
    create(client, "first", Description="one")
    create(client, "second", Description="two")
    create(client, "both", Description="one two")
    assert found(client, ("description", ["one"]), ("description", ["two"])) == ["both"]


# --- filters: tags ------------------------------------------------------------------------


@pytest.fixture
def tagged(client) -> None:
    create(client, "production-key", Tags=[("Production", "x")])
    create(client, "prod1-key", Tags=[("Prod1", "y")])
    create(client, "lower-key", Tags=[("prod", "Production")])
    create(client, "prod1-value", Tags=[("env", "Prod1"), ("team", "")])
    create(client, "untagged")


def test_a_tag_key_filter_is_a_case_sensitive_prefix(client, tagged):
    # The user guide's example (spec §8.1): Prod matches Production and Prod1, not prod.
    assert found(client, ("tag-key", ["Prod"])) == ["prod1-key", "production-key"]
    assert found(client, ("tag-key", ["prod"])) == ["lower-key"]
    assert found(client, ("tag-key", ["roduction"])) == []


def test_a_tag_value_filter_is_a_case_sensitive_prefix(client, tagged):
    assert found(client, ("tag-value", ["Prod"])) == ["lower-key", "prod1-value"]
    assert found(client, ("tag-value", ["prod"])) == []
    assert found(client, ("tag-value", ["x"])) == ["production-key"]


def test_negated_tag_filters_keep_secrets_without_such_a_tag(client, tagged):
    assert found(client, ("tag-key", ["!Prod"])) == ["lower-key", "prod1-value", "untagged"]
    assert found(client, ("tag-value", ["!Prod"])) == ["prod1-key", "production-key", "untagged"]


def test_tag_filters_follow_tag_changes(client, tagged):
    client.untag_resource(SecretId="prod1-key", TagKeys=["Prod1"])
    client.tag_resource(SecretId="untagged", Tags=[{"Key": "ProdNew", "Value": "v"}])
    assert found(client, ("tag-key", ["Prod"])) == ["production-key", "untagged"]
    assert found(client, ("all", ["prod new"])) == ["untagged"]  # ProdNew → prod, new


# --- filters: all -------------------------------------------------------------------------


@pytest.fixture
def searchable(client) -> None:
    create(client, "SecretOne")
    create(client, "other", Description="COMPANYthings")
    create(client, "tagged", Tags=[("Environment", "ProdEast")])
    create(client, "plain")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("secret", ["SecretOne"]),
        ("One", ["SecretOne"]),
        ("SECRET", ["SecretOne"]),  # not case-sensitive
        ("secret one", ["SecretOne"]),
        ("secret/one", ["SecretOne"]),  # "/" splits the value into words too
        ("ret", []),  # no match inside a word
        ("compan", ["other"]),  # COMPANYthings → compan, ythings (spec §8.1)
        ("ythings", ["other"]),
        ("pany", []),
        ("environment", ["tagged"]),  # tag keys
        ("east", ["tagged"]),  # tag values, split at the case change
        ("other plain", []),  # every word must match the same secret
        ("+", []),  # a value without words matches nothing
        ("!secret", ["other", "plain", "tagged"]),
    ],
)
def test_an_all_filter_matches_words_of_name_description_and_tags(
    client, searchable, value, expected
):
    assert found(client, ("all", [value])) == expected


def test_filters_on_different_keys_must_all_match(client, described, testing_names):
    # LSV test_list_secrets_filtering: description=a AND name=secret → nothing (spec §8.1).
    assert found(client, ("description", ["a"]), ("name", ["secret"])) == []
    assert found(client, ("description", ["a"]), ("name", ["desc-2"])) == ["desc-2"]
    assert found(client, ("name", ["desc-"]), ("description", ["!a"])) == ["desc-4"]


def test_the_description_filter_follows_description_changes(client, described):
    client.update_secret(SecretId="desc-4", Description="a fresh one")
    client.update_secret(SecretId="desc-1", Description="")
    assert found(client, ("description", ["a"])) == ["desc-2", "desc-3", "desc-4"]
    assert found(client, ("all", ["fresh"])) == ["desc-4"]


def test_an_unknown_filter_key_is_a_validation_error(client):
    code, message = refusal(client.list_secrets, Filters=[{"Key": "colour", "Values": ["red"]}])
    assert code == "ValidationException"
    assert "'colour'" in message
    assert "filters.1.member.key" in message


def test_a_filter_without_a_key_is_an_invalid_parameter(client):
    # Text from the emulators, UNCONFIRMED (spec §16.2).
    code, message = refusal(client.list_secrets, Filters=[{"Values": ["x"]}])
    assert (code, message) == ("InvalidParameterException", "Invalid filter key")


def test_a_filter_value_outside_the_allowed_characters_is_a_validation_error(client):
    code, _ = refusal(client.list_secrets, Filters=[{"Key": "name", "Values": ["a*b"]}])
    assert code == "ValidationException"


# --- IncludePlannedDeletion ----------------------------------------------------------------


def test_secrets_scheduled_for_deletion_are_listed_only_when_asked(client):
    create(client, "live")
    create(client, "scheduled")
    create(client, "forced")
    client.delete_secret(SecretId="scheduled", RecoveryWindowInDays=7)
    client.delete_secret(SecretId="forced", ForceDeleteWithoutRecovery=True)

    assert names(client.list_secrets()) == ["live"]
    listed = client.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert [entry["Name"] for entry in listed] == ["live", "scheduled"]
    assert "DeletedDate" in listed[1]
    assert "DeletedDate" not in listed[0]
    assert found(client, ("name", ["sch"]), IncludePlannedDeletion=True) == ["scheduled"]
    assert found(client, ("name", ["sch"])) == []


def test_a_secret_past_its_recovery_window_is_not_listed_at_all(client, clock):
    create(client, "expired")
    create(client, "kept")
    client.delete_secret(SecretId="expired", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)  # gone, whether or not the purge has run yet
    assert names(client.list_secrets(IncludePlannedDeletion=True)) == ["kept"]


def test_a_restored_secret_is_listed_again(client):
    create(client, "back")
    client.delete_secret(SecretId="back")
    client.restore_secret(SecretId="back")
    assert names(client.list_secrets()) == ["back"]


# --- sorting --------------------------------------------------------------------------------


@pytest.fixture
def four_orders(client, clock) -> dict[str, list[str]]:
    """Four secrets whose order differs by each SortBy (ascending orders returned)."""
    for name in ("delta", "alpha", "charlie", "bravo"):  # created in this order
        create(client, name, SecretString="x")
        clock.advance(1)
    for name in ("bravo", "delta", "alpha", "charlie"):  # changed in this order
        client.update_secret(SecretId=name, Description="changed")
        clock.advance(1)
    for name in ("charlie", "alpha", "delta", "bravo"):  # read on successive days
        clock.advance(DAY)
        client.get_secret_value(SecretId=name)
    return {
        "created-date": ["delta", "alpha", "charlie", "bravo"],
        "last-changed-date": ["bravo", "delta", "alpha", "charlie"],
        "last-accessed-date": ["charlie", "alpha", "delta", "bravo"],
        "name": ["alpha", "bravo", "charlie", "delta"],
    }


@pytest.mark.parametrize(
    "sort_by", ["created-date", "last-changed-date", "last-accessed-date", "name"]
)
def test_it_sorts_by_each_sort_key_in_both_directions(client, four_orders, sort_by):
    ascending = four_orders[sort_by]
    assert names(client.list_secrets(SortBy=sort_by, SortOrder="asc")) == ascending
    assert names(client.list_secrets(SortBy=sort_by, SortOrder="desc")) == ascending[::-1]
    # Paging one by one gives the same order.
    assert every_page(client, SortBy=sort_by, SortOrder="desc", MaxResults=1) == ascending[::-1]


def test_it_sorts_by_creation_oldest_first_by_default(client, four_orders):
    # AWS documents only "by CreatedDate"; ascending is UNCONFIRMED (spec §8).
    assert names(client.list_secrets()) == four_orders["created-date"]
    assert names(client.list_secrets(SortOrder="desc")) == four_orders["created-date"][::-1]


def test_it_sorts_names_by_code_point(client):
    # How AWS orders names is UNCONFIRMED; ours is code-point order on every backend, as
    # SQLite compares text (so upper case before lower, "-" before "/").
    for name in ("b", "B", "a-1", "a/0", "a", "A1"):
        create(client, name)
    assert names(client.list_secrets(SortBy="name")) == ["A1", "B", "a", "a-1", "a/0", "b"]


def test_an_unknown_sort_key_is_a_validation_error(client):
    code, _ = refusal(client.list_secrets, SortBy="size")
    assert code == "ValidationException"


# --- paging ---------------------------------------------------------------------------------


@pytest.fixture
def twenty_five(client) -> list[str]:
    made = [f"s{i:02d}" for i in range(25)]
    for name in made:
        create(client, name)
    return made


@pytest.mark.parametrize("size", [1, 7, 24, 25, 100])
def test_pages_neither_skip_nor_repeat(client, twenty_five, size):
    assert every_page(client, MaxResults=size) == twenty_five


def test_the_last_full_page_carries_no_next_token(client, twenty_five):
    assert "NextToken" not in client.list_secrets(MaxResults=25)
    assert "NextToken" in client.list_secrets(MaxResults=24)


def test_the_boto3_paginator_walks_every_page(client, twenty_five):
    paginator = client.get_paginator("list_secrets")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 10}))
    assert [len(page["SecretList"]) for page in pages] == [10, 10, 5]
    assert [name for page in pages for name in names(page)] == twenty_five


def test_paging_keeps_the_filters(client, twenty_five):
    kwargs = {"Filters": [{"Key": "name", "Values": ["s1", "s2"]}], "MaxResults": 3}
    assert every_page(client, **kwargs) == [f"s{i}" for i in range(10, 25)]


@pytest.mark.parametrize(
    ("order", "new_ones_seen"),
    # Ascending: a secret created mid-walk is newer than the cursor, so a later page shows
    # it; descending: it sorts before the cursor, so this walk never shows it.
    [("asc", True), ("desc", False)],
)
def test_secrets_created_between_pages_are_neither_skipped_nor_repeated(
    client, twenty_five, order, new_ones_seen
):
    kwargs = {"SortBy": "created-date", "SortOrder": order, "MaxResults": 7}
    response = client.list_secrets(**kwargs)
    seen, added = names(response), list[str]()
    while "NextToken" in response:
        added.append(f"new{len(added)}")
        create(client, added[-1])
        response = client.list_secrets(**kwargs, NextToken=response["NextToken"])
        seen += names(response)

    assert len(added) >= 3
    if new_ones_seen:
        assert seen == twenty_five + added
    else:
        assert seen == twenty_five[::-1]


def test_secrets_created_on_both_sides_of_the_cursor_do_not_disturb_a_walk_by_name(
    client, twenty_five
):
    kwargs = {"SortBy": "name", "MaxResults": 5}
    response = client.list_secrets(**kwargs)
    seen, later = names(response), list[str]()
    while "NextToken" in response:
        create(client, f"a-before-{len(later)}")  # sorts before every page: never shown
        later.append(f"z-after-{len(later)}")  # sorts after the cursor: shown at the end
        create(client, later[-1])
        response = client.list_secrets(**kwargs, NextToken=response["NextToken"])
        seen += names(response)
    assert seen == twenty_five + later


def test_secrets_deleted_between_pages_are_not_listed_and_nothing_is_skipped(client, twenty_five):
    response = client.list_secrets(MaxResults=10)
    seen = names(response)
    client.delete_secret(SecretId="s03", ForceDeleteWithoutRecovery=True)  # already seen
    client.delete_secret(SecretId="s10", ForceDeleteWithoutRecovery=True)  # next page's first
    client.delete_secret(SecretId="s15", RecoveryWindowInDays=7)
    seen += every_page(client, MaxResults=10, NextToken=response["NextToken"])
    assert seen == [n for n in twenty_five if n not in {"s10", "s15"}]


def tamper(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(tamper, id="one-character-changed"),
        pytest.param(lambda token: token[:-4], id="truncated"),
        pytest.param(lambda _: "not-a-token", id="made-up"),
        pytest.param(lambda _: "%%%%", id="not-base64"),
    ],
)
def test_a_tampered_next_token_is_refused(client, twenty_five, bad):
    token = client.list_secrets(MaxResults=5)["NextToken"]
    code, _ = refusal(client.list_secrets, MaxResults=5, NextToken=bad(token))
    assert code == "InvalidNextTokenException"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"SortBy": "name"}, {"SortBy": "created-date"}),
        ({}, {"SortBy": "last-changed-date"}),
        ({"SortBy": "name", "SortOrder": "asc"}, {"SortBy": "name", "SortOrder": "desc"}),
    ],
)
def test_a_next_token_from_another_sort_order_is_refused(client, twenty_five, first, second):
    token = client.list_secrets(MaxResults=5, **first)["NextToken"]
    code, _ = refusal(client.list_secrets, MaxResults=5, NextToken=token, **second)
    assert code == "InvalidNextTokenException"


def test_a_next_token_from_another_operation_is_refused(client, twenty_five):
    # BatchGetSecretValue shares the cursor format; its tokens must not work here.
    token = client.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["s"]}], MaxResults=5)[
        "NextToken"
    ]
    code, _ = refusal(client.list_secrets, MaxResults=5, NextToken=token)
    assert code == "InvalidNextTokenException"


def test_more_than_100_results_per_page_is_a_validation_error(client):
    code, _ = refusal(client.list_secrets, MaxResults=101)
    assert code == "ValidationException"


# --- the entries ----------------------------------------------------------------------------


def test_an_entry_shows_the_secret_its_labels_and_its_tags(client):
    first = create(
        client,
        "app/db",
        SecretString="hunter2",
        Description="the database",
        Tags=[("team", "core"), ("env", "prod")],
    )
    second = client.put_secret_value(SecretId="app/db", SecretString="hunter3")
    described = client.describe_secret(SecretId="app/db")

    (entry,) = client.list_secrets()["SecretList"]

    assert set(entry) == {
        "ARN",
        "Name",
        "Description",
        "Tags",
        "SecretVersionsToStages",
        "CreatedDate",
        "LastChangedDate",
    }
    assert (entry["ARN"], entry["Name"]) == (first["ARN"], "app/db")
    assert entry["Description"] == "the database"
    assert entry["Tags"] == [{"Key": "team", "Value": "core"}, {"Key": "env", "Value": "prod"}]
    assert entry["SecretVersionsToStages"] == {
        first["VersionId"]: ["AWSPREVIOUS"],
        second["VersionId"]: ["AWSCURRENT"],
    }
    assert entry["CreatedDate"] == described["CreatedDate"]
    assert entry["LastChangedDate"] == described["LastChangedDate"]


def test_an_entry_without_a_value_or_tags_has_no_label_map_and_no_tags(client):
    create(client, "bare")
    (entry,) = client.list_secrets()["SecretList"]
    assert set(entry) == {"ARN", "Name", "CreatedDate", "LastChangedDate"}


def test_an_entry_shows_empty_tags_once_every_tag_was_removed(client):
    # As DescribeSecret does (spec §13).
    create(client, "untagged-later", Tags=[("team", "core")])
    client.untag_resource(SecretId="untagged-later", TagKeys=["team"])
    (entry,) = client.list_secrets()["SecretList"]
    assert entry["Tags"] == []


def test_an_entry_shows_the_day_it_was_last_read(client):
    create(client, "read-me", SecretString="x")
    client.get_secret_value(SecretId="read-me")
    (entry,) = client.list_secrets()["SecretList"]
    accessed = entry["LastAccessedDate"].timestamp()
    assert accessed % DAY == 0
    assert entry["CreatedDate"].timestamp() - DAY < accessed <= entry["CreatedDate"].timestamp()


def test_an_entry_never_carries_a_secret_value(server, client, region):
    # boto3 would drop unknown members silently, so read the raw body.
    create(client, "string", SecretString="hunter2-string-value")
    client.create_secret(Name="binary", SecretBinary=b"hunter2-binary-value")
    client.put_secret_value(SecretId="string", SecretString="hunter2-second-value")

    raw = signed_call(server.url, region, "ListSecrets", {"IncludePlannedDeletion": True})

    assert raw.status == 200
    text = json.dumps(raw.body)
    for leaked in ("hunter2", "aHVudGVyMi", "SecretString", "SecretBinary", "VersionIdsToStages"):
        assert leaked not in text
    assert [entry["Name"] for entry in raw.body["SecretList"]] == ["string", "binary"]


def test_an_empty_region_lists_nothing(client):
    response = client.list_secrets()
    assert response["SecretList"] == []
    assert "NextToken" not in response


# --- the SQL word index agrees with the reference rules --------------------------------------

# Texts from a small alphabet (mixed case, a digit, every word breaker), built from short
# words, so that secrets share words and random filters often hit.
WORD = st.text("abcAB1", min_size=1, max_size=5)
SEPARATORS = ["", "/", "_", "-", "."]
TEXT_CHARS = "abcAB1 /_-."
KEYS = ["name", "description", "tag-key", "tag-value", "all"]
FILTER_SETS_PER_EXAMPLE = 12


def phrases(separators: Sequence[str], max_words: int = 3) -> st.SearchStrategy[str]:
    return st.lists(
        st.tuples(WORD, st.sampled_from(separators)), min_size=1, max_size=max_words
    ).map(lambda parts: "".join(word + separator for word, separator in parts))


tag_maps = st.dictionaries(
    phrases(SEPARATORS, max_words=2), st.just("") | phrases([*SEPARATORS, " "]), max_size=2
)
descriptions = st.none() | phrases([*SEPARATORS, " "])
secret_specs = st.lists(
    st.fixed_dictionaries(
        {
            "name": phrases(SEPARATORS),
            "description": descriptions,
            "tags": tag_maps,
            # Changed after creation: the index must follow UpdateSecret and TagResource.
            "new_description": descriptions,
            "more_tags": tag_maps,
        }
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda spec: str(spec["name"]),
)


def filter_values(texts: Sequence[str]) -> st.SearchStrategy[str]:
    """Filter values, mostly cut from ``texts`` (and re-cased) so that they often match."""
    source = st.sampled_from(texts) if texts else st.just("aB")
    prefix = st.tuples(source, st.integers(1, 6)).map(lambda t: t[0][: t[1]])
    inner = st.tuples(source, st.integers(0, 9), st.integers(1, 4)).map(
        lambda t: t[0][t[1] : t[1] + t[2]]
    )
    word_start = st.tuples(source, st.integers(0, 4), st.integers(1, 3)).map(
        lambda t: (words(t[0]) or [""])[t[1] % max(1, len(words(t[0])))][: t[2]]
    )
    recasings: list[Callable[[str], str]] = [str.swapcase, str.lower, str.upper, str]
    recase = st.sampled_from(recasings)
    cut = st.tuples(st.one_of(prefix, inner, word_start), recase).map(lambda t: t[1](t[0]))
    body = st.one_of(cut, cut, st.text(TEXT_CHARS, max_size=4))
    return st.tuples(st.sampled_from(["", "", "!"]), body).map("".join)


def filter_sets(facts: Sequence[SecretFacts]) -> st.SearchStrategy[list[tuple[str, list[str]]]]:
    """One or two filters whose values come mostly from the texts their key looks at."""
    keys = [k for f in facts for k, _ in f.tags]
    values = [v for f in facts for _, v in f.tags]
    descriptions = [f.description for f in facts if f.description]
    pools = {
        "name": [f.name for f in facts],
        "description": descriptions,
        "tag-key": keys,
        "tag-value": [v for v in values if v],
        "all": [f.name for f in facts] + descriptions + keys + values,
    }
    one_filter = st.sampled_from(KEYS).flatmap(
        lambda key: st.tuples(
            st.just(key), st.lists(filter_values(pools[key]), min_size=1, max_size=3)
        )
    )
    return st.lists(one_filter, min_size=1, max_size=2)


def make_secrets(client, specs: list[dict[str, Any]]) -> list[SecretFacts]:
    """Create the secrets (then change some); what the reference rules should see."""
    facts = []
    for spec in specs:
        kwargs: dict[str, Any] = {"Name": spec["name"]}
        if spec["description"] is not None:
            kwargs["Description"] = spec["description"]
        if spec["tags"]:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in spec["tags"].items()]
        client.create_secret(**kwargs)
        description = spec["description"]
        if spec["new_description"] is not None:
            client.update_secret(SecretId=spec["name"], Description=spec["new_description"])
            description = spec["new_description"]
        tags = dict(spec["tags"])
        if spec["more_tags"]:
            more = [{"Key": k, "Value": v} for k, v in spec["more_tags"].items()]
            client.tag_resource(SecretId=spec["name"], Tags=more)
            tags.update(spec["more_tags"])
        facts.append(SecretFacts(spec["name"], description or None, list(tags.items()), None, None))
    return facts


# No shrinking: each example costs a dozen HTTP calls, so Hypothesis would spend its full five
# minute shrink budget on a failure; unshrunk examples are small anyway, and the failing
# filters are in the assertion message.
@settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(specs=secret_specs, data=st.data())
def test_the_server_filters_exactly_as_the_reference_rules(server, specs, data):
    client = server.client(f"p{uuid.uuid4().hex[:8]}-west-1")  # a fresh region per example
    facts = make_secrets(client, specs)
    filters_strategy = filter_sets(facts)

    for _ in range(FILTER_SETS_PER_EXAMPLE):
        filters = data.draw(filters_strategy)
        expected = sorted(f.name for f in facts if matches(filters, f))
        assert found(client, *filters) == expected, filters
