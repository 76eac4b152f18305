"""ListSecrets filters and sorting as SQL, mirroring the reference rules of
``domain.search`` (a property test holds the two together)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from strongroom.domain.search import words as split_words
from strongroom.storage import schema

_S = schema.secrets
_T = schema.tags
_W = schema.words

_MAX_CHAR = "\U0010ffff"  # sorts after every character: [p, p + _MAX_CHAR) is "starts with p"
SORT_COLUMNS = {
    "created-date": _S.c.created_at,
    "last-changed-date": _S.c.last_changed_at,
    "last-accessed-date": _S.c.last_accessed_at,
    "name": _S.c.name,
}
_WORD_FIELDS = {
    "description": ("description",),
    "all": ("name", "description", "tag-key", "tag-value"),
}


def _prefix(column: Any, prefix: str) -> Any:
    # A range rather than LIKE: LIKE is case-insensitive on SQLite and ignores indexes there.
    return sa.and_(column >= prefix, column < prefix + _MAX_CHAR)


def filter_clause(key: str, values: Sequence[str], *, code_points: bool = False) -> Any:
    """One ListSecrets filter as SQL, mirroring ``domain.search.matches``.

    ``code_points``: compare text under the "C" collation (PostgreSQL; see ``list_secrets``).
    """
    positive = [v for v in values if not v.startswith("!")]
    negative = [v[1:] for v in values if v.startswith("!")]
    clauses = [sa.not_(_value_clause(key, v, code_points=code_points)) for v in negative]
    if positive:
        clauses.append(sa.or_(*(_value_clause(key, v, code_points=code_points) for v in positive)))
    return sa.and_(*clauses)


def _value_clause(key: str, value: str, *, code_points: bool = False) -> Any:
    def text(column: Any) -> Any:
        return column.collate("C") if code_points else column

    if key == "name":
        return _prefix(text(_S.c.name), value)
    if key in ("tag-key", "tag-value"):
        column = _T.c.key if key == "tag-key" else _T.c.value
        return sa.exists().where(_T.c.secret_pk == _S.c.pk, _prefix(text(column), value))
    # coalesce: a secret without a region or owner must match a negated value ("!eu"),
    # which NOT over a NULL comparison would drop.
    if key == "primary-region":
        return _prefix(text(sa.func.coalesce(_S.c.primary_region, "")), value)
    if key == "owning-service":  # not case-sensitive, as the user guide says (spec §8.1)
        owner = sa.func.lower(sa.func.coalesce(_S.c.owning_service, ""))
        return _prefix(text(owner), value.lower())
    fields = _WORD_FIELDS[key]
    wanted = split_words(value)
    if not wanted:
        return sa.false()  # a value with no words ("+") matches nothing (spec §8.1)
    return sa.and_(
        *(
            sa.exists().where(
                _W.c.secret_pk == _S.c.pk, _W.c.field.in_(fields), _prefix(text(_W.c.word), word)
            )
            for word in wanted
        )
    )
