"""The ListSecrets filter rules (spec §8.1), as pure functions.

The storage layer answers ``description`` and ``all`` filters from an index of ``words()``
and the other keys with prefix comparisons; ``matches`` is the reference it must agree with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from strongroom.errors import InvalidParameterException, ValidationException

# Model order (spec §8, §15.7); also the order quoted in the ValidationException text.
FILTER_KEYS: tuple[str, ...] = (
    "description",
    "name",
    "tag-key",
    "tag-value",
    "primary-region",
    "owning-service",
    "all",
)


@dataclass(frozen=True)
class SecretFacts:
    """What ListSecrets filters look at for one secret."""

    name: str
    description: str | None
    tags: Sequence[tuple[str, str]]
    primary_region: str | None
    owning_service: str | None


# One filter key's test of one (un-negated) value against a secret.
_Tester: TypeAlias = Callable[[str, SecretFacts], bool]


def words(text: str) -> list[str]:
    """Split ``text`` into lower-cased search words, in order, repeats kept.

    Breaks (spec §8.1): whitespace and ``/ _ + = . @ -``; lower→upper (``SecretOne`` → secret,
    one); before the last capital of a run of capitals followed by a lower-case letter
    (``COMPANYthings`` → compan, ythings; ``SecretFTag`` → secret, f, tag); letters↔digits.
    Decision (not in the spec): every other character that is neither a letter nor a digit
    (``:``, ``!``, ``,``, ``(``…) also breaks words, so that ``(prod)`` and ``arn:aws`` search
    like ``prod`` and ``arn aws``. Letters without case (e.g. CJK) behave like lower case.
    """
    found: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            found.append("".join(current).lower())
            current.clear()

    for i, char in enumerate(text):
        if not char.isalnum():  # whitespace, / _ + = . @ - and every other symbol
            flush()
            continue
        if current and _starts_word(current[-1], char, text[i + 1 : i + 2]):
            flush()
        current.append(char)
    flush()
    return found


def _starts_word(prev: str, char: str, following: str) -> bool:
    """Whether ``char`` (after ``prev``, before ``following``) begins a new word."""
    if prev.isalpha() != char.isalpha():  # letters↔digits
        return True
    if not char.isupper():
        return False
    if not prev.isupper():  # lower→upper: SecretOne
        return True
    # Capital run ending in a capitalised word: COMPANYthings → COMPAN | Ythings.
    return following.isalpha() and not following.isupper()


def split_negation(value: str) -> tuple[bool, str]:
    """``"!x"`` → ``(True, "x")``; one leading ``!`` negates (spec §8.1), the rest is literal."""
    if value.startswith("!"):
        return True, value[1:]
    return False, value


def indexed_words(facts: SecretFacts) -> dict[str, list[str]]:
    """Distinct words per field, as the storage word index holds them.

    Fields: ``name``, ``description``, ``tag-key``, ``tag-value``; a field without words is
    left out.
    """
    fields = {
        "name": [facts.name],
        "description": [facts.description] if facts.description else [],
        "tag-key": [key for key, _ in facts.tags],
        "tag-value": [value for _, value in facts.tags],
    }
    index: dict[str, list[str]] = {}
    for field, texts in fields.items():
        distinct = list(dict.fromkeys(w for text in texts for w in words(text)))
        if distinct:
            index[field] = distinct
    return index


def matches(filters: Sequence[tuple[str, Sequence[str]]], facts: SecretFacts) -> bool:
    """Whether the secret passes every ListSecrets filter.

    Across filters: AND (spec §8.1, confirmed). Within one filter: OR over the positive values
    (spec §8.1, UNCONFIRMED). A ``!`` value excludes what its body matches (confirmed for a
    single value). Mixing both in one filter is UNCONFIRMED; our rule: the secret passes when
    some positive value matches (or there is none) and no negated value matches, so
    ``["a", "!b"]`` means "a and not b" and ``["!a", "!b"]`` means "neither a nor b".
    (moto, not verified against AWS, ORs every value instead.)
    """
    for position, (key, values) in enumerate(filters, start=1):
        test = _tester(key, position)
        if not values:
            # Normally rejected before we get here (spec §15.7, moto's text, UNCONFIRMED).
            raise InvalidParameterException(f"Invalid filter values for key: {key}")
        positives: list[str] = []
        negatives: list[str] = []
        for value in values:
            negated, body = split_negation(value)
            (negatives if negated else positives).append(body)
        if positives and not any(test(body, facts) for body in positives):
            return False
        if any(test(body, facts) for body in negatives):
            return False
    return True


def _tester(key: str, position: int) -> _Tester:
    tester = _TESTERS.get(key)
    if tester is None:
        # The model validator rejects unknown keys first; the text follows spec §16.2.
        raise ValidationException(
            f"1 validation error detected: Value '{key}' at 'filters.{position}.member.key' "
            "failed to satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(FILTER_KEYS)}]"
        )
    return tester


def _all_words_prefix(value: str, haystack: Iterable[str]) -> bool:
    """Every word of ``value`` starts some word of ``haystack``; no words → no match (§8.1)."""
    wanted = words(value)
    if not wanted:
        return False
    have = list(haystack)
    return all(any(word.startswith(w) for word in have) for w in wanted)


def _description(value: str, facts: SecretFacts) -> bool:
    # Word matching, not the whole-string prefix the model promises (spec §8.1, LSV).
    return _all_words_prefix(value, words(facts.description or ""))


def _all(value: str, facts: SecretFacts) -> bool:
    # Words may come from different fields: "secret one" matches name "SecretX" with
    # description "one". (AWS's 2020 blog says "in the same field"; UNCONFIRMED, the brief
    # for this module pools them.)
    return _all_words_prefix(value, (w for ws in indexed_words(facts).values() for w in ws))


def _name(value: str, facts: SecretFacts) -> bool:
    # Whole-name prefix, case-sensitive, no word splitting (spec §8.1, LSV).
    return facts.name.startswith(value)


def _tag_key(value: str, facts: SecretFacts) -> bool:
    return any(key.startswith(value) for key, _ in facts.tags)


def _tag_value(value: str, facts: SecretFacts) -> bool:
    return any(tag_value.startswith(value) for _, tag_value in facts.tags)


def _primary_region(value: str, facts: SecretFacts) -> bool:
    return facts.primary_region is not None and facts.primary_region.startswith(value)


def _owning_service(value: str, facts: SecretFacts) -> bool:
    # Model says case-sensitive, user guide says not (spec §8.1, UNCONFIRMED). The spec ranks
    # the user guide above model prose (§0), so: case-insensitive.
    service = facts.owning_service
    return service is not None and service.lower().startswith(value.lower())


_TESTERS: dict[str, _Tester] = {
    "description": _description,
    "name": _name,
    "tag-key": _tag_key,
    "tag-value": _tag_value,
    "primary-region": _primary_region,
    "owning-service": _owning_service,
    "all": _all,
}
