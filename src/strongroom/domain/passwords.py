"""GetRandomPassword (spec §10): a random password drawn from a CSPRNG."""

from __future__ import annotations

import secrets
import string

from strongroom.errors import InvalidParameterException

MIN_LENGTH = 1
MAX_LENGTH = 4096

# spec §16.2 (moto's text; AWS's is UNCONFIRMED).
TOO_SHORT = "Password length is too short based on the required types."
# No source has AWS's text for this case (spec §10, §19.1); ours says what went wrong.
NOTHING_LEFT = "The password can't be generated because every character type is excluded."
BAD_LENGTH = f"PasswordLength must be between {MIN_LENGTH} and {MAX_LENGTH}."

_random = secrets.SystemRandom()


def random_password(
    *,
    length: int = 32,
    exclude_characters: str = "",
    exclude_numbers: bool = False,
    exclude_punctuation: bool = False,
    exclude_uppercase: bool = False,
    exclude_lowercase: bool = False,
    include_space: bool = False,
    require_each_included_type: bool = True,
) -> str:
    """Return ``length`` characters from the allowed classes, as GetRandomPassword does.

    Raises InvalidParameterException when no character is left to draw from, or when the
    length cannot hold one character of every required class.
    """
    # The model validator rejects this first (ValidationException); this guards other callers.
    if isinstance(length, bool) or not isinstance(length, int):
        raise InvalidParameterException(BAD_LENGTH)
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidParameterException(BAD_LENGTH)

    excluded = frozenset(exclude_characters)

    def keep(chars: str) -> str:
        # ExcludeCharacters applies to every class, space included (spec §10).
        return "".join(c for c in chars if c not in excluded)

    # The "types" that RequireEachIncludedType speaks of. string.punctuation is exactly the
    # 32 ASCII punctuation characters AWS uses (spec §10).
    typed = [
        keep(chars)
        for chars, dropped in (
            (string.ascii_uppercase, exclude_uppercase),
            (string.ascii_lowercase, exclude_lowercase),
            (string.digits, exclude_numbers),
            (string.punctuation, exclude_punctuation),
        )
        if not dropped
    ]
    # A class emptied by ExcludeCharacters is not "included", so it is not required either.
    typed = [chars for chars in typed if chars]
    space = keep(" ") if include_space else ""

    # The classes are disjoint, so every allowed character appears once in the pool and the
    # free positions are uniform over the allowed characters.
    pool = "".join(typed) + space
    if not pool:
        raise InvalidParameterException(NOTHING_LEFT)

    # UNCONFIRMED (spec §10): whether space is a required type. AWS documents the switch as
    # "at least one upper and lowercase letter, one number, and one punctuation", so we do
    # not force a space; it is only a possible character. A pool of nothing but the space is
    # therefore allowed and yields spaces.
    required = typed if require_each_included_type else []
    if length < len(required):
        raise InvalidParameterException(TOO_SHORT)

    chars = [_random.choice(group) for group in required]
    chars.extend(_random.choice(pool) for _ in range(length - len(required)))
    # Shuffling puts the forced characters at uniformly random positions.
    _random.shuffle(chars)
    return "".join(chars)
