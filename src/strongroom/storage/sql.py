"""``SqlStore``: the storage contract on SQLAlchemy Core.

One implementation serves every SQL backend; what differs per dialect is connection set-up
and how a write transaction serialises (see ``storage.base``):

* SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged write survives power loss, not
  only a killed process), foreign keys on, and ``BEGIN IMMEDIATE`` for writes so that two
  writers never both read the old label map and then race to commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from strongroom.domain.search import words as split_words
from strongroom.storage import schema
from strongroom.storage.base import (
    AccessKeyRow,
    AlreadyExists,
    ListQuery,
    SecretRow,
    StorageError,
    VersionRow,
)

_S = schema.secrets
_V = schema.versions
_L = schema.stages
_T = schema.tags
_W = schema.words
_K = schema.access_keys

_SECRET_FIELDS = tuple(c.name for c in _S.columns)
_MAX_CHAR = "\U0010ffff"  # sorts after every character: [p, p + _MAX_CHAR) is "starts with p"
_SORT_COLUMNS = {
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


def _inserted_pk(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every table here has an integer primary key
        raise StorageError("the database returned no primary key for an insert")
    return int(key[0])


def _secret(row: Any) -> SecretRow:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public mapping accessor
    return SecretRow(**{name: m[name] for name in _SECRET_FIELDS})


def _version(row: Any, stages: list[str] | None = None) -> VersionRow:
    return VersionRow(
        pk=row.pk,
        secret_pk=row.secret_pk,
        version_id=row.version_id,
        created_at=row.created_at,
        last_accessed_at=row.last_accessed_at,
        sealed=row.sealed,
        stages=stages or [],
    )


class SqlTransaction:
    """The ``Transaction`` of ``storage.base`` over one SQLAlchemy connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- secrets -----------------------------------------------------------------------------
    def secret_by_name(self, account_id: str, region: str, name: str) -> SecretRow | None:
        row = self.conn.execute(
            sa.select(_S).where(
                _S.c.account_id == account_id, _S.c.region == region, _S.c.name == name
            )
        ).first()
        return None if row is None else _secret(row)

    def secret_by_arn(self, arn: str) -> SecretRow | None:
        row = self.conn.execute(sa.select(_S).where(_S.c.arn == arn)).first()
        return None if row is None else _secret(row)

    def lock_secret(self, pk: int) -> None:
        if self.conn.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises
            self.conn.execute(sa.select(_S.c.pk).where(_S.c.pk == pk).with_for_update())

    def insert_secret(self, row: SecretRow) -> SecretRow:
        values = {name: getattr(row, name) for name in _SECRET_FIELDS if name != "pk"}
        try:
            with self.conn.begin_nested():
                result = self.conn.execute(sa.insert(_S).values(**values))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(row.name) from exc
        row.pk = _inserted_pk(result)
        return row

    def update_secret(self, pk: int, **values: Any) -> None:
        self.conn.execute(sa.update(_S).where(_S.c.pk == pk).values(**values))

    def delete_secret(self, pk: int) -> None:
        # Children first: foreign-key cascades are not relied upon (SQLite needs a pragma).
        for table in (_L, _T, _W, _V):
            self.conn.execute(sa.delete(table).where(table.c.secret_pk == pk))
        self.conn.execute(sa.delete(_S).where(_S.c.pk == pk))

    def list_secrets(self, query: ListQuery) -> list[SecretRow]:
        # PostgreSQL compares text under the database's collation, usually a linguistic one
        # (en_US: "Prod/x" falls inside the range of prefix "prod/", "B" sorts after "a").
        # Filters are code-point prefix matches and names must sort as on SQLite (BINARY),
        # so text is compared under the "C" collation there.
        code_points = self.conn.dialect.name == "postgresql"
        conditions: list[Any] = [_S.c.account_id == query.account_id, _S.c.region == query.region]
        if not query.include_planned_deletion:
            conditions.append(_S.c.deletion_date.is_(None))
        conditions.extend(
            _filter_clause(key, values, code_points=code_points) for key, values in query.filters
        )
        column: Any = _SORT_COLUMNS[query.sort_by]
        if code_points and query.sort_by == "name":
            column = column.collate("C")  # the keyset comparison below must use it too
        if query.after is not None:
            value, pk = query.after
            if query.descending:
                conditions.append(sa.or_(column < value, sa.and_(column == value, _S.c.pk < pk)))
            else:
                conditions.append(sa.or_(column > value, sa.and_(column == value, _S.c.pk > pk)))
        order = (column.desc(), _S.c.pk.desc()) if query.descending else (column, _S.c.pk)
        stmt = sa.select(_S).where(*conditions).order_by(*order).limit(query.limit)
        return [_secret(row) for row in self.conn.execute(stmt)]

    def secrets_due_for_purge(self, now: float, limit: int) -> list[SecretRow]:
        stmt = (
            sa.select(_S)
            .where(_S.c.deletion_date.is_not(None), _S.c.deletion_date <= now)
            .order_by(_S.c.deletion_date)
            .limit(limit)
        )
        return [_secret(row) for row in self.conn.execute(stmt)]

    # -- versions and labels -------------------------------------------------------------------
    def _stages_by_version(self, secret_pk: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for version_pk, stage in self.conn.execute(
            sa.select(_L.c.version_pk, _L.c.stage).where(_L.c.secret_pk == secret_pk)
        ):
            out.setdefault(version_pk, []).append(stage)
        return out

    def versions(self, secret_pk: int) -> list[VersionRow]:
        stages = self._stages_by_version(secret_pk)
        rows = self.conn.execute(
            sa.select(_V).where(_V.c.secret_pk == secret_pk).order_by(_V.c.created_at, _V.c.pk)
        )
        return [_version(row, stages.get(row.pk)) for row in rows]

    def _version_stages(self, version_pk: int) -> list[str]:
        return list(self.conn.scalars(sa.select(_L.c.stage).where(_L.c.version_pk == version_pk)))

    def version_by_id(self, secret_pk: int, version_id: str) -> VersionRow | None:
        row = self.conn.execute(
            sa.select(_V).where(_V.c.secret_pk == secret_pk, _V.c.version_id == version_id)
        ).first()
        return None if row is None else _version(row, self._version_stages(row.pk))

    def version_by_stage(self, secret_pk: int, stage: str) -> VersionRow | None:
        row = self.conn.execute(
            sa.select(_V)
            .join(_L, _L.c.version_pk == _V.c.pk)
            .where(_L.c.secret_pk == secret_pk, _L.c.stage == stage)
        ).first()
        return None if row is None else _version(row, self._version_stages(row.pk))

    def labels_of(self, secret_pks: Sequence[int]) -> dict[int, dict[str, list[str]]]:
        out: dict[int, dict[str, list[str]]] = {pk: {} for pk in secret_pks}
        if not secret_pks:
            return out
        stmt = (
            sa.select(_L.c.secret_pk, _V.c.version_id, _L.c.stage)
            .join(_V, _V.c.pk == _L.c.version_pk)
            .where(_L.c.secret_pk.in_(secret_pks))
        )
        for secret_pk, version_id, stage in self.conn.execute(stmt):
            out[secret_pk].setdefault(version_id, []).append(stage)
        return out

    def insert_version(
        self,
        secret_pk: int,
        version_id: str,
        created_at: float,
        sealed: bytes | None,
        key_id: str | None,
    ) -> VersionRow:
        try:
            with self.conn.begin_nested():
                result = self.conn.execute(
                    sa.insert(_V).values(
                        secret_pk=secret_pk,
                        version_id=version_id,
                        created_at=created_at,
                        sealed=sealed,
                        master_key_id=key_id,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(version_id) from exc
        return VersionRow(
            pk=_inserted_pk(result),
            secret_pk=secret_pk,
            version_id=version_id,
            created_at=created_at,
            sealed=sealed,
        )

    def set_version_value(self, version_pk: int, sealed: bytes, key_id: str) -> None:
        self.conn.execute(
            sa.update(_V).where(_V.c.pk == version_pk).values(sealed=sealed, master_key_id=key_id)
        )

    def delete_versions(self, version_pks: Sequence[int]) -> None:
        if version_pks:
            self.conn.execute(sa.delete(_L).where(_L.c.version_pk.in_(version_pks)))
            self.conn.execute(sa.delete(_V).where(_V.c.pk.in_(version_pks)))

    def set_labels(self, secret_pk: int, labels: Mapping[int, Sequence[str]]) -> None:
        self.conn.execute(sa.delete(_L).where(_L.c.secret_pk == secret_pk))
        rows = [
            {"secret_pk": secret_pk, "stage": stage, "version_pk": version_pk}
            for version_pk, stages in labels.items()
            for stage in stages
        ]
        if rows:
            self.conn.execute(sa.insert(_L), rows)

    def touch_accessed(self, secret_pk: int, version_pk: int, day: float) -> None:
        self.conn.execute(sa.update(_S).where(_S.c.pk == secret_pk).values(last_accessed_at=day))
        self.conn.execute(sa.update(_V).where(_V.c.pk == version_pk).values(last_accessed_at=day))

    # -- tags and words ------------------------------------------------------------------------
    def tags(self, secret_pk: int) -> list[tuple[str, str]]:
        return self.tags_of([secret_pk])[secret_pk]

    def tags_of(self, secret_pks: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
        out: dict[int, list[tuple[str, str]]] = {pk: [] for pk in secret_pks}
        if secret_pks:
            stmt = (
                sa.select(_T.c.secret_pk, _T.c.key, _T.c.value)
                .where(_T.c.secret_pk.in_(secret_pks))
                .order_by(_T.c.secret_pk, _T.c.position)
            )
            for secret_pk, key, value in self.conn.execute(stmt):
                out[secret_pk].append((key, value))
        return out

    def set_tags(self, secret_pk: int, tags: Sequence[tuple[str, str]]) -> None:
        self.conn.execute(sa.delete(_T).where(_T.c.secret_pk == secret_pk))
        if tags:
            self.conn.execute(
                sa.insert(_T),
                [
                    {"secret_pk": secret_pk, "position": i, "key": k, "value": v}
                    for i, (k, v) in enumerate(tags)
                ],
            )

    def set_words(self, secret_pk: int, words: Mapping[str, Sequence[str]]) -> None:
        self.conn.execute(sa.delete(_W).where(_W.c.secret_pk == secret_pk))
        rows = [
            {"secret_pk": secret_pk, "field": field, "word": word}
            for field, field_words in words.items()
            for word in set(field_words)
        ]
        if rows:
            self.conn.execute(sa.insert(_W), rows)

    # -- access keys and facts -----------------------------------------------------------------
    def access_key(self, access_key_id: str) -> AccessKeyRow | None:
        row = self.conn.execute(sa.select(_K).where(_K.c.access_key_id == access_key_id)).first()
        return None if row is None else AccessKeyRow(**row._mapping)  # noqa: SLF001

    def insert_access_key(self, row: AccessKeyRow) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    sa.insert(_K).values(**{c.name: getattr(row, c.name) for c in _K.columns})
                )
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(row.access_key_id) from exc

    def get_meta(self, key: str) -> str | None:
        return self.conn.scalar(sa.select(schema.meta.c.value).where(schema.meta.c.key == key))

    def set_meta(self, key: str, value: str) -> None:
        table = schema.meta
        updated = self.conn.execute(
            sa.update(table).where(table.c.key == key).values(value=value)
        ).rowcount
        if not updated:
            self.conn.execute(sa.insert(table).values(key=key, value=value))

    # -- master-key rotation -------------------------------------------------------------------
    def version_blobs(self, after_pk: int, limit: int) -> list[tuple[int, str, str, bytes]]:
        stmt = (
            sa.select(_V.c.pk, _S.c.arn, _V.c.version_id, _V.c.sealed)
            .join(_S, _S.c.pk == _V.c.secret_pk)
            .where(_V.c.pk > after_pk, _V.c.sealed.is_not(None))
            .order_by(_V.c.pk)
            .limit(limit)
        )
        return [(pk, arn, vid, blob) for pk, arn, vid, blob in self.conn.execute(stmt)]

    def access_key_blobs(self) -> list[tuple[str, bytes]]:
        stmt = sa.select(_K.c.access_key_id, _K.c.sealed_secret).order_by(_K.c.access_key_id)
        return [(akid, blob) for akid, blob in self.conn.execute(stmt)]

    def replace_access_key_blob(self, access_key_id: str, sealed: bytes, key_id: str) -> None:
        self.conn.execute(
            sa.update(_K)
            .where(_K.c.access_key_id == access_key_id)
            .values(sealed_secret=sealed, master_key_id=key_id)
        )


def _filter_clause(key: str, values: Sequence[str], *, code_points: bool = False) -> Any:
    """One ListSecrets filter as SQL, mirroring ``domain.search.matches``.

    ``code_points``: compare text under the "C" collation (PostgreSQL; see ``list_secrets``).
    """
    positive = [v for v in values if not v.startswith("!")]
    negative = [v[1:] for v in values if v.startswith("!")]
    clauses = [sa.not_(_value_clause(key, v, code_points=code_points)) for v in negative]
    if positive:
        clauses.append(
            sa.or_(*(_value_clause(key, v, code_points=code_points) for v in positive))
        )
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


class SqlStore:
    """``Store`` over a SQLAlchemy engine (``sqlite:///path`` by default)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        engine = sa.create_engine(url, pool_size=8, max_overflow=24, pool_pre_ping=False)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        return cls(engine)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[SqlTransaction]:
        with self.engine.connect() as plain:
            conn = plain.execution_options(strongroom_write=write)
            with conn.begin():
                yield SqlTransaction(conn)

    def read(self) -> Any:
        return self._transaction(write=False)

    def write(self) -> Any:
        return self._transaction(write=True)

    def close(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("strongroom_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
