"""ListSecrets filter rules (spec §8.1)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.domain.search import (
    FILTER_KEYS,
    SecretFacts,
    indexed_words,
    matches,
    split_negation,
    words,
)
from strongroom.errors import InvalidParameterException, ValidationException

Filters = Sequence[tuple[str, Sequence[str]]]


def secret(
    name: str,
    description: str | None = None,
    tags: Sequence[tuple[str, str]] = (),
    primary_region: str | None = None,
    owning_service: str | None = None,
) -> SecretFacts:
    return SecretFacts(name, description, tags, primary_region, owning_service)


def selected(filters: Filters, secrets: Sequence[SecretFacts]) -> list[str]:
    return [s.name for s in secrets if matches(filters, s)]


# --- words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SecretOne", ["secret", "one"]),
        ("COMPANYthings", ["compan", "ythings"]),
        ("COMPANY", ["company"]),
        ("SecretFTag", ["secret", "f", "tag"]),
        ("Thirdsecret", ["thirdsecret"]),
        ("DescTwo", ["desc", "two"]),
        ("a secret", ["a", "secret"]),
        ("one  and\ttwo\n", ["one", "and", "two"]),
        ("prod/AppBeta/k9", ["prod", "app", "beta", "k", "9"]),
        ("a_b+c=d.e@f-g", ["a", "b", "c", "d", "e", "f", "g"]),
        ("abc123def", ["abc", "123", "def"]),
        ("HTTPServer2Go", ["http", "server", "2", "go"]),
        ("+", []),
        ("/-_", []),
        ("", []),
        ("  ", []),
        # Decision: every other non-alphanumeric character breaks words as well.
        ("arn:aws:x (prod), ok!", ["arn", "aws", "x", "prod", "ok"]),
        ("Straße Überall", ["straße", "überall"]),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@given(st.text())
def test_words_are_lower_case_and_non_empty(text: str) -> None:
    for word in words(text):
        assert word
        assert word == word.lower()
        assert not any(c.isspace() or c in "/_+=.@-" for c in word)


def test_split_negation() -> None:
    assert split_negation("!a") == (True, "a")
    assert split_negation("!!a") == (True, "!a")
    assert split_negation("a!") == (False, "a!")
    assert split_negation("!") == (True, "")


def test_indexed_words() -> None:
    facts = secret(
        "prod/AppBeta",
        "Beta app for prod",
        [("Env", "Prod"), ("team", "app-beta")],
    )
    assert indexed_words(facts) == {
        "name": ["prod", "app", "beta"],
        "description": ["beta", "app", "for", "prod"],
        "tag-key": ["env", "team"],
        "tag-value": ["prod", "app", "beta"],
    }
    assert indexed_words(secret("+")) == {}


# --- description (LSV test_list_secrets_filtering; MOTOV) --------------------------------

DESCRIBED = [
    secret("s1", "a secret"),
    secret("s2", "an secret"),
    secret("s3", "asecret"),
    secret("s4", "thesecret"),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", ["s1", "s2", "s3"]),
        ("a secret", ["s1", "s2"]),
        ("!a", ["s4"]),
        ("!c", ["s1", "s2", "s3", "s4"]),
        ("A SECRET", ["s1", "s2"]),  # not case-sensitive
        ("secret", ["s1", "s2"]),
        ("cret", []),  # inside a word is not a prefix
        ("+", []),  # no words: matches nothing
        ("!+", ["s1", "s2", "s3", "s4"]),
    ],
)
def test_description_lsv(value: str, expected: list[str]) -> None:
    assert selected([("description", [value])], DESCRIBED) == expected


ONE_TWO = [
    secret("foo", "one two"),
    secret("bar", "one and two"),
    secret("baz", "one"),
    secret("qux", "two"),
    secret("none", "unrelated"),
    secret("blank"),
]


def test_description_words_in_any_order() -> None:
    assert selected([("description", ["o t"])], ONE_TWO) == ["foo", "bar"]
    assert selected([("description", ["two one"])], ONE_TWO) == ["foo", "bar"]


def test_filters_combine_with_and() -> None:
    filters = [("description", ["one"]), ("description", ["two"])]
    assert selected(filters, ONE_TWO) == ["foo", "bar"]
    assert selected([("description", ["a"]), ("name", ["secret"])], DESCRIBED) == []


def test_values_combine_with_or() -> None:
    assert selected([("description", ["unrelated", "two"])], ONE_TWO) == [
        "foo",
        "bar",
        "qux",
        "none",
    ]


def test_positive_and_negated_values_in_one_filter() -> None:
    # UNCONFIRMED combination (spec §8.1); our rule: some positive matches, no negated does.
    assert selected([("description", ["one", "!two"])], ONE_TWO) == ["baz"]
    assert selected([("description", ["!one", "!two"])], ONE_TWO) == ["none", "blank"]
    assert selected([("description", ["!o"])], ONE_TWO) == ["qux", "none", "blank"]


def test_description_missing() -> None:
    assert not matches([("description", ["a"])], secret("x"))
    assert matches([("description", ["!a"])], secret("x"))


# --- name (LSV test_list_secrets_filtering; localstack#4820 recorded against AWS) ----------

NAMED = [
    secret("testing1/one"),
    secret("/testing2/two"),
    secret("testing3/three"),
    secret("/testing4/four"),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/", ["/testing2/two", "/testing4/four"]),
        ("!/", ["testing1/one", "testing3/three"]),
        ("testing1 one", []),  # no word splitting
        ("one", []),  # prefix of the whole name only
        ("Testing1", []),  # case-sensitive
        ("testing1/one", ["testing1/one"]),
        ("testing1/one/", []),
        ("", ["testing1/one", "/testing2/two", "testing3/three", "/testing4/four"]),
    ],
)
def test_name(value: str, expected: list[str]) -> None:
    assert selected([("name", [value])], NAMED) == expected


def test_name_multiple_values() -> None:
    assert selected([("name", ["testing1", "/testing4"])], NAMED) == [
        "testing1/one",
        "/testing4/four",
    ]


@given(st.data(), st.text(alphabet="ab/-_.C", max_size=8))
def test_negated_name_is_the_complement(data: st.DataObject, name: str) -> None:
    prefix_or_any = st.one_of(
        st.integers(0, len(name)).map(lambda n: name[:n]),
        st.text(alphabet="ab/-_.C!", max_size=8),
    )
    # A value already starting with "!" is itself negated; its complement is not "!" + it.
    value = data.draw(prefix_or_any.filter(lambda v: not v.startswith("!")))
    facts = secret(name)
    assert matches([("name", ["!" + value])], facts) is not matches([("name", [value])], facts)


# --- tags (DOC: Prod matches Production and Prod1, not prod) ----------------------------

TAGGED = [
    secret("production", tags=[("Production", "Production")]),
    secret("prod1", tags=[("Prod1", "Prod1")]),
    secret("lower", tags=[("prod", "prod")]),
    secret("untagged"),
]


@pytest.mark.parametrize("key", ["tag-key", "tag-value"])
def test_tags(key: str) -> None:
    assert selected([(key, ["Prod"])], TAGGED) == ["production", "prod1"]
    assert selected([(key, ["!Prod"])], TAGGED) == ["lower", "untagged"]
    assert selected([(key, ["duct"])], TAGGED) == []


def test_tag_key_and_value_are_separate() -> None:
    facts = secret("x", tags=[("env", "prod"), ("team", "ops")])
    assert matches([("tag-key", ["team"]), ("tag-value", ["prod"])], facts)
    assert not matches([("tag-key", ["prod"])], facts)
    assert not matches([("tag-value", ["env"])], facts)


# --- primary-region, owning-service -----------------------------------------------------


def test_primary_region() -> None:
    facts = secret("x", primary_region="eu-west-1")
    assert matches([("primary-region", ["eu-"])], facts)
    assert not matches([("primary-region", ["EU-"])], facts)  # case-sensitive
    assert not matches([("primary-region", ["us-"])], facts)
    assert not matches([("primary-region", ["eu"])], secret("y"))
    assert matches([("primary-region", ["!eu"])], secret("y"))


def test_owning_service() -> None:
    facts = secret("rds!db-1", owning_service="rds")
    assert matches([("owning-service", ["rd"])], facts)
    assert matches([("owning-service", ["RDS"])], facts)  # UNCONFIRMED: we ignore case
    assert not matches([("owning-service", ["n/a"])], facts)
    assert not matches([("owning-service", ["n/a"])], secret("plain"))  # moto example
    assert matches([("owning-service", ["!rds"])], secret("plain"))


# --- all (MOTOV test_with_all_filter, test_with_all_filter_special_characters) -----------

EVERYTHING = [
    secret("SecretOne"),
    secret("SecretTwo", "DescTwo"),
    secret("Thirdsecret"),
    secret("SecretFTag", tags=[("1", "foo")]),
    secret("SecretFValue", tags=[("foo", "v")]),
    secret("none"),
]
FOUR_SECRETS = ["SecretOne", "SecretTwo", "SecretFTag", "SecretFValue"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SecretOne", ["SecretOne"]),
        ("foo", ["SecretFTag", "SecretFValue"]),
        ("Secret", FOUR_SECRETS),
        ("secret", FOUR_SECRETS),
        ("sec", FOUR_SECRETS),
        ("ret", []),
        ("SomeSecret", []),
        ("d", ["SecretTwo"]),
        ("d t", ["SecretTwo"]),
        ("t", ["SecretTwo", "Thirdsecret", "SecretFTag"]),
    ],
)
def test_all(value: str, expected: list[str]) -> None:
    assert selected([("all", [value])], EVERYTHING) == expected


SPECIAL = [secret(f"prod{sep}AppBeta{sep}k9") for sep in ["/", "_", "+", "=", ".", "@", "-"]] + [
    secret("uat/COMPANY/k9"),
    secret("uat/COMPANYthings/k9"),
]
SPECIAL_NAMES = [s.name for s in SPECIAL]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["AppBeta"], SPECIAL_NAMES[:7]),
        (["Beta"], SPECIAL_NAMES[:7]),
        (["AppBeta", "prod"], SPECIAL_NAMES[:7]),
        (["+"], []),
        (["k9"], SPECIAL_NAMES),
        (["company"], ["uat/COMPANY/k9"]),
        (["things"], []),
        (["Ythings"], ["uat/COMPANYthings/k9"]),
        (["N"], []),
        (["pany"], []),
    ],
)
def test_all_special_characters(values: list[str], expected: list[str]) -> None:
    assert selected([("all", values)], SPECIAL) == expected


def test_all_pools_fields() -> None:
    # Words may come from different fields (see search._all).
    facts = secret("Alpha", "bravo", [("Charlie", "delta")])
    assert matches([("all", ["alpha bravo charlie delta"])], facts)
    assert not matches([("all", ["alpha echo"])], facts)
    assert matches([("all", ["!echo"])], facts)


# --- shape ------------------------------------------------------------------------------


def test_no_filters_match_everything() -> None:
    assert matches([], secret("x"))


def test_unknown_key() -> None:
    with pytest.raises(ValidationException) as caught:
        matches([("name", ["x"]), ("nope", ["x"])], secret("x"))
    assert caught.value.message == (
        "1 validation error detected: Value 'nope' at 'filters.2.member.key' failed to "
        "satisfy constraint: Member must satisfy enum value set: [description, name, "
        "tag-key, tag-value, primary-region, owning-service, all]"
    )


def test_no_values() -> None:
    with pytest.raises(InvalidParameterException) as caught:
        matches([("description", [])], secret("x"))
    assert caught.value.message == "Invalid filter values for key: description"


@given(
    st.sampled_from(FILTER_KEYS),
    st.text(alphabet="aB1 /+-:!", max_size=6).filter(lambda v: not v.startswith("!")),
    st.sampled_from(EVERYTHING + SPECIAL + TAGGED + ONE_TWO),
)
def test_negation_is_the_complement_for_every_key(key: str, value: str, facts: SecretFacts) -> None:
    assert matches([(key, ["!" + value])], facts) is not matches([(key, [value])], facts)
