"""GetRandomPassword over the wire (spec §10, §15.17): length, every switch, and the errors."""

from __future__ import annotations

import string

import pytest
from tests.api.helpers import refusal
from tests.api.rawhttp import signed_call

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
PUNCTUATION = string.punctuation  # the 32 ASCII punctuation characters AWS draws from
CLASSES = {"upper": UPPER, "lower": LOWER, "digits": DIGITS, "punctuation": PUNCTUATION}
# The texts of the two parameter errors are UNCONFIRMED against AWS (spec §10, §16.2).
TOO_SHORT = "Password length is too short based on the required types."


def password(client, **kwargs) -> str:
    response = client.get_random_password(**kwargs)
    assert set(response) == {"RandomPassword", "ResponseMetadata"}
    return response["RandomPassword"]


def classes_in(text: str) -> set[str]:
    return {name for name, chars in CLASSES.items() if set(text) & set(chars)}


def test_it_answers_32_characters_of_every_class_by_default(client):
    generated = password(client)
    assert len(generated) == 32
    assert set(generated) <= set(UPPER + LOWER + DIGITS + PUNCTUATION)
    assert classes_in(generated) == set(CLASSES)  # RequireEachIncludedType defaults to on


def test_two_passwords_differ(client):
    assert password(client) != password(client)


@pytest.mark.parametrize("length", [4, 33, 4096])
def test_it_answers_exactly_the_length_asked_for(client, length):
    assert len(password(client, PasswordLength=length)) == length


@pytest.mark.parametrize(
    ("switch", "excluded"),
    [
        ("ExcludeUppercase", "upper"),
        ("ExcludeLowercase", "lower"),
        ("ExcludeNumbers", "digits"),
        ("ExcludePunctuation", "punctuation"),
    ],
)
def test_each_exclude_switch_removes_its_whole_class(client, switch, excluded):
    generated = password(client, PasswordLength=200, **{switch: True})
    assert classes_in(generated) == set(CLASSES) - {excluded}


def test_exclude_switches_combine(client):
    generated = password(
        client,
        PasswordLength=64,
        ExcludeUppercase=True,
        ExcludeNumbers=True,
        ExcludePunctuation=True,
    )
    assert set(generated) <= set(LOWER)


def test_exclude_characters_removes_those_characters_from_every_class(client):
    excluded = "xyzDje@?!."
    generated = password(client, PasswordLength=120, ExcludeCharacters=excluded)
    assert not set(generated) & set(excluded)
    assert classes_in(generated) == set(CLASSES)


def test_a_class_emptied_by_exclude_characters_is_no_longer_required(client):
    generated = password(client, PasswordLength=50, ExcludeCharacters=DIGITS)
    assert classes_in(generated) == {"upper", "lower", "punctuation"}


def test_include_space_lets_the_space_appear(client):
    # A space is allowed, not required; 4,096 draws from 95 characters all missing it has a
    # probability of about 1e-19.
    generated = password(client, PasswordLength=4096, IncludeSpace=True)
    assert " " in generated


def test_there_is_no_space_without_include_space(client):
    assert " " not in password(client, PasswordLength=4096)


def test_a_password_as_short_as_the_required_classes_has_one_of_each(client):
    generated = password(client, PasswordLength=4)
    assert classes_in(generated) == set(CLASSES)


def test_a_password_shorter_than_the_required_classes_is_refused(client):
    assert refusal(client.get_random_password, PasswordLength=3) == (
        "InvalidParameterException",
        TOO_SHORT,
    )


def test_fewer_required_classes_allow_a_shorter_password(client):
    generated = password(client, PasswordLength=2, ExcludeNumbers=True, ExcludePunctuation=True)
    assert classes_in(generated) == {"upper", "lower"}


def test_without_require_each_included_type_one_character_is_enough(client):
    generated = password(client, PasswordLength=1, RequireEachIncludedType=False)
    assert len(generated) == 1
    assert generated in UPPER + LOWER + DIGITS + PUNCTUATION


def test_excluding_every_class_is_refused(client):
    code, message = refusal(
        client.get_random_password,
        ExcludeUppercase=True,
        ExcludeLowercase=True,
        ExcludeNumbers=True,
        ExcludePunctuation=True,
    )
    assert code == "InvalidParameterException"
    assert "every character type is excluded" in message


def test_excluding_every_character_is_refused(client):
    code, _ = refusal(
        client.get_random_password, ExcludeCharacters=UPPER + LOWER + DIGITS + PUNCTUATION
    )
    assert code == "InvalidParameterException"


def test_a_length_above_4096_is_a_validation_error(client):
    assert refusal(client.get_random_password, PasswordLength=4097) == (
        "ValidationException",
        (
            "1 validation error detected: Value '4097' at 'passwordLength' failed to satisfy "
            "constraint: Member must have value less than or equal to 4096"
        ),
    )


def test_a_length_of_zero_is_a_validation_error(server, region):
    # botocore refuses 0 before sending it, so the request is made by hand.
    response = signed_call(server.url, region, "GetRandomPassword", {"PasswordLength": 0})
    assert response.status == 400
    assert response.body == {
        "__type": "ValidationException",
        "Message": "1 validation error detected: Value '0' at 'passwordLength' failed to "
        "satisfy constraint: Member must have value greater than or equal to 1",
    }


def test_a_length_that_is_not_a_number_is_a_serialization_error(server, region):
    response = signed_call(server.url, region, "GetRandomPassword", {"PasswordLength": "12"})
    assert response.status == 400
    assert response.body["__type"] == "SerializationException"
