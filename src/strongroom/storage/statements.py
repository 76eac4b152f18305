"""Statements of the hot paths, built once with SQLAlchemy Core at import and compiled once
per dialect by ``storage.execute``; values always come in through ``bindparam``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from strongroom.storage import schema

_S = schema.secrets
_V = schema.versions
_L = schema.stages
_T = schema.tags
_W = schema.words
_K = schema.access_keys

SECRET_FIELDS = tuple(c.name for c in _S.columns)


def _p(name: str) -> Any:
    return sa.bindparam(name)


SECRET_BY_NAME = sa.select(_S).where(
    _S.c.account_id == _p("account_id"), _S.c.region == _p("region"), _S.c.name == _p("name")
)
SECRET_BY_ARN = sa.select(_S).where(_S.c.arn == _p("arn"))
LOCK_SECRET = sa.select(_S.c.pk).where(_S.c.pk == _p("pk")).with_for_update()
INSERT_SECRET = (
    sa.insert(_S).values({n: _p(n) for n in SECRET_FIELDS if n != "pk"}).returning(_S.c.pk)
)
# Versions with their labels in one query: one row per label (a single row with a NULL label
# for a version that has none), so a read costs one round trip instead of two.
_HELD = _L.alias("held")
_WITH_LABELS = sa.select(_V, _HELD.c.stage.label("held_stage")).outerjoin(
    _HELD, _HELD.c.version_pk == _V.c.pk
)
# Every version of a secret, oldest first: a version's rows next to each other.
VERSIONS_OF_SECRET = _WITH_LABELS.where(_V.c.secret_pk == _p("pk")).order_by(
    _V.c.created_at, _V.c.pk
)
VERSION_BY_ID = _WITH_LABELS.where(
    _V.c.secret_pk == _p("secret_pk"), _V.c.version_id == _p("version_id")
)
VERSION_BY_STAGE = (
    sa.select(_V, _HELD.c.stage.label("held_stage"))
    .join(_L, _L.c.version_pk == _V.c.pk)
    .join(_HELD, _HELD.c.version_pk == _V.c.pk)
    .where(_L.c.secret_pk == _p("secret_pk"), _L.c.stage == _p("stage"))
)
# A secret with the version holding a stage and all that version's labels (GetSecretValue's
# read): one row per label, the version's columns NULL when no version holds the stage.
# Columns are prefixed, as secrets and versions share names (pk, created_at, ...).
_STAGE = _L.alias("stage")


def _staged(where: Any, stage: Any = None) -> Any:
    stage = _p("stage") if stage is None else stage
    return (
        sa.select(
            *[c.label(f"s_{c.name}") for c in _S.columns],
            *[c.label(f"v_{c.name}") for c in _V.columns],
            _HELD.c.stage.label("held_stage"),
        )
        .select_from(_S)
        .outerjoin(_STAGE, sa.and_(_STAGE.c.secret_pk == _S.c.pk, _STAGE.c.stage == stage))
        .outerjoin(_V, _V.c.pk == _STAGE.c.version_pk)
        .outerjoin(_HELD, _HELD.c.version_pk == _V.c.pk)
        .where(where)
    )


STAGED_BY_NAME = _staged(
    sa.and_(
        _S.c.account_id == _p("account_id"), _S.c.region == _p("region"), _S.c.name == _p("name")
    )
)
STAGED_BY_ARN = _staged(_S.c.arn == _p("arn"))


def _staged_many(*keys: str) -> Any:
    """The staged reads of many calls in one statement (PostgreSQL: storage.batched_reads):
    one array parameter per key column, ``keys`` + "stage", each a list with an entry per
    call; every row carries ``i``, the 1-based index of the call it answers. LATERAL keeps
    the plan a loop of index lookups even when the plan is generic: PostgreSQL cannot know
    how long the arrays are, and a hash join over every secret would otherwise win."""
    columns = [*keys, "stage"]
    wanted = (
        sa.func.unnest(*[sa.bindparam(f"{c}s", type_=ARRAY(sa.Text)) for c in columns])
        .table_valued(*[sa.column(c, sa.Text) for c in columns], with_ordinality="i")
        .render_derived(name="wanted")
    )
    match = sa.and_(*[_S.c[c] == wanted.c[c] for c in keys])
    found = _staged(match, wanted.c.stage).lateral("found")
    return sa.select(wanted.c.i, found).select_from(wanted).join(found, sa.true())


STAGED_BY_NAMES = _staged_many("account_id", "region", "name")
STAGED_BY_ARNS = _staged_many("arn")
STAGED_SECRET_COLUMNS = tuple((name, f"s_{name}") for name in SECRET_FIELDS)
LABELS_OF_SECRET = (
    sa.select(_V.c.version_id, _L.c.stage)
    .join(_V, _V.c.pk == _L.c.version_pk)
    .where(_L.c.secret_pk == _p("pk"))
)
_NEW_VERSION = {
    "secret_pk": _p("secret_pk"),
    "version_id": _p("version_id"),
    "created_at": _p("created_at"),
    "sealed": _p("sealed"),
    "master_key_id": _p("master_key_id"),
}
INSERT_VERSION = sa.insert(_V).values(_NEW_VERSION).returning(_V.c.pk)
# PostgreSQL: a version id already taken returns no row instead of failing, which would
# abort the transaction unless a savepoint (two more round trips) caught it.
INSERT_VERSION_UNLESS_TAKEN = (
    postgresql.insert(_V).values(_NEW_VERSION).on_conflict_do_nothing().returning(_V.c.pk)
)
SET_VERSION_VALUE = (
    sa.update(_V)
    .where(_V.c.pk == _p("pk"))
    .values(sealed=_p("sealed"), master_key_id=_p("master_key_id"))
)
DELETE_LABELS = sa.delete(_L).where(_L.c.secret_pk == _p("pk"))
TOUCH_SECRET = sa.update(_S).where(_S.c.pk == _p("pk")).values(last_accessed_at=_p("day"))
TOUCH_VERSION = sa.update(_V).where(_V.c.pk == _p("pk")).values(last_accessed_at=_p("day"))
TAGS_OF_SECRET = (
    sa.select(_T.c.key, _T.c.value).where(_T.c.secret_pk == _p("pk")).order_by(_T.c.position)
)
DELETE_TAGS = sa.delete(_T).where(_T.c.secret_pk == _p("pk"))
DELETE_WORDS = sa.delete(_W).where(_W.c.secret_pk == _p("pk"))
ACCESS_KEY = sa.select(_K).where(_K.c.access_key_id == _p("access_key_id"))
INSERT_ACCESS_KEY = sa.insert(_K).values({c.name: _p(c.name) for c in _K.columns})
GET_META = sa.select(schema.meta.c.value).where(schema.meta.c.key == _p("key"))
UPDATE_META = sa.update(schema.meta).where(schema.meta.c.key == _p("key")).values(value=_p("value"))
INSERT_META = sa.insert(schema.meta).values(key=_p("key"), value=_p("value"))
DELETE_META = sa.delete(schema.meta).where(schema.meta.c.key == _p("key"))
_UPDATE_SECRET: dict[tuple[str, ...], Any] = {}


def update_secret_statement(columns: tuple[str, ...]) -> Any:
    # One statement per set of columns an operation changes; there are only a handful.
    statement = _UPDATE_SECRET.get(columns)
    if statement is None:
        statement = sa.update(_S).where(_S.c.pk == _p("_pk")).values({c: _p(c) for c in columns})
        _UPDATE_SECRET[columns] = statement
    return statement
