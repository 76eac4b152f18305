"""GetRandomPassword rules (spec §10)."""

from __future__ import annotations

import math
import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.domain.passwords import NOTHING_LEFT, TOO_SHORT, random_password
from strongroom.errors import InvalidParameterException

CLASSES = {
    "uppercase": string.ascii_uppercase,
    "lowercase": string.ascii_lowercase,
    "numbers": string.digits,
    "punctuation": string.punctuation,
}
PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


def test_defaults() -> None:
    password = random_password()
    assert len(password) == 32
    assert set(password) <= set(string.ascii_letters + string.digits + string.punctuation)
    for chars in CLASSES.values():
        assert set(password) & set(chars)


def test_exclude_characters_lsv_example() -> None:
    # spec §10 (LSV test_get_random_exclude_characters_and_symbols)
    password = random_password(length=120, exclude_characters="xyzDje@?!.")
    assert len(password) == 120
    assert not set(password) & set("xyzDje@?!.")


@settings(max_examples=400, deadline=None)
@given(
    length=st.one_of(st.integers(1, 64), st.sampled_from([1, 2, 3, 4, 5, 4096])),
    excluded=st.text(alphabet=PRINTABLE, max_size=40),
    exclude_numbers=st.booleans(),
    exclude_punctuation=st.booleans(),
    exclude_uppercase=st.booleans(),
    exclude_lowercase=st.booleans(),
    include_space=st.booleans(),
    require_each=st.booleans(),
)
def test_every_flag_combination(
    *,
    length: int,
    excluded: str,
    exclude_numbers: bool,
    exclude_punctuation: bool,
    exclude_uppercase: bool,
    exclude_lowercase: bool,
    include_space: bool,
    require_each: bool,
) -> None:
    dropped = {
        "uppercase": exclude_uppercase,
        "lowercase": exclude_lowercase,
        "numbers": exclude_numbers,
        "punctuation": exclude_punctuation,
    }
    typed = [set(chars) - set(excluded) for name, chars in CLASSES.items() if not dropped[name]]
    typed = [chars for chars in typed if chars]
    allowed = {c for chars in typed for c in chars}
    if include_space and " " not in excluded:
        allowed.add(" ")
    required = typed if require_each else []

    def generate() -> str:
        return random_password(
            length=length,
            exclude_characters=excluded,
            exclude_numbers=exclude_numbers,
            exclude_punctuation=exclude_punctuation,
            exclude_uppercase=exclude_uppercase,
            exclude_lowercase=exclude_lowercase,
            include_space=include_space,
            require_each_included_type=require_each,
        )

    if not allowed:
        with pytest.raises(InvalidParameterException) as caught:
            generate()
        assert caught.value.message == NOTHING_LEFT
        return
    if length < len(required):
        with pytest.raises(InvalidParameterException) as caught:
            generate()
        assert caught.value.message == TOO_SHORT
        return

    password = generate()
    assert len(password) == length
    assert set(password) <= allowed
    assert not set(password) & set(excluded)
    for chars in required:
        assert set(password) & chars


def test_every_class_excluded() -> None:
    with pytest.raises(InvalidParameterException):
        random_password(
            exclude_numbers=True,
            exclude_punctuation=True,
            exclude_uppercase=True,
            exclude_lowercase=True,
        )


def test_exclude_characters_can_empty_everything() -> None:
    with pytest.raises(InvalidParameterException):
        random_password(exclude_characters=PRINTABLE, include_space=True)


def test_class_emptied_by_exclude_characters_is_not_required() -> None:
    password = random_password(length=3, exclude_characters=string.digits)
    assert not set(password) & set(string.digits)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_too_short_for_required_types(length: int) -> None:
    with pytest.raises(InvalidParameterException) as caught:
        random_password(length=length)
    assert caught.value.message == "Password length is too short based on the required types."


def test_short_length_without_requirement() -> None:
    assert len(random_password(length=1, require_each_included_type=False)) == 1


def test_space_is_possible_but_not_required() -> None:
    # Decision on the UNCONFIRMED point of spec §10: space is not a required type.
    assert random_password(length=4, include_space=True)  # 4 types, no room for a space
    only_space = random_password(
        length=5,
        include_space=True,
        exclude_numbers=True,
        exclude_punctuation=True,
        exclude_uppercase=True,
        exclude_lowercase=True,
    )
    assert only_space == " " * 5
    sample = "".join(random_password(length=64, include_space=True) for _ in range(50))
    assert " " in sample


@pytest.mark.parametrize("length", [0, -1, 4097, True])
def test_length_out_of_range(length: int) -> None:
    with pytest.raises(InvalidParameterException):
        random_password(length=length)


def test_extreme_lengths() -> None:
    assert len(random_password(length=4096)) == 4096
    assert len(random_password(length=4)) == 4


def _chi_square(observed: Counter[str], expected: dict[str, float]) -> float:
    assert set(observed) <= set(expected)
    return sum((observed[c] - e) ** 2 / e for c, e in expected.items())


def _limit(degrees: int) -> float:
    # Mean df plus eight standard deviations (sd = sqrt(2 df)). For the ~93 degrees of
    # freedom used here the chance of a false alarm is below 1e-9; a generator that drops a
    # class or ignores the forced characters' share lands far above it.
    return degrees + 8 * math.sqrt(2 * degrees)


def test_uniform_without_requirement() -> None:
    alphabet = string.ascii_letters + string.digits + string.punctuation
    length, count = 64, 2000
    observed = Counter(
        "".join(
            random_password(length=length, require_each_included_type=False) for _ in range(count)
        )
    )
    expected = {c: length * count / len(alphabet) for c in alphabet}
    assert _chi_square(observed, expected) < _limit(len(alphabet) - 1)


def test_uniform_within_classes_with_requirement() -> None:
    # With one forced character per type the expected count of a character is
    # (free positions / pool size + 1 / size of its class) per password.
    length, count = 32, 3000
    observed = Counter("".join(random_password(length=length) for _ in range(count)))
    pool = sum(len(chars) for chars in CLASSES.values())
    free = length - len(CLASSES)
    expected = {
        c: count * (free / pool + 1 / len(chars)) for chars in CLASSES.values() for c in chars
    }
    assert _chi_square(observed, expected) < _limit(pool - 1)


def test_forced_characters_land_anywhere() -> None:
    # At the minimum length each type appears exactly once; the shuffle must spread them.
    count = 4000
    first_class = Counter(
        next(name for name, chars in CLASSES.items() if password[0] in chars)
        for password in (random_password(length=4) for _ in range(count))
    )
    # Each share is 0.25 with sd 0.007 at this count; 0.05 away is seven sd (no flakes).
    for name in CLASSES:
        assert abs(first_class[name] / count - 0.25) < 0.05
